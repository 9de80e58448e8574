"""TrainConfig validation and JSON round trip."""

from __future__ import annotations

import json

import pytest

from replearn.errors import ReplearnError
from replearn.train import TrainConfig


def test_defaults_are_valid_and_round_trip_through_json():
    config = TrainConfig(epochs=3, optimizer="sgd", nesterov=True, schedule="cosine", warmup_epochs=0.5,
                         early_stopping_patience=2, grad_clip=1, lr=1)
    assert config.grad_clip == 1.0 and isinstance(config.lr, float)
    again = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"optimizer": "adagrad"}, r"TrainConfig.optimizer: got 'adagrad'; allowed: 'sgd', 'adam', 'adamw'"),
        ({"loss": "hinge"}, r"allowed: 'cross_entropy', 'mse', 'bce'"),
        ({"schedule": "step"}, r"allowed: None, 'onecycle', 'cosine'"),
        ({"monitor": "val_auc"}, r"allowed: 'val_loss', 'val_accuracy', 'loss'"),
        ({"epochs": 0}, "TrainConfig.epochs: got 0; allowed: an integer >= 1"),
        ({"epochs": 2.5}, "TrainConfig.epochs"),
        ({"batch_size": True}, "TrainConfig.batch_size"),
        ({"lr": 0}, "TrainConfig.lr: got 0"),
        ({"lr": float("nan")}, "TrainConfig.lr"),
        ({"momentum": 1.0}, "TrainConfig.momentum"),
        ({"nesterov": True, "optimizer": "adam"}, "nesterov: true needs optimizer 'sgd'"),
        ({"label_smoothing": 0.1, "loss": "mse", "monitor": "loss"}, "label_smoothing: 0.1 needs loss 'cross_entropy'"),
        ({"monitor": "val_accuracy", "loss": "mse"}, "monitor: 'val_accuracy' needs loss 'cross_entropy'"),
        ({"early_stopping_patience": -1}, "early_stopping_patience"),
        ({"warmup_epochs": 5, "epochs": 5}, "warmup_epochs"),
        ({"grad_clip": 0}, "grad_clip"),
        ({"bf16": "yes"}, "TrainConfig.bf16: got 'yes'; allowed: true or false"),
        ({"seed": -3}, "TrainConfig.seed"),
    ],
)
def test_bad_values_fail_with_one_line_naming_the_field(kw, match):
    with pytest.raises(ReplearnError, match=match) as err:
        TrainConfig(**kw)
    assert "\n" not in str(err.value)


def test_validate_catches_values_set_after_construction():
    config = TrainConfig()
    config.optimizer = "rmsprop"
    with pytest.raises(ReplearnError, match="optimizer"):
        config.validate()


def test_from_dict_unknown_key_suggests_the_close_one():
    hint = r"run.toml \[train\]: unknown key 'bacth_size' \(did you mean 'batch_size'\?\)"
    with pytest.raises(ReplearnError, match=hint):
        TrainConfig.from_dict({"bacth_size": 8}, source="run.toml [train]")
    with pytest.raises(ReplearnError, match=r"run.toml: unknown key 'zzz'; allowed keys: epochs, batch_size"):
        TrainConfig.from_dict({"zzz": 1}, source="run.toml")
    with pytest.raises(ReplearnError, match="expected a table"):
        TrainConfig.from_dict([1, 2])
