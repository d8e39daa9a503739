"""The ``optimizers`` plugin (Problem 1): config, model, objective, loop, and ``hw3 run`` /
``hw3 report`` end to end on a small fake CIFAR-10, including an interrupted run resumed."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterator
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from hw3_helpers import REPO, PluginEnv, builtin_plugin
from hw3_helpers import invoke as hw3

from trainers import registry, store
from trainers.config import read_toml, resolve
from trainers.counts import model_counts
from trainers.data import fake
from trainers.errors import ConfigError
from trainers.plugins.optimizers import plugin
from trainers.plugins.optimizers.config import (
    METHODS,
    VARIANTS,
    Config,
    hyperparameter_fields,
    hyperparameters,
)
from trainers.plugins.optimizers.dropout import Dropout
from trainers.plugins.optimizers.optim import RMSPropNesterov
from trainers.plugins.optimizers.report import best_by_variant
from trainers.plugins.optimizers.run import build
from trainers.plugins.optimizers.train import (
    UNFUSED,
    build_mlp,
    can_compile,
    evaluate,
    l2_penalty,
    make_optimizer,
    penalised_weights,
    step_function,
    train_epoch,
)

EPOCHS = 2
SMALL = ["--epochs", str(EPOCHS), "--hidden", "16", "--batch-size", "32", "--eval-batch", "50",
         "--device", "cpu", "--seed", "3"]


# -- config ----------------------------------------------------------------------------------
def defaults() -> Config:
    path = REPO / "plugins.toml"
    table = {k: v for k, v in read_toml(path)["optimizers"].items() if k != "enabled"}
    return resolve(Config, [(str(path), table)])  # type: ignore[no-any-return]


def test_plugins_toml_sets_the_seeds_protocol_and_every_hyperparameter() -> None:
    config = defaults()
    assert (config.hidden, config.batch_size, config.epochs) == (1000, 128, 200)
    assert (config.dropout_input, config.dropout_hidden, config.dropout_style) == \
        (0.2, 0.5, "classic")
    assert config.methods == METHODS and config.variants == VARIANTS
    assert hyperparameters(config, "adadelta") == {"lr": 1.0, "rho": 0.95, "eps": 1e-6}
    assert hyperparameters(config, "adam") == {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999,
                                               "eps": 1e-8}
    cites = {f.name: f.metadata["cite"] for f in dataclasses.fields(Config)}
    assert all(cites[name] for name in hyperparameter_fields())  # each value sourced beside it


@pytest.mark.parametrize(("change", "message"), [
    ({"methods": ["adam", "sgd"]}, "methods must be"),
    ({"methods": ["adam", "adam"]}, "methods must be"),
    ({"variants": []}, "variants must be"),
    ({"dropout_hidden": 1.0}, "dropout_hidden"),
    ({"epochs": 0}, "epochs"),
])
def test_config_rejects_bad_values(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve(Config, [("test", change)])


def test_the_plugin_is_registered_and_fits_the_interface() -> None:
    (ep,) = [e for e in entry_points(group=registry.GROUP) if e.name == "optimizers"]
    assert ep.value == "trainers.plugins.optimizers:plugin"
    assert registry.check(plugin, "optimizers") == ""


# -- model, objective, optimizers ------------------------------------------------------------
def test_the_model_is_the_spec_and_its_counts_come_from_archcalc() -> None:
    model = build_mlp(1000, (0.2, 0.5, 0.5), "classic")
    params = sum(p.numel() for p in model.parameters())
    assert params == model_counts("mlp-cifar").params == 4_084_010
    drops = [m for m in model if isinstance(m, Dropout)]
    assert [(d.p, d.style) for d in drops] == [(0.2, "classic"), (0.5, "classic"),
                                               (0.5, "classic")]
    assert not any(isinstance(m, Dropout | torch.nn.Dropout)
                   for m in build_mlp(1000, None, "classic"))


@pytest.mark.parametrize("style", ["classic", "inverted"])
def test_dropout_style_option_reaches_the_dropout_variant_only(style: str) -> None:
    config = resolve(Config, [("cli", {"dropout_style": style, "hidden": 8})])
    model, _ = build(config, ("dropout", "adam"), "cpu")
    assert {m.style for m in model if isinstance(m, Dropout)} == {style}
    plain, _ = build(config, ("l2", "adam"), "cpu")
    assert not any(isinstance(m, Dropout) for m in plain)


def test_each_method_gets_its_optimizer_and_hyperparameters() -> None:
    config = Config()
    kinds = {"adagrad": torch.optim.Adagrad, "rmsprop": torch.optim.RMSprop,
             "rmsprop-nesterov": RMSPropNesterov, "adadelta": torch.optim.Adadelta,
             "adam": torch.optim.Adam}
    for method in METHODS:
        opt = make_optimizer(method, torch.nn.Linear(2, 1), hyperparameters(config, method),
                             0.01)
        assert type(opt) is kinds[method]
        assert opt.param_groups[0]["lr"] == hyperparameters(config, method)["lr"]
        decay = [(len(g["params"]), g["weight_decay"]) for g in opt.param_groups]
        assert decay == [(1, 0.01), (1, 0.0)]  # the weight decays, the bias does not
    adadelta = make_optimizer("adadelta", torch.nn.Linear(1, 1),
                              hyperparameters(config, "adadelta")).param_groups[0]
    assert (adadelta["rho"], adadelta["eps"]) == (0.95, 1e-6)


def test_l2_penalty_value() -> None:
    torch.manual_seed(0)
    w = [torch.randn(4, 3, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)]
    expected = 0.05 * sum(float((x ** 2).sum()) for x in w)
    assert l2_penalty(w, 0.1).item() == pytest.approx(expected, rel=1e-12)
    model = build_mlp(8, None, "classic")
    assert len(penalised_weights(model)) == 3  # weight matrices only, no biases


@pytest.mark.parametrize("method", METHODS)
def test_weight_decay_steps_as_the_penalty_in_the_objective_would(method: str) -> None:
    """The plugin leaves the penalty's gradient to the optimizer's weight decay: three steps
    equal three steps on data loss + (λ/2)ΣW² differentiated by autograd, biases free."""
    torch.manual_seed(0)
    ours = build_mlp(8, None, "classic").double()
    theirs = build_mlp(8, None, "classic").double()
    theirs.load_state_dict(ours.state_dict())
    hyper, lam = hyperparameters(Config(), method), 0.05
    x, y = torch.randn(16, 3, 32, 32, dtype=torch.float64), torch.randint(0, 10, (16,))
    decayed = make_optimizer(method, ours, hyper, lam)
    plain = make_optimizer(method, theirs, hyper, 0.0)
    for _ in range(3):
        decayed.zero_grad()
        F.cross_entropy(ours(x), y).backward()
        decayed.step()
        plain.zero_grad()
        penalty = sum((w ** 2).sum() for w in penalised_weights(theirs)) * lam / 2
        (F.cross_entropy(theirs(x), y) + penalty).backward()
        plain.step()
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    assert not torch.equal(ours[-1].weight, build_mlp(8, None, "classic").double()[-1].weight)


@pytest.mark.parametrize("method", UNFUSED)
def test_a_compiled_step_is_the_eager_step(method: str) -> None:
    if not can_compile("cpu"):
        pytest.skip("torch.compile needs a C++ compiler")
    torch.manual_seed(0)
    eager_model, compiled_model = torch.nn.Linear(40, 30), torch.nn.Linear(40, 30)
    compiled_model.load_state_dict(eager_model.state_dict())
    hyper = hyperparameters(Config(), method)
    eager = make_optimizer(method, eager_model, hyper, 0.01)
    compiled = make_optimizer(method, compiled_model, hyper, 0.01)
    step, how = step_function(compiled, method, "compile", "cpu")
    assert how == "compiled"
    x = torch.randn(8, 40)
    for _ in range(3):
        for model, take in ((eager_model, eager.step), (compiled_model, step)):
            model.zero_grad()
            model(x).square().mean().backward()
            take()
    for a, b in zip(eager_model.parameters(), compiled_model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_step_modes_and_a_missing_compiler(monkeypatch: pytest.MonkeyPatch) -> None:
    model = torch.nn.Linear(2, 1)
    adam = make_optimizer("adam", model, hyperparameters(Config(), "adam"))
    assert step_function(adam, "adam", "compile", "cpu") == (adam.step, "fused")
    rms = make_optimizer("rmsprop", model, hyperparameters(Config(), "rmsprop"))
    assert step_function(rms, "rmsprop", "eager", "cpu") == (rms.step, "eager")
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr("shutil.which", lambda name: None)
    assert not can_compile("cpu")
    assert step_function(rms, "rmsprop", "auto", "cpu") == (rms.step, "eager")
    with pytest.raises(ConfigError, match="C\\+\\+ compiler"):
        step_function(rms, "rmsprop", "compile", "cpu")


def test_train_epoch_means_and_objective() -> None:
    """With lr 0 the model is fixed: the batch-size-weighted minibatch mean (a short last
    batch included) is the full-batch loss, and objective minus loss is the penalty."""
    torch.manual_seed(0)
    model = build_mlp(8, None, "classic")
    x, y = torch.randn(50, 3, 32, 32), torch.randint(0, 10, (50,))
    opt = make_optimizer("adam", model, {"lr": 0.0, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
                         0.01)
    weights = penalised_weights(model)
    loss, objective = train_epoch(model, opt, x, y, 16, lambda: l2_penalty(weights, 0.01))
    with torch.no_grad():
        full = F.cross_entropy(model(x), y).item()
        penalty = l2_penalty(weights, 0.01).item()
    assert loss == pytest.approx(full, rel=1e-5)
    assert objective - loss == pytest.approx(penalty, rel=1e-4)


def test_evaluate_in_chunks_equals_one_pass() -> None:
    torch.manual_seed(1)
    net = build_mlp(8, None, "classic").eval()
    x, y = torch.randn(23, 3, 32, 32), torch.randint(0, 10, (23,))
    loss, acc = evaluate(net, x, y, chunk=5)
    with torch.no_grad():
        logits = net(x)
    assert loss == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-5)
    assert acc == pytest.approx((logits.argmax(1) == y).double().mean().item())


# -- hw3 run / hw3 report end to end ------------------------------------------------------------
@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PluginEnv]:
    """A small fake CIFAR-10, the repository's plugins.toml, only this plugin loaded."""
    root = tmp_path_factory.mktemp("optimizers")
    fake.write("cifar10", root / "data", n=120, n_test=40, seed=1)
    with builtin_plugin(root, "optimizers") as found:
        yield found


