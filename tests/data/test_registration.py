"""Channel registration: sign convention, exact integer recovery, blanked regions, limits."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from replearn.data.registration import apply_shift, blank_mask, find_shift
from replearn.errors import ReplearnError


def blobs(shape=(160, 200), seed=0) -> np.ndarray:
    """Smooth random blobs, like cells in a fluorescence channel."""
    rng = np.random.default_rng(seed)
    return ndi.gaussian_filter(rng.random(shape), 3) * 1000


def test_apply_shift_moves_content_by_plus_shift():
    image = np.zeros((20, 30), dtype=np.uint16)
    image[5, 7] = 9
    moved = apply_shift(image, (2, -3))
    assert moved.dtype == np.uint16 and moved[7, 4] == 9 and moved.sum() == 9
    assert np.array_equal(apply_shift(image, (0, 0)), image)


@pytest.mark.parametrize("shift", [(1, 5), (-4, 3), (0, -7), (6, 0)])
def test_find_shift_recovers_a_known_offset_exactly(shift):
    reference = blobs()
    # the channel sees the reference's content at (r - dy, c - dx): undoing needs +(dy, dx)
    moving = apply_shift(reference, (-shift[0], -shift[1]))
    assert find_shift(reference, moving) == shift
    realigned = apply_shift(moving, shift)
    assert np.allclose(realigned[10:-10, 10:-10], reference[10:-10, 10:-10])


def test_blanked_block_is_left_out():
    reference = blobs(seed=1)
    moving = apply_shift(reference, (-2, -6)) + 300.0
    moving[60:140, 40:120] = 0  # censored data, as in the shared DNA image
    valid = ~blank_mask(moving)
    assert not valid[60:140, 40:120].any() and valid.sum() == moving.size - 80 * 80
    assert find_shift(reference, moving, moving_valid=valid) == (2, 6)


def test_blank_mask_ignores_isolated_zeros():
    image = np.full((50, 50), 100, dtype=np.uint8)
    image[3, 3] = image[10, 20:25] = 0
    assert not blank_mask(image).any()
    image[20:45, 20:45] = 0
    assert blank_mask(image).sum() == 25 * 25


def test_limits_and_shapes_are_checked():
    reference = blobs()
    far = apply_shift(reference, (-30, 0))
    with pytest.raises(ReplearnError, match=r"shift of \(\+30, \+0\) px, more than max_shift=20"):
        find_shift(reference, far, name="membrane (m.tif)")
    assert find_shift(reference, far, max_shift=None) == (30, 0)
    with pytest.raises(ReplearnError, match="differs"):
        find_shift(reference, reference[:100])
    mostly_blank = np.zeros_like(reference)
    valid = np.zeros(reference.shape, dtype=bool)
    valid[:10] = True
    with pytest.raises(ReplearnError, match="hold data"):
        find_shift(reference, mostly_blank, moving_valid=valid)
