"""``hw3 report RUN --to docs`` copies a run's summary and plots, under a provenance header,
to docs/results/<plugin>/, and the hw3-results directive shows them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from docs_helpers import REPO, mini_project, sphinx_build

sys.path.insert(0, str(REPO / "tests" / "trainers"))
from hw3_helpers import Hw3Env, make_env  # the host tests' tenant plugin


def hw3(env: Hw3Env, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "trainers.cli", *args], capture_output=True,
                          text=True, env=env.subprocess_env(), timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


def run_tenant(env: Hw3Env, *options: str) -> str:
    before = set((env.runs / "tenant").glob("*")) if (env.runs / "tenant").is_dir() else set()
    hw3(env, "run", "tenant", *options)
    (new,) = set((env.runs / "tenant").glob("*")) - before
    return f"tenant/{new.name}"


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Hw3Env, str, Path]]:
    """One reduced tenant run (2 of 4 epochs, stand-in data), exported to a docs folder."""
    root = tmp_path_factory.mktemp("to-docs")
    env = make_env(root)
    ref = run_tenant(env, "--epochs", "2", "--device", "cpu")
    docs = root / "docs"
    proc = hw3(env, "report", ref, "--to", str(docs))
    assert f"docs: {docs / 'results' / 'tenant'}" in proc.stderr
    yield env, ref, docs


def test_export_writes_summary_with_provenance_and_plots(exported: tuple[Hw3Env, str, Path]
                                                         ) -> None:
    env, ref, docs = exported
    folder = docs / "results" / "tenant"
    summary = (folder / "summary.md").read_text(encoding="utf-8")
    rows = dict(line.strip("| ").split(" | ", 1) for line in summary.splitlines()
                if line.startswith("| ") and " | " in line.strip("| "))
    assert rows["Run"].startswith(f"{ref}, ")
    assert rows["Dataset"] == ("stand-in: synthetic data in the real format "
                               "(generated regression data)")
    assert rows["Hardware"].startswith("device cpu")
    assert rows["Epochs"].startswith("2 (reduced: the protocol in plugins.toml says 4)")
    assert rows["Changed from plugins.toml"].startswith("epochs = 2")
    assert rows["Refresh"].startswith(f"hw3 report {ref} --to docs")
    run_summary = (env.runs / ref / "summary.md").read_text(encoding="utf-8")
    assert summary.endswith(run_summary)  # the plugin's summary follows, unchanged
    assert (folder / "plots" / "loss.png").is_file()
    assert "plots/loss.png" in summary


def test_a_new_export_replaces_the_old_one(exported: tuple[Hw3Env, str, Path]) -> None:
    env, first, docs = exported
    folder = docs / "results" / "tenant"
    (folder / "plots" / "stale.png").write_bytes(b"old")
    second = run_tenant(env, "--epochs", "4", "--device", "cpu")
    hw3(env, "report", second, "--to", str(docs))
    summary = (folder / "summary.md").read_text(encoding="utf-8")
    assert second in summary and first not in summary
    assert "| Epochs | 4 |" in summary  # the full protocol: not reduced
    assert "nothing: the full protocol" in summary
    assert not (folder / "plots" / "stale.png").exists()
    assert not list(folder.parent.glob(".*"))  # no staging folder left behind


def test_the_results_directive_shows_an_export(exported: tuple[Hw3Env, str, Path],
                                               tmp_path: Path) -> None:
    _, _, docs = exported
    src = mini_project(docs, "Results\n=======\n\n.. hw3-results:: tenant\n\n"
                       "Missing\n-------\n\n.. hw3-results:: nothing\n")
    build = sphinx_build(src, tmp_path / "html")
    assert build.returncode == 0, build.stderr
    html = build.page("index")
    summary = (docs / "results" / "tenant" / "summary.md").read_text(encoding="utf-8")
    run_id = summary.split("| Run | ")[1].split(",")[0]
    assert run_id in html and "Provenance" in html and "Stand-in data" in html
    assert (tmp_path / "html" / "_images" / "loss.png").is_file()
    assert 'src="_images/loss.png"' in html
    assert "No stored run yet" in html
    assert "hw3 report nothing/RUN_ID --to docs" in html


@pytest.mark.parametrize(("recorded", "expected"), [
    ({"description": "4 logical CPU device(s) on 1 physical CPU", "cores": 2},
     "4 logical CPU device(s) on 1 physical CPU"),
    ({"device_kind": "GPU", "hosts": 2}, "device_kind GPU, hosts 2"),
    ("AMD EPYC (2 cores)", "AMD EPYC (2 cores)"),
    (None, "device cpu (the run records no hardware model)"),
])
def test_hardware_records_become_one_phrase(recorded: object, expected: str) -> None:
    from trainers.session import hardware_phrase

    assert hardware_phrase(recorded, {"device": "cpu"}) == expected


RESULTS = REPO / "docs" / "results"


def test_the_cutout_page_shows_the_training_and_the_show_examples() -> None:
    """Problem 4.1's two example images and 4.2's training share docs/results/cutout/: the
    training's report draws the newest --show run on the same data."""
    summary = (RESULTS / "cutout" / "summary.md").read_text(encoding="utf-8")
    assert "![examples](plots/cutout-examples.png)" in summary
    assert (RESULTS / "cutout" / "plots" / "cutout-examples.png").stat().st_size > 1000
    assert "## Why batch augmentation helps" in summary and "epochs run" in summary


@pytest.mark.parametrize("plugin", ["optimizers", "cutout", "scaling", "depth-width"])
def test_exported_summaries_write_numbers_as_people_do(plugin: str) -> None:
    import re

    summary = (RESULTS / plugin / "summary.md").read_text(encoding="utf-8")
    assert not re.findall(r"\b\d\.?\d*e[+-]\d+\b", summary)
    assert "protocol" in summary  # every reduction is named against the protocol
