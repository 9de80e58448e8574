"""Tensor augmentations: shifts with zero fill, flips, seeded and shape-preserving."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from replearn.data.augment import make_augment, random_hflip, random_shift
from replearn.errors import ReplearnError


def _images(n: int = 16, c: int = 1, h: int = 28, w: int = 28) -> torch.Tensor:
    """Random positive images (no zeros, so a shift's zero fill is visible)."""
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(1)) + 0.1


def _shifted(img: torch.Tensor, dy: int, dx: int, pad: int) -> torch.Tensor:
    """``img`` (C, H, W) shifted by (dy, dx) with zero fill, via an explicit crop of the padded image."""
    _, h, w = img.shape
    padded = F.pad(img, (pad, pad, pad, pad))
    return padded[:, pad - dy: pad - dy + h, pad - dx: pad - dx + w]


def test_random_shift_is_a_zero_filled_shift_of_each_image():
    x = _images(40, c=2)
    out = random_shift(x, torch.Generator().manual_seed(0), pad=2)
    assert out.shape == x.shape and out.dtype == x.dtype
    seen = set()
    for i in range(len(x)):
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                   if torch.equal(out[i], _shifted(x[i], dy, dx, 2))]
        assert len(matches) == 1, f"image {i} is not a single shift of its input"
        seen.add(matches[0])
    assert len(seen) > 8  # offsets vary between images


def test_random_shift_is_seeded_and_pad_zero_is_identity():
    x = _images()
    a = random_shift(x, torch.Generator().manual_seed(3))
    b = random_shift(x, torch.Generator().manual_seed(3))
    c = random_shift(x, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(random_shift(x, torch.Generator(), pad=0), x)


def test_random_hflip_flips_about_half_and_respects_p():
    x = _images(400)
    out = random_hflip(x, torch.Generator().manual_seed(0))
    flipped = torch.tensor([torch.equal(out[i], x[i].flip(-1)) for i in range(len(x))])
    kept = torch.tensor([torch.equal(out[i], x[i]) for i in range(len(x))])
    assert bool((flipped | kept).all())
    assert 150 < int(flipped.sum()) < 250
    assert torch.equal(random_hflip(x, torch.Generator(), p=1.0), x.flip(-1))
    assert torch.equal(random_hflip(x, torch.Generator(), p=0.0), x)


def test_make_augment_combines_and_validates():
    assert make_augment(0, False) is None
    aug = make_augment(2, True)
    x = _images()
    a, b = aug(x, torch.Generator().manual_seed(5)), aug(x, torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and a.shape == x.shape
    # Only shifts and flips: the multiset of pixel values never grows, zeros enter only from the border.
    assert float(a.sum()) <= float(x.sum()) + 1e-3
    with pytest.raises(ReplearnError, match="shift"):
        make_augment(-1)
    with pytest.raises(ReplearnError, match=r"\(N, C, H, W\)"):
        random_shift(torch.zeros(28, 28), torch.Generator())
    with pytest.raises(ReplearnError, match="p must be"):
        random_hflip(x, torch.Generator(), p=1.5)


# ----------------------------------------------------------------------------- denoising corruptions
from replearn.data.augment import gaussian_noise, make_corruption, pixel_dropout  # noqa: E402


def test_gaussian_noise_has_the_asked_spread_is_clipped_and_seeded():
    x = torch.full((64, 1, 28, 28), 0.5)
    out = gaussian_noise(x, torch.Generator().manual_seed(0), sigma=0.1)
    assert out.shape == x.shape and 0.0 <= out.min() and out.max() <= 1.0
    assert abs(float((out - x).std()) - 0.1) < 0.005 and abs(float((out - x).mean())) < 0.005
    assert torch.equal(out, gaussian_noise(x, torch.Generator().manual_seed(0), sigma=0.1))
    clipped = gaussian_noise(torch.ones(8, 1, 8, 8), torch.Generator().manual_seed(0), sigma=0.5)
    assert clipped.max() == 1.0 and clipped.min() < 1.0  # noise above 1 is clipped, below is kept
    assert gaussian_noise(x, torch.Generator(), sigma=0.0) is x


def test_pixel_dropout_zeroes_the_asked_fraction_and_keeps_the_rest():
    x = _images(64)  # all pixels > 0
    out = pixel_dropout(x, torch.Generator().manual_seed(0), p=0.3)
    dropped = out == 0
    assert abs(float(dropped.float().mean()) - 0.3) < 0.01
    assert torch.equal(out[~dropped], x[~dropped])
    assert torch.equal(out, pixel_dropout(x, torch.Generator().manual_seed(0), p=0.3))
    assert pixel_dropout(x, torch.Generator(), p=0.0) is x


def test_make_corruption_builds_the_asked_kind_and_checks_levels():
    x = _images(4)
    assert make_corruption("gaussian", 0.0) is None
    g = make_corruption("gaussian", 0.2)
    assert torch.equal(g(x, torch.Generator().manual_seed(1)), gaussian_noise(x, torch.Generator().manual_seed(1), 0.2))
    d = make_corruption("dropout", 0.5)
    assert torch.equal(d(x, torch.Generator().manual_seed(1)), pixel_dropout(x, torch.Generator().manual_seed(1), 0.5))
    with pytest.raises(ReplearnError, match="not known"):
        make_corruption("salt", 0.1)
    with pytest.raises(ReplearnError, match=">= 0"):
        make_corruption("gaussian", -0.1)
    with pytest.raises(ReplearnError, match=r"\[0, 1\)"):
        make_corruption("dropout", 1.0)
    with pytest.raises(ReplearnError, match=r"\[0, 1\)"):
        pixel_dropout(x, torch.Generator(), p=1.0)
    with pytest.raises(ReplearnError, match=">= 0"):
        gaussian_noise(x, torch.Generator(), sigma=-1.0)
