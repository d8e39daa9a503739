"""`hw3 data fetch|fake|info` through Typer's runner, and the import-weight promise."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trainers.data import MARKER, fake, fetch, load
from trainers.data.cli import app
from trainers.errors import ConfigError, DatasetMissingError

runner = CliRunner()


def test_fake_then_info(root: Path) -> None:
    done = runner.invoke(app, ["fake", "cifar10", "--n", "30", "--layout", "binary",
                               "--data-dir", str(root)])
    assert done.exit_code == 0, done.output
    assert "synthetic stand-in data" in done.output and MARKER in done.output
    ds = load("cifar10", root)
    assert (len(ds.train), len(ds.test), ds.layout, ds.synthetic) == (30, 10, "binary", True)
    shown = runner.invoke(app, ["info", "cifar10", "--data-dir", str(root)])
    assert shown.exit_code == 0, shown.output
    rows = {line.split("│")[1].strip(): line for line in shown.output.splitlines()
            if line.count("│") > 3}
    assert "absent" in rows["python"] and "0/7" in rows["python"]
    assert "synthetic" in rows["binary"] and "7/7" in rows["binary"]
    assert "KiB" in rows["binary"]


def test_info_reports_real_and_incomplete(root: Path) -> None:
    runner.invoke(app, ["fake", "fashion-mnist", "--n", "20", "--data-dir", str(root)])
    folder = root / "fashion-mnist"
    (folder / MARKER).unlink()
    assert "real" in runner.invoke(app, ["info", "fashion-mnist", "--data-dir", str(root)]).output
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    out = runner.invoke(app, ["info", "fashion-mnist", "--data-dir", str(root)]).output
    assert "incomplete: missing t10k-labels-idx1-ubyte.gz" in out


def test_fake_seed_and_n_test(root: Path) -> None:
    args = ["fake", "fashion-mnist", "--n", "20", "--n-test", "12", "--seed", "3",
            "--data-dir", str(root)]
    assert runner.invoke(app, args).exit_code == 0
    assert len(load("fashion-mnist", root).test) == 12


def test_user_errors_are_hw3_errors(root: Path) -> None:
    """The hw3 CLI edge turns these into one line and exit 2; here they surface as raised."""
    bad = runner.invoke(app, ["fake", "mnist", "--data-dir", str(root)])
    assert isinstance(bad.exception, ConfigError)
    with pytest.raises(DatasetMissingError):
        load("cifar10", root)


def test_fetch_command_offline(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(url: str, timeout: float = 0) -> None:
        raise fetch.urllib.error.URLError("no route")

    monkeypatch.setattr(fetch.urllib.request, "urlopen", offline)
    done = runner.invoke(app, ["fetch", "fashion-mnist", "--data-dir", str(root)])
    assert isinstance(done.exception, fetch.FetchError)
    assert "needs the internet" in str(done.exception)


def test_fetch_command_installs(tmp_path: Path, root: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    upstream = fake.write("fashion-mnist", tmp_path / "up", 20)
    (upstream / MARKER).unlink()
    monkeypatch.setitem(fetch.SOURCES, ("fashion-mnist", "idx"), tuple(
        fetch.Source((upstream / s.filename).as_uri(), s.filename,
                     hashlib.md5((upstream / s.filename).read_bytes()).hexdigest())
        for s in fetch.SOURCES[("fashion-mnist", "idx")]))
    done = runner.invoke(app, ["fetch", "fashion-mnist", "--data-dir", str(root)])
    assert done.exit_code == 0, done.output
    assert str(root / "fashion-mnist") in done.stdout
    assert load("fashion-mnist", root).summary == (
        "fashion-mnist (idx layout, official files): 20 train, 10 test, 10 classes")


def test_importing_the_data_cli_stays_light() -> None:
    code = ("import sys, trainers.data, trainers.data.cli, trainers.data.catalog; "
            "print(sorted(m for m in ('torch', 'numpy', 'tensorflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parents[3])
    assert out.stdout.strip() == "[]"
