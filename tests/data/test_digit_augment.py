"""DigitAugment: shapes, range, reproducibility, identity at strength 0."""

from __future__ import annotations

import pytest
import torch

from replearn.data.digit_augment import DigitAugment
from replearn.errors import ReplearnError


def _digit() -> torch.Tensor:
    x = torch.zeros(4, 1, 28, 28)
    x[:, :, 6:22, 12:16] = 1.0  # a "1"
    return x


def test_shape_range_and_reproducible_from_the_generator():
    aug, x = DigitAugment(1.0), _digit()
    a = aug(x, torch.Generator().manual_seed(0))
    b = aug(x, torch.Generator().manual_seed(0))
    c = aug(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a[0], a[1])  # every image its own transform


def test_strength_zero_is_identity_and_small_strength_stays_close():
    x = _digit()
    assert torch.equal(DigitAugment(0.0)(x, torch.Generator().manual_seed(0)), x)
    weak = DigitAugment(0.05, cutout=False)(x, torch.Generator().manual_seed(0))
    strong = DigitAugment(1.0, cutout=False)(x, torch.Generator().manual_seed(0))
    assert (weak - x).abs().mean() < (strong - x).abs().mean()
    assert float(strong.sum()) > 0.3 * float(x.sum())  # the digit is warped, not erased


def test_bad_strength_is_refused():
    with pytest.raises(ReplearnError, match="strength"):
        DigitAugment(1.5)
