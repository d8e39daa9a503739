"""Hostile input through the ``hw3`` CLI: damaged run files, bad settings, bad data files and a
hostile environment. Every case must end in exit code 2 and one line on stderr (no
traceback), change nothing on disk that it should not, and take bounded time and memory.

The run-store cases start from one real tenant run (two epochs, checkpointed), copied fresh
into each test: ``finished`` as it ended, ``resumable`` as if stopped after epoch 2 of 3.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hw3_helpers import Hw3Env, install, make_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from trainers import registry
from trainers.cli import app

SECONDS = 20.0  # per case, generous for a loaded CI machine
GROWTH_KB = 600_000  # peak RSS may grow by at most this much over a case


# -- the contract ---------------------------------------------------------------------------
def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file and folder under ``root`` (folders as None), for 'nothing changed'."""
    found: dict[str, bytes | None] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.name == ".lock":
            continue
        found[rel] = None if path.is_dir() else path.read_bytes()
    return found


def refused(*args: str, message: str = "", unchanged: Path | None = None,
            code: int = 2) -> str:
    """``hw3 ARGS`` must exit ``code`` with one ``error:`` line containing ``message``,
    leave ``unchanged`` as it was, and stay within the time and memory bounds."""
    before = snapshot(unchanged) if unchanged is not None else None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    result = CliRunner().invoke(app, list(args))
    elapsed = time.monotonic() - started
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == code, (args, result.exit_code, result.output)
    err = result.stderr
    assert err.startswith("error: ") and err.count("\n") == 1, (args, err)
    assert "Traceback" not in result.output
    assert message in err, (args, err)
    assert elapsed < SECONDS, (args, elapsed)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < GROWTH_KB, args
    if unchanged is not None:
        assert snapshot(unchanged) == before, (args, err)
    return err


def ok(*args: str) -> Any:
    result = CliRunner().invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result


# -- a real run to damage ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """runs/ holding tenant/finished and tenant/resumable (see the module docstring)."""
    root = tmp_path_factory.mktemp("hostile")
    env = make_env(root)
    with pytest.MonkeyPatch.context() as patch:
        install(env, patch)
        ok("run", "tenant", "--epochs", "2", "--steps", "2", "--device", "cpu", "--seed", "1")
    registry.reset()
    (made,) = (env.runs / "tenant").iterdir()
    finished = made.rename(made.with_name("20990101-000000-f1n1"))
    resumable = finished.with_name("20990101-000000-aaaa")
    shutil.copytree(finished, resumable)
    for name in ("results.json", "summary.md"):
        (resumable / name).unlink()
    shutil.rmtree(resumable / "plots")
    state = json.loads((resumable / "state.json").read_text())
    (resumable / "state.json").write_text(json.dumps({**state, "state": "interrupted"}))
    config = resumable / "config.toml"
    config.write_text(config.read_text().replace("epochs = 2", "epochs = 3"))
    yield env.runs


@pytest.fixture
def runs(hw3_env: Hw3Env, template: Path) -> Path:
    shutil.copytree(template, hw3_env.runs)
    return hw3_env.runs


def resumable(runs: Path) -> Path:
    return runs / "tenant" / "20990101-000000-aaaa"


def finished(runs: Path) -> Path:
    return runs / "tenant" / "20990101-000000-f1n1"


RESUME = ("run", "tenant", "--resume", "20990101-000000-aaaa")


def test_an_intact_run_resumes_and_reports(runs: Path) -> None:
    ok(*RESUME)
    folder = resumable(runs)
    assert json.loads((folder / "state.json").read_text())["state"] == "finished"
    assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == \
        ["epoch-000003.pt", "last.json"]
    ok("report", "tenant/20990101-000000-f1n1")


