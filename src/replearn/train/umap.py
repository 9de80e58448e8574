"""Parametric UMAP: a network learns low-dimensional codes that keep the data's neighbourhoods.

The objective of UMAP (McInnes, Healy & Melville 2018) and of Parametric UMAP
(Sainburg, McInnes & Gentner 2021), written for PyTorch. The inputs' fuzzy
neighbour graph (:mod:`replearn.train.neighbour_graph`) says which images are
neighbours and how strongly; codes at distance d are neighbours with
probability ``q(d) = 1 / (1 + a d^(2b))``. The loss is the cross-entropy between
the two: for every sampled graph edge an attraction ``-log q(d_ij)``, and for
``negative_rate`` random other images a repulsion ``-log(1 - q(d))``
(negative sampling). Optionally the codes also feed the autoencoder's decoder
and a reconstruction loss is added (Parametric UMAP's "UMAP + autoencoder").

:class:`UMAPObjective` returns per-image losses, so it trains through
:func:`replearn.train.fit` with loss ``"model"``: the samples ``fit`` batches are
image indices (N, 1); for each index in a batch, one graph neighbour is drawn
(with probability proportional to the edge strength), both images are
encoded, and the negatives are drawn from the batch's other codes (as
Parametric UMAP does), so an epoch costs two encoder passes per image.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from replearn.errors import ReplearnError

MIN_D2 = 1e-10
"""Squared distances are clipped at this value: ``d2^b`` has an infinite slope at 0 (b < 1)."""
EPS = 1e-4
"""``1 - q`` is clipped at this value in the repulsion (as UMAP does), so coinciding codes cost at most -log(EPS)."""


def find_ab(min_dist: float = 0.1, spread: float = 1.0) -> tuple[float, float]:
    """UMAP's curve parameters: ``1 / (1 + a d^(2b))`` fitted to 1 below ``min_dist``, ``exp(-(d - min_dist) / spread)``
    above (least squares on [0, 3 spread]); ``min_dist=0.1, spread=1`` gives about (1.577, 0.895)."""
    from scipy.optimize import curve_fit

    if not 0 <= min_dist < spread:
        raise ReplearnError(f"UMAP: min_dist must be in [0, spread={spread}), got {min_dist}")
    d = np.linspace(0, 3 * spread, 300)
    target = np.where(d < min_dist, 1.0, np.exp(-(d - min_dist) / spread))
    (a, b), _ = curve_fit(lambda d, a, b: 1.0 / (1.0 + a * d ** (2 * b)), d, target)
    return float(a), float(b)


def attraction(d2: torch.Tensor, a: float, b: float) -> torch.Tensor:
    """``-log q`` for squared code distances ``d2`` (any shape): ``log(1 + a d2^b)``."""
    return torch.log1p(a * d2.clamp_min(MIN_D2).pow(b))


def repulsion(d2: torch.Tensor, a: float, b: float) -> torch.Tensor:
    """``-log(1 - q)`` for squared code distances ``d2`` (any shape), ``1 - q`` clipped at :data:`EPS`."""
    q = 1.0 / (1.0 + a * d2.clamp_min(MIN_D2).pow(b))
    return -torch.log((1.0 - q).clamp_min(EPS))


def umap_loss(head: torch.Tensor, tail: torch.Tensor, negatives: torch.Tensor, a: float, b: float) -> torch.Tensor:
    """UMAP cross-entropy per edge: codes ``head`` (B, D), their neighbours ``tail`` (B, D) and ``negatives``
    (B, M, D) -> (B,): the attraction of each edge plus the repulsion of its M negatives."""
    pos = attraction((head - tail).pow(2).sum(-1), a, b)
    neg = repulsion((head[:, None, :] - negatives).pow(2).sum(-1), a, b).sum(-1)
    return pos + neg


class EdgeSampler:
    """Draws one graph neighbour per image, with probability proportional to the edge strength.

    Args:
        graph: symmetric (N, N) sparse matrix of strengths; every row must have an edge.
    """

    def __init__(self, graph: sp.spmatrix) -> None:
        g = sp.csr_matrix(graph)
        if g.shape[0] != g.shape[1]:
            raise ReplearnError(f"UMAP: the neighbour graph must be square, got {g.shape}")
        g.sort_indices()
        counts = np.diff(g.indptr)
        if (counts == 0).any():
            raise ReplearnError(f"UMAP: image {int(np.argmin(counts))} has no neighbour in the graph")
        self.n = int(g.shape[0])
        self.indptr = torch.from_numpy(g.indptr.astype(np.int64))
        self.indices = torch.from_numpy(g.indices.astype(np.int64))
        self.cum = torch.from_numpy(np.cumsum(g.data, dtype=np.float64))

    def sample(self, heads: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Neighbours (B,) int64 of image indices ``heads`` (B,) int64 (CPU)."""
        start, end = self.indptr[heads], self.indptr[heads + 1]
        before = torch.where(start > 0, self.cum[(start - 1).clamp_min(0)], torch.zeros((), dtype=torch.float64))
        total = self.cum[end - 1] - before
        u = torch.rand(len(heads), generator=generator, dtype=torch.float64)
        pos = torch.searchsorted(self.cum, before + u * total, right=True)
        return self.indices[torch.minimum(torch.maximum(pos, start), end - 1)]


