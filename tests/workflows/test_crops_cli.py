"""``replearn crops``: in-process CLI runs on small synthetic TIFFs and on the shared field."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from scipy import ndimage as ndi

import replearn.cli
import replearn.workflows
from replearn.workflows import crops as crops_module

CENTRES = [(r, c) for r in (40, 100) for c in (40, 100, 160)]
SHAPE = (140, 200)
OUTPUTS = ["cells.npz", "cells_cells.csv", "cells_crops.json", "cells_montage.png", "cells_overlay.png"]


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    """Make sure the subcommand exists, registered in replearn.workflows or not."""
    monkeypatch.setattr(replearn.workflows, "WORKFLOWS", [crops_module])


def _disks(centres, r_in, r_out):
    rr, cc = np.mgrid[: SHAPE[0], : SHAPE[1]]
    out = np.zeros(SHAPE, dtype=bool)
    for r, c in centres:
        d = np.hypot(rr - r, cc - c)
        out |= (d >= r_in) & (d < r_out)
    return out


@pytest.fixture
def tifs(tmp_path):
    """Synthetic phase and membrane TIFFs (6 cells); the membrane sees each cell 2 rows up, 3 cols right."""
    rng = np.random.default_rng(0)
    phase = np.full(SHAPE, 3000.0)
    phase[_disks(CENTRES, 9, 13)] = 5000.0
    phase[_disks(CENTRES, 0, 9)] = 1200.0
    phase = ndi.gaussian_filter(phase, 1) + rng.normal(0, 40, SHAPE)
    moved = [(r - 2, c + 3) for r, c in CENTRES]
    membrane = np.full(SHAPE, 200.0)
    membrane[_disks(moved, 0, 9)] = 600.0
    membrane[_disks(moved, 6.5, 9.5)] = 2500.0
    membrane = ndi.gaussian_filter(membrane, 1.2) + rng.normal(0, 30, SHAPE)
    paths = {}
    for name, image in (("phase", phase), ("membrane", membrane)):
        paths[name] = tmp_path / f"{name}.tif"
        tifffile.imwrite(paths[name], np.clip(image, 0, 65535).astype(np.uint16))
    return paths


def run(args, capsys):
    code = replearn.cli.main(["crops", *map(str, args), "--no-progress"])
    out, err = capsys.readouterr()
    return code, out, err


def test_writes_npz_and_companions(tifs, tmp_path, capsys):
    out = tmp_path / "out" / "cells.npz"
    code, stdout, err = run(["--phase", tifs["phase"], "--membrane", tifs["membrane"], "--out", out], capsys)
    assert code == 0, err
    assert sorted(p.name for p in out.parent.iterdir()) == OUTPUTS
    assert "6 cells kept" in stdout and "membrane +2 rows -3 cols" in stdout
    with np.load(out, allow_pickle=False) as npz:
        assert npz["labelled"].shape == (0, 40, 40) and npz["labels"].dtype == np.int64
        assert npz["unlabelled"].shape == (6, 40, 40) and npz["unlabelled"].dtype == np.uint8
    summary = json.loads((out.parent / "cells_crops.json").read_text())
    assert summary["shifts"] == {"membrane": [2, -3]} and summary["segmented_on"] == "phase"
    assert summary["source"] == "membrane=membrane.tif phase=phase.tif"


def test_labels_and_size(tifs, tmp_path, capsys):
    labels = tmp_path / "labels.csv"
    labels.write_text("id,stage\n2,1\n5,0\n")
    out = tmp_path / "data.npz"
    code, stdout, err = run(
        ["--phase", tifs["phase"], "--membrane", tifs["membrane"], "--labels", labels, "--size", 32, "--out", out],
        capsys,
    )
    assert code == 0, err
    with np.load(out, allow_pickle=False) as npz:
        assert npz["labels"].tolist() == [1, 0]
        assert npz["labelled"].shape == (2, 32, 32) and npz["unlabelled"].shape == (4, 32, 32)
    assert "labelled 2, unlabelled 4" in stdout


def _assert_one_line_error(code, err, *needles):
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("replearn crops: error:"), err
    for needle in needles:
        assert needle in lines[0]


def test_user_mistakes_exit_2_and_write_nothing(tifs, tmp_path, capsys):
    out = tmp_path / "out" / "cells.npz"
    base = ["--membrane", tifs["membrane"], "--out", out]

    rgb = tmp_path / "rgb.tif"
    tifffile.imwrite(rgb, np.zeros((*SHAPE, 3), np.uint8), photometric="rgb")
    _assert_one_line_error(*run(["--phase", rgb, *base], capsys)[::2], "rgb.tif", "RGB")

    small = tmp_path / "small.tif"
    tifffile.imwrite(small, np.zeros((100, 100), np.uint16))
    _assert_one_line_error(*run(["--dna", small, *base], capsys)[::2], "small.tif", "100x100", "140x200")

    blank = tmp_path / "blank.tif"
    tifffile.imwrite(blank, np.full(SHAPE, 1000, np.uint16))
    _assert_one_line_error(*run(["--phase", blank, *base], capsys)[::2], "blank.tif", "no objects")

    bad = tmp_path / "labels.csv"
    bad.write_text("1,0\n42,2\n")
    _assert_one_line_error(*run(["--phase", tifs["phase"], "--labels", bad, *base], capsys)[::2], "42", "6 cells")
    bad.write_text("1,3\n")
    _assert_one_line_error(*run(["--phase", tifs["phase"], "--labels", bad, *base], capsys)[::2], "stage '3'")

    _assert_one_line_error(*run(["--membrane", tmp_path / "nope.tif", "--out", out], capsys)[::2], "nope.tif")
    _assert_one_line_error(*run(["--membrane", tifs["membrane"], "--out", tmp_path / "x.png"], capsys)[::2], ".npz")
    assert not out.parent.exists()


def test_out_defaults_to_a_new_run_folder(tifs, tmp_path, monkeypatch, capsys):
    """Without --out the files go to runs/crops-<stamp>/cells.npz, as every workflow's (it was required)."""
    monkeypatch.chdir(tmp_path)
    code, stdout, err = run(["--phase", tifs["phase"], "--membrane", tifs["membrane"]], capsys)
    assert code == 0, err
    (folder,) = (tmp_path / "runs").iterdir()
    assert folder.name.startswith("crops-") and sorted(p.name for p in folder.iterdir()) == OUTPUTS
    assert f"wrote {Path('runs') / folder.name / 'cells.npz'}" in stdout


def test_shared_field(shared_datasets, tmp_path, capsys):
    folder = shared_datasets / "aureus-maicrobe"
    out = tmp_path / "cells.npz"
    args = ["--phase", folder / "test_phase.tif", "--membrane", folder / "test_membrane.tif"]
    code, stdout, err = run([*args, "--dna", folder / "test_dna.tif", "--out", out], capsys)
    assert code == 0, err
    summary = json.loads((tmp_path / "cells_crops.json").read_text())
    assert 230 <= summary["n_cells"] <= 260
    assert summary["shifts"] == {"membrane": [1, 5], "dna": [2, 6]}
    assert "membrane +1 rows +5 cols, dna +2 rows +6 cols" in stdout
    with np.load(out, allow_pickle=False) as npz:
        assert npz["unlabelled"].shape == (summary["n_cells"], 40, 40)


def test_an_oversized_crop_side_is_refused_before_reading_the_field(tmp_path, capsys):
    missing = tmp_path / "not-read.tif"  # never opened: the size is refused first
    assert replearn.cli.main(["crops", "--membrane", str(missing), "--size", "5000", "--out", str(tmp_path / "c.npz")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "crop size 5000 px is over the limit of 1024 px" in err
    assert not (tmp_path / "c.npz").exists()
