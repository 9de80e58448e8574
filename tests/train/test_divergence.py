"""A run whose loss or weights stop being finite is an error, not a success, and leaves its last good checkpoint."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from replearn.errors import ReplearnError
from replearn.train import TrainConfig, checkpoint_path, fit, load_checkpoint

from ._tiny import blobs, low_rank_images, states_equal, tiny_autoencoder, tiny_classifier, without_time


def _cfg(**kw) -> TrainConfig:
    base = dict(epochs=3, batch_size=16, lr=3e-3, device="cpu", seed=7, monitor="loss")
    base.update(kw)
    return TrainConfig(**base)


class Poisonable(nn.Module):
    """A tiny classifier that, once ``poison`` is set, returns NaN logits or puts NaN into an unused buffer."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
        self.register_buffer("extra", torch.zeros(2))
        self.poison: str | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        if self.training and self.poison == "loss":
            out = out * float("nan")
        elif self.training and self.poison == "buffer":
            self.extra.fill_(float("inf"))
        return out


def _poison_after_first_epoch(model: Poisonable, how: str):
    def callback(epoch: int, logs: dict) -> None:
        if epoch == 0:
            model.poison = how

    return callback


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize("make,data,loss", [
    (tiny_classifier, lambda: blobs(64), "cross_entropy"),
    (tiny_autoencoder, lambda: (low_rank_images(64),) * 2, "mse"),
])
def test_huge_learning_rate_raises_one_line_naming_epoch_and_lr(make, data, loss):
    with pytest.raises(ReplearnError) as exc:
        fit(make(), data(), None, _cfg(lr=1e6, optimizer="sgd", loss=loss), progress=False)
    message = _one_line(exc)
    assert message.startswith("training diverged in epoch ")
    assert " of 3: " in message and "at learning rate 1e+06" in message
    assert message.endswith("nothing of this epoch was saved; lower --lr (e.g. from 1e+06 to 1e+05) and train again")


def test_with_a_schedule_the_line_gives_the_rate_of_that_moment_and_the_peak_to_lower():
    model = Poisonable()
    with pytest.raises(ReplearnError) as exc:
        fit(model, blobs(64), None, _cfg(lr=0.5, optimizer="sgd", schedule="cosine", warmup_epochs=1),
            callbacks=[_poison_after_first_epoch(model, "loss")], progress=False)
    message = _one_line(exc)
    # 4 steps an epoch, 4 of warm-up: the last step of epoch 2 (step 7) ran at 0.5 * (1 + cos(pi * 3 / 8)) / 2
    rate = 0.5 * (1 + math.cos(math.pi * 3 / 8)) / 2
    assert message.startswith(f"training diverged in epoch 2 of 3: the training loss became nan at learning rate "
                              f"{rate:.3g};")
    assert "lower --lr (e.g. from 0.5 to 0.05)" in message


def test_nan_loss_names_the_epoch_and_keeps_the_last_good_checkpoint(tmp_path):
    model = Poisonable()
    with pytest.raises(ReplearnError) as exc:
        fit(model, blobs(64), None, _cfg(epochs=4, lr=0.25, optimizer="sgd"), checkpoint_dir=tmp_path,
            callbacks=[_poison_after_first_epoch(model, "loss")], progress=False)
    message = _one_line(exc)
    assert message.startswith("training diverged in epoch 2 of 4: the training loss became nan at learning rate 0.25")
    assert "nothing of this epoch was saved" in message
    state = load_checkpoint(checkpoint_path(tmp_path))
    assert state["epoch"] == 1 and len(state["history"]["epoch"]) == 1
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())


def test_non_finite_weights_with_a_finite_loss_name_the_tensor(tmp_path):
    model = Poisonable()
    with pytest.raises(ReplearnError) as exc:
        fit(model, blobs(64), None, _cfg(epochs=3), checkpoint_dir=tmp_path,
            callbacks=[_poison_after_first_epoch(model, "buffer")], progress=False)
    message = _one_line(exc)
    assert message.startswith("training diverged in epoch 2 of 3: tensor 'extra' of the model became NaN or infinite")
    assert "learning rate 0.003" in message
    assert load_checkpoint(checkpoint_path(tmp_path))["epoch"] == 1


def test_diverging_on_the_first_epoch_writes_no_checkpoint(tmp_path):
    model = Poisonable()
    model.poison = "loss"
    with pytest.raises(ReplearnError, match="^training diverged in epoch 1 of 3: the training loss became nan"):
        fit(model, blobs(64), None, _cfg(), checkpoint_dir=tmp_path, progress=False)
    assert not checkpoint_path(tmp_path).exists()


def test_large_but_finite_losses_train_to_the_end():
    # an absurd rate that keeps the loss finite is not divergence: the run ends normally
    history = fit(tiny_classifier(), blobs(64), None, _cfg(lr=1e3), progress=False)
    assert history.epoch == [0, 1, 2] and all(math.isfinite(v) for v in history.history["loss"])


def test_the_checks_leave_finite_runs_bit_identical_and_draw_no_random_numbers(monkeypatch):
    # the same run with the weight check switched off and on: same weights, history and random stream after
    # (tests/train/test_engine.py checks determinism and resumption in full)
    from replearn.train import engine

    runs = []
    for check in (False, True):
        with monkeypatch.context() as patch:
            if not check:
                patch.setattr(engine, "_first_non_finite", lambda model: None)
            model = tiny_classifier(seed=0)
            history = fit(model, blobs(96), blobs(32, seed=1), _cfg(monitor="val_loss"), progress=False)
            runs.append((model, without_time(history.history), torch.rand(3)))
    assert states_equal(runs[0][0], runs[1][0]) and runs[0][1] == runs[1][1]
    assert torch.equal(runs[0][2], runs[1][2])
