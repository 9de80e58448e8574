"""``replearn fewlabels``: the quick run writes the figure and the tables; draws are shared by the methods."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from replearn.cli import main
from replearn.workflows._fewlabels_data import FewLabelData

TINY = ["--quick", "--dataset", "crops", "--labels", "1,all", "--draws", "2", "--train-size", "150",
        "--test-size", "60", "--steps", "8", "--semisup-steps", "8", "--no-progress"]


def test_quick_run_writes_the_figure_the_table_and_every_draw(tmp_path, capsys):
    out = tmp_path / "few"
    assert main(["fewlabels", "--out", str(out), *TINY]) == 0
    for name in ("fewlabels.png", "fewlabels.md", "report.md", "report.html", "metrics.json", "config.json"):
        assert (out / name).is_file(), name
    assert (out / "fewlabels.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    metrics = json.loads((out / "metrics.json").read_text())
    records = metrics["records"]
    assert len(records) == 2 * 2 * 2  # methods x label counts x draws
    assert {r["method"] for r in records} == {"cnn", "semisup"}
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in records)
    one = [r for r in records if r["per_class"] == 1]
    assert {r["n_labelled"] for r in one} == {3} and {r["seed"] for r in one} == {0, 1}
    assert metrics["synthetic"] is True and metrics["n_test"] == 60
    table = (out / "fewlabels.md").read_text()
    assert "| semi-supervised (FixMatch-style) | 1 |" in table and "| CNN from random initialisation | all |" in table
    assert "SYNTHETIC" in table and "SYNTHETIC" in (out / "report.md").read_text()
    assert "SYNTHETIC" in capsys.readouterr().out


def test_bad_options_exit_2_with_one_line_before_any_folder(tmp_path, capsys):
    for extra, message in ((["--methods", "cnn,magic"], "'magic' is not a method"),
                           (["--labels", "1,x"], "expected counts per class"),
                           (["--dataset", "mnist", "--data", "d.npz"], "needs --dataset crops"),
                           (["--dataset", "crops", "--methods", "transfer"], "no other data set"),
                           (["--neighbours", "-1"], "--neighbours: must be an integer of at least 0, got -1"),
                           (["--threshold", "1.5"], "--threshold and --strength must be in [0, 1], got 1.5, 0.5")):
        out = tmp_path / "bad"
        assert main(["fewlabels", "--out", str(out), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err and "Traceback" not in err
        assert not out.exists()


@pytest.fixture
def semisup_settings(monkeypatch):
    """The keyword arguments of every SemiSupervisedClassifier that fewlabels builds (in this process)."""
    from replearn.workflows import _fewlabels_methods

    seen = []
    real = _fewlabels_methods.SemiSupervisedClassifier
    monkeypatch.setattr(_fewlabels_methods, "SemiSupervisedClassifier", lambda **kw: seen.append(kw) or real(**kw))
    return seen


ONE_SEMISUP_RUN = [*TINY, "--methods", "semisup", "--labels", "1", "--draws", "1", "--jobs", "1"]


def test_alignment_is_on_for_balanced_data_sets_and_off_for_the_crops_unless_asked(tmp_path, semisup_settings):
    from replearn.workflows.fewlabels import Config

    assert Config().aligns() and Config(dataset="fashion").aligns() and not Config(dataset="crops").aligns()
    assert Config(dataset="crops", align="on").aligns() and not Config(align="off").aligns()
    toml = tmp_path / "c.toml"
    toml.write_text("align = true\n")  # a config.json of an older run: true/false
    for extra, expected in (([], False), (["--align"], True), (["--config", str(toml)], True),
                            (["--align", "off"], False)):
        out = tmp_path / f"run{len(semisup_settings)}"
        assert main(["fewlabels", "--out", str(out), *ONE_SEMISUP_RUN, *extra]) == 0
        assert semisup_settings[-1]["align"] is expected, extra
        assert f"alignment {'on' if expected else 'off'}" in (out / "fewlabels.md").read_text()


def test_labelled_view_strong_gives_the_labelled_images_the_strong_view(tmp_path, semisup_settings):
    from replearn.train.semisup import fixmatch_views

    one = [*ONE_SEMISUP_RUN, "--strength", "0.8"]
    assert main(["fewlabels", "--out", str(tmp_path / "weak"), *one]) == 0
    assert semisup_settings[-1]["augment"] is None  # the estimator's default: the weak view
    assert main(["fewlabels", "--out", str(tmp_path / "strong"), *one, "--labelled-view", "strong"]) == 0
    x = torch.rand(4, 1, 12, 12)
    expected = fixmatch_views("cells", 0.8)[1](x, torch.Generator().manual_seed(3))
    assert torch.equal(semisup_settings[-1]["augment"](x, torch.Generator().manual_seed(3)), expected)
    assert "strong view of the labelled images" in (tmp_path / "strong" / "fewlabels.md").read_text()


def test_simclr_semi_fine_tunes_the_simclr_encoder_with_the_unlabelled_images_and_simclr_ft_without(tmp_path,
                                                                                                    monkeypatch):
    from replearn.workflows import _fewlabels_methods

    seen = []
    real = _fewlabels_methods.FineTunedClassifier
    monkeypatch.setattr(_fewlabels_methods, "FineTunedClassifier", lambda **kw: seen.append(kw) or real(**kw))
    out = tmp_path / "ft"
    assert main(["fewlabels", "--out", str(out), *TINY, "--methods", "simclr_ft,simclr_semi", "--labels", "1",
                 "--draws", "1", "--jobs", "1", "--steps", "6", "--semisup-steps", "9", "--threshold", "0.7",
                 "--ratio", "3"]) == 0
    plain, semi = seen
    assert "unlabelled" not in plain and semi["unlabelled"].shape[0] == 150 - 3 + 400  # the rest + the extra crops
    assert (semi["threshold"], semi["ratio"], semi["align"], semi["views"]) == (0.7, 3, False, "cells")
    assert semi["encoder"] is plain["encoder"]  # the one SimCLR encoder, pretrained once
    assert semi["epochs"] * semi["steps_per_epoch"] >= 9 > plain["epochs"] * plain["steps_per_epoch"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["pretraining_seconds"]) == ["SimCLR"]
    assert "| SimCLR fine-tuned, semi-supervised on top | 1 |" in (out / "fewlabels.md").read_text()


def test_transfer_fine_tunes_a_cnn_trained_once_on_the_other_data_set(tmp_path, shared_datasets):
    out = tmp_path / "tr"
    assert main(["fewlabels", "--out", str(out), "--quick", "--data-dir", str(shared_datasets), "--methods", "transfer",
                 "--labels", "1", "--draws", "2", "--jobs", "1", "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics["pretraining_seconds"]) == ["CNN on fashion"]  # once, shared by both draws
    accuracies = [r["accuracy"] for r in metrics["records"]]
    assert len(accuracies) == 2 and min(accuracies) > 0.15  # 1 label per digit: chance is 0.10


def test_every_method_of_a_draw_sees_the_same_labelled_images_and_never_the_test_set():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(60, 1, 4, 4, generator=gen)
    y = torch.arange(60) % 3
    extra, x_test = torch.rand(5, 1, 4, 4, generator=gen), torch.rand(9, 1, 4, 4, generator=gen)  # never equal to x
    data = FewLabelData("crops", x, y, extra, x_test, torch.arange(9) % 3, 3, "t")
    a, unl_a = data.draw(4, 7)
    b, unl_b = data.draw(4, 7)
    assert np.array_equal(a, b) and torch.equal(unl_a, unl_b)
    assert np.bincount(y[a].numpy()).tolist() == [4, 4, 4]
    assert len(unl_a) == 60 - 12 + 5  # the rest of the training set plus the extra unlabelled images
    pool = {tuple(v.flatten().tolist()) for v in unl_a}
    assert not pool & {tuple(v.flatten().tolist()) for v in x[a]}
    assert not pool & {tuple(v.flatten().tolist()) for v in data.x_test}


def test_a_users_crops_file_is_named_by_its_file_and_generated_crops_stay_synthetic(tmp_path):
    from replearn.data import AssignmentData, synthetic_aureus
    from replearn.workflows._fewlabels_data import load

    rng = np.random.default_rng(0)
    real = AssignmentData(rng.integers(0, 255, (24, 40, 40), dtype=np.uint8), np.arange(24) % 3,
                          rng.integers(0, 255, (6, 40, 40), dtype=np.uint8))
    real.save_npz(tmp_path / "digits068.npz")
    synthetic_aureus(24, 6, seed=0).save_npz(tmp_path / "synth.npz")
    titles = [load("crops", None, str(tmp_path / name), 0, 0, 0, False).title
              for name in ("digits068.npz", "synth.npz")]
    assert titles == ["crops of digits068.npz", "S. aureus crops (SYNTHETIC)"]
    assert load("crops", None, None, 0, 0, 0, False, quick=True).title == "S. aureus crops (SYNTHETIC)"


def test_every_run_gets_the_step_budget_whatever_the_label_count():
    from replearn.workflows._fewlabels_methods import cnn_epochs, repeated_epochs

    assert cnn_epochs(40, 600, 32) == 300  # 2 steps per epoch
    assert cnn_epochs(19200, 600, 32) == 1  # more labels than the budget: a seeded subset of 600 batches
    assert repeated_epochs(40, 600, 32) == (10, 60)  # the 40 images repeated 48 times: 60 steps per epoch
    assert repeated_epochs(19200, 600, 32) == (1, 1)  # one pass of 600 steps
    assert repeated_epochs(2000, 600, 32) == (10, 1)  # 63 steps per epoch, no repetition


@pytest.mark.slow
def test_the_pretraining_methods_run_and_pretrain_once(tmp_path):
    out = tmp_path / "pre"
    assert main(["fewlabels", "--out", str(out), "--quick", "--dataset", "crops", "--labels", "4", "--draws", "2",
                 "--train-size", "200", "--test-size", "60", "--methods", "layerwise,ae_lr,simclr_lr,simclr_ft",
                 "--steps", "10", "--no-progress"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert sorted(metrics["pretraining_seconds"]) == ["SimCLR", "autoencoder"]
    assert len(metrics["records"]) == 8 and all(0.0 <= r["accuracy"] <= 1.0 for r in metrics["records"])


def test_two_worker_processes_give_the_records_of_one(tmp_path):
    """Each (method, label count, draw) seeds itself: --jobs 2 ends as --jobs 1, the shared encoders pretrained once."""
    runs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"jobs{jobs}"
        assert main(["fewlabels", "--out", str(out), *TINY, "--methods", "cnn,ae_lr", "--jobs", jobs,
                     "--threads", "1"]) == 0
        runs.append(json.loads((out / "metrics.json").read_text()))
    volatile = ("seconds", "cpu_seconds")
    records = [[{k: v for k, v in r.items() if k not in volatile} for r in m["records"]] for m in runs]
    assert records[0] == records[1] and len(records[0]) == 2 * 2 * 2
    assert list(runs[1]["pretraining_seconds"]) == ["autoencoder"]


def test_neighbours_reach_the_semi_supervised_estimator_and_the_table(tmp_path, semisup_settings):
    from replearn.workflows.fewlabels import Config

    assert Config(dataset="fashion").neighbour_count() == 5
    assert Config(dataset="fashion", neighbours=0).neighbour_count() == 0
    assert Config().neighbour_count() == 0 and Config(dataset="crops").neighbour_count() == 0
    toml = tmp_path / "c.toml"
    toml.write_text('neighbours = "many"\n')
    assert main(["fewlabels", "--out", str(tmp_path / "bad"), *ONE_SEMISUP_RUN, "--config", str(toml)]) == 2
    toml.write_text('threshold = "high"\n')
    assert main(["fewlabels", "--out", str(tmp_path / "bad"), *ONE_SEMISUP_RUN, "--config", str(toml)]) == 2
    assert not (tmp_path / "bad").exists()
    assert main(["fewlabels", "--out", str(tmp_path / "off"), *ONE_SEMISUP_RUN]) == 0
    assert semisup_settings[-1]["neighbours"] == 0 and semisup_settings[-1]["threshold"] == 0.9
    assert "nearest unlabelled images" not in (tmp_path / "off" / "fewlabels.md").read_text()
    assert main(["fewlabels", "--out", str(tmp_path / "on"), *ONE_SEMISUP_RUN, "--neighbours", "4"]) == 0
    assert semisup_settings[-1]["neighbours"] == 4
    assert "strong views from one of each image's 4 nearest unlabelled images" in (
        tmp_path / "on" / "fewlabels.md").read_text()


def test_bf16_reaches_every_network_and_the_table_and_is_off_by_default(tmp_path, monkeypatch, semisup_settings):
    from replearn.workflows import _fewlabels_methods

    cnns = []
    real = _fewlabels_methods.CNNClassifier
    monkeypatch.setattr(_fewlabels_methods, "CNNClassifier", lambda **kw: cnns.append(kw) or real(**kw))
    one = [*TINY, "--methods", "cnn,semisup", "--labels", "1", "--draws", "1", "--jobs", "1"]
    for extra, expected in (([], False), (["--bf16"], True), (["--bf16", "off"], False)):
        out = tmp_path / f"run{len(cnns)}"
        assert main(["fewlabels", "--out", str(out), *one, *extra]) == 0
        assert cnns[-1]["bf16"] is expected and semisup_settings[-1]["bf16"] is expected, extra
        assert json.loads((out / "metrics.json").read_text())["bf16"] is expected
        assert f"{'bfloat16 autocast' if expected else 'float32'} training" in (out / "fewlabels.md").read_text()
    with pytest.raises(SystemExit) as exit_:  # argparse's one line for a choice it does not know
        main(["fewlabels", "--out", str(tmp_path / "bad"), *one, "--bf16", "fast"])
    assert exit_.value.code == 2 and not (tmp_path / "bad").exists()
