"""Batched augmentation (the cutout plugin's augment.py): crop windows, flips,
Cutout geometry with clipping at the border, normalisation, and M copies with independent
randomness."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from trainers.plugins.cutout.augment import (
    CIFAR10_MEAN,
    CIFAR10_STD,
    Augment,
    augment,
    batch_augment,
    box_masks,
    cutout,
    cutout_boxes,
    normalize,
    random_crop,
    random_flip,
)


def images(n: int, seed: int = 0, size: int = 32) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=gen)


def gen(seed: int = 1) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_crop_is_a_window_of_the_zero_padded_image_at_a_random_offset() -> None:
    x = images(64)
    out = random_crop(x, 4, gen())
    padded = F.pad(x, (4, 4, 4, 4))
    offsets = set()
    for i in range(len(x)):
        found = [(dy, dx) for dy in range(9) for dx in range(9)
                 if torch.equal(out[i], padded[i, :, dy:dy + 32, dx:dx + 32])]
        assert len(found) == 1
        offsets.add(found[0])
    assert len(offsets) > 30 and out.dtype == torch.uint8
    assert random_crop(x, 0, gen()) is x


def test_flip_mirrors_about_half_of_the_images() -> None:
    x = images(200)
    out = random_flip(x, gen())
    flipped = [torch.equal(o, i.flip(2)) for o, i in zip(out, x, strict=True)]
    kept = [torch.equal(o, i) for o, i in zip(out, x, strict=True)]
    assert all(f != k for f, k in zip(flipped, kept, strict=True))
    assert 60 < sum(flipped) < 140


def test_cutout_boxes_follow_devries_centre_and_clipping() -> None:
    n, size = 4000, 16
    twin = gen(5)
    cy, cx = torch.randint(0, 32, (n,), generator=twin), torch.randint(0, 32, (n,), generator=twin)
    boxes = cutout_boxes(n, 32, 32, size, generator=gen(5))
    expected = torch.stack([(cy - 8).clamp(0, 32), (cy + 8).clamp(0, 32),
                            (cx - 8).clamp(0, 32), (cx + 8).clamp(0, 32)], dim=1)
    assert torch.equal(boxes, expected)
    heights = boxes[:, 1] - boxes[:, 0]
    assert heights.min() == 8 and heights.max() == 16  # clipped at a border: down to half
    assert bool(((heights < 16) == ((cy < 8) | (cy > 24))).all())
    assert set(cy.tolist()) == set(range(32))  # every centre is possible, borders included


def test_box_masks_cover_exactly_the_box() -> None:
    boxes = torch.tensor([[0, 8, 24, 32], [10, 26, 3, 19], [5, 5, 0, 32]])
    masks = box_masks(boxes, 32, 32)
    assert masks.shape == (3, 32, 32) and masks.dtype == torch.bool
    assert torch.equal(box_masks(boxes, 32, 32, torch.float32), masks.float())
    assert masks[0, :8, 24:].all() and masks[0].sum() == 64  # clipped corner: 8 x 8
    assert masks[1, 10:26, 3:19].all() and masks[1].sum() == 256
    assert masks[2].sum() == 0


def test_cutout_zeroes_one_square_per_image_and_keeps_the_rest() -> None:
    x = normalize(images(50), CIFAR10_MEAN, CIFAR10_STD) + 10  # no natural zeros
    out = cutout(x, 16, gen())
    zero = out == 0
    assert bool((zero.all(1) == zero.any(1)).all())  # every channel of a pixel together
    area = zero[:, 0].sum((1, 2))
    assert area.min() >= 64 and area.max() == 256
    assert torch.equal(out[~zero], x[~zero])
    assert cutout(x, 0, gen()) is x


def test_normalize_maps_the_dataset_mean_to_zero() -> None:
    mean = torch.tensor(CIFAR10_MEAN).mul(255).view(1, 3, 1, 1).expand(2, 3, 4, 4)
    out = normalize(mean.round().to(torch.uint8), CIFAR10_MEAN, CIFAR10_STD)
    assert out.abs().max() < 0.01 and out.dtype == torch.float32
    half = normalize(torch.full((1, 3, 2, 2), 255, dtype=torch.uint8), CIFAR10_MEAN,
                     CIFAR10_STD, torch.bfloat16)
    assert half.dtype == torch.bfloat16


def test_batch_augment_makes_m_independent_copies_copy_major() -> None:
    x, y = images(32), torch.arange(32) % 10
    out, labels = batch_augment(x, y, 4, Augment(), generator=gen())
    assert out.shape == (128, 3, 32, 32) and out.dtype == torch.float32
    assert torch.equal(labels, y.repeat(4))
    copies = out.view(4, 32, 3, 32, 32)
    for i in range(32):
        distinct = {copies[k, i].numpy().tobytes() for k in range(4)}
        assert len(distinct) == 4  # crop, flip and Cutout drawn per copy
    zero_area = (copies == 0).all(2).sum((2, 3))
    assert bool((zero_area >= 64).all())  # one Cutout hole in every copy


def test_every_copy_is_a_window_of_the_normalised_padded_image_or_its_mirror() -> None:
    x, b, m = images(6, seed=3), 6, 5
    out = augment(x, Augment(cutout=0), generator=gen(4), copies=m)
    padded = normalize(F.pad(x, (4, 4, 4, 4)), CIFAR10_MEAN, CIFAR10_STD)
    mirrored = 0
    for row in range(b * m):
        source = padded[row % b]  # copy-major: row k * b + i is copy k of image i
        windows = [source[:, dy:dy + 32, dx:dx + 32] for dy in range(9) for dx in range(9)]
        straight = any(torch.equal(out[row], win) for win in windows)
        flipped = any(torch.equal(out[row], win.flip(2)) for win in windows)
        assert straight or flipped
        mirrored += flipped and not straight
    assert 0 < mirrored < b * m


def test_augment_is_reproducible_from_the_generator_and_needs_no_cutout() -> None:
    x = images(16)
    a = augment(x, Augment(), generator=gen(9))
    assert torch.equal(a, augment(x, Augment(), generator=gen(9)))
    assert not torch.equal(a, augment(x, Augment(), generator=gen(10)))
    plain = augment(x, Augment(pad=0, flip=False, cutout=0))
    assert torch.equal(plain, normalize(x, CIFAR10_MEAN, CIFAR10_STD))


@pytest.mark.parametrize("n", [1, 7])
def test_odd_batch_sizes(n: int) -> None:
    out, labels = batch_augment(images(n), torch.zeros(n, dtype=torch.long), 3, Augment())
    assert out.shape == (3 * n, 3, 32, 32) and labels.shape == (3 * n,)
