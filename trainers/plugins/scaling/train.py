"""TensorFlow side: devices, data, model, strategies and the custom training loop.

TensorFlow is imported inside the functions only. A custom loop (not ``model.fit``) because
Keras 3's fit fails under MultiWorkerMirroredStrategy (keras-team/keras#20585); the same loop
serves MirroredStrategy, so every job is timed the same way. Without enough GPUs the learners
are logical devices carved out of one physical device, and the hardware record says so.

Input: each worker process reads its shard with a plain ``tf.data`` iterator, and the step
splits the host batch into one slice per local replica
(``experimental_distribute_values_from_function``). Not TF's distributed datasets: once a
``distribute_datasets_from_function`` (or ``experimental_distribute_dataset``) iterator has
produced a batch, every op of the process costs more CPU (docs/problems/problem2.rst, Speed,
gives the measurement).
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trainers.runtime import Hardware

CROSS_DEVICE_OPS = {"nccl": "NcclAllReduce", "hierarchical-copy": "HierarchicalCopyAllReduce",
                    "reduction-to-one-device": "ReductionToOneDevice"}


@dataclass(frozen=True)
class TrainSpec:
    """What one training needs besides its job: plain data, so workers get it as JSON."""

    model: str
    image_size: int
    epochs: int
    steps: int
    warmup_steps: int
    lr: float
    seed: int
    data_dir: str
    train_samples: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class NotAvailableError(RuntimeError):
    """A communication method this hardware cannot run (NCCL without GPUs)."""


def tf_module() -> Any:
    """TensorFlow, imported quietly (C++ info logs off, start-up notices dropped) on first
    use; the first device listing loads more native libraries, so it is inside too."""
    loaded = sys.modules.get("tensorflow")
    if loaded is not None:
        return loaded
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with native_notices_dropped():
        import tensorflow as tf

        tf.config.list_physical_devices()
    return tf


# Printed by TensorFlow's native libraries as they load, whatever TF_CPP_MIN_LOG_LEVEL says
# (absl logs before its InitializeLog): notices, nothing a user can act on.
NATIVE_NOTICES = ("All log messages before absl::InitializeLog() is called",
                  "oneDNN custom operations are on")


@contextlib.contextmanager
def native_notices_dropped() -> Iterator[None]:
    """Native code's stderr (file descriptor 2) during the block, with the lines of
    :data:`NATIVE_NOTICES` left out and every other line passed on."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (a test's capture)
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), fd)
        try:
            yield
        finally:
            os.dup2(saved, fd)
            os.close(saved)
            caught.seek(0)
            kept = [line for line in caught.read().decode("utf-8", "replace").splitlines(True)
                    if not any(n in line for n in NATIVE_NOTICES)]
            sys.stderr.write("".join(kept))


# -- devices ---------------------------------------------------------------------------------
def setup_devices(n: int) -> dict[str, Any]:
    """Make ``n`` learner devices; physical GPUs when there are enough, else logical CPUs.

    Must run before TensorFlow initialises its devices; later calls must ask for no more
    devices than the first made. Returns the hardware record every result carries.
    """
    tf = tf_module()
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) >= n:
        names = [d.name for d in tf.config.list_logical_devices("GPU")][:n]
        return learner_hardware(names, "GPU", physical=len(gpus), logical=False)
    cpu = tf.config.list_physical_devices("CPU")[0]
    with contextlib.suppress(RuntimeError):  # already initialised: reuse what is there
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n)])
    names = [d.name for d in tf.config.list_logical_devices("CPU")]
    if len(names) < n:
        raise RuntimeError(f"{n} logical CPU devices requested, this process has {len(names)}")
    return learner_hardware(names[:n], "CPU", physical=1, logical=True)


def expected_hardware(n: int) -> dict[str, Any]:
    """What :func:`setup_devices` will make for ``n`` learners in a fresh process, without
    fixing this process's devices (physical devices are only listed)."""
    tf = tf_module()
    gpus = tf.config.list_physical_devices("GPU")
    if len(gpus) >= n:
        return learner_hardware([f"GPU:{i}" for i in range(n)], "GPU", physical=len(gpus),
                        logical=False)
    return learner_hardware([f"CPU:{i}" for i in range(n)], "CPU", physical=1, logical=True)


def learner_hardware(devices: list[str], kind: str, *, physical: int,
                     logical: bool) -> dict[str, Any]:
    """The truthful record of where the learners ran (the host's Hardware record)."""
    what = (f"{len(devices)} logical {kind} device(s) on {physical} physical {kind}" if logical
            else f"{len(devices)} physical {kind}(s)")
    return Hardware(what, tuple(devices), kind, physical, logical, 1, os.cpu_count()).record()


