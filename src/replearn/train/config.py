"""Hyper-parameters of one training run, validated once and saved as JSON.

:class:`TrainConfig` is a plain dataclass: every field keeps the name and
value it was given; :meth:`TrainConfig.validate` (run on construction and again
by :func:`replearn.train.fit`) raises :class:`ReplearnError` naming the field,
the value found and the values allowed.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from dataclasses import dataclass
from typing import Any, Mapping

from replearn.errors import ReplearnError

OPTIMIZERS = ("sgd", "adam", "adamw")
LOSSES = ("cross_entropy", "mse", "bce", "bce_logits", "model")
SCHEDULES = (None, "onecycle", "cosine")
MONITORS = ("val_loss", "val_accuracy", "loss", "accuracy")


def _fmt(options: tuple) -> str:
    return ", ".join(repr(o) for o in options)


@dataclass
class TrainConfig:
    """Settings of :func:`replearn.train.fit`.

    Attributes:
        epochs: number of passes over the training set.
        batch_size: samples per optimisation step.
        optimizer: ``"sgd"``, ``"adam"`` or ``"adamw"`` (fused/foreach kernels when available).
        lr: (peak) learning rate.
        momentum: SGD momentum (ignored by Adam/AdamW, which keep their default betas).
        nesterov: Nesterov momentum for SGD (needs ``momentum > 0``).
        weight_decay: L2 penalty (SGD, Adam) or decoupled decay (AdamW) on all trainable parameters.
        loss: ``"cross_entropy"`` (y: int64 class indices, model outputs logits),
            ``"mse"``, ``"bce"`` (model outputs probabilities, like Keras
            ``binary_crossentropy``), ``"bce_logits"`` (model outputs logits) or ``"model"``
            (the model computes its own objective and returns per-sample losses (N,); ``y``
            is not used beyond its length N, e.g. layer-wise pretraining stages).
        label_smoothing: label smoothing for ``cross_entropy`` only.
        schedule: ``None`` (constant), ``"onecycle"`` or ``"cosine"``; stepped every batch.
        warmup_epochs: linear warm-up length in epochs (may be fractional). For ``"onecycle"``
            it sets the rising fraction (``warmup_epochs / epochs``; 0 keeps PyTorch's 0.3).
        early_stopping_patience: ``None`` (off) or epochs without improvement of ``monitor`` before stopping.
        monitor: metric for early stopping and best weights: ``"val_loss"``, ``"val_accuracy"``,
            ``"loss"`` or ``"accuracy"`` (accuracies need ``cross_entropy``).
        min_delta: smallest change of ``monitor`` that counts as an improvement.
        restore_best: load the weights of the best epoch (by ``monitor``) when training ends.
        channels_last: use ``torch.channels_last`` memory format for 4-D inputs.
        bf16: run forward passes under ``torch.autocast(dtype=torch.bfloat16)`` when the
            device supports it (a warning and float32 otherwise).
        seed: seeds weights-independent randomness of the run: shuffling, augmentation, dropout.
        device: ``"auto"``, ``"cpu"`` or ``"cuda[:N]"``.
        grad_clip: ``None`` or the maximal global gradient norm.
    """

    epochs: int = 10
    batch_size: int = 32
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    loss: str = "cross_entropy"
    label_smoothing: float = 0.0
    schedule: str | None = None
    warmup_epochs: float = 0.0
    early_stopping_patience: int | None = None
    monitor: str = "val_loss"
    min_delta: float = 0.0
    restore_best: bool = False
    channels_last: bool = False
    bf16: bool = False
    seed: int = 0
    device: str = "auto"
    grad_clip: float | None = None

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ checks
    def _fail(self, field: str, found: Any, allowed: str) -> None:
        raise ReplearnError(f"TrainConfig.{field}: got {found!r}; allowed: {allowed}")

    def _int(self, field: str, minimum: int, optional: bool = False) -> None:
        value = getattr(self, field)
        if optional and value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            none = " or None" if optional else ""
            self._fail(field, value, f"an integer >= {minimum}{none}")

    def _float(self, field: str, minimum: float, *, strict: bool = False, maximum: float | None = None,
               optional: bool = False) -> None:
        value = getattr(self, field)
        if optional and value is None:
            return
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        ok = ok and (value > minimum if strict else value >= minimum)
        ok = ok and (maximum is None or value < maximum)
        if not ok:
            rng = f"{'>' if strict else '>='} {minimum}" + (f" and < {maximum}" if maximum is not None else "")
            self._fail(field, value, f"a finite number {rng}" + (" or None" if optional else ""))
        setattr(self, field, float(value))

    def _bool(self, field: str) -> None:
        if not isinstance(getattr(self, field), bool):
            self._fail(field, getattr(self, field), "true or false")

    def validate(self) -> "TrainConfig":
        """Check every field; raise :class:`ReplearnError` on the first bad one. Returns ``self``."""
        self._int("epochs", 1)
        self._int("batch_size", 1)
        if self.optimizer not in OPTIMIZERS:
            self._fail("optimizer", self.optimizer, _fmt(OPTIMIZERS))
        self._float("lr", 0.0, strict=True)
        self._float("momentum", 0.0, maximum=1.0)
        self._bool("nesterov")
        if self.nesterov and (self.optimizer != "sgd" or self.momentum == 0.0):
            raise ReplearnError(
                f"TrainConfig.nesterov: true needs optimizer 'sgd' with momentum > 0, "
                f"got optimizer {self.optimizer!r} and momentum {self.momentum!r}"
            )
        self._float("weight_decay", 0.0)
        if self.loss not in LOSSES:
            self._fail("loss", self.loss, _fmt(LOSSES))
        self._float("label_smoothing", 0.0, maximum=1.0)
        if self.label_smoothing > 0 and self.loss != "cross_entropy":
            raise ReplearnError(
                f"TrainConfig.label_smoothing: {self.label_smoothing} needs loss 'cross_entropy', "
                f"got loss {self.loss!r}"
            )
        if self.schedule not in SCHEDULES:
            self._fail("schedule", self.schedule, _fmt(SCHEDULES))
        self._float("warmup_epochs", 0.0)
        if self.warmup_epochs >= self.epochs and self.warmup_epochs > 0:
            self._fail("warmup_epochs", self.warmup_epochs, f"a number >= 0 and < epochs ({self.epochs})")
        self._int("early_stopping_patience", 0, optional=True)
        if self.monitor not in MONITORS:
            self._fail("monitor", self.monitor, _fmt(MONITORS))
        if self.monitor.endswith("accuracy") and self.loss != "cross_entropy":
            raise ReplearnError(
                f"TrainConfig.monitor: {self.monitor!r} needs loss 'cross_entropy' (got {self.loss!r}); "
                "use 'val_loss' or 'loss'"
            )
        self._float("min_delta", 0.0)
        self._bool("restore_best")
        self._bool("channels_last")
        self._bool("bf16")
        self._int("seed", 0)
        if not isinstance(self.device, str) or not self.device:
            self._fail("device", self.device, "'auto', 'cpu' or 'cuda[:N]'")
        self._float("grad_clip", 0.0, strict=True, optional=True)
        return self

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        """Return the fields as a JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "train config") -> "TrainConfig":
        """Build from a dict (e.g. parsed JSON); unknown keys fail with a did-you-mean hint."""
        if not isinstance(data, Mapping):
            raise ReplearnError(f"{source}: expected a table of settings, got {type(data).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        for key in data:
            if key not in names:
                close = difflib.get_close_matches(str(key), names, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ReplearnError(f"{source}: unknown key {key!r}{hint}; allowed keys: {', '.join(names)}")
        return cls(**dict(data))
