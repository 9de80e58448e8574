"""Loss functions by name, as used by :class:`~replearn.train.TrainConfig`."""

from __future__ import annotations

from torch import nn

from replearn.errors import ReplearnError
from replearn.train.config import LOSSES

#: Losses whose targets are int64 class indices and whose outputs are (N, K) logits.
CLASSIFICATION_LOSSES = ("cross_entropy",)


def make_loss(name: str, label_smoothing: float = 0.0) -> nn.Module:
    """Return the loss module for ``name`` (mean over the batch).

    ``"cross_entropy"``: logits (N, K) vs int64 classes (N,); ``"mse"``: any shape,
    targets of the output's shape; ``"bce"``: probabilities in [0, 1] (model ends
    in a sigmoid); ``"bce_logits"``: logits.
    """
    if name == "cross_entropy":
        return nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    if name == "mse":
        return nn.MSELoss()
    if name == "bce":
        return nn.BCELoss()
    if name == "bce_logits":
        return nn.BCEWithLogitsLoss()
    raise ReplearnError(f"loss {name!r} is unknown; allowed: {', '.join(repr(n) for n in LOSSES)}")
