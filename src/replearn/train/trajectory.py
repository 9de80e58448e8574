"""``OutputRecorder``: a network's output vector on fixed images, recorded while it trains.

Erhan et al. (2010), "Why does unsupervised pre-training help deep learning?",
follow each network through function space: at regular iterations they take
its outputs (class probabilities) on a fixed set of test images and
concatenate them into one long vector. The recorder is a
:class:`~replearn.train.Callback` of :func:`replearn.train.fit`: it takes a
snapshot before the first step (the network as handed to ``fit``, e.g. right
after pretraining) and after every ``every``-th optimisation step, in eval mode
and float32, without touching the random streams of the run (so recording does
not change what is trained)::

    rec = OutputRecorder(x_probe, every=20)
    fit(model, (x, y), config=cfg, callbacks=[rec])
    rec.snapshots()   # (snapshots, images, classes)
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from replearn.errors import ReplearnError
from replearn.models.freeze import keep_frozen_in_eval
from replearn.train.callbacks import Callback
from replearn.train.history import History
from replearn.train.predict import predict


class OutputRecorder(Callback):
    """Softmax outputs of the model on ``x`` (M, C, H, W) at step 0 and every ``every`` steps.

    Attributes:
        steps_: the optimisation step of each snapshot (0 = before training).
        outputs_: one float32 array (M, K) per snapshot.
    """

    def __init__(self, x: torch.Tensor, every: int = 20, batch_size: int = 1024) -> None:
        if not isinstance(x, torch.Tensor) or x.dtype != torch.float32 or x.dim() < 2 or len(x) == 0:
            raise ReplearnError("OutputRecorder: x must be a non-empty float32 tensor (M, C, H, W)")
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ReplearnError(f"OutputRecorder: every must be an integer >= 1, got {every!r}")
        self.x = x
        self.every = every
        self.batch_size = batch_size
        self.steps_: list[int] = []
        self.outputs_: list[np.ndarray] = []

    def record(self, step: int, model: nn.Module) -> None:
        """Take one snapshot of ``model``'s class probabilities on ``x`` at ``step``."""
        with torch.random.fork_rng(devices=[]):  # eval mode draws nothing; the fork makes sure of it
            logits = predict(model, self.x, self.batch_size)
        if model.training:
            keep_frozen_in_eval(model)  # predict put every submodule back in train mode; frozen ones stay in eval
        self.steps_.append(int(step))
        self.outputs_.append(torch.softmax(logits.float(), dim=1).numpy().astype(np.float32))

    def on_train_begin(self, model: nn.Module, history: History) -> None:
        self.record(0, model)

    def on_batch_end(self, step: int, model: nn.Module) -> None:
        if step % self.every == 0:
            self.record(step, model)

    def snapshots(self) -> np.ndarray:
        """All snapshots so far: float32 (snapshots, M, K)."""
        if not self.outputs_:
            raise ReplearnError("OutputRecorder: no snapshot yet; pass it to fit(callbacks=[...]) first")
        return np.stack(self.outputs_)
