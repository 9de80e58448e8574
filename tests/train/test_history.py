"""History records per-epoch metrics like Keras."""

from __future__ import annotations

import json

from replearn.train import History


def test_append_and_round_trip():
    h = History(monitor="val_loss")
    h.append(0, {"loss": 1.0, "val_loss": 0.9})
    h.append(1, {"loss": 0.5, "val_loss": 0.7})
    h.best_epoch, h.best_metric = 1, 0.7
    assert h["loss"] == [1.0, 0.5] and h.epoch == [0, 1] and len(h) == 2
    assert h.last() == {"loss": 0.5, "val_loss": 0.7}
    again = History.from_dict(json.loads(json.dumps(h.to_dict())))
    assert again.to_dict() == h.to_dict()
    assert "val_loss" in again and again.best_epoch == 1
