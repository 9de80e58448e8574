"""to_tensor scaling, one_hot, and seeded stratified splits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from replearn.data import one_hot, repeated_stratified_splits, stratified_split, to_tensor
from replearn.errors import ReplearnError


def course_like_labels() -> np.ndarray:
    """400 labels in 3 unequal classes (200 / 120 / 80), shuffled."""
    labels = np.repeat([0, 1, 2], [200, 120, 80])
    return np.random.default_rng(1).permutation(labels)


def test_to_tensor_uint8():
    images = np.array([[[0, 128], [255, 51]]] * 3, dtype=np.uint8)
    t = to_tensor(images)
    assert t.shape == (3, 1, 2, 2) and t.dtype == torch.float32
    assert t[0, 0].flatten().tolist() == pytest.approx([0.0, 128 / 255, 1.0, 0.2])
    assert images[0, 1, 0] == 255  # input untouched


def test_to_tensor_float_ranges():
    unit = np.random.default_rng(0).random((4, 5, 5))
    torch.testing.assert_close(to_tensor(unit), torch.from_numpy(unit).float().unsqueeze(1))
    byte_range = unit * 255
    torch.testing.assert_close(to_tensor(byte_range), torch.from_numpy(unit).float().unsqueeze(1))
    t = to_tensor(np.full((1, 2, 2), 255.0, dtype=np.float32))
    assert t.min() == 1.0 and t.max() == 1.0


def test_to_tensor_accepts_tensors_and_channel_axis():
    images = torch.randint(0, 256, (2, 1, 6, 6), dtype=torch.uint8)
    t = to_tensor(images)
    assert t.shape == (2, 1, 6, 6)
    torch.testing.assert_close(t, images.float() / 255)
    assert to_tensor(np.zeros((0, 4, 4), np.uint8)).shape == (0, 1, 4, 4)


@pytest.mark.parametrize(
    ("images", "needle"),
    [
        (np.full((1, 2, 2), -0.1), "allowed [0, 1] or [0, 255]"),
        (np.full((1, 2, 2), 256.0), "values 256..256"),
        (np.full((1, 2, 2), np.nan), "NaN/inf"),
        (np.full((1, 2, 2), 300, np.int32), "allowed 0..255"),
        (np.zeros((2, 2), np.uint8), "expected (N, H, W) or (N, 1, H, W)"),
        (np.zeros((1, 3, 2, 2), np.uint8), "expected (N, H, W) or (N, 1, H, W)"),
        (np.zeros((1, 2, 2), bool), "dtype bool"),
    ],
)
def test_to_tensor_refuses(images, needle):
    with pytest.raises(ReplearnError) as info:
        to_tensor(images)
    assert needle in str(info.value)


def test_one_hot():
    t = one_hot(np.array([2, 0, 1, 2]), 3)
    assert t.dtype == torch.float32
    assert t.tolist() == [[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]]
    assert one_hot(torch.tensor([1]), 4).tolist() == [[0, 1, 0, 0]]
    with pytest.raises(ReplearnError, match="labels span 0..3; allowed 0..2 for k=3"):
        one_hot(np.array([0, 3]), 3)
    with pytest.raises(ReplearnError, match="expected \\(N,\\) integers"):
        one_hot(np.array([0.0, 1.0]), 3)


def test_stratified_split_course_sizes():
    labels = course_like_labels()
    train_idx, val_idx = stratified_split(labels, 100, seed=0)
    assert len(train_idx) == 300 and len(val_idx) == 100
    assert train_idx.dtype == np.int64 and np.all(np.diff(train_idx) > 0) and np.all(np.diff(val_idx) > 0)
    assert np.intersect1d(train_idx, val_idx).size == 0
    assert np.union1d(train_idx, val_idx).tolist() == list(range(400))
    assert np.bincount(labels[val_idx]).tolist() == [50, 30, 20]  # a quarter of each class
    assert np.bincount(labels[train_idx]).tolist() == [150, 90, 60]


def test_stratified_split_is_seeded():
    labels = course_like_labels()
    a = stratified_split(labels, 100, seed=3)
    b = stratified_split(labels, 100, seed=3)
    c = stratified_split(labels, 100, seed=4)
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])
    frac = stratified_split(labels, 0.25, seed=3)
    np.testing.assert_array_equal(frac[1], a[1])  # a fraction gives the same split as the equal count


def test_stratified_split_refuses():
    labels = np.array([0, 0, 0, 1, 1, 1, 2])
    with pytest.raises(ReplearnError, match="class 2 has only 1 example"):
        stratified_split(labels, 2, seed=0)
    labels = np.repeat([0, 1, 2], 4)
    with pytest.raises(ReplearnError, match="n_val=2 gives 2 validation and 10 training examples of 12"):
        stratified_split(labels, 2, seed=0)
    with pytest.raises(ReplearnError, match="n_val=11 gives 11 validation and 1 training"):
        stratified_split(labels, 11, seed=0)
    with pytest.raises(ReplearnError, match="strictly between 0 and 1"):
        stratified_split(labels, 1.0, seed=0)
    with pytest.raises(ReplearnError, match="expected a count"):
        stratified_split(labels, "10", seed=0)


def test_repeated_splits():
    labels = course_like_labels()
    splits = list(repeated_stratified_splits(labels, 100, n_repeats=5, seed=7))
    assert len(splits) == 5
    first = stratified_split(labels, 100, seed=7)
    np.testing.assert_array_equal(splits[0][1], first[1])
    assert len({tuple(v.tolist()) for _, v in splits}) == 5  # all different
    for train_idx, val_idx in splits:
        assert np.bincount(labels[val_idx]).tolist() == [50, 30, 20]
        assert np.intersect1d(train_idx, val_idx).size == 0
    again = list(repeated_stratified_splits(labels, 100, n_repeats=5, seed=7))
    for (t1, v1), (t2, v2) in zip(splits, again):
        np.testing.assert_array_equal(v1, v2)
        np.testing.assert_array_equal(t1, t2)
    with pytest.raises(ReplearnError, match="n_repeats=0"):
        next(repeated_stratified_splits(labels, 100, n_repeats=0))
