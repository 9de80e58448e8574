"""``replearn fewshot``: class splits, one-line mistakes, and --quick runs that write the figure and report."""

from __future__ import annotations

import json

import pytest

import numpy as np

from replearn.cli import main
from replearn.data import AssignmentData
from replearn.errors import ReplearnError
from replearn.workflows import fewshot
from replearn.workflows._fewshot_data import parse_classes, prepare_task, split_classes
from replearn.workflows._fewshot_features import check_representations


def test_class_splits():
    assert parse_classes("0-4") == [0, 1, 2, 3, 4] and parse_classes("0-2,7, 9") == [0, 1, 2, 7, 9]
    assert split_classes("0-4", "") == ([0, 1, 2, 3, 4], [5, 6, 7, 8, 9])
    assert split_classes("0,2", "5,6") == ([0, 2], [5, 6])


@pytest.mark.parametrize("seen, unseen, match", [
    ("", "", "no seen class"),
    ("0-9", "", "0 unseen class"),
    ("0-8", "", "1 unseen class"),
    ("0-4", "4,5", "class 4 is both seen and unseen"),
    ("0-12", "", "class 10 does not exist"),
    ("a-b", "", "expected class numbers"),
])
def test_bad_splits_are_one_line(seen, unseen, match):
    with pytest.raises(ReplearnError, match=match):
        split_classes(seen, unseen)


def test_representations_checked_and_cnn_dropped_for_crops():
    assert check_representations(["simclr", "pixels"], crops=False) == ["pixels", "simclr"]
    assert check_representations(["cnn", "pixels"], crops=True) == ["pixels"]
    with pytest.raises(ReplearnError, match="choose from"):
        check_representations(["pca"], crops=False)


@pytest.mark.parametrize("argv, match", [
    (["--seen", "0-9"], "unseen class"),
    (["--seen", ""], "no seen class"),
    (["--shots", "0,5"], "--shots"),
    (["--dataset", "missing.npz"], "missing.npz"),
    (["--representations", "pca"], "choose from"),
])
def test_cli_mistakes_are_one_line_before_any_folder(tmp_path, capsys, argv, match):
    out = tmp_path / "run"
    assert main(["fewshot", "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err
    assert match in err and len(err.strip().splitlines()) == 1 and not out.exists()


def test_quick_run_writes_figure_and_report(tmp_path, shared_datasets):
    out = tmp_path / "run"
    assert main(["fewshot", "--quick", "--data-dir", str(shared_datasets), "--out", str(out), "--no-progress",
                 "--device", "cpu", "--representations", "pixels,cnn", "--episodes", "10"]) == 0
    for name in ("fewshot.png", "report.md", "report.html", "metrics.json"):
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["classes"] == [5, 6, 7, 8, 9] and metrics["seen"] == [0, 1, 2, 3, 4]
    assert metrics["chance"] == pytest.approx(0.2)
    for name in ("pixels", "cnn"):
        for clf in ("ncm", "logreg"):
            assert set(metrics["results"][name][clf]) == {"1", "5", "10"}
            assert all(len(v["episodes"]) == 10 for v in metrics["results"][name][clf].values())
    pixels = metrics["results"]["pixels"]["ncm"]
    assert pixels["10"]["mean"] > pixels["1"]["mean"] > 0.3  # well above chance on MNIST digits
    assert "fewshot.png" in (out / "report.md").read_text()


def test_crops_learn_from_the_unlabelled_and_classify_the_labelled(tmp_path):
    """SYNTHETIC crops: the representations see only the unlabelled crops; every labelled crop is in the pool."""
    rng = np.random.default_rng(0)
    labelled, unlabelled = rng.integers(0, 255, (30, 12, 12), dtype=np.uint8), rng.integers(0, 255, (50, 12, 12),
                                                                                          dtype=np.uint8)
    AssignmentData(labelled, np.arange(30) % 3, unlabelled, synthetic=True).save_npz(tmp_path / "d.npz")
    task = prepare_task(fewshot.Config(dataset=str(tmp_path / "d.npz"), train_size=40, progress=False))
    assert task.seen_x is None and task.synthetic and task.classes == [0, 1, 2]
    np.testing.assert_array_equal(task.pool_x, labelled)
    assert len(task.learn) == 40 and all(any((u == im).all() for u in unlabelled) for im in task.learn)


@pytest.mark.slow
def test_quick_run_on_the_synthetic_crops(tmp_path):
    out = tmp_path / "crops"
    assert main(["fewshot", "--quick", "--dataset", "synthetic", "--out", str(out), "--no-progress",
                 "--device", "cpu"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["synthetic"] and metrics["classes"] == [0, 1, 2] and "cnn" not in metrics["results"]
    assert "SYNTHETIC" in (out / "report.md").read_text() and (out / "fewshot.png").stat().st_size > 0


def test_too_few_crops_for_k_is_one_line_before_training(tmp_path, capsys, monkeypatch):
    import replearn.workflows.fewshot as module

    monkeypatch.setattr(module, "learn", lambda *a: pytest.fail("trained before checking the episodes"))
    rng = np.random.default_rng(0)
    AssignmentData(rng.integers(0, 255, (12, 12, 12), dtype=np.uint8), np.arange(12) % 3,
                   rng.integers(0, 255, (20, 12, 12), dtype=np.uint8)).save_npz(tmp_path / "d.npz")
    assert main(["fewshot", "--dataset", str(tmp_path / "d.npz"), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    assert "class 0 has 4 items; a 10-shot episode needs at least 11" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # the crops are read by the config check, before any folder