# -- data ------------------------------------------------------------------------------------
def load_arrays(data_dir: str, samples: int = 0) -> tuple[np.ndarray, np.ndarray, bool, str]:
    """FashionMNIST training images (N, 28, 28) uint8, labels, synthetic flag and summary."""
    from trainers.data import fashion_mnist
    from trainers.data.catalog import choose_layout, get_spec, is_synthetic, resolve_data_dir

    spec = get_spec("fashion-mnist")
    root = resolve_data_dir(data_dir)
    layout = choose_layout(spec, root, None)
    arrays = fashion_mnist.load_idx(root / layout.folder)
    x, y = arrays.x_train[:, 0], arrays.y_train
    if samples:
        x, y = x[:samples], y[:samples]
    synthetic = is_synthetic(root, layout)
    kind = "SYNTHETIC stand-in data" if synthetic else "official files"
    return x, y, synthetic, f"fashion-mnist ({kind}): {len(y)} train images used"


def padded(tf: Any, batch: Any, size: int) -> Any:
    """uint8 (B, 28, 28) -> float32 (B, size, size, 1) in [0, 1], zero-padded around."""
    x = tf.cast(batch, tf.float32)[..., None] / 255.0
    lo = (size - 28) // 2
    return tf.pad(x, [[0, 0], [lo, size - 28 - lo], [lo, size - 28 - lo], [0, 0]])


def dataset_fn(x: np.ndarray, y: np.ndarray, global_batch: int, size: int,
               seed: int, local_replicas: int = 1) -> Callable[[Any], Any]:
    """A per-input-pipeline tf.data function: shard, shuffle, batch, pad, prefetch; a batch
    holds the per-replica batch of each of the pipeline's ``local_replicas``."""
    tf = tf_module()

    def make(ctx: Any) -> Any:
        batch = ctx.get_per_replica_batch_size(global_batch) * local_replicas
        ds = tf.data.Dataset.from_tensor_slices((x, y))
        ds = ds.shard(ctx.num_input_pipelines, ctx.input_pipeline_id).cache()
        ds = ds.shuffle(min(len(y), 10_000), seed=seed).repeat()
        ds = ds.batch(batch, drop_remainder=True)
        ds = ds.map(lambda a, b: (padded(tf, a, size), b), num_parallel_calls=tf.data.AUTOTUNE)
        return ds.prefetch(tf.data.AUTOTUNE)

    return make


# -- model -----------------------------------------------------------------------------------
def build_model(name: str, size: int, classes: int = 10) -> Any:
    """Keras ResNet50 (weights=None, logits) or a tiny CNN for quick runs."""
    tf = tf_module()
    keras = tf.keras
    if name == "resnet50":
        return keras.applications.ResNet50(weights=None, input_shape=(size, size, 1),
                                           classes=classes, classifier_activation=None)
    return keras.Sequential([
        keras.Input((size, size, 1)),
        keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
        keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(classes),
    ], name="tiny")


# -- strategies ------------------------------------------------------------------------------
def mirrored(devices: list[str], comm: str) -> tuple[Any, str]:
    """MirroredStrategy with ``comm`` (or the default) and the cross-device op it resolved to."""
    tf = tf_module()
    require_available(devices, comm)
    ops = None if comm == "default" else getattr(tf.distribute, CROSS_DEVICE_OPS[comm])()
    strategy = tf.distribute.MirroredStrategy(devices, cross_device_ops=ops)
    resolved = strategy.extended._cross_device_ops  # what the default chose, by TF's rules
    return strategy, type(resolved).__name__ if resolved is not None else "none"


def require_available(devices: list[str], comm: str) -> None:
    """Raise :class:`NotAvailableError` for a cross-device op these devices cannot run."""
    if comm == "nccl" and not any("GPU" in d.upper() for d in devices):
        raise NotAvailableError("NcclAllReduce needs GPUs; the learners are CPU devices "
                                "(TensorFlow fails at the first step)")


# -- the loop --------------------------------------------------------------------------------
def input_context(strategy: Any) -> Any:
    """This process's share of the input: one pipeline per worker process."""
    tf = tf_module()
    resolver = strategy.cluster_resolver
    spec = resolver.cluster_spec() if resolver is not None else None
    workers = spec.num_tasks("worker") if spec is not None and "worker" in spec.jobs else 1
    task = int(resolver.task_id) if workers > 1 else 0
    return tf.distribute.InputContext(workers, task, strategy.num_replicas_in_sync)


def host_batches(strategy: Any, x: np.ndarray, y: np.ndarray, global_batch: int, size: int,
                 seed: int) -> Any:
    """An iterator over this worker's batches (its local replicas' share), on the host."""
    ctx = input_context(strategy)
    local = strategy.num_replicas_in_sync // ctx.num_input_pipelines
    return iter(dataset_fn(x, y, global_batch, size, seed, local)(ctx))


def make_step(strategy: Any, model: Any, optimizer: Any, global_batch: int) -> Callable[..., Any]:
    """One synchronous data-parallel iteration as one tf.function; returns the mean loss.

    The host batch is split into one slice per local replica; then the same work as Keras'
    ``fit`` step: forward, loss, gradients and the optimizer update in each replica, and the
    summed loss; no XLA, as ``fit`` on CPUs."""
    tf = tf_module()
    local = strategy.num_replicas_in_sync // input_context(strategy).num_input_pipelines
    loss_obj = tf.keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, reduction="none")

    def replica(x: Any, y: Any) -> Any:
        with tf.GradientTape() as tape:
            per_example = loss_obj(y, model(x, training=True))
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return loss

    @tf.function
    def step(iterator: Any) -> Any:
        losses = strategy.run(replica, args=split(strategy, next(iterator), local))
        return strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    return step


