"""evaluate and predict: eval mode, batch-size independent, exact means."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from replearn.train import evaluate, predict

from ._tiny import blobs, tiny_classifier


def test_predict_is_eval_mode_batch_independent_and_restores_mode():
    model = tiny_classifier()
    x, _ = blobs(50)
    model.train()
    a = predict(model, x, batch_size=7)
    b = predict(model, x, batch_size=64)
    assert a.shape == (50, 3) and a.dtype == torch.float32
    torch.testing.assert_close(a, b)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(a, model(x))  # dropout off, BatchNorm running stats
    model.train()
    predict(model, x)
    assert model.training


def test_evaluate_matches_direct_computation():
    model = tiny_classifier().eval()
    x, y = blobs(45)
    with torch.no_grad():
        logits = model(x)
    expected_loss = nn.functional.cross_entropy(logits, y).item()
    expected_acc = (logits.argmax(1) == y).float().mean().item()
    result = evaluate(model, x, y, "cross_entropy", batch_size=8)
    assert result["loss"] == pytest.approx(expected_loss, rel=1e-5)
    assert result["accuracy"] == pytest.approx(expected_acc)


def test_evaluate_regression_has_no_accuracy():
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.Unflatten(1, (1, 8, 8)))
    x, _ = blobs(20)
    with torch.no_grad():
        expected = nn.functional.mse_loss(model(x), x).item()
    result = evaluate(model, x, x, "mse", batch_size=6)
    assert set(result) == {"loss"} and result["loss"] == pytest.approx(expected, rel=1e-5)