# -- 1. data loss in the run store ----------------------------------------------------------
POINTERS = [
    ("{{{", "not valid JSON"),
    ("", "not valid JSON"),
    ("[1]", "not a JSON object"),
    ('"epoch-000002.pt"', "not a JSON object"),
    ('{"epoch": 1}', "'metrics_lines' must be a count"),
    ('{"file": "epoch-000002.pt", "epoch": 2}', "'metrics_lines' must be a count"),
    ('{"file": "epoch-000999.pt", "epoch": 999, "metrics_lines": 3}', "not in"),
    ('{"file": "epoch-000002.pt", "epoch": 999, "metrics_lines": 3}', "must be 'epoch-000999"),
    ('{"file": "epoch-000002.pt", "epoch": 2, "metrics_lines": "abc"}', "must be a count"),
    ('{"file": "epoch-000002.pt", "epoch": 2, "metrics_lines": -1}', "must be a count"),
    ('{"file": "epoch-000002.pt", "epoch": 2, "metrics_lines": 1e9}', "must be a count"),
    ('{"file": "epoch-000002.pt", "epoch": 2, "metrics_lines": 99999}', "metric lines"),
    ('{"file": "epoch-000002.pt", "epoch": true, "metrics_lines": 3}', "must be a count"),
    ('{"file": "epoch-000000.pt", "epoch": 0, "metrics_lines": 0}', "not in"),
    ('{"file": "../../x.pt", "epoch": 2, "metrics_lines": 3}', "must be 'epoch-000002.pt'"),
    ('{"file": "epoch-000001.pt", "epoch": 2, "metrics_lines": 3}', "must be 'epoch-000002"),
    ('{"file": null, "epoch": 2, "metrics_lines": 3}', "must be 'epoch-000002.pt'"),
    ('{"file": "epoch-000002.pt", "epoch": 1e400, "metrics_lines": 3}', "must be a count"),
    ("\xff\xfe", "not valid JSON"),
]


@pytest.mark.parametrize(("text", "message"), POINTERS)
def test_a_damaged_checkpoint_pointer_is_reported_and_nothing_is_lost(
        runs: Path, text: str, message: str) -> None:
    folder = resumable(runs)
    (folder / "checkpoints" / "last.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    err = refused(*RESUME, message=message, unchanged=runs)
    assert "last.json" in err and "nothing was changed" in err


def test_a_pointer_past_the_metrics_is_reported(runs: Path) -> None:
    folder = resumable(runs)
    (folder / "metrics.jsonl").write_text("")
    refused(*RESUME, message="metrics.jsonl has 0", unchanged=runs)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.binary(max_size=64),
                 st.recursive(st.none() | st.booleans() | st.integers() | st.floats()
                              | st.text(max_size=12),
                              lambda inner: st.lists(inner, max_size=3)
                              | st.dictionaries(st.sampled_from(["file", "epoch",
                                                                 "metrics_lines", "x"]),
                                                inner, max_size=4),
                              max_leaves=8).map(lambda v: json.dumps(v).encode())))
def test_any_damaged_pointer_is_reported(runs: Path, raw: bytes) -> None:
    folder = resumable(runs)
    pointer = folder / "checkpoints" / "last.json"
    good = pointer.read_bytes()
    pointer.write_bytes(raw)
    try:
        refused(*RESUME, message="last.json", unchanged=runs)
    finally:
        pointer.write_bytes(good)


def test_an_empty_run_config_is_reported_not_replaced_by_defaults(runs: Path) -> None:
    (resumable(runs) / "config.toml").write_text("")
    refused(*RESUME, message="config.toml: damaged", unchanged=runs)


@pytest.mark.parametrize("text", [
    "[hw3]\nplugin = 'tenant'\n",
    "[tenant]\nepochs = 3\n",
    "[hw3]\nplugin = 'other'\n[tenant]\nepochs = 3\n",
    "hw3 = 1\ntenant = 2\n",
])
def test_a_run_config_without_its_tables_is_reported(runs: Path, text: str) -> None:
    (resumable(runs) / "config.toml").write_text(text)
    refused(*RESUME, message="config.toml: damaged", unchanged=runs)


@pytest.mark.parametrize(("line", "message"), [
    ('seed = "abc"', "[hw3] seed"),
    ("seed = -1", "--seed"),
    ("deterministic = 3", "[hw3] deterministic"),
    ("device_requested = 5", "[hw3] device_requested"),
])
def test_damaged_host_settings_in_a_run_are_reported(runs: Path, line: str,
                                                     message: str) -> None:
    config = resumable(runs) / "config.toml"
    key = line.split(" =")[0]
    lines = [ln for ln in config.read_text().splitlines() if not ln.startswith(key + " =")]
    lines.insert(1, line)
    config.write_text("\n".join(lines) + "\n")
    refused(*RESUME, message=message, unchanged=runs)