def split(strategy: Any, batch: tuple[Any, ...], local: int) -> Any:
    """A host batch as per-replica values: local replica ``i`` gets the ``i``-th of
    ``local`` equal slices (on its own device)."""
    tf = tf_module()
    parts = [tf.split(t, local) for t in batch]
    return strategy.experimental_distribute_values_from_function(
        lambda ctx: tuple(p[ctx.replica_id_in_sync_group % local] for p in parts))


def total_steps(spec: TrainSpec, samples: int, global_batch: int) -> int:
    """Iterations of the job: ``steps`` per epoch, or as many full batches as fit."""
    per_epoch = spec.steps or max(1, samples // global_batch)
    return spec.epochs * per_epoch


@dataclass
class Backup:
    """BackupAndRestore for a custom loop: save every ``every`` steps, restore on start."""

    folder: Path
    every: int
    chief: bool
    task: int = 0


class Session:
    """One job's model, optimizer, step function and input iterator, built under the
    strategy (restored from a backup if there is one). :meth:`run` trains to the end;
    :meth:`step` runs one iteration (for profiling the very step a job runs)."""

    def __init__(self, strategy: Any, spec: TrainSpec, x: np.ndarray, y: np.ndarray,
                 global_batch: int, backup: Backup | None = None) -> None:
        tf = tf_module()
        tf.keras.utils.set_random_seed(spec.seed)
        with strategy.scope():
            self.model = build_model(spec.model, spec.image_size)
            optimizer = tf.keras.optimizers.SGD(spec.lr, momentum=0.9)
            optimizer.build(self.model.trainable_variables)  # slots now, not in tf.function
            self.done = tf.Variable(0, dtype=tf.int64, trainable=False)
        self._iterator = host_batches(strategy, x, y, global_batch, spec.image_size, spec.seed)
        self._step = make_step(strategy, self.model, optimizer, global_batch)
        self.backup = backup
        self.manager, self.restored = _restore(tf, backup, self.model, optimizer, self.done)
        self.spec, self.global_batch = spec, global_batch
        self.total = total_steps(spec, len(y), global_batch)

    def step(self) -> Any:
        """One iteration; the summed loss as a tensor (reading it waits for the step)."""
        return self._step(self._iterator)

    def run(self, on_step: Callable[[int], None] | None = None) -> dict[str, Any]:
        """The job's remaining iterations; throughput is timed after ``warmup_steps``."""
        result = _loop(self.step, int(self.done.numpy()), self.total, self.spec.warmup_steps,
                       on_step, lambda k: _save(self.manager, self.backup, self.done, k))
        model = self.model
        params = int(sum(int(np.prod(v.shape)) for v in model.trainable_variables))
        return {**result, "restored_from_step": self.restored, "trainable_params": params,
                "total_params": int(model.count_params()), "global_batch": self.global_batch}


def train(strategy: Any, spec: TrainSpec, x: np.ndarray, y: np.ndarray, global_batch: int,
          on_step: Callable[[int], None] | None = None, backup: Backup | None = None,
          ) -> dict[str, Any]:
    """Build the job's session and run it to the end."""
    return Session(strategy, spec, x, y, global_batch, backup).run(on_step)


def _loop(step: Callable[[], Any], start: int, total: int, warmup: int,
          on_step: Callable[[int], None] | None, save: Callable[[int], None]) -> dict[str, Any]:
    losses: list[float] = []
    t_start = time.perf_counter()
    t_timed, timed_from, loss = t_start, start, None
    for k in range(start, total):
        loss = step()
        if k + 1 - start == warmup:
            losses.append(float(loss))  # sync: the clock starts on finished work
            t_timed, timed_from = time.perf_counter(), k + 1
        save(k + 1)
        if on_step is not None:
            on_step(k + 1)
    if loss is not None:
        losses.append(float(loss))
    end = time.perf_counter()
    timed = total - timed_from
    return {"steps": total - start, "timed_steps": timed, "train_s": end - t_start,
            "timed_s": end - t_timed, "first_loss": losses[0] if losses else None,
            "last_loss": losses[-1] if losses else None}


def _restore(tf: Any, backup: Backup | None, model: Any, optimizer: Any,
             done: Any) -> tuple[Any, int]:
    if backup is None:
        return None, 0
    ckpt = tf.train.Checkpoint(model=model, optimizer=optimizer, done=done)
    chief_dir = backup.folder / "chief"
    latest = tf.train.latest_checkpoint(str(chief_dir))
    if latest:
        ckpt.restore(latest)
    own = chief_dir if backup.chief else backup.folder / f"worker-{backup.task}"
    return tf.train.CheckpointManager(ckpt, str(own), max_to_keep=1), int(done.numpy())


def _save(manager: Any, backup: Backup | None, done: Any, k: int) -> None:
    if manager is None or backup is None or k % backup.every:
        return
    done.assign(k)
    manager.save(checkpoint_number=k)