def without_times(trainings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**t, "train_seconds": None,
             "history": [{**h, "train_s": None, "compile_s": None} for h in t["history"]]}
            for t in trainings]


@pytest.fixture(scope="module")
def baseline(env: PluginEnv) -> Path:
    result = hw3("run", "optimizers", *SMALL)
    assert result.exit_code == 0, result.output
    return env.newest()


def test_a_missing_dataset_is_one_line_and_leaves_no_run(env: PluginEnv,
                                                        tmp_path: Path) -> None:
    before = sorted(env.runs.rglob("*")) if env.runs.exists() else []
    result = hw3("run", "optimizers", *SMALL, "--data-dir", str(tmp_path))
    assert result.exit_code == 2
    assert "cifar10 not found under" in result.output and "hw3 data fake cifar10" in result.output
    assert "Traceback" not in result.output
    assert (sorted(env.runs.rglob("*")) if env.runs.exists() else []) == before


def test_compile_without_a_compiler_is_one_line_and_leaves_no_run(
        env: PluginEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.setattr("shutil.which", lambda name: None)
    before = sorted(env.runs.rglob("*")) if env.runs.exists() else []
    result = hw3("run", "optimizers", *SMALL, "--step", "compile")
    assert result.exit_code == 2 and "needs a C++ compiler" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert (sorted(env.runs.rglob("*")) if env.runs.exists() else []) == before


def test_run_trains_all_ten_and_says_it_is_stand_in_data(baseline: Path) -> None:
    results = json.loads((baseline / "results.json").read_text())
    pairs = [(t["variant"], t["method"]) for t in results["trainings"]]
    assert pairs == [(v, m) for v in VARIANTS for m in METHODS]
    compiled = "compiled" if can_compile("cpu") else "eager"
    for t in results["trainings"]:
        assert t["optimizer_step"] == (compiled if t["method"] in UNFUSED else "fused")
        first, second = (h["compile_s"] for h in t["history"])  # left out of train_s
        assert second == 0 and (first > 0) == (t["optimizer_step"] == "compiled")
        assert [h["epoch"] for h in t["history"]] == [1, 2]
        last = t["history"][-1]
        assert all(math.isfinite(last[k]) for k in ("train_loss", "full_train_loss",
                                                     "test_loss", "train_s"))
        assert last["full_train_objective"] > last["full_train_loss"]  # L2 is in it
        assert 0 <= last["test_acc"] <= 1 and t["train_seconds"] > 0
    l2_losses = [t["history"][-1]["full_train_loss"] for t in results["trainings"]
                 if t["variant"] == "l2"]
    assert min(l2_losses) < math.log(10) - 0.5  # the fake classes are learnable
    assert results["model"]["params"] == model_counts("mlp-cifar", params={"hidden": 16}).params
    assert json.loads((baseline / "state.json").read_text())["stand_in"] is True
    lines = (baseline / "metrics.jsonl").read_text().splitlines()
    assert len([ln for ln in lines if '"epoch"' in ln]) == len(pairs) * EPOCHS
    assert json.loads((baseline / "checkpoints" / "last.json").read_text())["epoch"] == 20


def test_report_draws_plots_and_names_the_best_method_from_the_numbers(env: PluginEnv,
                                                                       baseline: Path) -> None:
    for old in (baseline / "plots").iterdir():
        old.unlink()
    result = hw3("report", str(baseline))
    assert result.exit_code == 0, result.output
    for name in ("loss-l2", "loss-dropout", "loss-both"):
        for suffix in (".png", ".svg"):
            assert (baseline / "plots" / (name + suffix)).stat().st_size > 1000
    text = (baseline / "summary.md").read_text()
    assert "Stand-in data" in text
    for title in ("Best method by final training loss", "Training time per method",
                  "Test accuracy", "dropout / l2"):
        assert title in text
    trainings = json.loads((baseline / "results.json").read_text())["trainings"]
    for variant in VARIANTS:
        method, loss = min(((t["method"], t["history"][-1]["full_train_loss"])
                            for t in trainings if t["variant"] == variant), key=lambda r: r[1])
        assert best_by_variant(trainings)[variant] == (method, loss)
        assert f"**{variant}**: {method} reaches the lowest training loss" in text
    accuracy = text.split("## Test accuracy")[1].split("##")[0]
    assert all(f"| {m} |" in accuracy for m in METHODS)


@pytest.mark.parametrize("stop_after", [3, 4])  # mid-training / at a training's end
def test_an_interrupted_run_resumes_to_the_same_results(env: PluginEnv, baseline: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        stop_after: int) -> None:
    original = store.Run.save_checkpoint

    def stopping(self: store.Run, epoch: int, *args: Any, **kwargs: Any) -> None:
        self.stop_requested = self.stop_requested or epoch == stop_after
        original(self, epoch, *args, **kwargs)  # raises KeyboardInterrupt once stopped

    monkeypatch.setattr(store.Run, "save_checkpoint", stopping)
    assert hw3("run", "optimizers", *SMALL).exit_code == 130
    folder = env.newest()
    assert json.loads((folder / "checkpoints" / "last.json").read_text())["epoch"] == stop_after
    monkeypatch.setattr(store.Run, "save_checkpoint", original)
    result = hw3("run", "optimizers", "--resume", folder.name)
    assert result.exit_code == 0, result.output
    resumed = json.loads((folder / "results.json").read_text())["trainings"]
    expected = json.loads((baseline / "results.json").read_text())["trainings"]
    assert without_times(resumed) == without_times(expected)
    assert len((folder / "metrics.jsonl").read_text().splitlines()) == \
        len((baseline / "metrics.jsonl").read_text().splitlines())
