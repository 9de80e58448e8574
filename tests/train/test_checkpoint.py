"""Checkpoints: atomic, weights_only-readable, checked against the model."""

from __future__ import annotations

import argparse

import pytest
import torch
from torch import nn

from replearn.errors import ReplearnError
from replearn.train import load_checkpoint, save_checkpoint
from replearn.train.checkpoint import check_compatible


def test_save_load_round_trip_without_temp_files(tmp_path):
    path = tmp_path / "run" / "checkpoint.pt"
    model = nn.Linear(3, 2)
    save_checkpoint(path, {"model": model.state_dict(), "epoch": 2, "history": {"loss": [1.0, 0.5]}, "x": None})
    state = load_checkpoint(path)
    assert state["epoch"] == 2 and state["history"] == {"loss": [1.0, 0.5]}
    assert torch.equal(state["model"]["weight"], model.weight)
    assert [p.name for p in path.parent.iterdir()] == ["checkpoint.pt"]


def test_failed_write_leaves_old_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"epoch": 1})
    with pytest.raises(Exception):
        save_checkpoint(path, {"epoch": 2, "bad": lambda: None})  # not picklable
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.pt"]


def test_missing_foreign_and_corrupt_files_are_one_line_errors(tmp_path):
    with pytest.raises(ReplearnError, match="no checkpoint at") as err:
        load_checkpoint(tmp_path / "checkpoint.pt")
    assert "\n" not in str(err.value)
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ReplearnError, match="not a replearn training checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a zip file")
    with pytest.raises(ReplearnError, match="cannot read checkpoint") as err:
        load_checkpoint(tmp_path / "junk.pt")
    assert "\n" not in str(err.value)


def test_unsafe_pickle_is_refused(tmp_path):
    # any class outside weights_only's allow-list would run code on unpickling
    torch.save({"format": "replearn-train-checkpoint", "version": 1, "obj": argparse.Namespace(a=1)},
               tmp_path / "evil.pt")
    with pytest.raises(ReplearnError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path / "evil.pt")


def test_check_compatible_names_the_mismatch():
    model = nn.Sequential(nn.Linear(3, 2))
    check_compatible(model, model.state_dict(), "c.pt")
    with pytest.raises(ReplearnError, match=r"'0.weight' has shape \(2, 4\) in the checkpoint but \(2, 3\)"):
        check_compatible(model, nn.Sequential(nn.Linear(4, 2)).state_dict(), "c.pt")
    with pytest.raises(ReplearnError, match="different model"):
        check_compatible(model, nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2)).state_dict(), "c.pt")
