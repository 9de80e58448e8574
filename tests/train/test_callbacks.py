"""EarlyStopping follows Keras semantics."""

from __future__ import annotations

import torch
from torch import nn

from replearn.train import EarlyStopping


def _run(stopper: EarlyStopping, values: list[float], model: nn.Module | None = None) -> int | None:
    model = model or nn.Linear(1, 1)
    for epoch, v in enumerate(values):
        with torch.no_grad():
            model.bias.fill_(epoch)
        if stopper.update(epoch, {stopper.monitor: v}, model):
            return epoch
    return None


def test_stops_after_patience_epochs_without_improvement():
    stopper = EarlyStopping("val_loss", patience=2)
    assert _run(stopper, [1.0, 0.8, 0.85, 0.9, 0.1]) == 3
    assert stopper.best_epoch_ == 1 and stopper.best_ == 0.8


def test_min_delta_and_max_mode():
    stopper = EarlyStopping("val_accuracy", patience=1, min_delta=0.05)
    assert _run(stopper, [0.5, 0.52]) == 1  # +0.02 is not an improvement
    assert stopper.mode == "max" and stopper.best_epoch_ == 0


def test_patience_none_only_tracks_and_keeps_best_state():
    model = nn.Linear(1, 1)
    stopper = EarlyStopping("loss", patience=None, keep_best_state=True)
    assert _run(stopper, [3.0, 1.0, float("nan"), 2.0, 2.5, 4.0], model) is None
    assert stopper.best_epoch_ == 1 and stopper.best_state_["bias"].item() == 1.0


def test_state_dict_round_trip():
    stopper = EarlyStopping("val_loss", patience=3)
    _run(stopper, [1.0, 2.0])
    other = EarlyStopping("val_loss", patience=3)
    other.load_state_dict(stopper.state_dict())
    assert other.state_dict() == stopper.state_dict() and other.wait_ == 1
