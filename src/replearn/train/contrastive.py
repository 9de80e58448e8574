"""Contrastive self-supervised pretraining (SimCLR): an encoder learns from two random views of each image.

Beyond the lecture: instead of reconstructing its input, the encoder is trained
so that two augmented views of the same image get similar representations and
views of different images dissimilar ones (Chen et al. 2020, "A Simple
Framework for Contrastive Learning of Visual Representations"). For a batch of
N images, both views go through the encoder and a small projection head; each
of the 2N projections must pick out its partner among the other 2N - 1 by
cosine similarity (the NT-Xent loss, a cross-entropy over similarities divided
by a temperature). The projection head is thrown away afterwards; the
encoder's features are the representation.

:class:`SimCLRObjective` returns per-sample losses, so it trains through
:func:`replearn.train.fit` with loss ``"model"``. The views come from an
``augment(x, generator)`` callable (for cell crops: symmetries of the square,
brightness and small shifts, see :func:`cell_views`), drawn from the
objective's own seeded generator so a run is reproducible.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from replearn.data.augment import random_shift
from replearn.data.cell_augment import CellAugment
from replearn.errors import ReplearnError
from replearn.models.network import init_glorot

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """SimCLR's NT-Xent loss per image pair: (N, D), (N, D) -> (N,), the mean over both directions.

    Row i of ``z1`` and row i of ``z2`` are two views of image i; every other row of
    either is a negative. Similarities are cosine similarities divided by ``temperature``.
    """
    if z1.shape != z2.shape or z1.dim() != 2 or z1.shape[0] < 2:
        raise ReplearnError(f"nt_xent: need two (N, D) batches of the same shape with N >= 2, "
                            f"got {tuple(z1.shape)} and {tuple(z2.shape)}")
    if not temperature > 0:
        raise ReplearnError(f"nt_xent: temperature must be > 0, got {temperature}")
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    sim = z @ z.T / temperature
    sim.fill_diagonal_(float("-inf"))  # an image is not its own partner
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    per = F.cross_entropy(sim, partner, reduction="none")
    return 0.5 * (per[:n] + per[n:])


def cell_views(shift: int = 3, scale: float = 0.2, offset: float = 0.1) -> Augment:
    """Views of cell crops: a random symmetry of the square, brightness gain/offset, and a shift of up to ``shift`` px."""
    cells = CellAugment(flips=True, rot90=True, scale=scale, offset=offset)
    if shift < 0:
        raise ReplearnError(f"cell_views: shift must be >= 0, got {shift}")

    def views(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return random_shift(cells(x, generator), generator, pad=shift)

    return views


class SimCLRObjective(nn.Module):
    """Encoder + projection head trained with NT-Xent on two views of every image.

    Args:
        encoder: maps images (N, C, H, W) to features (N, D).
        feature_dim: D.
        augment: ``f(x, generator) -> view``, called twice per batch.
        proj_dim: size of the projection the loss sees.
        hidden: hidden units of the projection head (Linear-ReLU-Linear).
        temperature: NT-Xent temperature.
        seed: seeds the generator the views are drawn from.

    ``forward(x)`` -> (N,) per-image losses (for :func:`replearn.train.fit` with loss ``"model"``).
    The state of the views' generator is part of ``state_dict()`` (as extra state), so a
    checkpoint holds it and a resumed run draws the same views as an uninterrupted one.
    """

    def __init__(self, encoder: nn.Module, feature_dim: int, augment: Augment, proj_dim: int = 32,
                 hidden: int = 128, temperature: float = 0.2, seed: int = 0) -> None:
        super().__init__()
        if proj_dim < 1 or hidden < 1:
            raise ReplearnError(f"SimCLR: proj_dim and hidden must be positive, got {proj_dim} and {hidden}")
        if not temperature > 0:
            raise ReplearnError(f"SimCLR: temperature must be > 0, got {temperature}")
        self.encoder = encoder
        self.head = nn.Sequential(nn.Linear(feature_dim, hidden), nn.ReLU(), nn.Linear(hidden, proj_dim))
        init_glorot(self.head)
        self.augment = augment
        self.temperature = float(temperature)
        self.generator = torch.Generator().manual_seed(int(seed))

    def get_extra_state(self) -> torch.Tensor:
        """The views' generator state (a uint8 tensor), saved with the weights in ``state_dict()``."""
        return self.generator.get_state()

    def set_extra_state(self, state: torch.Tensor) -> None:
        """Restore the views' generator from :meth:`get_extra_state`'s tensor."""
        self.generator.set_state(state.cpu())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v1, v2 = self.augment(x, self.generator), self.augment(x, self.generator)
        z = self.head(self.encoder(torch.cat([v1, v2])))
        with torch.autocast(x.device.type, enabled=False):
            z1, z2 = z.float().chunk(2)
            return nt_xent(z1, z2, self.temperature)
