"""WeightAverage: the EMA recursion, its warm-up, integer buffers, and what fit leaves in the model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from replearn.errors import ReplearnError
from replearn.train import TrainConfig, fit
from replearn.train.ema import WeightAverage, check_decay
from replearn.train.history import History


def test_the_average_follows_the_recursion_and_the_warm_up():
    model = nn.Sequential(nn.Linear(3, 2), nn.BatchNorm1d(2))
    ema = WeightAverage(0.9)
    ema.on_train_begin(model, History())
    w0 = model[0].weight.detach().clone()
    expected = w0.clone()
    for t, step in enumerate([1.0, -2.0, 0.5]):
        with torch.no_grad():
            model[0].weight.add_(step)
            model[1].num_batches_tracked += 1
        decay = min(0.9, (1 + t) / (10 + t))  # 0.1, 0.18, 0.25: below 0.9 while warming up
        expected = decay * expected + (1 - decay) * model[0].weight.detach()
        ema.on_batch_end(t + 1, model)
    assert ema.steps_ == 3
    torch.testing.assert_close(ema.average_["0.weight"], expected)
    assert int(ema.average_["1.num_batches_tracked"]) == 3  # integer buffers are copied, not averaged
    ema.on_train_end(model, History())
    torch.testing.assert_close(model[0].weight.detach(), expected)


def test_without_warm_up_the_decay_is_constant():
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema = WeightAverage(0.75, warmup=False)
    ema.on_train_begin(model, History())
    with torch.no_grad():
        model.weight.fill_(5.0)
    ema.on_batch_end(1, model)
    assert ema.current_decay() == 0.75
    torch.testing.assert_close(ema.average_["weight"], torch.full((1, 2), 0.75 * 1.0 + 0.25 * 5.0))


def test_fit_ends_with_the_average_not_the_last_step():
    torch.manual_seed(0)
    x = torch.rand(64, 1, 2, 2)
    y = (x.flatten(1).sum(1) > 2).long()

    def train(callbacks):
        torch.manual_seed(1)
        model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
        fit(model, (x, y), config=TrainConfig(epochs=3, batch_size=8, lr=0.1, seed=0, device="cpu"),
            progress=False, callbacks=callbacks)
        return model

    plain = train(None)
    ema = WeightAverage(0.9)
    averaged = train([ema])
    assert ema.steps_ == 3 * 8
    torch.testing.assert_close(averaged[1].weight, ema.average_["1.weight"])
    assert not torch.allclose(averaged[1].weight, plain[1].weight)  # the same run, another set of weights


@pytest.mark.parametrize("bad", [1.0, -0.1, True, "0.9"])
def test_bad_decays_are_refused_in_one_line(bad):
    with pytest.raises(ReplearnError, match="decay in \\[0, 1\\)"):
        check_decay(bad)
    with pytest.raises(ReplearnError):
        WeightAverage(bad)
