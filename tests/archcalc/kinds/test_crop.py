"""The crop (``crop4``, ``crop4x2``, ``crop t= b= l= r=``; Keras' Cropping2D, the U-Net's
"copy and crop"): notation, located errors, shapes and the field with the arithmetic written
out, formulas, and torch."""

from __future__ import annotations

import importlib.util

import pytest

import archcalc
from archcalc.algebra import RF
from archcalc.analysis import Report
from archcalc.errors import SpecError
from archcalc.kinds.base import Kind
from archcalc.kinds.pad import Crop

needs_verify = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("torch", "torchinfo", "fvcore")),
    reason="the verify extra (torch, torchinfo, fvcore) is not installed")


def only(layer: str) -> Kind:
    (node,) = archcalc.parse(f"input 8x8x3\n{layer}\n").body
    return node.layer


def fault(text: str) -> SpecError:
    with pytest.raises(SpecError) as info:
        archcalc.parse(text, "bad.arch")
    return info.value


def report(spec: str, convention: str = "full") -> Report:
    return archcalc.analyze(archcalc.parse(spec), convention)


@pytest.mark.parametrize(
    ("text", "expected", "title"),
    [
        ("crop4", Crop(4, 4, 4, 4), "CROP4"),
        ("crop1x2", Crop(1, 1, 2, 2), "CROP1x2"),  # 1 top and bottom, 2 left and right
        ("crop t=0 b=1 l=0 r=1", Crop(0, 1, 0, 1), "CROP((0,1),(0,1))"),
        ("CROP2 bottom=0", Crop(2, 0, 2, 2), "CROP((2,0),(2,2))"),
        ("crop r=3", Crop(0, 0, 0, 3), "CROP((0,0),(0,3))"),
    ],
)
def test_crop_notation(text: str, expected: Crop, title: str) -> None:
    layer = only(text)
    assert layer == expected and layer.title() == title


def test_crop_errors_are_located() -> None:
    err = fault("input 8x8x3\ncrop")
    assert err.message.startswith("crop needs a size (crop4, crop4x2) or sides")
    assert (err.loc.line, err.loc.col) == (2, 1)  # type: ignore[union-attr]
    err = fault("input 8x8x3\ncrop t=x")
    assert err.message == "top must be a whole number of at least 0, not 'x'"
    assert (err.loc.line, err.loc.col) == (2, 8)  # type: ignore[union-attr]  # under 'x'
    err = fault("input 8x8x3\ncrop l=-1")
    assert err.message.startswith("left must be a whole number of at least 0")
    assert fault("input 8x8x3\ncrop1 q=1").message.startswith("unknown option 'q' for crop1")
    with pytest.raises(SpecError, match="crop needs a feature map"):
        report("input 12\ncrop1")


def test_crop_that_leaves_nothing_is_located() -> None:
    # 8 - 4 - 4 = 0 rows
    with pytest.raises(SpecError) as info:
        report("input 8x8x3\nconv1-4\ncrop4x1")
    assert info.value.message == ("crop of 4+4 rows and 1+1 columns leaves nothing of a 8x8 "
                                  "map")
    assert info.value.loc.line == 3  # type: ignore[union-attr]


def test_crop_counts_nothing_and_allocates_nothing() -> None:
    # 8x10x3 cut 1 top, 2 bottom, 3 left, 0 right: 5x7x3 = 105 elements, a view of the input
    spec = "input 8x10x3\ncrop t=1 b=2 l=3 r=0"
    (row,) = report(spec).rows
    assert row.out_shape == (3, 5, 7) and row.inplace and not row.stored
    assert row.params.trainable == 0 and row.params.buffers == 0 and row.flops == 0
    assert {report(spec, c).rows[0].macs
            for c in ("full", "torchinfo", "fvcore", "flopcounter")} == {0}
    # the model's activations: the input (8*10*3 = 240) only
    assert report(spec).totals.activations == 240


def test_crop_moves_the_field_start_inward() -> None:
    # conv3 (field 3, start -1, stride 1), crop t=2 l=1: output unit (0, 0) is input unit
    # (2, 1), so the start moves to (-1 + 2, -1 + 1); size and stride unchanged
    rep = report("input 8x8x3\nconv3-4\ncrop t=2 b=0 l=1 r=0")
    assert rep.rows[1].rf == RF((3, 3), (1, 1), (1, 0))
    # after a 2x2/2 pool the field's stride is 2: crop1 moves the start by 1*2
    rep = report("input 8x8x3\nconv3-4 p=0\nmaxpool\ncrop1")
    assert rep.rows[1].rf == RF((4, 4), (2, 2), (0, 0))
    assert rep.rows[2].rf == RF((4, 4), (2, 2), (2, 2))


def test_crop_formulas() -> None:
    from archcalc.symbolic import layer_formulas

    lines = {r.name: r for r in layer_formulas("crop t=0 b=1 l=2 r=0", (3, 8, 8)).rows}
    assert (lines["H_out"].value, lines["W_out"].value, lines["weights"].value) == (7, 6, 0)
    assert str(lines["H_out"].formula) == "-C_bottom - C_top + H"


def test_crop_is_not_a_homework_row() -> None:
    from archcalc.render import homework_table

    # a view: the memory table lists only what allocates
    table = homework_table(report("input 8x8x3\ncrop1\nconv3-4 p=0"))
    assert [row[0] for row in table.rows] == ["Input", "CONV3-4 p=0"]


def test_unet_copy_and_crop_joins_the_decoder_map() -> None:
    # the U-Net's last level at 572 px (Fig. 1): 64x64x512 cropped by 4 per side to 56x56,
    # beside a 2x2/2 up-conv of the 28x28x1024 bottom map: 56x56x(512 + 512)
    spec = ("input 64x64x512\nconcat { branch { crop4 } branch { maxpool; conv3-1024 p=0\n"
            "conv3-1024 p=0; deconv2-512 s=2 } }")
    rows = report(spec).rows
    assert rows[0].out_shape == (512, 56, 56)
    assert rows[-1].out_shape == (1024, 56, 56)


@needs_verify
@pytest.mark.parametrize("spec", [
    "input 9x8x3\ncrop t=1 b=2 l=0 r=3\nconv3-4 p=0",
    "input 10x10x2\nconv3-4 p=0\nmaxpool\ncrop1\nconv1-2",
    "input 12x12x2\nconcat { branch { crop2 } branch { conv5-3 p=0 } }",
])
def test_crop_verifies_against_torch(spec: str) -> None:
    from archcalc.verify import verify

    rep = verify(archcalc.parse(spec))
    assert rep.ok, "\n".join(f"{c.name} {c.path}: expected {c.expected}, got {c.actual}"
                             for c in rep.failures)


def test_crop_module_is_a_view() -> None:
    torch = pytest.importorskip("torch")
    from archcalc.backends.modules import Crop2d

    x = torch.arange(2 * 5 * 6, dtype=torch.float32).reshape(1, 2, 5, 6)
    y = Crop2d(1, 2, 0, 3)(x)
    assert y.shape == (1, 2, 2, 3)
    assert torch.equal(y, x[:, :, 1:3, 0:3])
    assert y.data_ptr() == x[:, :, 1:, :].data_ptr()  # no copy
