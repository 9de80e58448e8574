"""``replearn zeroshot``: bad class-vector files and splits are one line before any folder; --quick writes outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from replearn.cli import main
from replearn.data import CLASS_NAMES

FASHION = CLASS_NAMES["fashion"]


def _csv(path, names, width=4):
    path.write_text("\n".join(f"{n}," + ",".join(str((i * 7 + j) % 5) for j in range(width))
                              for i, n in enumerate(names)))
    return path


def _dress(folder, row):
    """A CSV of every class whose Dress row is replaced by ``row``."""
    path = _csv(folder / "v.csv", FASHION)
    lines = [row if line.startswith("Dress,") else line for line in path.read_text().splitlines()]
    path.write_text("\n".join(lines))
    return path


@pytest.mark.parametrize("make, match", [
    (lambda p: _csv(p / "v.csv", FASHION[:-1]), "no row for class 'Ankle boot'"),
    (lambda p: _csv(p / "v.csv", [*FASHION, "Bag"]), "class 'Bag' appears twice"),
    (lambda p: _dress(p, "Dress,1,2,3"), "class 'Dress' has 3 values"),
    (lambda p: _dress(p, "Dress,1,NaN,3,4"), "class 'Dress' holds 'NaN'"),
    (lambda p: np.save(p / "v.npy", np.ones((10, 3))) or p / "v.npy", "have the same description vector"),
    (lambda p: p / "absent.csv", "no such file"),
])
def test_bad_class_vector_files_are_one_line(tmp_path, capsys, make, match):
    path, out = make(tmp_path), tmp_path / "run"
    assert main(["zeroshot", "--class-vectors", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert match in err and len(err.strip().splitlines()) == 1 and not out.exists()


def test_an_empty_side_is_one_line(tmp_path, capsys):
    assert main(["zeroshot", "--seen", "0-9", "--out", str(tmp_path / "run")]) == 2
    assert "unseen class" in capsys.readouterr().err


def test_quick_run_writes_figures_and_report(tmp_path, shared_datasets):
    out = tmp_path / "run"
    assert main(["zeroshot", "--quick", "--data-dir", str(shared_datasets), "--out", str(out), "--no-progress",
                 "--device", "cpu", "--representations", "pixels"]) == 0
    for name in ("zeroshot.png", "zeroshot_confusion.png", "report.md", "report.html", "metrics.json"):
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["unseen"] == [2, 3, 6, 9] and metrics["chance_unseen"] == pytest.approx(0.25)
    pixels = metrics["results"]["pixels"]
    assert np.asarray(pixels["confusion"]).shape == (4, 4) and np.sum(pixels["confusion"]) == 300
    assert pixels["unseen_accuracy"] - pixels["unseen_accuracy_ci95"] > 0.25  # above chance, from 1,000 seen images
    report = (out / "report.md").read_text()
    assert "heel: has a raised heel" in report  # every attribute defined in the report
