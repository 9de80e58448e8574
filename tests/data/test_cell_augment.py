"""``CellAugment``: symmetries of the square, bounded intensity changes, seeded by the generator."""

from __future__ import annotations

import pytest
import torch

from replearn.data.cell_augment import CellAugment
from replearn.errors import ReplearnError


def batch(b: int = 64, h: int = 8, w: int = 8) -> torch.Tensor:
    torch.manual_seed(0)
    return torch.rand(b, 1, h, w) * 0.8 + 0.1


def symmetries(img: torch.Tensor) -> list[torch.Tensor]:
    """The 8 images obtained from (1, H, W) by rotations and mirror flips."""
    out = []
    for k in range(4):
        r = torch.rot90(img, k, dims=(1, 2))
        out += [r, torch.flip(r, dims=(2,))]
    return out


def test_geometric_only_gives_each_image_one_of_its_8_symmetries_and_all_occur():
    x = batch(400)
    out = CellAugment(flips=True, rot90=True, scale=0.0, offset=0.0)(x, torch.Generator().manual_seed(1))
    assert out.shape == x.shape and out.dtype == x.dtype
    seen = set()
    for i in range(len(x)):
        matches = [j for j, s in enumerate(symmetries(x[i])) if torch.equal(s, out[i])]
        assert len(matches) == 1
        seen.add(matches[0])
    assert seen == set(range(8))
    # pixel values are only moved, never changed
    torch.testing.assert_close(out.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)))


def test_same_generator_seed_same_output_and_input_untouched():
    x = batch()
    before = x.clone()
    aug = CellAugment()
    a = aug(x, torch.Generator().manual_seed(5))
    b = aug(x, torch.Generator().manual_seed(5))
    c = aug(x, torch.Generator().manual_seed(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.equal(x, before)


def test_intensity_change_is_bounded_and_stays_in_unit_range():
    x = batch(200)
    out = CellAugment(flips=False, rot90=False, scale=0.1, offset=0.05)(x, torch.Generator().manual_seed(0))
    ratio = out.mean(dim=(1, 2, 3)) / x.mean(dim=(1, 2, 3))
    # gain in [0.9, 1.1] and offset in [-0.05, 0.05] on images with mean ~0.5
    assert ((ratio > 0.75) & (ratio < 1.25)).all()
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert not torch.equal(out, x)
    # geometry unchanged: an affine map per image (correlation 1 with the original)
    for i in range(5):
        a, b = x[i].flatten(), out[i].flatten()
        assert torch.corrcoef(torch.stack([a, b]))[0, 1] > 0.999


def test_non_square_images_keep_their_shape():
    x = batch(32, 8, 12)
    out = CellAugment()(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape


def test_identity_and_bad_parameters():
    x = batch(4)
    assert torch.equal(CellAugment(False, False, 0.0, 0.0)(x, torch.Generator()), x)
    with pytest.raises(ReplearnError, match="scale"):
        CellAugment(scale=1.5)
    with pytest.raises(ReplearnError, match="flips"):
        CellAugment(flips="yes")
    with pytest.raises(ReplearnError, match="B, C, H, W"):
        CellAugment()(x[0], torch.Generator())