def _swap_checkpoint(runs: Path, state: Any) -> None:
    import torch

    torch.save(state, resumable(runs) / "checkpoints" / "epoch-000002.pt")


def _state(runs: Path) -> dict[str, Any]:
    import torch

    path = resumable(runs) / "checkpoints" / "epoch-000002.pt"
    loaded: dict[str, Any] = torch.load(path, weights_only=True)
    return loaded


@pytest.mark.parametrize(("change", "message"), [
    ("hidden", "does not fit this run"),
    ("missing-key", "does not fit this run"),
    ("no-model", "not an hw3 checkpoint"),
    ("list", "not an hw3 checkpoint"),
    ("epoch", "holds epoch 5"),
    ("rng", "does not fit this run"),
    ("garbage", "cannot be read as a checkpoint"),
])
def test_a_checkpoint_that_does_not_fit_is_reported(runs: Path, change: str,
                                                    message: str) -> None:
    import torch

    state = _state(runs)
    if change == "hidden":  # a --hidden 32 run's checkpoint in a --hidden 16 run
        state["model"] = {k: torch.zeros(*[32 if d == 16 else d for d in v.shape])
                          for k, v in state["model"].items()}
    elif change == "missing-key":
        state["model"].pop(next(iter(state["model"])))
    elif change == "no-model":
        del state["model"]
    elif change == "list":
        state = [1, 2]
    elif change == "epoch":
        state["epoch"] = 5
    elif change == "rng":
        state["rng"] = {"python": 1}
    if change == "garbage":
        (resumable(runs) / "checkpoints" / "epoch-000002.pt").write_bytes(b"\x80\x04junk")
    else:
        _swap_checkpoint(runs, state)
    err = refused(*RESUME, message=message, unchanged=runs)
    assert "epoch-000002.pt" in err


