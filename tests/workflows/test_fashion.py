"""``replearn fashion``: trains and saves the base with its meta; --resume continues a run exactly."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from replearn.cli import main
from replearn.models import load_model
from replearn.encoders import cnn_classifier

# A tiny run: stratified subsets, two short epochs of a few steps.
TINY = ["--train-size", "400", "--test-size", "200", "--epochs", "2", "--batch-size", "64", "--no-progress"]


def _run(out, shared_datasets, *extra) -> int:
    return main(["fashion", "--out", str(out), "--data-dir", str(shared_datasets), *TINY, *extra])


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, shared_datasets):
    out = tmp_path_factory.mktemp("fashion") / "run"
    assert _run(out, shared_datasets) == 0
    return out


def test_saves_model_with_meta_and_results(tiny_run):
    for name in ("model.safetensors", "model.json", "checkpoint.pt", "config.json", "fashion_curves.png",
                 "results.md", "metrics.json"):
        assert (tiny_run / name).is_file(), name
    model, meta = load_model(tiny_run)
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert meta["dataset"] == "fashion-mnist" and meta["normalisation"] == "x/255"
    assert meta["classes"][0] == "T-shirt/top" and len(meta["classes"]) == 10
    assert meta["bn_momentum"] == 0.1 and meta["test_images"] == 200 and meta["train_images"] == 400
    assert meta["test_accuracy"] == metrics["test_accuracy"]
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    history = metrics["history"]["history"]
    assert len(history["test_accuracy"]) == 2 and len(history["accuracy"]) == 2
    config = json.loads((tiny_run / "config.json").read_text())
    assert config["epochs"] == 2 and config["schedule"] == "onecycle" and config["shift"] == 2
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_resume_continues_to_the_same_weights(tmp_path, shared_datasets, tiny_run, monkeypatch):
    """Stop after epoch 1 (as an interruption would), resume: the result equals the uninterrupted run."""
    real_fit = cnn_classifier.fit

    def stop_after_first_epoch(*args, **kwargs):
        return real_fit(*args, callbacks=[lambda epoch, logs: True], **kwargs)

    out = tmp_path / "run"
    monkeypatch.setattr(cnn_classifier, "fit", stop_after_first_epoch)
    assert _run(out, shared_datasets) == 0
    first = json.loads((out / "metrics.json").read_text())
    assert len(first["history"]["epoch"]) == 1
    monkeypatch.setattr(cnn_classifier, "fit", real_fit)

    assert main(["fashion", "--out", str(out), "--data-dir", str(shared_datasets), "--resume", "--no-progress"]) == 0
    resumed = json.loads((out / "metrics.json").read_text())
    assert resumed["history"]["epoch"] == [0, 1]
    a, b = load_file(str(out / "model.safetensors")), load_file(str(tiny_run / "model.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["test_accuracy"] == json.loads((tiny_run / "metrics.json").read_text())["test_accuracy"]


def test_resume_refuses_missing_checkpoint_and_changed_settings(tmp_path, shared_datasets, tiny_run, capsys):
    assert main(["fashion", "--out", str(tmp_path / "none"), "--resume"]) == 2
    assert "checkpoint.pt does not exist" in capsys.readouterr().err
    assert main(["fashion", "--out", str(tiny_run), "--resume", "--lr", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "drop --lr" in err and len(err.strip().splitlines()) == 1


def test_bad_settings_exit_2_with_one_line(tmp_path, shared_datasets, capsys):
    assert main(["fashion", "--out", str(tmp_path / "r"), "--epochs", "0"]) == 2
    err = capsys.readouterr().err
    assert "epochs" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r" / "metrics.json").exists()
