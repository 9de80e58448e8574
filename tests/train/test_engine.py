"""Behaviour of ``fit``: learning, determinism, resume, early stopping, frozen layers, precision paths."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from replearn.errors import ReplearnError
from replearn.train import Callback, TrainConfig, fit, load_checkpoint
from replearn.train._device import bf16_supported
from replearn.models.freeze import keep_frozen_in_eval

from ._tiny import blobs, low_rank_images, states_equal, tiny_autoencoder, tiny_classifier, without_time


def _cfg(**kw) -> TrainConfig:
    base = dict(epochs=4, batch_size=32, lr=3e-3, device="cpu", seed=7)
    base.update(kw)
    return TrainConfig(**base)


def test_accuracy_well_above_chance_on_separable_problem():
    train, val = blobs(240, seed=0), blobs(90, seed=1)
    history = fit(tiny_classifier(), train, val, _cfg(epochs=6), progress=False)
    assert history.history["val_accuracy"][-1] > 0.9  # chance is 1/3
    assert history.history["accuracy"][-1] > 0.8
    assert history.epoch == list(range(6))
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "time"}


@pytest.mark.parametrize("loss,sigmoid", [("mse", False), ("bce", True), ("bce_logits", False)])
def test_loss_decreases_on_learnable_reconstruction(loss, sigmoid):
    x = low_rank_images(128)
    history = fit(tiny_autoencoder(sigmoid=sigmoid), (x, x), (x[:32], x[:32]),
                  _cfg(loss=loss, monitor="val_loss", epochs=15, lr=1e-2), progress=False)
    losses = history.history["loss"]
    assert all(math.isfinite(v) for v in losses)
    assert "accuracy" not in history.history
    floor = 0.0  # the smallest reachable loss: 0 for mse, the targets' own entropy for binary cross-entropy
    if loss.startswith("bce"):
        floor = -(x * x.log() + (1 - x) * (1 - x).log()).mean().item()
    assert losses[-1] - floor < 0.5 * (losses[0] - floor)


def test_same_seed_same_result_and_different_seed_differs():
    train, val = blobs(128), blobs(64, seed=1)
    runs = []
    for seed in (3, 3, 4):
        model = tiny_classifier(seed=0)
        h = fit(model, train, val, _cfg(epochs=3, seed=seed), progress=False)
        runs.append((model, without_time(h.history)))
    assert runs[0][1] == runs[1][1]
    assert states_equal(runs[0][0], runs[1][0])
    assert runs[0][1]["loss"] != runs[2][1]["loss"]


def test_resume_is_bit_identical_to_uninterrupted_run(tmp_path):
    """4 epochs straight == 2 epochs, then a fresh model resumed to 4 (BatchNorm stats and dropout included)."""
    train, val = blobs(97), blobs(40, seed=1)  # 97 = 3 batches of 32 + a single sample (dropped)
    straight = tiny_classifier(seed=0)
    h_straight = fit(straight, train, val, _cfg(epochs=4), progress=False)

    first = tiny_classifier(seed=0)
    fit(first, train, val, _cfg(epochs=2), checkpoint_dir=tmp_path, progress=False)
    resumed = tiny_classifier(seed=99)  # different initial weights: all must come from the checkpoint
    h_resumed = fit(resumed, train, val, _cfg(epochs=4), checkpoint_dir=tmp_path, resume=True, progress=False)

    assert states_equal(straight, resumed)
    assert straight[1].num_batches_tracked.item() == 4 * 3
    assert without_time(h_straight.history) == without_time(h_resumed.history)
    assert h_resumed.epoch == [0, 1, 2, 3]


def test_resume_after_crash_with_schedule_augment_and_early_stopping(tmp_path):
    """A run killed mid-way and resumed ends like the uninterrupted one (onecycle, augmentation, restore_best)."""
    train, val, test = blobs(96), blobs(48, seed=1), blobs(48, seed=2)
    config = _cfg(epochs=5, schedule="onecycle", optimizer="sgd", lr=0.05, nesterov=True, weight_decay=1e-4,
                  early_stopping_patience=10, restore_best=True, grad_clip=1.0, label_smoothing=0.1)

    def augment(xb: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        flip = torch.rand(xb.shape[0], generator=g) < 0.5
        return torch.where(flip[:, None, None, None], xb.flip(-1), xb) + 0.05 * torch.randn(xb.shape, generator=g)

    straight = tiny_classifier()
    h_straight = fit(straight, train, val, config, augment=augment, eval_sets={"test": test}, progress=False)

    class Crash(Callback):
        def on_epoch_end(self, epoch, logs):
            if epoch == 2:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(tiny_classifier(), train, val, config, augment=augment, eval_sets={"test": test},
            checkpoint_dir=tmp_path, callbacks=[Crash()], progress=False)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["epoch"] == 2
    resumed = tiny_classifier(seed=5)
    h_resumed = fit(resumed, train, val, config, augment=augment, eval_sets={"test": test},
                    checkpoint_dir=tmp_path, resume=True, progress=False)

    assert states_equal(straight, resumed)
    assert without_time(h_straight.history) == without_time(h_resumed.history)
    assert h_straight.best_epoch == h_resumed.best_epoch
    assert {"test_loss", "test_accuracy"} <= set(h_resumed.history)


def test_resume_errors(tmp_path):
    train = blobs(64)
    with pytest.raises(ReplearnError, match="no checkpoint") as err:
        fit(tiny_classifier(), train, config=_cfg(epochs=1, monitor="loss"), checkpoint_dir=tmp_path,
            resume=True, progress=False)
    assert "\n" not in str(err.value)
    with pytest.raises(ReplearnError, match="checkpoint_dir"):
        fit(tiny_classifier(), train, config=_cfg(epochs=1, monitor="loss"), resume=True, progress=False)

    fit(tiny_classifier(), train, config=_cfg(epochs=1, monitor="loss"), checkpoint_dir=tmp_path, progress=False)
    with pytest.raises(ReplearnError, match="different model"):
        fit(tiny_classifier(classes=5), train, config=_cfg(epochs=2, monitor="loss"), checkpoint_dir=tmp_path,
            resume=True, progress=False)
    with pytest.raises(ReplearnError, match="lr=0.003"):
        fit(tiny_classifier(), train, config=_cfg(epochs=2, lr=0.1, monitor="loss"), checkpoint_dir=tmp_path,
            resume=True, progress=False)
    with pytest.raises(ReplearnError, match="64 samples"):
        fit(tiny_classifier(), blobs(80), config=_cfg(epochs=2, monitor="loss"), checkpoint_dir=tmp_path,
            resume=True, progress=False)


def test_early_stopping_stops_and_restores_best_weights():
    """Validation labels are the training labels shifted, so val_loss can only get worse after the first epoch."""
    x, y = blobs(150, noise=0.3)
    val = (x[:60], (y[:60] + 1) % 3)
    snapshots: dict[int, dict[str, torch.Tensor]] = {}

    class Snapshot(Callback):
        def on_train_begin(self, model, history):
            self.model = model

        def on_epoch_end(self, epoch, logs):
            snapshots[epoch] = {k: v.clone() for k, v in self.model.state_dict().items()}

    model = tiny_classifier()
    history = fit(model, (x, y), val, _cfg(epochs=30, lr=1e-2, early_stopping_patience=2, restore_best=True),
                  callbacks=[Snapshot()], progress=False)
    val_loss = history.history["val_loss"]
    best = min(range(len(val_loss)), key=val_loss.__getitem__)
    assert len(history) < 30
    assert history.best_epoch == best
    assert history.stopped_epoch == len(history) - 1 == best + 2
    assert history.best_metric == pytest.approx(val_loss[best])
    assert states_equal(model, snapshots[best])
    assert not states_equal(model, snapshots[len(history) - 1])


def test_no_restore_keeps_last_weights_and_callback_can_stop():
    model = tiny_classifier()
    last: dict[str, torch.Tensor] = {}

    class StopAtOne(Callback):
        def on_train_begin(self, model, history):
            self.model = model

        def on_epoch_end(self, epoch, logs):
            last.update({k: v.clone() for k, v in self.model.state_dict().items()})
            return epoch == 1

    history = fit(model, blobs(64), blobs(32, seed=1), _cfg(epochs=10), callbacks=[StopAtOne()], progress=False)
    assert len(history) == 2 and history.stopped_epoch is None
    assert states_equal(model, last)


def test_frozen_batchnorm_and_parameters_stay_bit_identical(tmp_path):
    model = tiny_classifier()
    bn = model[1]
    with torch.no_grad():  # non-trivial statistics, so a silent update would show
        bn.running_mean.fill_(0.3)
        bn.running_var.fill_(2.0)
    for p in list(model[0].parameters()) + list(bn.parameters()):
        p.requires_grad_(False)
    bn.frozen = True
    frozen_before = {k: v.clone() for k, v in model.state_dict().items() if k.startswith(("0.", "1."))}
    head_before = model[5].weight.clone()

    fit(model, blobs(96), blobs(32, seed=1), _cfg(epochs=2, optimizer="adamw", weight_decay=0.1),
        checkpoint_dir=tmp_path, progress=False)

    for key, value in frozen_before.items():
        assert torch.equal(model.state_dict()[key], value), key
    assert not torch.equal(model[5].weight, head_before)
    assert model.training and not bn.training  # train mode restored, frozen BN kept in eval
    optim_params = load_checkpoint(tmp_path / "checkpoint.pt")["optimizer"]["param_groups"][0]["params"]
    assert len(optim_params) == 2  # only the head's weight and bias


def test_keep_frozen_in_eval_convention():
    model = tiny_classifier()
    model[1].frozen = True
    model.train()
    keep_frozen_in_eval(model)
    assert model[0].training and not model[1].training and model[3].training


def test_checkpoint_written_atomically_every_epoch(tmp_path):
    saved_epochs = []

    def peek(epoch, logs):
        if epoch > 0:
            saved_epochs.append(load_checkpoint(tmp_path / "checkpoint.pt")["epoch"])

    fit(tiny_classifier(), blobs(64), blobs(32, seed=1), _cfg(epochs=3), checkpoint_dir=tmp_path,
        callbacks=[peek], progress=False)
    assert saved_epochs == [1, 2]  # the callback runs before this epoch's checkpoint is written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]  # no temporary files left
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 3 and len(state["history"]["epoch"]) == 3
    assert set(state) >= {"model", "optimizer", "scheduler", "rng_cpu", "early_stopping", "config", "history"}


def test_schedules_change_learning_rate_per_step():
    train = blobs(64)
    cosine = fit(tiny_classifier(), train, config=_cfg(epochs=4, schedule="cosine", warmup_epochs=1, lr=0.01,
                                                       monitor="loss"), progress=False).history["lr"]
    assert cosine[0] == pytest.approx(0.01)  # last warm-up step reaches the peak
    assert cosine[0] > cosine[1] > cosine[2] > cosine[3] > 0
    onecycle = fit(tiny_classifier(), train, config=_cfg(epochs=4, schedule="onecycle", lr=0.01, monitor="loss"),
                   progress=False).history["lr"]
    assert max(onecycle) <= 0.01 + 1e-12 and onecycle[-1] < 1e-4
    constant = fit(tiny_classifier(), train, config=_cfg(epochs=2, monitor="loss"), progress=False).history["lr"]
    assert constant == [0.003, 0.003]


def test_channels_last_matches_contiguous():
    # No dropout (its masks are drawn in memory order, so they differ between layouts) and SGD (Adam's
    # normalisation magnifies the rounding differences of near-zero gradients): then only rounding differs.
    train, val = blobs(64), blobs(32, seed=1)
    results = []
    for channels_last in (False, True):
        model = tiny_classifier(dropout=0.0)
        h = fit(model, train, val, _cfg(epochs=2, optimizer="sgd", lr=0.05, channels_last=channels_last),
                progress=False)
        results.append((model, h))
    (m0, h0), (m1, h1) = results
    assert m1[0].weight.is_contiguous(memory_format=torch.channels_last)
    for key, value in m0.state_dict().items():
        torch.testing.assert_close(m1.state_dict()[key], value, rtol=1e-4, atol=1e-5)
    assert h1.history["val_loss"] == pytest.approx(h0.history["val_loss"], rel=1e-4)


@pytest.mark.skipif(not bf16_supported("cpu"), reason="CPU autocast to bfloat16 is not supported here")
def test_bf16_autocast_gives_finite_learning():
    history = fit(tiny_classifier(), blobs(96), blobs(48, seed=1), _cfg(epochs=4, bf16=True), progress=False)
    assert all(math.isfinite(v) for v in history.history["loss"] + history.history["val_loss"])
    assert history.history["val_accuracy"][-1] > 0.6


def test_bf16_falls_back_with_warning_when_unsupported(monkeypatch):
    import replearn.train._device as device_mod

    monkeypatch.setattr(device_mod, "bf16_supported", lambda device_type: False)
    with pytest.warns(RuntimeWarning, match="bf16"):
        history = fit(tiny_classifier(), blobs(64), config=_cfg(epochs=1, bf16=True, monitor="loss"), progress=False)
    assert math.isfinite(history.history["loss"][0])


def test_progress_bar_shows_live_metrics(capsys):
    fit(tiny_classifier(), blobs(64), blobs(32, seed=1), _cfg(epochs=1), progress=True)
    err = capsys.readouterr().err
    assert "Epoch 1/1" in err and "val_accuracy=" in err


def test_augment_applies_to_training_batches_only():
    shapes: list[int] = []

    def augment(xb, g):
        shapes.append(xb.shape[0])
        return xb

    fit(tiny_classifier(), blobs(70), blobs(40, seed=1), _cfg(epochs=1, batch_size=32), augment=augment,
        progress=False)
    assert shapes == [32, 32, 6]


@pytest.mark.parametrize(
    "train,val,kw,match",
    [
        ((torch.zeros(8, 1, 8, 8), torch.zeros(8)), None, {}, "int64 class indices"),
        ((torch.zeros(8, 1, 8, 8, dtype=torch.float64), torch.zeros(8, dtype=torch.long)), None, {}, "float32"),
        ((torch.zeros(8, 1, 8, 8), torch.zeros(7, dtype=torch.long)), None, {}, "same N"),
        ((torch.zeros(8, 1, 8, 8), torch.full((8,), 3)), None, {}, "class index 3 but the model has 3 outputs"),
        ((torch.zeros(8, 1, 4, 4), torch.zeros(8, dtype=torch.long)), None, {}, "cannot take train x"),
        ((torch.zeros(8, 1, 8, 8), torch.zeros(8, dtype=torch.long)), None, {"restore_best": True}, "needs a val set"),
        ((torch.zeros(8, 1, 8, 8), torch.zeros(8, 1, 8, 8)), None, {"loss": "mse", "monitor": "loss"}, "model outputs"),
    ],
)
def test_bad_inputs_fail_with_one_line(train, val, kw, match):
    with pytest.raises(ReplearnError, match=match) as err:
        fit(tiny_classifier(), train, val, _cfg(epochs=1, **kw), progress=False)
    assert "\n" not in str(err.value)


def test_all_frozen_model_is_an_error():
    model = tiny_classifier()
    model.requires_grad_(False)
    with pytest.raises(ReplearnError, match="no trainable parameters"):
        fit(model, blobs(16), config=_cfg(epochs=1, monitor="loss"), progress=False)


def test_fit_without_val_tracks_training_loss():
    history = fit(nn.Sequential(nn.Flatten(), nn.Linear(64, 3)), blobs(64),
                  config=_cfg(epochs=3, monitor="loss", restore_best=True), progress=False)
    assert set(history.history) == {"loss", "accuracy", "lr", "time"}
    assert history.best_epoch == min(range(3), key=history.history["loss"].__getitem__)


def test_bf16_native_follows_the_cpu_flags():
    from pathlib import Path

    from replearn.train._device import bf16_native

    flags = Path("/proc/cpuinfo").read_text().split() if Path("/proc/cpuinfo").exists() else []
    assert bf16_native("cpu") == ("avx512_bf16" in flags or "amx_bf16" in flags)
    assert bf16_native("meta") is False
