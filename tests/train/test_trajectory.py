"""``OutputRecorder``: snapshot shapes and steps, probabilities, and recording leaves training unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from replearn.errors import ReplearnError
from replearn.train import OutputRecorder, TrainConfig, fit

from tests.train._tiny import blobs, states_equal, tiny_classifier


def _config(epochs: int = 3) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=10, lr=0.01, device="cpu", monitor="loss")


def test_snapshots_at_start_and_every_k_steps_with_the_right_shape():
    x, y = blobs(40)  # 4 steps per epoch, 12 in all
    probe = blobs(7, seed=3)[0]
    rec = OutputRecorder(probe, every=5)
    fit(tiny_classifier(), (x, y), None, _config(3), progress=False, callbacks=[rec])
    assert rec.steps_ == [0, 5, 10]
    snaps = rec.snapshots()
    assert snaps.shape == (3, 7, 3) and snaps.dtype == np.float32  # (snapshots, probe images, classes)
    np.testing.assert_allclose(snaps.sum(axis=2), 1.0, atol=1e-5)  # class probabilities
    assert not np.allclose(snaps[0], snaps[-1])  # the outputs moved while training


def test_first_snapshot_is_the_model_as_handed_to_fit():
    x, y = blobs(40)
    probe = blobs(5, seed=3)[0]
    model = tiny_classifier()
    model.eval()
    with torch.no_grad():
        expected = torch.softmax(model(probe), dim=1).numpy()
    model.train()
    rec = OutputRecorder(probe, every=100)
    fit(model, (x, y), None, _config(1), progress=False, callbacks=[rec])
    assert rec.steps_ == [0]
    np.testing.assert_allclose(rec.snapshots()[0], expected, atol=1e-6)


def test_recording_does_not_change_what_is_trained():
    x, y = blobs(40)
    plain, recorded = tiny_classifier(seed=2), tiny_classifier(seed=2)  # with dropout: the RNG stream matters
    fit(plain, (x, y), None, _config(2), progress=False)
    fit(recorded, (x, y), None, _config(2), progress=False, callbacks=[OutputRecorder(blobs(6)[0], every=1)])
    assert states_equal(plain, recorded)


@pytest.mark.parametrize("kwargs, match", [
    ({"x": torch.zeros(0, 1, 8, 8)}, "non-empty float32"),
    ({"x": torch.zeros(3, 1, 8, 8, dtype=torch.float64)}, "non-empty float32"),
    ({"x": torch.zeros(3, 1, 8, 8), "every": 0}, "every"),
])
def test_bad_arguments_are_one_line(kwargs, match):
    with pytest.raises(ReplearnError, match=match):
        OutputRecorder(**kwargs)
    with pytest.raises(ReplearnError, match="no snapshot"):
        OutputRecorder(torch.zeros(2, 1, 8, 8)).snapshots()


def test_frozen_layers_stay_in_eval_mode_after_a_snapshot():
    from replearn.models import freeze

    model = tiny_classifier()
    freeze(model[1])  # the BatchNorm: frozen weights and statistics
    model.train()
    model[1].eval()
    OutputRecorder(blobs(4)[0]).record(0, model)
    assert model.training and not model[1].training
