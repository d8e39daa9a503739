"""Every registered layer kind: all its rules present, written in a spec, and verified
against torch. A new kind without an example here fails ``test_every_kind_has_an_example``,
so no kind reaches users untested."""

from __future__ import annotations

import importlib.util
import inspect

import pytest

import archcalc
from archcalc.kinds import REGISTRY, Block, Kind, grammar

needs_verify = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("torch", "torchinfo", "fvcore")),
    reason="the verify extra (torch, torchinfo, fvcore) is not installed")

# One small spec per kind that uses it in a way torch builds; the kind's rows are checked
# against torch's shapes, parameters, torchinfo, fvcore, FlopCounterMode and the RF probe.
EXAMPLES: dict[str, str] = {
    "conv": "input 9x8x4\nconv3-8 s=2 d=2 g=2 p=1 bias=false; conv1x3-6",
    # 9 -> 4 -> 5 -> 2 -> 1: the last window starts inside a 2-pixel map and runs past it,
    # which torch's ceil mode accepts (SqueezeNet at 24 px, GoogLeNet at 16 px)
    "pool": "input 9x9x3\nmaxpool3 s=2 ceil=true; avgpool2 s=1 p=1; maxpool3 s=2 ceil=true\n"
            "avgpool3 s=2 ceil=true; avgpool3 s=1 p=1 count-pad=false",
    "globalpool": "input 6x5x4\nconv1-4; gap; conv1-2; globalmaxpool",
    "linear": "input 4x4x3\nFC-7; FC-3 bias=false",
    "bn": "input 5x5x3\nbn; conv1-2; bn affine=false; flatten; bn; bn scale=false",
    "lrn": "input 6x6x8\nlrn size=3",
    "act": "input 4x4x3\n" + "; ".join(
        ("relu", "relu6", "leakyrelu", "elu", "gelu", "silu", "sigmoid", "tanh",
         "hardswish", "hardsigmoid", "mish", "soft-max")),
    "dropout": "input 6\nFC-4; dropout-0.3",
    "flatten": "input 3x3x2\nflatten; FC-2",
    # a projection without BN beside a BN'd path, and a third path: any join by addition
    "add": "input 6x6x4\nadd { branch { } branch { conv3-4; bn } branch { conv1-4 s=1 } }\n"
           "add inplace=true { branch { conv3-8 s=2 } branch { avgpool2; conv1-8 bias=false } }",
    "concat": "input 6x6x4\nconcat { branch { } branch { conv3-2 } branch { maxpool3 s=1 p=1 } }",
    "residual": "input 8x8x4\nresidual shortcut=B { conv3-8 s=2; bn }\n"
                "residual { conv3-8; relu }",
    "zeropad": "input 8x8x4\nresidual shortcut=A { conv3-8 s=2 }",
    # 9 -> 3 and 8 -> 7, then 3 -> 2 and 7 -> 3: windows that slide, so the RF is probed
    "adaptivepool": "input 9x8x4\nadaptiveavgpool3x7; amp2x3; conv1-2",
    "pad": "input 7x7x3\npad t=0 b=1 l=2 r=0; conv3-4 s=2 p=0; pad1; conv4-2 p=same",
    # 10x9 -> 8x7 -> 7x5, then the U-Net's copy and crop beside an unpadded conv: 5x3 each
    "crop": "input 10x9x4\nconv3-6 p=0; crop t=1 b=0 l=0 r=2\n"
            "concat { branch { crop1 } branch { conv3-2 p=0 } }",
    "dwconv": "input 9x9x4\ndwconv3 s=2; dwconv3 m=2 bias=false; dwconv2-16 p=same",
    # no receptive field after an enlarging layer: those rows are not probed
    "upsample": "input 4x5x3\nupsample1; conv3-4; upsample2; upsample s=2x3 mode=bilinear",
    "deconv": "input 5x5x4\ndeconv3-6 p=1; deconv4-4 s=2 p=1 op=1 g=2 bias=false; conv1-2",
    "layernorm": "input 5x4x6\nln; conv1-4; ln eps=1e-6 affine=false; flatten; ln",
    "groupnorm": "input 5x4x6\ngn groups=3; gn groups=2 affine=false; flatten; gn groups=4",
    "instancenorm": "input 5x4x6\ninstancenorm; instancenorm affine=true",
    "layerscale": "input 5x4x6\nlayerscale; flatten; layerscale",
    "prelu": "input 5x4x6\nprelu; prelu per-channel=true; flatten; prelu per-channel=true",
    "stochasticdepth": "input 6x6x4\nresidual { conv3-4 p=1; layerscale; droppath-0.2 }",
    # squeeze-and-excitation (channel weights), a per-position gate, a vector gate
    "gate": "input 8x8x4\ngate { gap; conv1-2; relu; conv1-4; sigmoid }\n"
            "gate { conv3-1; sigmoid }; flatten; gate { FC-256; sigmoid }",
    # ShuffleNetV2's basic unit: identity half, branch half, concat, shuffle
    "split": "input 6x6x8\nsplit { branch { } branch { conv1-4; bn; relu; conv3-4 g=4; bn } }",
    "shuffle": "input 6x6x8\nconv1-6; shuffle; shuffle g=3; channelshuffle groups=6",
    # Keras' preprocessing: Rescaling(1/127.5, offset=-1), an adapted Normalization (2C+1
    # buffers) and one given its constants (none)
    "rescale": "input 5x4x3\nrescale scale=0.00784 offset=-1; conv1-2; rescale scale=2",
    "standardize": "input 5x4x3\nstandardize; conv1-2; standardize adapted=false; flatten; "
                   "standardize",
    "head": "input 8x8x3\nconv3-4\nhead aux { conv1-2; gap; flatten; FC-5 }\nmaxpool; FC-3",
    # named tensors: a join of two tensors off the series-parallel path (NASNet's cells)
    "keep": "input 8x8x4\nconv3-4; keep a; conv3-4 s=2; keep b\nfrom a; conv3-6 s=2\n"
            "add { branch { } branch { from b; conv1-6 } }",
    "from": "input 8x8x4\nkeep x; conv3-8 s=2; keep y\nfrom x; maxpool2\n"
            "concat { branch { } branch { from y } }\nconv1-2",
}


