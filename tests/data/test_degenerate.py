"""Degenerate data answered in words: blank or identical crops, one class, a class of one, noise fields.

Data that cannot be learnt from is one ReplearnError line (exit 2 from the CLI); data that is legal
but partly useless gives one DataWarning with the count.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi

from replearn.cli import main
from replearn.data import load_assignment
from replearn.data.crops import process_field
from replearn.data.limits import DataWarning
from replearn.data.segmentation import segment_cells
from replearn.errors import ReplearnError
from replearn.workflows._images import read_images

N, H = 12, 8


def crops(n: int = N, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, H, H), dtype=np.uint8)


def save(tmp_path, labelled=None, labels=None, unlabelled=None, name="data.npz", **extra):
    path = tmp_path / name
    labelled = crops() if labelled is None else labelled
    np.savez(path, labelled=labelled, labels=np.arange(len(labelled)) % 3 if labels is None else labels,
             unlabelled=crops(5, seed=1) if unlabelled is None else unlabelled, **extra)
    return path


def refusal(fn, *args, **kwargs) -> str:
    with pytest.raises(ReplearnError) as info:
        fn(*args, **kwargs)
    text = str(info.value)
    assert "\n" not in text
    return text


# ----------------------------------------------------------------------------- the assignment's data.npz


def test_all_labelled_crops_blank_or_identical_are_refused(tmp_path):
    path = save(tmp_path, labelled=np.zeros((N, H, H), np.uint8))
    assert refusal(load_assignment, path) == (
        f"{path}: all 12 labelled crops are blank (each crop a single value, all zero); there is nothing to learn "
        "from; check how the crops were made"
    )
    grey = np.arange(N, dtype=np.uint8)[:, None, None] * np.ones((1, H, H), np.uint8)  # each crop one grey value
    assert "all 12 labelled crops are blank (each crop a single value); there is" in refusal(
        load_assignment, save(tmp_path, labelled=grey))
    same = np.repeat(crops(1), N, axis=0)
    assert refusal(load_assignment, save(tmp_path, labelled=same)).endswith(
        "data.npz: all 12 labelled crops are identical; there is nothing to tell apart")
    floats = np.full((N, H, H), 0.25, np.float32)
    assert "all 12 labelled crops are blank" in refusal(load_assignment, save(tmp_path, labelled=floats,
                                                                             unlabelled=np.zeros((0, H, H), np.float32)))


def test_some_blank_crops_give_one_warning_with_the_count(tmp_path):
    labelled = crops()
    labelled[[3, 7]] = 0
    unlabelled = crops(5, seed=1)
    unlabelled[4] = 200
    path = save(tmp_path, labelled=labelled, unlabelled=unlabelled)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_assignment(path)
    messages = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert messages == [
        f"{path}: 2 of 12 labelled crops are blank (each crop a single value; rows 3, 7); they carry nothing to learn "
        "from",
        f"{path}: 1 of 5 unlabelled crops are blank (each crop a single value; rows 4); they carry nothing to learn "
        "from",
    ]
    assert len(data.labelled) == 12 and len(data.unlabelled) == 5  # nothing is dropped


def test_warning_is_shown_once_for_repeated_loads(tmp_path):
    labelled = crops()
    labelled[0] = 9
    path = save(tmp_path, labelled=labelled)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # Python's default for user warnings: once per message and place
        for _ in range(3):
            load_assignment(path)
    assert len([w for w in caught if issubclass(w.category, DataWarning)]) == 1


def test_a_single_class_is_refused(tmp_path):
    path = save(tmp_path, labels=np.zeros(N, int))
    assert refusal(load_assignment, path) == (
        f"{path}: only stage 0 is present in key 'labels' (all 12 labelled crops); the assignment needs at least two "
        "stages"
    )
    assert refusal(load_assignment, path, n_classes=3).endswith("the assignment needs at least two stages")
    named = save(tmp_path, labels=np.ones(N, int), class_names=np.array(["dividing", "round"]), name="named.npz")
    assert "only class 'round' is present in key 'labels'" in refusal(load_assignment, named, n_classes=2)


def test_a_class_of_one_crop_is_refused(tmp_path):
    path = save(tmp_path, labels=np.array([0] * 6 + [1] * 5 + [2]))
    assert refusal(load_assignment, path) == (
        f"{path}: key 'labels': class 2 has only 1 example; at least 2 labelled crops per class are needed "
        "(the stratified splits put one in training and one in validation)"
    )


def test_classes_are_not_checked_where_labels_are_not_trained_on(tmp_path, recwarn):
    path = save(tmp_path, labels=np.zeros(N, int))
    assert load_assignment(path, require_labelled=False).labels.tolist() == [0] * N  # e.g. replearn domain
    three = save(tmp_path, labelled=crops(3), labels=np.arange(3), name="three.npz")
    assert refusal(load_assignment, three).endswith("classes 0, 1, 2 have only 1 example; at least 2 labelled crops "
                                                    "per class are needed (the stratified splits put one in training "
                                                    "and one in validation)")
    assert load_assignment(three, require_labelled=False).labels.tolist() == [0, 1, 2]
    assert not [w for w in recwarn if issubclass(w.category, DataWarning)]


def test_unlabelled_only_files_need_some_signal(tmp_path):
    empty = np.zeros((0, H, H), np.uint8)
    path = save(tmp_path, labelled=empty, labels=np.zeros(0, int), unlabelled=np.full((5, H, H), 7, np.uint8))
    assert refusal(load_assignment, path, require_labelled=False) == (
        f"{path}: all 5 unlabelled crops are blank (each crop a single value) and there are no labelled crops; "
        "there is nothing to learn from"
    )
    same = save(tmp_path, labelled=empty, labels=np.zeros(0, int), unlabelled=np.repeat(crops(1), 4, axis=0))
    assert refusal(load_assignment, same, require_labelled=False).endswith(
        "all 4 unlabelled crops are identical and there are no labelled crops")


def test_assignment_cli_exits_2_in_one_line_for_one_class(tmp_path, capsys):
    path = save(tmp_path, labelled=crops(24), labels=np.zeros(24, int))
    out = tmp_path / "run"
    assert main(["assignment", "--data", str(path), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"replearn assignment: error: {path}: only stage 0 is present in key 'labels' (all 24 labelled "
                   "crops); the assignment needs at least two stages"]
    assert not (out / "metrics.json").exists()


# ----------------------------------------------------------------------------- images for embed / predict


def test_blank_images_warn_with_their_names(tmp_path):
    from PIL import Image

    folder = tmp_path / "crops"
    folder.mkdir()
    for i, image in enumerate([crops(1)[0], np.zeros((H, H), np.uint8), crops(1, 2)[0], np.full((H, H), 255, np.uint8)]):
        Image.fromarray(image).save(folder / f"c{i}.png")
    with pytest.warns(DataWarning) as caught:
        images, names = read_images(folder)
    assert [str(w.message) for w in caught] == [
        f"{folder}: 2 of 4 images are blank (every pixel the same value: c1.png, c3.png); their codes and "
        "predictions say nothing about cells"
    ]
    assert images.shape == (4, H, H)


@pytest.mark.parametrize(
    "array, message",
    [
        (np.full((3, H, H), np.nan, np.float32), "x.npz key 'x': 192 pixels are NaN or infinite; pixels must be finite"),
        (np.full((3, H, H), -1.0), "x.npz key 'x': float pixels span -1..-1; [0, 1] or [0, 255] is expected"),
        (np.zeros((3, 0, H), np.uint8), "x.npz key 'x': has shape (3, 0, 8); images must be at least 1x1 pixels"),
    ],
)
def test_bad_pixels_for_embed_are_refused(tmp_path, array, message):
    path = tmp_path / "x.npz"
    np.savez(path, x=array)
    assert refusal(read_images, path).endswith(message)


# ----------------------------------------------------------------------------- fields


def noise(shape=(512, 512), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 65535, shape).astype(np.uint16)


def test_pure_noise_field_is_refused():
    text = refusal(segment_cells, noise(), "fluorescence", name="noise.tif")
    assert text == (
        "noise.tif: segmentation (fluorescence) kept 2 of the 10 objects clear of the border as cells (20%; area "
        "150-600 px, solidity >= 0.9); a field of cells keeps most of them, so this looks like noise or an image of "
        "another kind: check the image (phase contrast for --phase, membrane dye for --membrane) or adjust "
        "--min-area/--max-area/--min-solidity"
    )
    assert "kept 2 of the 10 objects" in refusal(process_field, noise())


def test_noise_smoothed_to_cell_size_is_a_warning():
    rng = np.random.default_rng(0)
    blobs = np.clip(ndi.gaussian_filter(rng.normal(0, 1, (512, 512)), 6) * 6000 + 10000, 0, 65535).astype(np.uint16)
    with pytest.warns(DataWarning, match=r"kept 77 of the 196 objects clear of the border as cells \(39%"):
        labels = segment_cells(blobs, "phase", name="blobs.tif")
    assert labels.max() == 77


def test_crops_cli_refuses_a_noise_tiff_and_writes_nothing(tmp_path, capsys):
    path = tmp_path / "noise.tif"
    tifffile.imwrite(path, noise())
    out = tmp_path / "out" / "cells.npz"
    assert main(["crops", "--membrane", str(path), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("replearn crops: error: membrane (noise.tif): segmentation")
    assert "looks like noise" in err[0]
    assert not out.parent.exists()
