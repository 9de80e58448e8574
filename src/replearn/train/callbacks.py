"""Hooks into :func:`replearn.train.fit`, and early stopping with best-weights tracking."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from replearn.train.history import History


class Callback:
    """Base class for user hooks; override any method.

    ``fit`` also accepts a plain callable ``f(epoch, logs)``, used as ``on_epoch_end``.
    """

    def on_train_begin(self, model: nn.Module, history: History) -> None:
        """Called once before the first (or first resumed) epoch."""

    def on_batch_end(self, step: int, model: nn.Module) -> None:
        """Called after each optimisation step; ``step`` counts steps from 1 over the whole run."""

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> bool | None:
        """Called after each epoch (0-based) with its metrics; return ``True`` to stop training."""
        return None

    def on_train_end(self, model: nn.Module, history: History) -> None:
        """Called once after the last epoch (after best weights are restored)."""


def _copy_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


class EarlyStopping:
    """Track the best epoch of ``monitor`` and stop after ``patience`` epochs without improvement.

    Keras semantics: an epoch improves when the metric beats the best by more
    than ``min_delta`` (lower for losses, higher for accuracies); training stops
    once ``patience`` epochs in a row did not improve. With ``patience=None`` it
    only tracks the best epoch (and its weights when ``keep_best_state``).
    """

    def __init__(self, monitor: str = "val_loss", patience: int | None = None, min_delta: float = 0.0,
                 keep_best_state: bool = False) -> None:
        self.monitor = monitor
        self.patience = patience
        self.min_delta = min_delta
        self.keep_best_state = keep_best_state
        self.mode = "max" if monitor.endswith("accuracy") else "min"
        self.best_: float | None = None
        self.best_epoch_: int | None = None
        self.best_state_: dict[str, torch.Tensor] | None = None
        self.wait_ = 0
        self.stopped_ = False

    def _improves(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best_ is None:
            return True
        if self.mode == "min":
            return value < self.best_ - self.min_delta
        return value > self.best_ + self.min_delta

    def update(self, epoch: int, logs: dict[str, float], model: nn.Module) -> bool:
        """Record ``logs[monitor]`` of ``epoch``; return ``True`` when training should stop."""
        value = float(logs[self.monitor])
        if self._improves(value):
            self.best_, self.best_epoch_, self.wait_ = value, epoch, 0
            if self.keep_best_state:
                self.best_state_ = _copy_state(model)
        else:
            self.wait_ += 1
            if self.patience is not None and self.wait_ >= max(self.patience, 1):
                self.stopped_ = True
        return self.stopped_

    def state_dict(self) -> dict[str, Any]:
        """Counters and best weights (tensors, numbers; ``weights_only``-safe)."""
        return {
            "best": self.best_,
            "best_epoch": self.best_epoch_,
            "best_state": self.best_state_,
            "wait": self.wait_,
            "stopped": self.stopped_,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict`."""
        self.best_ = state["best"]
        self.best_epoch_ = state["best_epoch"]
        self.best_state_ = state["best_state"]
        self.wait_ = int(state["wait"])
        self.stopped_ = bool(state["stopped"])
