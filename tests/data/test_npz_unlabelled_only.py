"""load_assignment(require_labelled=False): crops files without labelled crops (as `replearn crops` writes)."""

from __future__ import annotations

import numpy as np
import pytest

from replearn.data import AssignmentData, load_assignment
from replearn.errors import ReplearnError

H = 8


def save(tmp_path, **arrays) -> str:
    path = tmp_path / "cells.npz"
    np.savez(path, **arrays)
    return str(path)


def unlabelled_only(n: int = 5, dtype=np.uint8, **extra) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    unl = rng.integers(0, 256, size=(n, H, H)).astype(dtype)
    return {"labelled": np.zeros((0, H, H), dtype), "labels": np.zeros(0, np.int64), "unlabelled": unl, **extra}


def test_unlabelled_only_file_loads_without_labels(tmp_path):
    arrays = unlabelled_only()
    data = load_assignment(save(tmp_path, **arrays), require_labelled=False)
    assert isinstance(data, AssignmentData)
    assert data.labelled.shape == (0, H, H) and data.labelled.dtype == np.uint8
    assert data.labels.shape == (0,) and data.labels.dtype == np.int64
    np.testing.assert_array_equal(data.unlabelled, arrays["unlabelled"])
    assert data.n_classes == 3 and data.synthetic is False


def test_unlabelled_only_is_still_refused_by_default(tmp_path):
    path = save(tmp_path, **unlabelled_only())
    with pytest.raises(ReplearnError, match=r"key 'labelled' has no images .*replearn crops"):
        load_assignment(path)


def test_float_unlabelled_only_scaled_from_unlabelled(tmp_path):
    arrays = unlabelled_only(dtype=np.float32)
    arrays["unlabelled"][:] = np.linspace(0, 255, 5 * H * H, dtype=np.float32).reshape(5, H, H)
    data = load_assignment(save(tmp_path, **arrays), require_labelled=False)
    assert data.labelled.dtype == np.float32 and data.unlabelled.dtype == np.float32
    np.testing.assert_allclose(data.unlabelled, arrays["unlabelled"] / 255, atol=1e-6)
    assert data.unlabelled.max() == 1.0


def test_class_count_from_class_names_or_n_classes(tmp_path):
    path = save(tmp_path, **unlabelled_only(class_names=np.array(["a", "b"])))
    assert load_assignment(path, require_labelled=False).class_names == ["a", "b"]
    assert load_assignment(save(tmp_path, **unlabelled_only()), n_classes=4, require_labelled=False).n_classes == 4


def test_labelled_files_load_the_same_with_the_flag(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"labelled": rng.integers(0, 256, (6, H, H), dtype=np.uint8), "labels": np.array([0, 1, 2, 0, 1, 2]),
              "unlabelled": rng.integers(0, 256, (2, H, H), dtype=np.uint8)}
    path = save(tmp_path, **arrays)
    a, b = load_assignment(path), load_assignment(path, require_labelled=False)
    np.testing.assert_array_equal(a.labelled, b.labelled)
    np.testing.assert_array_equal(a.labels, b.labels)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"unlabelled": np.zeros((0, H, H), np.uint8)}, "hold no images; at least one crop is needed"),
        ({"labels": np.array([0, 1])}, r"key 'labels' has shape \(2,\) but 'labelled' has no images"),
        ({"labels": np.zeros(0, dtype="U1")}, "key 'labels' has dtype"),
    ],
)
def test_unlabelled_only_problems_are_one_line(tmp_path, changes, message):
    arrays = {**unlabelled_only(), **changes}
    with pytest.raises(ReplearnError, match=message) as err:
        load_assignment(save(tmp_path, **arrays), require_labelled=False)
    assert "\n" not in str(err.value) and "cells.npz" in str(err.value)


def test_save_npz_round_trip_of_unlabelled_only(tmp_path):
    """AssignmentData.save_npz of crops without labels (what `replearn crops` writes) loads back."""
    d = AssignmentData(np.zeros((0, 40, 40), np.uint8), np.zeros(0, np.int64),
                       np.random.default_rng(0).integers(0, 256, (3, 40, 40), dtype=np.uint8))
    d.save_npz(tmp_path / "cells.npz")
    data = load_assignment(tmp_path / "cells.npz", require_labelled=False)
    np.testing.assert_array_equal(data.unlabelled, d.unlabelled)
    assert data.labelled.shape == (0, 40, 40) and len(data.labels) == 0
