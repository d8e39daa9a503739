"""Residual shortcuts as real code writes them: projection without BN, ResNet-D's average
pooling before a stride-1 projection, and a stated shortcut stride; each against torch."""

from __future__ import annotations

import importlib.util

import pytest

import archcalc
from archcalc.errors import SpecError

needs_verify = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("torch", "torchinfo", "fvcore")),
    reason="the verify extra (torch, torchinfo, fvcore) is not installed")


def rows(spec: str) -> list[tuple[str, tuple[int, ...], int]]:
    rep = archcalc.analyze(archcalc.parse(spec))
    return [(r.label, r.out_shape, r.params.trainable) for r in rep.rows]


RESNET_D = "input 9x9x4\nresidual shortcut=D { conv3-8 s=2; bn }"
NO_BN = "input 8x8x4\nresidual shortcut=B bn=false { conv3-8 s=2 }"
STATED = "input 8x8x4\nresidual shortcut=C stride=2 { conv3-8 s=2 }"


def test_resnet_d_pools_then_projects_at_stride_1() -> None:
    # avgpool2/2 ceil on 9x9 -> 5x5 (ceil(9/2)); conv1-8: 1*1*4*8 = 32; BN 2*8 = 16.
    # The body: conv3-8 s=2 p=1: (9 + 2 - 3) // 2 + 1 = 5; 3*3*4*8 + 8 = 296.
    assert rows(RESNET_D)[2:] == [
        ("shortcut avgpool2 ceil=true", (4, 5, 5), 0),
        ("shortcut conv1-8 s=1 bias=false", (8, 5, 5), 32),
        ("shortcut bn", (8, 5, 5), 16),
        ("add", (8, 5, 5), 0)]


def test_resnet_d_at_stride_1_projects_without_pooling() -> None:
    labels = [r[0] for r in rows("input 8x8x4\nresidual shortcut=D { conv3-8 }")]
    assert labels == ["conv3-8", "shortcut conv1-8 s=1 bias=false", "shortcut bn", "add"]


def test_projection_without_bn() -> None:
    assert rows(NO_BN)[1:] == [("shortcut conv1-8 s=2 bias=false", (8, 4, 4), 32),
                               ("add", (8, 4, 4), 0)]


def test_stated_stride_overrides_the_bodys() -> None:
    # The body subsamples by 2 and the shortcut is told 2: the same here; told 4, the
    # shortcut gives 2x2 and cannot be added to the body's 4x4.
    assert rows(STATED)[1][:2] == ("shortcut conv1-8 s=2 bias=false", (8, 4, 4))
    with pytest.raises(SpecError, match="shortcut gives 2x2x8 but the body gives 4x4x8"):
        archcalc.analyze(archcalc.parse(STATED.replace("stride=2", "stride=4")))


def test_label_keeps_the_options_as_written() -> None:
    rep = archcalc.analyze(archcalc.parse(NO_BN))
    assert rep.rows[-1].path == "1"
    graph = archcalc.parse(NO_BN)
    assert graph.body[0].label == "residual shortcut=B bn=false"


@needs_verify
@pytest.mark.parametrize("spec", [RESNET_D, NO_BN, STATED])
def test_shortcuts_verify_against_torch(spec: str) -> None:
    from archcalc.verify import verify

    report = verify(archcalc.parse(spec))
    assert report.ok, [(c.name, c.path, c.expected, c.actual) for c in report.failures]
