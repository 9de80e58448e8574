"""The assignment grid's ``method`` axis: semi-supervised and fine-tuned SimCLR rows on the same splits and table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from replearn.cli import main
from replearn.encoders import CNNClassifier, FineTunedClassifier, SemiSupervisedClassifier
from replearn.errors import ReplearnError
from replearn.workflows import _assignment_grid as grid
from replearn.workflows._assignment_models import grid_estimator

TINY = """
[data]
folds = 3
n_labelled = 60
n_unlabelled = 120
[cnn]
depth = [2]
width = [8]
augment = [true]
pretrain = ["none"]
method = ["cnn", "semisup", "simclr_ft"]
epochs = 2
[semisup]
ratio = 2
threshold = 0.5
ema = 0.9
[autoencoder]
code_dim = [2]
epochs = 1
[ssl]
epochs = 1
depth = 2
width = 8
[pretrain]
min_unlabelled = 0
[probes]
names = ["logreg"]
[report]
embedding = "pca"
"""


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "grid.toml"
    path.write_text(text)
    return path


def test_the_method_axis_adds_semisup_and_simclr_ft_points_and_is_checked(tmp_path):
    cfg = grid.load_grid(_config(tmp_path, "[cnn]\nmethod = [\"cnn\", \"semisup\", \"simclr_ft\"]\n"))
    names = [p.name for p in grid.cnn_points(cfg)]
    # pretrain varies the supervised CNN only; simclr_ft has no depth/width of its own
    assert names == ["cnn d4 w16 p0.25 +aug", "cnn d4 w16 p0.25 +aug +sim2real widefield",
                     "semisup d4 w16 p0.25 +aug", "simclr_ft +aug"]
    semi = grid.cnn_points(cfg)[2]
    assert semi.supervised().name == "cnn d4 w16 p0.25 +aug" and semi.params()["method"] == "semisup"
    assert "method" not in grid.cnn_points(cfg)[0].params()  # the supervised rows' params are as before
    assert [p.method for p in grid.cnn_points(grid.load_grid(_config(tmp_path, "")))] == ["cnn", "cnn"]
    quick = grid.load_grid(_config(tmp_path, "[cnn]\nmethod = [\"cnn\", \"semisup\"]\n"), quick=True)
    assert quick["cnn"]["method"] == ["cnn", "semisup"]  # --quick keeps the axis, as augment
    for text, message in [("[cnn]\nmethod = [\"fixmatch\"]\n", r"\[cnn\] method: got \['fixmatch'\]"),
                          ("[cnn]\nmethod = [\"simclr_ft\"]\n[ssl]\nepochs = 0\n", "turns SimCLR off"),
                          ("[semisup]\nthreshold = 1.5\n", r"\[semisup\] threshold: got 1.5"),
                          ("[semisup]\nema = 1.0\n", r"\[semisup\] ema: got 1.0"),
                          ("[semisup]\nratio = 2.5\n", r"\[semisup\]: ratio must be int")]:
        with pytest.raises(ReplearnError, match=message):
            grid.load_grid(_config(tmp_path, text))


def test_grid_estimator_keeps_the_cnn_settings_and_adds_the_semisup_ones(tmp_path):
    cfg = grid.load_grid(_config(tmp_path, "[cnn]\nmethod = [\"cnn\", \"semisup\", \"simclr_ft\"]\n"
                                           "[semisup]\nratio = 3\nema = 0.99\n"))
    cnn, _, semi, ft = grid.cnn_points(cfg)
    plain = grid_estimator(cnn, cfg, 3, 5, "cpu", None)
    s = grid_estimator(semi, cfg, 3, 5, "cpu", None, unlabelled="U")
    f = grid_estimator(ft, cfg, 3, 5, "cpu", None, encoder="E")
    assert type(plain) is CNNClassifier and isinstance(s, SemiSupervisedClassifier)
    assert isinstance(f, FineTunedClassifier)
    for key in ("network_params", "batch_size", "lr", "weight_decay", "schedule", "seed", "classes"):
        assert s.get_params()[key] == plain.get_params()[key], key
    assert s.epochs == 2 * plain.epochs and f.epochs == plain.epochs  # the default steps_scale, 2
    assert (s.unlabelled, s.ratio, s.ema, s.views, s.threshold) == ("U", 3, 0.99, "cells", 0.95)
    assert (s.align, s.strength) == (True, 0.5)  # the defaults: alignment to the labelled shares, milder strong view
    assert (f.encoder, f.encoder_lr_scale, f.unlabelled, f.head_hidden) == ("E", 0.1, None, 64)


def test_steps_scale_lengthens_only_the_fits_that_see_unlabelled_crops(tmp_path):
    text = "[cnn]\nmethod = [\"cnn\", \"semisup\", \"simclr_ft\"]\nepochs = 7\n[semisup]\nsteps_scale = 3\n"
    cfg = grid.load_grid(_config(tmp_path, text))
    cnn, _, semi, ft = grid.cnn_points(cfg)
    epochs = [grid_estimator(p, cfg, 3, 5, "cpu", None, unlabelled="U", encoder="E").epochs for p in (cnn, semi, ft)]
    assert epochs == [7, 21, 7]  # plain fine-tuning sees no unlabelled crops
    cfg = grid.load_grid(_config(tmp_path, text + "fine_tune_unlabelled = true\n"))
    assert grid_estimator(grid.cnn_points(cfg)[3], cfg, 3, 5, "cpu", None, unlabelled="U", encoder="E").epochs == 21
    with pytest.raises(ReplearnError, match=r"\[semisup\] steps_scale: got 0"):
        grid.load_grid(_config(tmp_path, "[semisup]\nsteps_scale = 0\n"))


def test_semisup_and_simclr_ft_rows_reach_the_table_the_comparisons_and_the_report(tmp_path):
    out = tmp_path / "run"
    assert main(["assignment", "--config", str(_config(tmp_path, TINY)), "--out", str(out), "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    rows = metrics["cnn"]
    assert {"cnn d2 w8 p0.25 +aug", "semisup d2 w8 p0.25 +aug", "simclr_ft +aug"} <= set(rows)
    assert rows["semisup d2 w8 p0.25 +aug"]["runs"] == rows["cnn d2 w8 p0.25 +aug"]["runs"] == 3  # same splits
    titles = [c["title"] for c in metrics["comparisons"]]
    assert "Semi-supervised vs supervised CNN (same network, same labelled crops)" in titles
    assert "SimCLR fine-tuned vs the best supervised CNN (same labelled crops)" in titles
    report = (out / "report.md").read_text()
    assert "| semisup d2 w8 p0.25 +aug" in report and "| simclr_ft +aug" in report
    assert "Semi-supervised rows (semisup) train the same network" in report
    assert "towards the stage shares of the labelled crops (distribution alignment)" in report
    assert "The simclr_ft rows put a new head" in report
    assert metrics["saved"]["cnn"]["name"] != "simclr_ft +aug"  # only small_cnn models are saved for predict


def test_the_report_says_when_semisup_rows_trained_longer(tmp_path):
    from replearn.workflows.assignment_report import semisup_text

    text = "[cnn]\nmethod = [\"cnn\", \"semisup\"]\nepochs = 20\n[semisup]\nsteps_scale = 3\n"
    assert "they train for 3 times the supervised rows' steps (3 x 20 epochs)" in semisup_text(
        grid.load_grid(_config(tmp_path, text)))
    assert "they train for 2 times the supervised rows' steps (2 x 90 epochs)" in semisup_text(
        grid.load_grid(_config(tmp_path, "[cnn]\nmethod = [\"cnn\", \"semisup\"]\n")))  # the defaults
    assert "times the supervised rows' steps" not in semisup_text(
        grid.load_grid(_config(tmp_path, "[cnn]\nmethod = [\"cnn\", \"semisup\"]\n[semisup]\nsteps_scale = 1\n")))
    ft = "[cnn]\nmethod = [\"cnn\", \"simclr_ft\"]\nepochs = 20\n[semisup]\nsteps_scale = 3\n"
    assert "FixMatch-style on the unlabelled crops too, for 3 x 20 epochs;" in semisup_text(
        grid.load_grid(_config(tmp_path, ft + "fine_tune_unlabelled = true\n")))
    assert "FixMatch-style" not in semisup_text(grid.load_grid(_config(tmp_path, ft)))  # plain fine-tuning
