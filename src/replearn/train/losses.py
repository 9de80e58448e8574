"""Loss functions by name, as used by :class:`~replearn.train.TrainConfig`."""

from __future__ import annotations

import torch
from torch import nn

from replearn.errors import ReplearnError
from replearn.train.config import LOSSES

#: Losses whose targets are int64 class indices and whose outputs are (N, K) logits.
CLASSIFICATION_LOSSES = ("cross_entropy",)


class ModelObjective(nn.Module):
    """Loss ``"model"``: the model's output already is its per-sample loss (N,); return the batch mean."""

    def forward(self, out: torch.Tensor, target: torch.Tensor | None = None) -> torch.Tensor:
        return out.mean()


def make_loss(name: str, label_smoothing: float = 0.0) -> nn.Module:
    """Return the loss module for ``name`` (mean over the batch).

    ``"cross_entropy"``: logits (N, K) vs int64 classes (N,); ``"mse"``: any shape,
    targets of the output's shape; ``"bce"``: probabilities in [0, 1] (model ends
    in a sigmoid); ``"bce_logits"``: logits; ``"model"``: the model returns its own
    per-sample losses (N,) and the target is ignored.
    """
    if name == "cross_entropy":
        return nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    if name == "mse":
        return nn.MSELoss()
    if name == "bce":
        return nn.BCELoss()
    if name == "bce_logits":
        return nn.BCEWithLogitsLoss()
    if name == "model":
        return ModelObjective()
    raise ReplearnError(f"loss {name!r} is unknown; allowed: {', '.join(repr(n) for n in LOSSES)}")
