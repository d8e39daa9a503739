"""The zoo's NASNet-A Mobile (``nasnet-mobile``), a spec whose cells read the two previous
cells' outputs through named tensors (``keep``/``from``), against the model Keras itself
builds: keras.applications.NASNetMobile(weights=None)."""

from __future__ import annotations

import importlib.util
from collections import Counter

import pytest

import archcalc
from archcalc.analysis import Report

needs_keras = pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None,
                                 reason="tensorflow (Keras' backend) is not installed")


def report() -> Report:
    return archcalc.analyze(archcalc.load("nasnet-mobile"))


def test_cell_outputs_follow_the_paper() -> None:
    """Zoph et al. 2018, NASNet-A 4 @ 1056: normal cells concatenate 6 x filters (p and five
    combinations), reduction cells 4 x filters; filters 44 double at each reduction; the
    two stem reductions have 11 and 22."""
    cells = [r for r in report().rows if r.label == "keep x"]  # each cell's output
    channels = [r.out_shape[0] for r in cells]
    assert channels == [4 * 11, 4 * 22, *[6 * 44] * 4, 4 * 88, *[6 * 88] * 4, 4 * 176,
                        *[6 * 176] * 4]
    sizes = [r.out_shape[1] for r in cells]
    assert sizes == [56, 28, 28, 28, 28, 28, 14, 14, 14, 14, 14, 7, 7, 7, 7, 7]


@needs_keras
def test_nasnet_mobile_agrees_with_keras() -> None:
    """Parameters (trainable and BN moving statistics), and the output shapes and sizes of
    every layer, family by family (Keras' layer order is its own topological order)."""
    import keras

    model = keras.applications.NASNetMobile(weights=None)
    rep = report()
    trainable = sum(int(w.shape.num_elements()) for w in model.trainable_weights)
    assert (rep.totals.params, rep.totals.buffers) == (trainable,
                                                       model.count_params() - trainable)
    assert rep.totals.params + rep.totals.buffers == model.count_params() == 5_326_716

    def keras_layers(*names: str) -> Counter[tuple[int, ...]]:
        return Counter(_chw(layer.output.shape) for layer in model.layers
                       if type(layer).__name__ in names)

    def ours(*kinds: str) -> Counter[tuple[int, ...]]:
        return Counter(r.out_shape for r in rep.rows if r.kind in kinds)

    # a SeparableConv2D is a depthwise and a 1x1 conv here: the 1x1 gives its output
    assert keras_layers("Conv2D", "SeparableConv2D") == ours("conv")
    assert keras_layers("BatchNormalization") == ours("bn")
    assert keras_layers("AveragePooling2D", "MaxPooling2D") == ours("pool")
    assert keras_layers("ZeroPadding2D") == ours("pad")
    assert keras_layers("Cropping2D") == ours("crop")
    assert keras_layers("Add") == ours("add")
    assert keras_layers("Concatenate") == ours("concat")
    assert keras_layers("Dense") == ours("linear")
    relu = Counter(r.out_shape for r in rep.rows if r.label == "relu")
    assert keras_layers("Activation") == relu
    # parameters by family: convs (separable ones with their depthwise half), BN, FC
    by_family = Counter[str]()
    for layer in model.layers:
        family = {"Conv2D": "conv", "SeparableConv2D": "conv",
                  "BatchNormalization": "bn", "Dense": "linear"}.get(type(layer).__name__)
        if family:
            by_family[family] += layer.count_params()
    mine = Counter[str]()
    for r in rep.rows:
        family = "conv" if r.kind == "dwconv" else r.kind
        mine[family] += r.params.trainable + r.params.buffers
    assert {k: mine[k] for k in by_family} == dict(by_family)
    # another size, odd at every reduction (163 -> 81 -> 41 -> 21 -> 11 -> 6): Keras pads
    # by the map's parity, read off the tensor; the spec computes it from its size
    other = keras.applications.NASNetMobile(weights=None, input_shape=(163, 163, 3))
    small = archcalc.analyze(archcalc.load("nasnet-mobile", size=163))
    assert Counter(_chw(layer.output.shape) for layer in other.layers
                   if type(layer).__name__ in ("Add", "Concatenate", "ZeroPadding2D")) == (
        Counter(r.out_shape for r in small.rows if r.kind in ("add", "concat", "pad")))
    assert small.totals.params + small.totals.buffers == other.count_params()


def _chw(shape: tuple[int | None, ...]) -> tuple[int, ...]:
    """Keras' (batch, H, W, C) or (batch, N) as archcalc's (C, H, W) or (N,)."""
    dims = tuple(int(d) for d in shape[1:] if d is not None)
    return (dims[-1], *dims[:-1])
