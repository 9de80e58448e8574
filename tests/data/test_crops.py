"""From a microscopy field to cell crops: segmentation, registration, crops, outputs.

Most tests use a synthetic field drawn here (round cells at known positions, the
fluorescence channels drawn at known offsets); the last ones run on the real
S. aureus field of the shared data sets.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

from replearn.data.crops import (
    cut_crops,
    field_to_crops,
    output_paths,
    process_field,
    read_stages,
    scale_to_uint8,
)
from replearn.data.registration import apply_shift, find_shift
from replearn.data.segmentation import detect_objects, filter_cells, segment_cells
from replearn.errors import ReplearnError

RADIUS = 9
# cells fully inside the field; one more cut by the top border and a speck of debris are added
CENTRES = [(r, c) for r in (45, 105, 165) for c in (45, 105, 165, 225)]
SHAPE = (210, 270)
MEMBRANE_OFFSET = (-1, -5)  # where a cell at (r, c) in phase appears in the membrane: (r - 1, c - 5)
DNA_OFFSET = (-2, 3)


def _disk(shape, centres, r_in, r_out):
    """Boolean mask of annuli r_in <= d < r_out around each centre (r_in=0: filled disks)."""
    rr, cc = np.mgrid[: shape[0], : shape[1]]
    out = np.zeros(shape, dtype=bool)
    for r, c in centres:
        d = np.hypot(rr - r, cc - c)
        out |= (d >= r_in) & (d < r_out)
    return out


def make_field(seed: int = 0, blank_dna: bool = True) -> dict[str, np.ndarray]:
    """Synthetic phase / membrane / DNA images (uint16) of cells at ``CENTRES`` (plus a border cell and debris)."""
    rng = np.random.default_rng(seed)
    border_cell = [(3, 110)]
    debris = [(130, 75)]
    everything = CENTRES + border_cell

    phase = np.full(SHAPE, 3000.0)
    phase[_disk(SHAPE, everything, RADIUS, RADIUS + 4)] = 5000.0  # bright halo
    phase[_disk(SHAPE, everything, 0, RADIUS)] = 1200.0
    phase[_disk(SHAPE, debris, 0, 2.5)] = 1200.0
    phase = ndi.gaussian_filter(phase, 1.0) + rng.normal(0, 40, SHAPE)

    def shifted(offset):
        return [(r + offset[0], c + offset[1]) for r, c in everything]

    membrane = np.full(SHAPE, 200.0)
    mcentres = shifted(MEMBRANE_OFFSET)
    membrane[_disk(SHAPE, mcentres, 0, RADIUS)] = 600.0
    membrane[_disk(SHAPE, mcentres, RADIUS - 2.5, RADIUS + 0.5)] = 2500.0
    membrane = ndi.gaussian_filter(membrane, 1.2) + rng.normal(0, 30, SHAPE)

    dna = np.full(SHAPE, 300.0)
    dna[_disk(SHAPE, shifted(DNA_OFFSET), 0, 6)] = 2000.0
    dna = ndi.gaussian_filter(dna, 1.5) + rng.normal(0, 30, SHAPE)
    if blank_dna:
        dna[80:190, 120:200] = 0  # a censored block, as in the shared DNA image

    def to16(x):
        return np.clip(np.round(x), 0, 65535).astype(np.uint16)

    return {"phase": to16(phase), "membrane": to16(membrane), "dna": to16(dna)}


def assert_matches(found, expected, atol):
    """Every expected point has exactly one found point within ``atol`` px, and vice versa."""
    found, expected = np.asarray(found, dtype=float), np.asarray(expected, dtype=float)
    assert found.shape == expected.shape
    dist = np.hypot(*(found[:, None, :] - expected[None, :, :]).transpose(2, 0, 1))
    assert np.all(dist.min(axis=0) < atol), dist.min(axis=0)
    assert len(set(dist.argmin(axis=0))) == len(expected)


@pytest.fixture(scope="module")
def field() -> dict[str, np.ndarray]:
    return make_field()


# ----------------------------------------------------------------------------- segmentation


def test_segment_phase_finds_each_cell_at_its_centre(field):
    labels = segment_cells(field["phase"], "phase")
    assert labels.dtype == np.int32 and labels.shape == SHAPE
    assert labels.max() == len(CENTRES)  # border cell and debris dropped
    found = ndi.center_of_mass(labels > 0, labels, range(1, labels.max() + 1))
    assert_matches(found, CENTRES, atol=0.5)
    areas = np.bincount(labels.ravel())[1:]
    # the threshold falls a little inside the blurred edge (the bright halo lifts it): radius ~7.7 px
    assert np.all((areas > 150) & (areas < np.pi * RADIUS**2)) and np.ptp(areas) < 15


def test_segment_fluorescence_finds_the_rings(field):
    labels = segment_cells(field["membrane"], "fluorescence")
    assert labels.max() == len(CENTRES)
    found = ndi.center_of_mass(labels > 0, labels, range(1, labels.max() + 1))
    expected = [(r + MEMBRANE_OFFSET[0], c + MEMBRANE_OFFSET[1]) for r, c in CENTRES]
    assert_matches(found, expected, atol=0.6)


def test_ids_run_in_reading_order_and_filters_reject(field):
    objects = detect_objects(field["phase"], "phase")
    assert objects.max() == len(CENTRES) + 2  # also the border cell and the debris
    kept = filter_cells(objects)
    rows = ndi.center_of_mass(kept > 0, kept, range(1, kept.max() + 1))
    assert rows == sorted(rows)
    assert filter_cells(objects, min_area=300).max() == 0  # every cell is ~254 px
    assert filter_cells(objects, min_area=1, drop_border=False).max() == len(CENTRES) + 2


def test_grow_expands_masks_without_merging(field):
    plain = segment_cells(field["phase"], "phase")
    grown = segment_cells(field["phase"], "phase", grow=3)
    assert np.array_equal(np.unique(plain), np.unique(grown))
    a0, a3 = np.bincount(plain.ravel())[1:], np.bincount(grown.ravel())[1:]
    assert np.all(a3 > a0 + 2 * np.pi * RADIUS * 2)  # at least ~2 px of extra rim all round
    assert np.all(grown[plain > 0] == plain[plain > 0])


def test_blank_image_is_an_empty_segmentation_error():
    blank = np.full((100, 100), 500, dtype=np.uint16)
    with pytest.raises(ReplearnError, match="found no objects"):
        segment_cells(blank, "phase", name="blank.tif")
    noise = np.random.default_rng(0).integers(0, 50, (100, 100)).astype(np.uint16)
    with pytest.raises(ReplearnError, match="noise.tif"):
        segment_cells(noise, "fluorescence", name="noise.tif")
    with pytest.raises(ReplearnError, match="kind"):
        segment_cells(blank, "brightfield")


# ----------------------------------------------------------------------------- crops


def test_scale_to_uint8_uses_robust_percentiles():
    crop = np.linspace(100, 200, 1600).reshape(40, 40)
    crop[0, 0] = 60000  # a hot pixel does not set the top of the scale
    out = scale_to_uint8(crop)
    assert out.dtype == np.uint8 and out.min() == 0 and out.max() == 255
    assert 120 < out[20, 0] < 135  # the middle of the ramp stays mid-grey
    assert np.all(scale_to_uint8(np.full((8, 8), 7.0)) == 0)


def test_cut_crops_centres_each_cell_and_pads_at_the_edge(field):
    labels = segment_cells(field["phase"], "phase")
    aligned = apply_shift(field["membrane"], (-MEMBRANE_OFFSET[0], -MEMBRANE_OFFSET[1]))
    crops, table = cut_crops(aligned, labels, size=40)
    assert crops.shape == (len(CENTRES), 40, 40) and crops.dtype == np.uint8
    assert list(table["id"]) == list(range(1, len(CENTRES) + 1))
    for crop in crops:
        weight = np.clip(crop.astype(float) - np.median(crop), 0, None)
        cy, cx = ndi.center_of_mass(weight)
        assert abs(cy - 20) < 0.6 and abs(cx - 20) < 0.6
    # the cell at (45, 45) sits 25 px from the corner: a 60-px crop reaches outside and is padded
    big, _ = cut_crops(aligned, labels, size=60)
    assert big.shape == (len(CENTRES), 60, 60)
    with pytest.raises(ReplearnError, match="crop size"):
        cut_crops(aligned, labels, size=4)


# ----------------------------------------------------------------------------- the whole field


def test_process_field_registers_channels_and_crops_centred_cells(field):
    result = process_field(field["membrane"], field["phase"], field["dna"], size=40, source="synthetic test field")
    assert result.shifts == {"membrane": (1, 5), "dna": (2, -3)}  # minus the drawn offsets; DNA despite the blank block
    data = result.data
    assert data.synthetic is False and data.source == "synthetic test field"
    assert data.labelled.shape == (0, 40, 40) and data.labels.shape == (0,) and data.labels.dtype == np.int64
    assert data.unlabelled.shape == (len(CENTRES), 40, 40) and data.unlabelled.dtype == np.uint8
    for crop in data.unlabelled:
        weight = np.clip(crop.astype(float) - np.median(crop), 0, None)
        assert np.allclose(ndi.center_of_mass(weight), (20, 20), atol=0.6)
    table = result.table
    assert set(table) >= {"id", "centroid_row", "centroid_col", "area", "bbox_min_row", "solidity", "dna_mean"}
    # cells under the blanked DNA block have no DNA value; the others are bright
    col = table["centroid_col"]
    blanked = (table["centroid_row"] > 80) & (table["centroid_row"] < 190) & (col > 120) & (col < 200)
    assert np.isnan(table["dna_mean"][blanked]).all() and blanked.sum() == 2
    assert (table["dna_mean"][~blanked] > 1000).all()


def test_membrane_only_needs_no_membrane_shift(field):
    result = process_field(field["membrane"], None, field["dna"])
    assert result.reference_kind == "fluorescence"
    assert result.shifts["membrane"] == (0, 0)
    assert result.shifts["dna"] == (MEMBRANE_OFFSET[0] - DNA_OFFSET[0], MEMBRANE_OFFSET[1] - DNA_OFFSET[1])
    assert len(result.table["id"]) == len(CENTRES)


def test_stages_split_labelled_from_unlabelled(field, tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("cell_id,stage\n3,2\n1,0\n# a comment\n\n7,1\n")
    stages = read_stages(path)
    assert stages == {3: 2, 1: 0, 7: 1}
    data, table = field_to_crops(field["membrane"], field["phase"], stages=stages)
    all_crops, _ = field_to_crops(field["membrane"], field["phase"])
    assert np.array_equal(data.labels, [2, 0, 1])
    assert np.array_equal(data.labelled, all_crops.unlabelled[[2, 0, 6]])  # ids 3, 1, 7 in file order
    assert len(data.unlabelled) == len(CENTRES) - 3
    assert list(table["stage"][:3]) == [0, -1, 2]

    with pytest.raises(ReplearnError, match=r"cell id\(s\) 99 not among the 12 cells"):
        field_to_crops(field["membrane"], field["phase"], stages={1: 0, 99: 2})
    with pytest.raises(ReplearnError, match="stage 3 for cell 2"):
        field_to_crops(field["membrane"], field["phase"], stages={1: 0, 2: 3})


@pytest.mark.parametrize(
    "text, message",
    [
        ("1,0\n2,5\n", r"line 2: stage '5' for cell 2; allowed: an integer 0..2"),
        ("1,zero\n", r"line 1: stage 'zero'"),
        ("1,0\n1,1\n", "listed twice"),
        ("1,0\nx,1\n", "cell id 'x' is not an integer"),
        ("1,0,3\n", "3 columns"),
    ],
)
def test_bad_stage_files_are_one_line_errors(tmp_path, text, message):
    path = tmp_path / "labels.csv"
    path.write_text(text)
    with pytest.raises(ReplearnError, match=message) as info:
        read_stages(path)
    assert "\n" not in str(info.value) and "labels.csv" in str(info.value)
    with pytest.raises(ReplearnError, match="not found"):
        read_stages(tmp_path / "missing.csv")


def test_channels_of_different_sizes_are_refused(field):
    with pytest.raises(ReplearnError, match=r"dna \(d.tif\) image is 100x100 but the membrane image is 210x270"):
        process_field(field["membrane"], field["phase"], field["dna"][:100, :100], names={"dna": "d.tif"})


def test_blank_fluorescence_channels_are_refused(field):
    flat = np.full(SHAPE, 300, dtype=np.uint16)
    with pytest.raises(ReplearnError, match="membrane .m.tif. image: no membrane rings"):
        process_field(flat, field["phase"], names={"membrane": "m.tif"})
    with pytest.raises(ReplearnError, match="dna: the image is constant"):
        process_field(field["membrane"], field["phase"], flat)
    with pytest.raises(ReplearnError, match="dna: only 0% of pixels hold data"):
        process_field(field["membrane"], field["phase"], np.zeros_like(flat))


def test_save_writes_npz_csv_pngs_and_json(field, tmp_path):
    import matplotlib.image as mpimg

    result = process_field(field["membrane"], field["phase"], field["dna"], stages={2: 1})
    paths = result.save(tmp_path / "run" / "cells.npz")
    assert paths == output_paths(tmp_path / "run" / "cells.npz")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "cells.npz",
        "cells_cells.csv",
        "cells_crops.json",
        "cells_montage.png",
        "cells_overlay.png",
    ]
    with np.load(paths["npz"], allow_pickle=False) as npz:
        assert sorted(npz.files) == ["labelled", "labels", "unlabelled"]
        assert npz["labelled"].shape == (1, 40, 40) and npz["labels"].tolist() == [1]
        assert npz["unlabelled"].shape == (len(CENTRES) - 1, 40, 40) and npz["unlabelled"].dtype == np.uint8
    rows = list(csv.DictReader(paths["csv"].open()))
    assert len(rows) == len(CENTRES) and rows[1]["stage"] == "1" and rows[0]["stage"] == "-1"
    assert abs(float(rows[0]["centroid_row"]) - 45) < 0.5 and 150 < int(rows[0]["area"]) < 300
    summary = json.loads(paths["json"].read_text())
    assert summary["shifts"] == {"membrane": [1, 5], "dna": [2, -3]}
    assert summary["n_cells"] == len(CENTRES) and summary["synthetic"] is False
    overlay = mpimg.imread(paths["overlay"])
    assert overlay.shape[0] >= SHAPE[0] and overlay.shape[1] >= SHAPE[1]
    assert mpimg.imread(paths["montage"]).ndim == 3
    assert not list((tmp_path / "run").glob(".*.tmp"))


# ----------------------------------------------------------------------------- the real field


@pytest.fixture(scope="module")
def real_field(shared_datasets):
    from replearn.data.tiff import read_channel

    folder = shared_datasets / "aureus-maicrobe"
    return {name: read_channel(folder / f"test_{name}.tif", name) for name in ("phase", "membrane", "dna")}


def test_real_field_counts_shifts_and_centred_crops(real_field):
    result = process_field(real_field["membrane"], real_field["phase"], real_field["dna"])
    n = len(result.table["id"])
    assert 230 <= n <= 260
    # the README's offsets, in the convention "shift to apply to the channel" (module registration)
    assert result.shifts == {"membrane": (1, 5), "dna": (2, 6)}
    areas = result.table["area"]
    assert 250 < np.median(areas) < 330 and (result.table["solidity"] >= 0.9).all()

    def centre_offsets(crops):
        out = []
        for crop in crops:
            weight = np.clip(crop.astype(float) - np.percentile(crop, 50), 0, None)
            out.append(np.subtract(ndi.center_of_mass(weight), 20))
        return np.median(np.array(out), axis=0)

    # the membrane signal sits at the crop centre once registered; without registration it sits at (-1, -5)
    assert np.all(np.abs(centre_offsets(result.crops)) < 1.0)
    unregistered, _ = cut_crops(real_field["membrane"], result.labels, 40)
    off = centre_offsets(unregistered)
    assert off[1] < -3 and off[0] < 0


def test_real_field_direct_shift_measurement(real_field):
    """Independent of the pipeline: inverted phase vs membrane, and mask vs DNA with its blanked block."""
    inverted = -real_field["phase"].astype(float)
    assert find_shift(inverted, real_field["membrane"]) == (1, 5)
    mask = segment_cells(real_field["phase"], "phase") > 0
    valid = real_field["dna"] != 0
    assert find_shift(mask, real_field["dna"], moving_valid=valid) == (2, 6)


def test_real_field_membrane_only(real_field):
    result = process_field(real_field["membrane"], None, real_field["dna"])
    assert 150 <= len(result.table["id"]) <= 220
    assert result.shifts == {"membrane": (0, 0), "dna": (1, 1)}  # DNA relative to the membrane: (2, 6) - (1, 5)


@pytest.mark.parametrize("reading, counts, n_sure", [("", [162, 28, 54], 160), ("-reader2", [158, 25, 61], 124)])
def test_real_field_stage_annotation_matches_its_cells(real_field, reading, counts, n_sure):
    """bench/labels/: each reading's stages name the cells process_field finds, and stage 2 (a line across the
    cell) has a brighter centre than stage 0 (an empty ring): a shifted id would mix the two."""
    folder = Path(__file__).resolve().parents[2] / "bench" / "labels"
    stages = read_stages(folder / f"aureus-maicrobe-stages{reading}.csv")
    sure = read_stages(folder / f"aureus-maicrobe-stages{reading}-sure.csv")
    assert sorted(stages) == list(range(1, 245)) and np.bincount(list(stages.values())).tolist() == counts
    assert len(sure) == n_sure and all(stages[i] == s for i, s in sure.items())
    result = process_field(real_field["membrane"], real_field["phase"], real_field["dna"], stages=stages)
    images, labels = result.data.labelled.astype(float), result.data.labels
    assert len(labels) == 244 and len(result.data.unlabelled) == 0
    centre = images[:, 16:24, 16:24].mean(axis=(1, 2)) / images.mean(axis=(1, 2))
    assert centre[labels == 2].mean() > centre[labels == 0].mean() + 0.15
    shifted = np.roll(labels, 1)  # the same stages one cell off: the difference mostly goes
    assert centre[shifted == 2].mean() < centre[shifted == 0].mean() + 0.1
