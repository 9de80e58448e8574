"""load_assignment: the course's data.npz format, and one clear line for every violation."""

from __future__ import annotations

import numpy as np
import pytest

from replearn.data import AssignmentData, load_assignment
from replearn.data.limits import DataWarning
from replearn.errors import ReplearnError

N, M, H = 12, 5, 8


def good_arrays(**changes) -> dict[str, np.ndarray]:
    """Small arrays in the course's format (uint8 crops, labels 0..2), with ``changes`` applied (None deletes)."""
    rng = np.random.default_rng(0)
    arrays = {
        "labelled": rng.integers(0, 256, size=(N, H, H), dtype=np.uint8),
        "labels": np.tile(np.arange(3), N // 3),
        "unlabelled": rng.integers(0, 256, size=(M, H, H), dtype=np.uint8),
    }
    arrays.update(changes)
    return {k: v for k, v in arrays.items() if v is not None}


def save(tmp_path, name="data.npz", **changes):
    path = tmp_path / name
    np.savez(path, **good_arrays(**changes))
    return path


def test_valid_file_loads_unchanged(tmp_path):
    arrays = good_arrays()
    data = load_assignment(save(tmp_path))
    assert isinstance(data, AssignmentData)
    np.testing.assert_array_equal(data.labelled, arrays["labelled"])
    np.testing.assert_array_equal(data.unlabelled, arrays["unlabelled"])
    assert data.labelled.dtype == np.uint8 and data.unlabelled.dtype == np.uint8
    assert data.labels.dtype == np.int64 and data.labels.tolist() == arrays["labels"].tolist()
    assert data.source == str(tmp_path / "data.npz") and data.synthetic is False
    assert data.class_names == AssignmentData(data.labelled, data.labels, data.unlabelled).class_names
    assert data.n_classes == 3


def test_round_trip_through_save_npz(tmp_path):
    original = load_assignment(save(tmp_path))
    original.save_npz(tmp_path / "copy.npz")
    again = load_assignment(tmp_path / "copy.npz")
    np.testing.assert_array_equal(again.labelled, original.labelled)
    np.testing.assert_array_equal(again.labels, original.labels)
    np.testing.assert_array_equal(again.unlabelled, original.unlabelled)


def test_float_pixels_in_unit_range_are_kept(tmp_path):
    lab = np.linspace(0, 1, N * H * H).reshape(N, H, H)
    with pytest.warns(DataWarning, match=r"5 of 5 unlabelled crops are blank"):  # legal, but useless
        data = load_assignment(save(tmp_path, labelled=lab, unlabelled=np.full((M, H, H), 0.5)))
    assert data.labelled.dtype == np.float32
    np.testing.assert_allclose(data.labelled, lab, atol=1e-7)
    assert np.all(data.unlabelled == 0.5)


def test_float_pixels_in_byte_range_are_scaled_together(tmp_path):
    # The labelled crops alone look like [0, 1]; the unlabelled ones show the scale is 0..255.
    lab = np.linspace(0, 1, N * H * H, dtype=np.float32).reshape(N, H, H)
    unl = np.linspace(0, 255, M * H * H, dtype=np.float32).reshape(M, H, H)
    data = load_assignment(save(tmp_path, labelled=lab, unlabelled=unl))
    np.testing.assert_allclose(data.labelled, lab / 255, atol=1e-7)
    np.testing.assert_allclose(data.unlabelled, unl / 255, atol=1e-6)
    assert data.unlabelled.max() == 1.0


def test_other_integer_pixels_and_channel_axis(tmp_path):
    arrays = good_arrays()
    data = load_assignment(
        save(tmp_path, labelled=arrays["labelled"].astype(np.int16)[..., None], unlabelled=arrays["unlabelled"][..., None])
    )
    assert data.labelled.shape == (N, H, H) and data.labelled.dtype == np.uint8
    assert data.unlabelled.shape == (M, H, H)
    np.testing.assert_array_equal(data.labelled, arrays["labelled"])


def test_empty_unlabelled_is_allowed(tmp_path):
    data = load_assignment(save(tmp_path, unlabelled=np.zeros((0, H, H))))  # float64 empty beside uint8 labelled
    assert data.unlabelled.shape == (0, H, H) and data.unlabelled.dtype == np.uint8


def test_whole_number_float_labels(tmp_path):
    data = load_assignment(save(tmp_path, labels=np.tile([0.0, 1.0, 2.0], N // 3)))
    assert data.labels.dtype == np.int64 and data.labels[:3].tolist() == [0, 1, 2]


def test_more_classes_get_numbered_names(tmp_path):
    data = load_assignment(save(tmp_path, labels=np.arange(N) % 5))
    assert data.class_names == ["0", "1", "2", "3", "4"] and data.n_classes == 5
    two = load_assignment(save(tmp_path, labels=np.arange(N) % 2))
    assert two.class_names == ["0", "1"] and two.n_classes == 2


def test_class_names_key_and_n_classes(tmp_path):
    data = load_assignment(save(tmp_path, class_names=np.array(["a", "b", "c"])))
    assert data.class_names == ["a", "b", "c"]
    # With n_classes given, a class may be absent from the labels (one warning says so).
    with pytest.warns(DataWarning, match=r"data.npz: 1 of 3 stages have no labelled crop \(stage 2\)"):
        sparse = load_assignment(save(tmp_path, labels=np.arange(N) % 2), n_classes=3)
    assert sparse.n_classes == 3 and len(sparse.class_names) == 3


def object_array():
    arr = np.empty(N, dtype=object)
    arr[:] = [0, 1, 2] * (N // 3)
    return arr


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"labelled": None}, "missing key 'labelled' (found 'labels', 'unlabelled'"),
        ({"labels": None, "unlabelled": None}, "missing key 'labels', 'unlabelled'"),
        ({"labelled": np.zeros((N, H), np.uint8)}, "key 'labelled' has shape (12, 8) (rank 2)"),
        ({"labelled": np.zeros((N, H, H, 3), np.uint8)}, "key 'labelled' has shape (12, 8, 8, 3) (rank 4)"),
        ({"unlabelled": np.zeros((M, H), np.uint8)}, "key 'unlabelled' has shape (5, 8) (rank 2)"),
        ({"unlabelled": np.zeros((0,), np.uint8)}, "key 'unlabelled' has shape (0,) (rank 1)"),
        ({"labels": np.zeros((N, 1), int)}, "key 'labels' has shape (12, 1) (rank 2)"),
        ({"labels": np.arange(N - 1) % 3}, "key 'labels' has 11 entries but 'labelled' has 12 images"),
        ({"labels": np.tile([0, 1, 2, -1], N // 4)}, "key 'labels' has negative values (min -1)"),
        ({"labels": np.tile([0.0, 1.0, 2.5], N // 3)}, "key 'labels' has non-integer values (e.g. 2.5)"),
        ({"labels": np.tile([0.0, 1.0, np.nan], N // 3)}, "key 'labels' has 4 NaN/inf values"),
        ({"labels": np.tile([1, 2, 3], N // 3)}, "key 'labels' has classes [1, 2, 3] but none of [0]"),
        ({"labels": np.tile(["a", "b", "c"], N // 3)}, "key 'labels' has dtype <U1"),
        ({"labels": object_array()}, "key 'labels' holds Python objects"),
        ({"labelled": np.zeros((0, H, H), np.uint8), "labels": np.zeros(0, int)}, "key 'labelled' has no images"),
        ({"labelled": np.zeros((N, 0, H), np.uint8)}, "images must be at least 1x1"),
        ({"labelled": np.full((N, H, H), np.nan)}, f"key 'labelled' has {N * H * H} NaN/inf values"),
        ({"unlabelled": np.full((M, H, H), np.inf)}, "key 'unlabelled' has 320 NaN/inf values"),
        ({"labelled": np.full((N, H, H), -0.5)}, "float pixels must lie in [0, 1] or [0, 255]"),
        ({"unlabelled": np.full((M, H, H), 300.0)}, "key 'unlabelled' has values 300..300"),
        ({"labelled": np.full((N, H, H), 256, np.int32)}, "integer pixels must lie in 0..255"),
        ({"labelled": np.zeros((N, H, H), bool)}, "key 'labelled' has dtype bool"),
        ({"unlabelled": np.zeros((M, H + 2, H), np.uint8)}, "key 'unlabelled' has 10x8 images but 'labelled' has 8x8"),
        ({"unlabelled": np.zeros((M, H, H), np.float32)}, "'unlabelled' holds float pixels but 'labelled' holds integer"),
        ({"class_names": np.array(["a", "b"])}, "key 'class_names' has shape (2,)"),
    ],
)
def test_violations_give_one_line_naming_the_key(tmp_path, changes, needle):
    path = save(tmp_path, **changes)
    with pytest.raises(ReplearnError) as info:
        load_assignment(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: ")
    assert needle in msg
    assert "\n" not in msg


def test_labels_out_of_range_for_given_classes(tmp_path):
    with pytest.raises(ReplearnError, match=r"key 'labels' has label 2, out of range for 2 classes \(allowed 0..1\)"):
        load_assignment(save(tmp_path), n_classes=2)


def test_not_an_npz(tmp_path):
    text = tmp_path / "notes.npz"
    text.write_text("labelled, labels, unlabelled\n")
    with pytest.raises(ReplearnError, match=r"notes.npz: not an .npz archive"):
        load_assignment(text)
    npy = tmp_path / "single.npy"
    np.save(npy, np.zeros((3, 4)))
    with pytest.raises(ReplearnError, match=r"single.npy: holds a single array \(.npy format\)"):
        load_assignment(npy)
    good = save(tmp_path).read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(ReplearnError, match=r"cut.npz: not an .npz archive"):
        load_assignment(cut)
    with pytest.raises(ReplearnError, match=r"absent.npz: file not found"):
        load_assignment(tmp_path / "absent.npz")
    with pytest.raises(ReplearnError, match=r"is a folder, not a file"):
        load_assignment(tmp_path)


# ------------------------------------------------------------------------------------------- synthetic marker
def test_synthetic_data_round_trips_with_its_marker(tmp_path):
    from replearn.data import synthetic_aureus

    synthetic_aureus(6, 2, seed=4, preset="widefield").save_npz(tmp_path / "syn.npz")
    with np.load(tmp_path / "syn.npz", allow_pickle=False) as npz:
        assert set(npz.files) == {"labelled", "labels", "unlabelled", "synthetic", "source"}
        assert npz["synthetic"].shape == () and npz["synthetic"].dtype == bool and bool(npz["synthetic"])
    data = load_assignment(tmp_path / "syn.npz")
    assert data.synthetic is True
    assert data.source.startswith(str(tmp_path / "syn.npz")) and "preset=widefield, seed=4" in data.source
    assert data.labelled.shape == (6, 40, 40) and data.labels.tolist() == synthetic_aureus(6, 2, seed=4, preset="widefield").labels.tolist()


def test_real_data_is_written_without_marker(tmp_path):
    load_assignment(save(tmp_path)).save_npz(tmp_path / "copy.npz")
    with np.load(tmp_path / "copy.npz", allow_pickle=False) as npz:
        assert set(npz.files) == {"labelled", "labels", "unlabelled"}
    assert load_assignment(tmp_path / "copy.npz").synthetic is False


def test_marker_false_or_missing_is_real_and_other_keys_are_ignored(tmp_path):
    data = load_assignment(save(tmp_path, synthetic=np.array(False), notes=np.arange(4)))
    assert data.synthetic is False and data.source == str(tmp_path / "data.npz")
    data = load_assignment(save(tmp_path, name="b.npz", synthetic=np.array([True])))  # no source: still marked
    assert data.synthetic is True and data.source == f"{tmp_path / 'b.npz'} (synthetic data)"


def test_malformed_marker_is_one_line(tmp_path):
    with pytest.raises(ReplearnError, match=r"key 'synthetic' has shape \(3,\) and dtype int64; expected one true/false"):
        load_assignment(save(tmp_path, synthetic=np.arange(3)))


def test_marked_synthetic(tmp_path):
    from replearn.data import AssignmentData, marked_synthetic

    a = good_arrays()
    AssignmentData(a["labelled"], a["labels"], a["unlabelled"], synthetic=True).save_npz(tmp_path / "s.npz")
    assert marked_synthetic(tmp_path / "s.npz") is True
    assert marked_synthetic(save(tmp_path)) is False
    assert marked_synthetic(save(tmp_path, name="imgs.npz", synthetic=np.zeros((2, 4, 4)))) is False  # no marker
    assert marked_synthetic(tmp_path) is False and marked_synthetic(tmp_path / "missing.npz") is False


def test_a_text_file_gets_no_advice_to_unpickle(tmp_path):
    path = tmp_path / "passwd.npz"
    path.write_text("root:x:0:0:root:/root:/bin/bash\n")
    with pytest.raises(ReplearnError, match=r"passwd.npz: not an .npz archive \(not a NumPy file") as info:
        load_assignment(path)
    assert "pickle" not in str(info.value)
