"""The service every front end calls: one parser for input shapes and settings, one split of
the inception parameters, one choice of view (the CLI and the docs' directives share it)."""

from __future__ import annotations

import pytest

from archcalc import service
from archcalc.errors import UsageError


@pytest.mark.parametrize(("text", "shape"), [
    ("224x224x3", (3, 224, 224)), ("16000x1", (1, 16000)), ("3072", (3072,)),
    ("32*32*3", (3, 32, 32)), (None, None), ("", None)])
def test_input_shapes_are_channels_first(text: str | None,
                                         shape: tuple[int, ...] | None) -> None:
    assert service.input_shape(text) == shape


@pytest.mark.parametrize("text", ["0x4x3", "1x2x3x4", "axb", "-3", "8²x8x3"])
def test_bad_input_shapes_name_the_option(text: str) -> None:
    with pytest.raises(UsageError, match=r"^--input .*: expected HxWxC \(an image\), LxC"):
        service.input_shape(text)
    with pytest.raises(UsageError, match=r"^:input: "):
        service.input_shape(text, ":input:")


def test_parameters() -> None:
    assert service.parameters(["n=7", " c1 = -64 "]) == {"n": 7, "c1": -64}
    assert service.parameters([]) == {}
    for bad in ("n", "n=1.5", "1n=2", "n=" + "9" * 19):
        with pytest.raises(UsageError, match=rf"^:set: {bad!r}: expected NAME=INTEGER"):
            service.parameters([bad], ":set:")


def test_inception_parameters_go_to_the_modules_that_declare_them() -> None:
    naive, reduced = service.inception_reports({"c1": 32, "r3": 48})
    assert naive.rows[0].out_shape != () and reduced.model == "inception-reduction"
    default_naive, default_reduced = service.inception_reports({})
    # c1 128 -> 32 in both: conv1-c1 on 256 channels loses 96 * (256 + 1) parameters
    assert default_naive.totals.params - naive.totals.params == 96 * 257
    # and r3 128 -> 48 in the reduction module: its conv1 (80 * 257) and the 3x3 conv that
    # reads it (3 * 3 * 80 * 192 weights)
    assert (default_reduced.totals.params - reduced.totals.params
            == 96 * 257 + 80 * 257 + 3 * 3 * 80 * 192)
    with pytest.raises(UsageError, match="^--set nope: neither inception module has this "
                                         r"parameter \(parameters: c1, c3, c5, "):
        service.inception_reports({"nope": 1})


def test_view_is_the_homework_table_or_the_full_view() -> None:
    report = service.report("vgg11", service.input_shape("32x32x3"), {"classes": 10})
    table, data = service.view(report, "json")
    assert data is not None and data["input"] == [3, 32, 32] and table.columns[0].name == "Path"
    homework, none = service.view(report, "json", table=True)
    assert none is None and homework.total is not None
    assert service.view(report, "csv")[1] is None


def test_a_factory_file_keeps_its_own_name_and_imports_beside_it(tmp_path) -> None:
    """A user's json.py must not replace the json module; a file may import its sibling."""
    import json
    import sys

    (tmp_path / "helpers_beside.py").write_text("WIDTH = 7\n", encoding="utf-8")
    (tmp_path / "json.py").write_text(
        "from helpers_beside import WIDTH\n\ndef build(scale=1):\n    return WIDTH * scale\n",
        encoding="utf-8")
    assert service.factory_model(f"{tmp_path / 'json.py'}:build", ["scale=3"]) == 21
    assert sys.modules["json"] is json and str(tmp_path) not in sys.path
