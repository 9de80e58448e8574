"""Greedy layer-wise pretraining: stages, what each stage trains, losses, and the ``"model"`` loss of fit."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import replearn.train.layerwise as layerwise
from replearn.errors import ReplearnError
from replearn.models import create_model
from replearn.train import TrainConfig, fit
from replearn.train.layerwise import StageObjective, encoder_stages, pretrain_layerwise


def bars(n: int = 256, size: int = 16, seed: int = 0) -> torch.Tensor:
    """Images in [0, 1]: a bright bar at a random row or column, plus a little noise (N, 1, size, size)."""
    g = torch.Generator().manual_seed(seed)
    x = 0.1 * torch.rand(n, 1, size, size, generator=g)
    pos = torch.randint(0, size, (n,), generator=g)
    for i in range(n):
        if i % 2:
            x[i, 0, pos[i], :] = 1.0
        else:
            x[i, 0, :, pos[i]] = 1.0
    return x


def small_ae(seed: int = 0):
    torch.manual_seed(seed)
    return create_model("conv_autoencoder", input_shape=(1, 16, 16), code_dim=2, blocks=((4,), (4, 4)))


def config(epochs: int = 3) -> TrainConfig:
    return TrainConfig(epochs=epochs, batch_size=32, lr=0.01, schedule="onecycle", device="cpu")


def test_lecture_encoder_is_cut_at_its_pools():
    ae = create_model("conv_autoencoder", input_shape=(1, 28, 28), code_dim=2)
    stages = encoder_stages(ae.encoder)
    assert [s.input_shape for s in stages] == [(1, 28, 28), (32, 14, 14), (16, 7, 7), (8, 3, 3)]
    assert [s.output_shape for s in stages] == [(32, 14, 14), (16, 7, 7), (8, 3, 3), (2,)]
    assert [s.layers[-1] for s in stages] == ["maxpool_1", "maxpool_2", "maxpool_3", "features"]
    # the stages partition the encoder, in order
    assert [name for s in stages for name in s.layers] == ae.encoder.layer_names
    assert all(a.stop == b.start for a, b in zip(stages, stages[1:]))


def test_encoder_must_be_a_network():
    with pytest.raises(ReplearnError, match="Network"):
        encoder_stages(nn.Sequential(nn.Conv2d(1, 2, 3)))


def test_each_stage_trains_only_its_own_layers(monkeypatch):
    """Spy on fit: during stage k the earlier stages (weights and BN statistics) and the later ones stay put."""
    ae = small_ae()
    stages = encoder_stages(ae.encoder)
    snapshots = [{k: v.clone() for k, v in ae.encoder.state_dict().items()}]
    real_fit = layerwise.fit

    def spy(*args, **kwargs):
        history = real_fit(*args, **kwargs)
        snapshots.append({k: v.clone() for k, v in ae.encoder.state_dict().items()})
        return history

    monkeypatch.setattr(layerwise, "fit", spy)
    records = pretrain_layerwise(ae.encoder, bars(), config(2), progress=False)
    assert len(records) == len(stages) == len(snapshots) - 1 == 3
    for k, stage in enumerate(stages):
        before, after = snapshots[k], snapshots[k + 1]
        for key in before:
            layer = key.split(".")[0]
            changed = not torch.equal(before[key], after[key])
            if key.endswith("num_batches_tracked"):
                continue
            if layer in stage.layers and (key.endswith("weight") or key.endswith("running_mean")):
                assert changed, f"stage {k + 1}: {key} did not train"
            elif layer not in stage.layers:
                assert not changed, f"stage {k + 1}: {key} of another stage changed"
    # ready for fine-tuning: everything trainable, no BatchNorm left frozen
    assert all(p.requires_grad for p in ae.parameters())
    assert not any(getattr(m, "frozen", False) for m in ae.modules())


def test_stage_losses_fall_and_are_recorded():
    ae = small_ae()
    records = pretrain_layerwise(ae.encoder, bars(), config(4), image_loss="bce", progress=False)
    assert [r["loss"] for r in records] == ["bce", "mse", "mse"]
    assert [r["input_shape"] for r in records] == [[1, 16, 16], [4, 8, 8], [4, 4, 4]]
    for r in records:
        assert len(r["epoch_losses"]) == 4
        assert r["epoch_losses"][-1] < r["epoch_losses"][0], r
    # the first stage reconstructs images in [0, 1]: a BCE, at most the BCE of predicting 0.5 everywhere
    assert records[0]["epoch_losses"][-1] < torch.log(torch.tensor(2.0)).item()


def test_pretraining_is_seeded():
    x = bars()
    a, b = small_ae(seed=1), small_ae(seed=1)
    pretrain_layerwise(a.encoder, x, config(1), progress=False)
    pretrain_layerwise(b.encoder, x, config(1), progress=False)
    for (k, va), vb in zip(a.encoder.state_dict().items(), b.encoder.state_dict().values()):
        assert torch.equal(va, vb), k


def test_stage_objective_matches_its_definition():
    prefix, stage = nn.Identity(), nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.MaxPool2d(2))
    decoder = nn.Sequential(nn.Upsample(size=(4, 4)), nn.Conv2d(2, 1, 3, padding=1))
    x = torch.rand(5, 1, 4, 4)
    per = StageObjective(prefix, stage, decoder, "mse")(x)
    expected = ((decoder(stage(x)) - x) ** 2).mean(dim=(1, 2, 3))
    assert per.shape == (5,)
    torch.testing.assert_close(per, expected)
    with pytest.raises(ReplearnError, match="stage loss"):
        StageObjective(prefix, stage, decoder, "l1")


def test_bad_arguments():
    ae = small_ae()
    with pytest.raises(ReplearnError, match="image_loss"):
        pretrain_layerwise(ae.encoder, bars(), config(), image_loss="l1", progress=False)


def test_fit_with_loss_model_minimises_the_models_own_losses():
    class Objective(nn.Module):  # per-sample squared distance of a learnable vector to each input
        def __init__(self):
            super().__init__()
            self.centre = nn.Parameter(torch.zeros(3))

        def forward(self, x):
            return ((x - self.centre) ** 2).sum(dim=1)

    x = torch.randn(64, 3) + torch.tensor([2.0, -1.0, 0.5])
    model = Objective()
    history = fit(model, (x, x), (x, x), TrainConfig(epochs=60, batch_size=64, lr=0.1, loss="model", device="cpu"),
                  progress=False)
    # the minimiser of the mean squared distance is the mean of the inputs
    torch.testing.assert_close(model.centre.detach(), x.mean(dim=0), atol=0.05, rtol=0)
    assert history.history["val_loss"][-1] < history.history["val_loss"][0]


def test_fit_with_loss_model_needs_per_sample_losses():
    model = nn.Linear(3, 2)
    x = torch.randn(8, 3)
    with pytest.raises(ReplearnError, match="per-sample losses"):
        fit(model, (x, x), None, TrainConfig(epochs=1, batch_size=4, loss="model", device="cpu"), progress=False)


class _Interrupted(Exception):
    pass


def test_resumed_pretraining_equals_an_uninterrupted_one(tmp_path, monkeypatch):
    """Stopped at the end of stage 2's second epoch (stage 1 finished, stage 2 half): the resumed run loads stage 1,
    continues stage 2 and starts stage 3 afresh, ending bit-identical to a run never stopped."""
    x = bars(64)
    straight = small_ae(0)
    whole = pretrain_layerwise(straight.encoder, x, config(3), progress=False, checkpoint_dir=tmp_path / "a")
    assert sorted(p.name for p in (tmp_path / "a" / "checkpoints").iterdir()) == ["layerwise-1", "layerwise-2",
                                                                               "layerwise-3"]
    real_fit, calls = layerwise.fit, []

    def stopping_fit(*args, **kwargs):
        calls.append(kwargs["resume"])
        if len(calls) == 2:
            def stop(epoch, logs):
                if epoch == 1:
                    raise _Interrupted  # before epoch 2's checkpoint: stage 2 stays at epoch 1 of 3
            kwargs["callbacks"] = [stop]
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(layerwise, "fit", stopping_fit)
    with pytest.raises(_Interrupted):
        pretrain_layerwise(small_ae(0).encoder, x, config(3), progress=False, checkpoint_dir=tmp_path / "b")
    calls.clear()
    monkeypatch.setattr(layerwise, "fit", lambda *a, **k: calls.append(k["resume"]) or real_fit(*a, **k))
    resumed = small_ae(0)  # built as before: stage 3, never started, begins from the same initial weights
    again = pretrain_layerwise(resumed.encoder, x, config(3), progress=False, checkpoint_dir=tmp_path / "b",
                               resume=True)
    assert calls == [True, True, False]
    assert [r["epoch_losses"] for r in again] == [r["epoch_losses"] for r in whole]
    a, b = straight.encoder.state_dict(), resumed.encoder.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_dense_stack_is_cut_after_each_hidden_layer():
    from replearn.models import Network

    net = Network(["flatten", "dense 12", "sigmoid", "dense 6", "sigmoid as features", "dense 3"], (1, 4, 4))
    stages = encoder_stages(net.truncate("features"), cut_after=("sigmoid",))
    assert [s.layers for s in stages] == [("flatten_1", "dense_1", "sigmoid_1"), ("dense_2", "features")]
    assert [(s.input_shape, s.output_shape) for s in stages] == [((1, 4, 4), (12,)), ((12,), (6,))]
    records = pretrain_layerwise(net.truncate("features"), torch.rand(64, 1, 4, 4), config(2), progress=False,
                                 cut_after=("sigmoid",))
    assert [r["loss"] for r in records] == ["bce", "mse"]