@pytest.mark.parametrize("cls", REGISTRY.values(), ids=lambda c: c.kind)
def test_every_rule_is_defined(cls: type[Kind]) -> None:
    """An abstract method left out makes the class abstract: it could not be made, so a
    forgotten rule fails here rather than counting as zero."""
    assert not inspect.isabstract(cls), sorted(getattr(cls, "__abstractmethods__", ()))
    assert cls.kind and REGISTRY[cls.kind] is cls


def test_every_kind_has_an_example() -> None:
    assert set(EXAMPLES) == set(REGISTRY)


@pytest.mark.parametrize("kind", EXAMPLES)
def test_example_uses_its_kind(kind: str) -> None:
    report = archcalc.analyze(archcalc.parse(EXAMPLES[kind]))
    assert kind in {r.kind for r in report.rows} | (
        {"residual"} if any(r.kind == "add" for r in report.rows) else set())


@needs_verify
@pytest.mark.parametrize("kind", EXAMPLES)
def test_every_kind_verifies_against_torch(kind: str) -> None:
    from archcalc.verify import verify

    report = verify(archcalc.parse(EXAMPLES[kind]))
    assert report.ok, "\n".join(f"{c.name} {c.path}: expected {c.expected}, got {c.actual}"
                                for c in report.failures)


def test_every_written_kind_is_in_the_grammar() -> None:
    lines = grammar()
    written = [c for c in REGISTRY.values() if c.notation is not None]
    assert len(lines) == len(written)
    assert all(c.notation is None or issubclass(c, Block) or c.kind == "zeropad"
               for c in REGISTRY.values() if c.notation is None)
    assert all(line.strip() for line in lines)
    assert archcalc.spec.__doc__ is not None and lines[0].split()[0] in archcalc.spec.__doc__


def test_no_word_names_two_kinds() -> None:
    """The parser takes the first kind whose notation matches a word, in import order; no
    word of any kind's grammar line may match two kinds, so that order never decides."""
    words = {w.strip("(),;") for line in grammar() for w in line.split()}
    for word in sorted(w for w in words if w):
        matching = [c.kind for c in REGISTRY.values()
                    if c.notation is not None and c.notation.match(word)]
        assert len(matching) <= 1, (word, matching)
    assert any(c.notation is not None and c.notation.match("conv3-64")
               for c in REGISTRY.values())