# -- 2. one bad file breaks nothing else ----------------------------------------------------
@pytest.mark.parametrize("text", ["[1]", '"running"', "3", "null", "{{{", "\xff"])
def test_a_damaged_state_file_is_listed_and_blocks_only_its_run(runs: Path, text: str) -> None:
    (resumable(runs) / "state.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    shown = ok("runs").stdout
    assert "f1n1" in shown and "aaaa" in shown
    if text in ("[1]", '"running"', "3"):
        assert "damaged" in shown
        refused(*RESUME, message="state.json", unchanged=runs)
    ok("report", "tenant/20990101-000000-f1n1")


@pytest.mark.parametrize("results", [
    "{}", "[]", '{"train_loss": "abc", "test_rmse": 1}', '{"train_loss": [1], "test_rmse": "x"}',
    '{"train_loss": null, "test_rmse": 1}',
])
def test_report_on_damaged_results_is_one_line(runs: Path, results: str) -> None:
    folder = finished(runs)
    (folder / "results.json").write_text(results)
    refused("report", "tenant/20990101-000000-f1n1", unchanged=folder / "checkpoints")


def test_report_with_summary_a_directory_or_plots_a_file(runs: Path, tmp_path: Path) -> None:
    folder = finished(runs)
    (folder / "summary.md").unlink()
    (folder / "summary.md").mkdir()
    refused("report", "tenant/20990101-000000-f1n1", message="summary.md", unchanged=runs)
    (folder / "summary.md").rmdir()
    shutil.rmtree(folder / "plots")
    (folder / "plots").write_text("a file")
    refused("report", "tenant/20990101-000000-f1n1", message="plots", unchanged=runs)


def test_report_to_a_file_is_one_line(runs: Path, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.write_text("not a folder")
    refused("report", "tenant/20990101-000000-f1n1", "--to", str(docs), message="docs")
    assert docs.read_text() == "not a folder"


# -- 5. the environment --------------------------------------------------------------------
def test_a_missing_plugins_toml_named_by_the_environment_is_reported(
        hw3_env: Hw3Env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HW3_PLUGINS_TOML", str(tmp_path / "nope.toml"))
    refused("run", "tenant", message="nope.toml: no such file")
    refused("list", message="HW3_PLUGINS_TOML")
    assert not hw3_env.runs.exists()


@pytest.mark.parametrize("kind", ["directory", "not-utf8", "unreadable"])
def test_a_bad_config_path_is_one_line(hw3_env: Hw3Env, tmp_path: Path, kind: str) -> None:
    path = tmp_path / "c.toml"
    if kind == "directory":
        path.mkdir()
    else:
        path.write_bytes(b"\xff\xfe = 1\n" if kind == "not-utf8" else b"steps = 2\n")
    if kind == "unreadable":
        if os.geteuid() == 0:
            pytest.skip("root reads every file")
        path.chmod(0)
    refused("run", "tenant", "--config", str(path), message=str(path))
    assert not hw3_env.runs.exists()


def test_plugins_toml_a_directory_or_not_utf8_is_one_line(
        hw3_env: Hw3Env, monkeypatch: pytest.MonkeyPatch) -> None:
    hw3_env.defaults.write_bytes(b"[tenant]\nsteps = \"\xff\"\n")
    refused("run", "tenant", message="not UTF-8")
    hw3_env.defaults.unlink()
    hw3_env.defaults.mkdir()
    refused("run", "tenant", message="is a directory")


def test_a_runs_dir_that_is_a_file_is_one_line(hw3_env: Hw3Env, tmp_path: Path) -> None:
    runs = tmp_path / "runs-file"
    runs.write_text("x")
    refused("run", "tenant", "--steps", "1", "--epochs", "1", "--device", "cpu",
            "--runs-dir", str(runs), message="runs-file")
    assert runs.read_text() == "x"


# -- 4. settings checked before a run starts ------------------------------------------------
PLUGINS = ("optimizers", "cutout", "depth_width", "scaling")


@pytest.mark.parametrize(("plugin", "args", "message"), [
    ("optimizers", ["--adam-lr", "nan"], "option --adam-lr: key 'adam_lr': expected a finite"),
    ("optimizers", ["--adam-lr", "-1"], "expected a number > 0, got -1.0"),
    ("optimizers", ["--adam-beta1", "2"], "expected a number >= 0, < 1, got 2.0"),
    ("optimizers", ["--adam-eps", "-1"], "--adam-eps"),
    ("optimizers", ["--weight-decay", "nan"], "--weight-decay"),
    ("optimizers", ["--dropout-input", "inf"], "--dropout-input"),
    ("optimizers", ["--rmsprop-rho", "1"], "--rmsprop-rho"),
    ("cutout", ["--lr", "nan"], "--lr"),
    ("cutout", ["--lr-decay", "-5"], "--lr-decay"),
    ("cutout", ["--pad", "100000"], "expected an integer >= 0, <= 32, got 100000"),
    ("cutout", ["--milestones", "50,-3"], "--milestones"),
    ("cutout", ["--momentum", "1e999"], "--momentum"),
    ("depth-width", ["--x-range", "nan"], "--x-range"),
    ("depth-width", ["--noise-std", "inf"], "--noise-std"),
    ("depth-width", ["--x-range", "1e300"], "--x-range"),
    ("depth-width", ["--layers", "1,4"], "--layers"),
    ("scaling", ["--utilization", "nan"], "--utilization"),
    ("scaling", ["--device-tflops", "-1"], "--device-tflops"),
    ("scaling", ["--learners", "3"], "does not split over 3 learners"),
    ("scaling", ["--gpu-hour-usd", "-inf"], "--gpu-hour-usd"),
    ("optimizers", ["--seed", str(2**64)], "--seed"),
    ("optimizers", ["--seed", "-1"], "--seed"),
])
def test_bad_settings_are_refused_before_a_run_exists(tmp_path: Path, plugin: str,
                                                      args: list[str], message: str) -> None:
    from hw3_helpers import builtin_plugin

    with builtin_plugin(tmp_path, plugin) as env:
        refused("run", plugin, *args, "--device", "cpu", message=message)
        assert not env.runs.exists()


@pytest.mark.parametrize("plugin", PLUGINS)
def test_every_default_lies_in_its_declared_range(plugin: str) -> None:
    import importlib

    from trainers import config as cfg

    module = importlib.import_module(f"trainers.plugins.{plugin}.config")
    for spec in cfg.field_specs(module.Config):
        cfg.coerce(spec, spec.default, f"{plugin} default")  # raises if out of range


@settings(max_examples=60, deadline=None)
@given(plugin=st.sampled_from(PLUGINS), data=st.data())
def test_any_non_finite_or_out_of_range_number_is_refused(plugin: str, data: Any) -> None:
    import importlib

    from trainers import config as cfg
    from trainers.errors import ConfigError

    module = importlib.import_module(f"trainers.plugins.{plugin}.config")
    floats = [s for s in cfg.field_specs(module.Config)
              if s.kind in (int, float) and not s.sequence and any(
                  b is not None for b in s.bounds)]
    spec = data.draw(st.sampled_from(floats))
    ge, gt, le, lt = spec.bounds
    low = next((b for b in (ge, gt) if b is not None), None)
    high = next((b for b in (le, lt) if b is not None), None)
    bad = ["nan", "inf", "-inf"] if spec.kind is float else []
    if low is not None:
        bad.append(str(low - 1 if spec.kind is int else low - 1e-3) if ge is not None
                   else str(int(low) if spec.kind is int else low))
    if high is not None:
        bad.append(str(int(high) + 1 if spec.kind is int else high + 1e-3) if le is not None
                   else str(int(high) if spec.kind is int else high))
    text = data.draw(st.sampled_from(bad))
    with pytest.raises(ConfigError, match=spec.option):
        cfg.parse_option(spec, text)


@pytest.mark.parametrize(("args", "message"), [
    (["--seed", "-1"], "--seed must be 0"),
    (["--seed", str(2**64)], "--seed must be 0"),
    (["--n", str(10**12)], "--n must be 10 to"),
    (["--n", "5"], "--n must be 10 to"),
    (["--n-test", str(10**9)], "--n-test 1 to"),
])
def test_bad_fake_data_options_are_one_line(hw3_env: Hw3Env, args: list[str],
                                            message: str) -> None:
    refused("data", "fake", "fashion-mnist", *args, message=message)
    assert not Path(hw3_env.env["HW3_DATA"]).exists()


# -- 3. data files --------------------------------------------------------------------------
def _bounded(call: Any, error: type[Exception], message: str) -> str:
    """``call()`` must raise ``error`` with a one-line message containing ``message``,
    within the time and memory bounds."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    with pytest.raises(error) as caught:
        call()
    assert time.monotonic() - started < SECONDS
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss < GROWTH_KB
    text = str(caught.value)
    assert "\n" not in text and message in text, text
    return text


def _idx(dims: tuple[int, ...], body: bytes | None = None) -> bytes:
    import struct

    head = bytes([0, 0, 8, len(dims)]) + struct.pack(f">{len(dims)}I", *dims)
    return head + (bytes(int.__mul__(*dims[:2]) * (dims[2] if len(dims) > 2 else 1))
                   if body is None else body)


def _gzip_stream(parts: Any, level: int = 9) -> bytes:
    import zlib

    comp = zlib.compressobj(level, zlib.DEFLATED, 31)
    return b"".join(comp.compress(p) for p in parts) + comp.flush()


def _zeros(n: int) -> Iterator[bytes]:
    block = bytes(1 << 20)
    while n > 0:
        yield block[:min(n, len(block))]
        n -= len(block)


@pytest.mark.parametrize(("case", "message"), [
    ("bomb", "found more"),               # a valid header, then 1 GiB of zeros behind it
    ("huge-count", "more than 300,000"),  # 2**32 - 1 images of 28 x 28
    ("overflow", "not 28 x 28"),          # dimensions whose product overflows int64
    ("wrong-side", "not 28 x 28"),
    ("truncated", "truncated?"),
    ("bad-crc", "not a complete gzip file"),
    ("not-gzip", "not a complete gzip file"),
    ("empty", "no IDX magic"),
    ("labels-3d", "expected unsigned bytes (0x08) with 1"),
])
def test_hostile_idx_files_are_refused_bounded(tmp_path: Path, case: str, message: str) -> None:
    import gzip

    from trainers.data.fashion_mnist import read_idx
    from trainers.errors import DatasetCorruptError

    path = tmp_path / "x.gz"
    ndim = 3
    if case == "bomb":
        path.write_bytes(_gzip_stream([_idx((10, 28, 28)), *_zeros(1 << 30)]))
    elif case == "huge-count":
        path.write_bytes(gzip.compress(_idx((2**32 - 1, 28, 28), b"")))
    elif case == "overflow":
        path.write_bytes(gzip.compress(_idx((2**32 - 1, 2**32 - 1, 2**32 - 1), b"")))
    elif case == "wrong-side":
        path.write_bytes(gzip.compress(_idx((10, 4096, 4096), b"")))
    elif case == "truncated":
        path.write_bytes(gzip.compress(_idx((10, 28, 28))[:-5]))
    elif case == "bad-crc":
        raw = bytearray(gzip.compress(_idx((10, 28, 28), bytes(range(256)) * 30 + bytes(160)),
                                      compresslevel=0))
        raw[200] ^= 0xFF
        path.write_bytes(bytes(raw))
    elif case == "not-gzip":
        path.write_bytes(b"PK\x03\x04 not a gzip")
    elif case == "empty":
        path.write_bytes(gzip.compress(b""))
    elif case == "labels-3d":
        path.write_bytes(gzip.compress(_idx((10, 28, 28))))
        ndim = 1
    _bounded(lambda: read_idx(path, ndim), DatasetCorruptError, message)


def _tar(path: Path, files: dict[str, bytes], mode: str = "w:gz", **kw: Any) -> Path:
    import io
    import tarfile

    with tarfile.open(path, mode, **kw) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _sparse_tar(path: Path) -> Path:
    """A GNU sparse member (type 'S'), as tarfile reads one; tarfile cannot write it."""
    raw = bytearray(Path(_tar(tmp := path.with_suffix(".plain"), {"a": b"x" * 10},
                              mode="w", format=2)).read_bytes())
    tmp.unlink()
    raw[156:157] = b"S"
    raw[148:156] = b" " * 8
    raw[148:156] = b"%06o\0 " % sum(raw[:512])
    path.write_bytes(bytes(raw))
    return path


@pytest.mark.parametrize(("case", "message"), [
    ("bomb", "more than 1,048,576 bytes"),
    ("members-over-limit", "1,048,576 bytes"),
    ("sparse", "a sparse file"),
    ("corrupt-xz", "LZMAError"),
    ("stored-gzip-bad-crc", "BadGzipFile"),
    ("truncated-gz", "cannot extract safely"),
    ("not-a-tar", "cannot extract safely"),
])
def test_hostile_archives_are_refused_before_anything_is_written(
        tmp_path: Path, case: str, message: str) -> None:
    import gzip

    from trainers.data import fetch
    from trainers.errors import FetchError

    archive = tmp_path / "a.tar.gz"
    if case == "bomb":  # 3 MiB of zeros behind a small archive: over a 1 MiB cap
        archive.write_bytes(gzip.compress(bytes(3 << 20)))
    elif case == "members-over-limit":
        _tar(archive, {"a": bytes(600 << 10), "b": bytes(600 << 10)}, mode="w")
    elif case == "sparse":
        _sparse_tar(archive)
    elif case == "corrupt-xz":
        archive = _tar(tmp_path / "a.tar.xz", {"a": os.urandom(4096)}, mode="w:xz")
        raw = bytearray(archive.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        archive.write_bytes(bytes(raw))
    elif case == "stored-gzip-bad-crc":
        _tar(archive, {"data_batch_1": b"\x01" * 5000}, compresslevel=0)
        raw = bytearray(archive.read_bytes())
        raw[raw.index(b"\x01" * 100) + 50] = 0x02  # a stored block's byte: only the CRC sees it
        archive.write_bytes(bytes(raw))
    elif case == "truncated-gz":
        _tar(archive, {"a": os.urandom(8192)})
        archive.write_bytes(archive.read_bytes()[:-600])
    elif case == "not-a-tar":
        archive.write_bytes(gzip.compress(b"hello, not a tar" * 100))
    dest = tmp_path / "dest"
    dest.mkdir()
    _bounded(lambda: fetch.safe_extract(archive, dest, limit=1 << 20), FetchError, message)
    assert list(dest.iterdir()) == []


def test_safe_extract_still_extracts_a_sound_archive(tmp_path: Path) -> None:
    from trainers.data import fetch

    archive = _tar(tmp_path / "a.tar.gz", {"d/a": b"1" * 100, "d/b": b"2"})
    fetch.safe_extract(archive, tmp_path / "dest", limit=1 << 20)
    assert (tmp_path / "dest" / "d" / "a").read_bytes() == b"1" * 100


def test_a_broken_pipe_does_not_fail_the_run(hw3_env: Hw3Env) -> None:
    """``hw3 run ... | head -1``: the run stops as interrupted (resumable), not failed, and
    nothing is printed about the pipe."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "trainers.cli", "run", "tenant", "--epochs", "6", "--steps",
         "3", "--step-delay", "0.05", "--device", "cpu"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=hw3_env.subprocess_env())
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # the reader leaves, as head does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    (folder,) = (hw3_env.runs / "tenant").iterdir()
    state = json.loads((folder / "state.json").read_text())
    assert state["state"] == "interrupted", state


def test_a_data_dir_that_is_a_file_is_one_line(hw3_env: Hw3Env, tmp_path: Path) -> None:
    data = tmp_path / "data-file"
    data.write_text("x")
    refused("data", "fake", "fashion-mnist", "--n", "10", "--data-dir", str(data),
            message="data-file")
    assert data.read_text() == "x"


def test_a_full_disk_during_a_run_keeps_the_checkpoint_and_says_how_to_resume(
        hw3_env: Hw3Env, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno

    from trainers.store import runs as store_runs

    real = store_runs.save_state

    def full_after_epoch_1(path: Path, epoch: int, *args: Any) -> None:
        if epoch >= 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path, epoch, *args)

    monkeypatch.setattr(store_runs, "save_state", full_after_epoch_1)
    err = refused("run", "tenant", "--epochs", "3", "--steps", "2", "--device", "cpu",
                  message="No space left on device")
    (folder,) = (hw3_env.runs / "tenant").iterdir()
    assert f"--resume {folder.name}" in err
    assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == \
        ["epoch-000001.pt", "last.json"]
    monkeypatch.setattr(store_runs, "save_state", real)
    ok("run", "tenant", "--resume", folder.name)
    assert json.loads((folder / "state.json").read_text())["state"] == "finished"


@pytest.mark.parametrize("value", [str(2**63), str(-(2**70)), "9" * 400])
def test_integers_beyond_64_bits_are_refused(hw3_env: Hw3Env, value: str) -> None:
    refused("run", "tenant", "--steps", value, message="fits in 64 bits")
    assert not hw3_env.runs.exists()


def test_a_missing_pointer_beside_checkpoints_is_reported_not_restarted(runs: Path) -> None:
    (resumable(runs) / "checkpoints" / "last.json").unlink()
    refused(*RESUME, message="is missing, but epoch-000002.pt is there", unchanged=runs)


@pytest.mark.parametrize("name", ["metrics.jsonl", "checkpoints", "state.json", "config.toml"])
def test_a_run_file_of_the_wrong_kind_is_one_line(runs: Path, name: str) -> None:
    path = resumable(runs) / name
    if path.is_dir():
        shutil.rmtree(path)
        path.write_text("a file where a folder belongs")
    else:
        path.unlink()
        path.mkdir()
    # a config.toml that is a folder is named as such, not "no such run" (issue 16)
    refused(*RESUME, message=f"{name}: is a directory" if name == "config.toml" else name,
            unchanged=runs)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode)))
def test_any_damaged_run_config_is_reported(runs: Path, raw: bytes) -> None:
    config = resumable(runs) / "config.toml"
    good = config.read_bytes()
    config.write_bytes(raw)
    try:
        refused(*RESUME, message="config.toml", unchanged=runs)
    finally:
        config.write_bytes(good)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.binary(max_size=100),
                 st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                              lambda inner: st.lists(inner, max_size=3)
                              | st.dictionaries(st.sampled_from(["state", "started", "x"]),
                                                inner, max_size=3),
                              max_leaves=6).map(lambda v: json.dumps(v).encode())))
def test_hw3_runs_lists_every_run_whatever_its_state_file(runs: Path, raw: bytes) -> None:
    state = resumable(runs) / "state.json"
    good = state.read_bytes()
    state.write_bytes(raw)
    try:
        shown = ok("runs").stdout
        assert "f1n1" in shown and "aaaa" in shown
    finally:
        state.write_bytes(good)