class UMAPObjective(nn.Module):
    """An encoder (and optionally a decoder) trained with the UMAP cross-entropy on a neighbour graph.

    Args:
        encoder: images (N, C, H, W) -> codes (N, D).
        images: the training images (N, C, H, W), uint8 or float in [0, 1]; the graph's vertices.
        graph: their fuzzy neighbour graph (N, N) (see :func:`replearn.train.neighbour_graph.neighbour_graph`).
        decoder: codes (N, D) -> images (N, C, H, W) in [0, 1] (a sigmoid output), or None.
        recon_weight: weight of the per-image reconstruction loss of the head images (needs ``decoder``);
            0 with a decoder: the decoder learns to invert the codes without shaping them (codes detached).
        recon_loss: ``"bce"`` or ``"mse"`` per pixel, averaged per image.
        negative_rate: negatives per edge, drawn from the batch's codes.
        min_dist: UMAP's ``min_dist`` (how tightly codes may pack), giving ``a`` and ``b``.
        seed: seeds the generator of neighbours and negatives.

    ``forward(idx)``: image indices (B, 1) (float, as :func:`replearn.train.fit` batches them) -> (B,) losses.
    """

    def __init__(self, encoder: nn.Module, images: torch.Tensor, graph: sp.spmatrix, decoder: nn.Module | None = None,
                 recon_weight: float = 0.0, recon_loss: str = "bce", negative_rate: int = 5, min_dist: float = 0.1,
                 seed: int = 0) -> None:
        super().__init__()
        if images.dim() != 4 or images.shape[0] != graph.shape[0]:
            raise ReplearnError(f"UMAP: need images (N, C, H, W) for a graph of {graph.shape[0]} vertices, "
                                f"got {tuple(images.shape)}")
        if negative_rate < 1:
            raise ReplearnError(f"UMAP: negative_rate must be a positive integer, got {negative_rate}")
        if recon_weight < 0 or (recon_weight > 0 and decoder is None):
            raise ReplearnError(f"UMAP: recon_weight must be >= 0 and needs a decoder, got {recon_weight}")
        self.encoder = encoder
        self.decoder = decoder
        self.register_buffer("images", images, persistent=False)
        self.sampler = EdgeSampler(graph)
        if recon_loss not in ("bce", "mse"):
            raise ReplearnError(f"UMAP: recon_loss must be 'bce' or 'mse', got {recon_loss!r}")
        self.recon_weight = float(recon_weight)
        self.recon_loss = recon_loss
        self.negative_rate = int(negative_rate)
        self.a, self.b = find_ab(min_dist)
        self.generator = torch.Generator().manual_seed(int(seed))

    def get_extra_state(self) -> torch.Tensor:
        """The neighbour/negative generator's state, saved in ``state_dict()`` so a resumed fit draws the same."""
        return self.generator.get_state()

    def set_extra_state(self, state: torch.Tensor) -> None:
        """Restore the generator from :meth:`get_extra_state`'s tensor."""
        self.generator.set_state(state.cpu())

    def _pixels(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.images[idx.to(self.images.device)]
        return x.float() / 255.0 if x.dtype == torch.uint8 else x

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        heads = idx.reshape(-1).round().long().cpu()
        tails = self.sampler.sample(heads, self.generator)
        n = len(heads)
        x_head = self._pixels(heads)
        codes = self.encoder(torch.cat([x_head, self._pixels(tails)]))
        # negatives: any of the batch's 2n codes but the head's own
        offset = torch.randint(1, 2 * n, (n, self.negative_rate), generator=self.generator)
        neg = ((torch.arange(n)[:, None] + offset) % (2 * n)).to(codes.device)
        recon = None
        if self.decoder is not None:
            z = codes[:n] if self.recon_weight > 0 else codes[:n].detach()
            recon = self.decoder(z)
        with torch.autocast(codes.device.type, enabled=False):
            c = codes.float()
            loss = umap_loss(c[:n], c[n:], c[neg], self.a, self.b)
            if recon is not None:
                r, t = recon.float().clamp(0, 1), x_head.float()
                per_pixel = F.binary_cross_entropy(r, t, reduction="none") if self.recon_loss == "bce" else (r - t) ** 2
                per_image = per_pixel.flatten(1).mean(1)
                loss = loss + (self.recon_weight if self.recon_weight > 0 else 1.0) * per_image
            return loss
