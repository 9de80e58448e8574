"""An exponential moving average (EMA) of a model's weights, kept during training and used after it.

FixMatch (Sohn et al. 2020) and Mean Teacher (Tarvainen & Valpola 2017) evaluate an average of the
weights over the last steps rather than the last step's weights: with few labels and noisy
pseudo-labels the weights wander, and their average generalises better. :class:`WeightAverage` is a
:class:`~replearn.train.Callback` of :func:`replearn.train.fit`: after every optimisation step each
floating-point parameter and buffer (BatchNorm statistics included) moves to
``decay * average + (1 - decay) * current``; at the end of training the model gets the average.
Integer buffers (BatchNorm's step counter) are copied. The decay starts low and rises to ``decay``
(``min(decay, (1 + t) / (10 + t))`` after t steps, as TensorFlow's ``ExponentialMovingAverage`` with
``num_updates``), so that a short run is not dominated by its random initialisation.

The average is not part of ``fit``'s checkpoint: a resumed run starts a new average from the resumed weights.
With ``restore_best`` the average replaces the best epoch's weights (it runs after them).
"""

from __future__ import annotations

import torch
from torch import nn

from replearn.errors import ReplearnError
from replearn.train.callbacks import Callback
from replearn.train.history import History


def check_decay(decay: float, name: str = "ema") -> None:
    """Raise one line unless ``decay`` is a number in [0, 1) (0: no averaging)."""
    if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not 0.0 <= decay < 1.0:
        raise ReplearnError(f"{name} must be a weight-average decay in [0, 1) (0: off), got {decay!r}")


class WeightAverage(Callback):
    """EMA of the weights (parameters and floating-point buffers); copied into the model after training.

    Args:
        decay: the average's decay per step in [0, 1); FixMatch uses 0.999.
        warmup: let the decay rise as ``(1 + t) / (10 + t)`` over the first steps (t = steps so far).

    Attributes: ``average_`` (name -> tensor, the averaged ``state_dict``), ``steps_`` (steps averaged).
    """

    def __init__(self, decay: float = 0.999, warmup: bool = True) -> None:
        check_decay(decay, "WeightAverage: decay")
        self.decay, self.warmup = float(decay), bool(warmup)
        self.average_: dict[str, torch.Tensor] = {}
        self.steps_ = 0
        self._pairs: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._copies: list[tuple[torch.Tensor, torch.Tensor]] = []

    def current_decay(self) -> float:
        """The decay of the next update (after ``steps_`` updates)."""
        t = self.steps_
        return min(self.decay, (1.0 + t) / (10.0 + t)) if self.warmup else self.decay

    def on_train_begin(self, model: nn.Module, history: History) -> None:
        live = model.state_dict()  # tensors sharing storage with the parameters and buffers
        self.average_ = {k: v.detach().clone() for k, v in live.items()}
        self.steps_ = 0
        self._pairs = [(self.average_[k], v) for k, v in live.items() if v.is_floating_point()]
        self._copies = [(self.average_[k], v) for k, v in live.items() if not v.is_floating_point()]

    def on_batch_end(self, step: int, model: nn.Module) -> None:
        weight = 1.0 - self.current_decay()
        with torch.no_grad():
            for avg_t, cur_t in self._pairs:
                avg_t.lerp_(cur_t, weight)
            for avg_t, cur_t in self._copies:
                avg_t.copy_(cur_t)
        self.steps_ += 1

    def on_train_end(self, model: nn.Module, history: History) -> None:
        if self.steps_:
            model.load_state_dict(self.average_)
        self._pairs, self._copies = [], []
