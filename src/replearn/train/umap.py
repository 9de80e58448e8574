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

:class:`UMAPObjective` returns per-edge losses, so it trains through
:func:`replearn.train.fit` with loss ``"model"``. As in UMAP, edges are drawn
from the whole graph with probability proportional to their strength
(:class:`EdgeSampler`), so one UMAP epoch is ``sum of strengths`` edge samples;
the samples ``fit`` batches only set how many edges a step draws. Both ends of
every edge are encoded, and every head is repelled from :data:`NEGATIVE_DRAWS` of
the batch's other codes, weighted so that the expected repulsion per edge is
that of ``negative_rate`` negatives (more negatives than UMAP's 5, and cheap:
their codes are computed anyway).
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
KINDS = ("umap", "tsne")
"""The neighbour-embedding losses :class:`UMAPObjective` can train with."""
NEGATIVE_DRAWS = 20
"""Negatives drawn per edge from the batch's codes; they share the weight ``negative_rate`` (less variance than
UMAP's ``negative_rate`` draws of weight 1, for about 2 ms a step of 1000 edges; all 2B codes cost 60 times more)."""
TSNE_NEGATIVES = 500
"""Negatives drawn per edge from the batch's codes by the InfoNC-t-SNE loss. More negatives bring it closer to
t-SNE's loss (Damrich et al. 2023): on MNIST, 20 gave trustworthiness (k = 10) 0.934-0.942, 500 gave 0.951
(docs/autoencoder.md), for about 9 ms a step of 1000 edges."""


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


def umap_loss(head: torch.Tensor, tail: torch.Tensor, negatives: torch.Tensor, a: float, b: float,
              negative_rate: float) -> torch.Tensor:
    """UMAP cross-entropy per edge: codes ``head`` (B, D), their neighbours ``tail`` (B, D) and ``negatives``
    (B, M, D) -> (B,): the attraction of each edge plus ``negative_rate`` times the mean repulsion of its M negatives
    (in expectation the repulsion of ``negative_rate`` random negatives, as in UMAP)."""
    pos = attraction((head - tail).pow(2).sum(-1), a, b)
    neg = repulsion((head[:, None, :] - negatives).pow(2).sum(-1), a, b).mean(-1)
    return pos + float(negative_rate) * neg


def tsne_loss(head: torch.Tensor, tail: torch.Tensor, codes: torch.Tensor, negatives: torch.Tensor) -> torch.Tensor:
    """InfoNC-t-SNE per edge (Damrich, Boehm, Hamprecht & Kobak 2023): codes ``head`` (B, D), ``tail`` (B, D), the
    candidate negatives' ``codes`` (K, D) and each edge's ``negatives`` (B, M), indices into ``codes`` -> (B,):
    ``-log(q_ht / (q_ht + sum_m q_hm))`` with t-SNE's Cauchy kernel ``q = 1 / (1 + d^2)``. A contrastive estimate of
    t-SNE's KL loss from the sampled edges and negatives: each edge must be more similar than the head's random
    pairs, rather than similar in absolute terms (UMAP). The (B, K) distances come from one matrix product, then
    each edge's M are picked (cheaper than gathering B x M codes)."""
    pos = -torch.log1p((head - tail).pow(2).sum(-1))  # log q of the edge
    d2 = head.pow(2).sum(1, keepdim=True) + codes.pow(2).sum(1)[None] - 2 * head @ codes.T  # (B, K)
    neg = -torch.log1p(torch.gather(d2, 1, negatives).clamp_min(0))  # (B, M)
    return torch.logsumexp(torch.cat([pos[:, None], neg], dim=1), dim=1) - pos


class EdgeSampler:
    """Draws graph edges (head, tail) with probability proportional to their strength, as UMAP samples them.

    Args:
        graph: symmetric (N, N) sparse matrix of strengths; every row must have an edge.

    Attributes:
        n: vertices; total: sum of all strengths (both directions), the edge samples of one UMAP epoch.
    """

    def __init__(self, graph: sp.spmatrix) -> None:
        g = sp.coo_matrix(graph)
        if g.shape[0] != g.shape[1]:
            raise ReplearnError(f"UMAP: the neighbour graph must be square, got {g.shape}")
        counts = np.bincount(g.row[g.data > 0], minlength=g.shape[0])
        if (counts == 0).any():
            raise ReplearnError(f"UMAP: image {int(np.argmin(counts))} has no neighbour in the graph")
        keep = g.data > 0
        self.n = int(g.shape[0])
        self.heads = torch.from_numpy(g.row[keep].astype(np.int64))
        self.tails = torch.from_numpy(g.col[keep].astype(np.int64))
        self.cum = torch.from_numpy(np.cumsum(g.data[keep], dtype=np.float64))
        self.total = float(self.cum[-1])

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` edges drawn with replacement: (heads (n,), tails (n,)) int64 vertex indices (CPU)."""
        u = torch.rand(int(n), generator=generator, dtype=torch.float64) * self.total
        pos = torch.searchsorted(self.cum, u, right=True).clamp_max(len(self.cum) - 1)
        return self.heads[pos], self.tails[pos]


class UMAPObjective(nn.Module):
    """An encoder (and optionally a decoder) trained with the UMAP cross-entropy on a neighbour graph.

    Args:
        encoder: the encoder's inputs (N, ...) -> codes (N, D).
        inputs: what the encoder takes for each graph vertex (N, ...): images (uint8, or float in [0, 1]),
            or features precomputed by a frozen first layer (float).
        graph: the vertices' fuzzy neighbour graph (N, N) (see :func:`replearn.train.neighbour_graph.neighbour_graph`).
        decoder: codes (N, D) -> images (N, C, H, W) in [0, 1] (a sigmoid output), or None.
        images: the reconstruction targets (N, C, H, W), uint8 or float in [0, 1] (with ``decoder``; default ``inputs``).
        recon_weight: weight of the per-image reconstruction loss of the head images (needs ``decoder``);
            0 with a decoder: the decoder learns to invert the codes without shaping them (codes detached).
        recon_loss: ``"bce"`` or ``"mse"`` per pixel, averaged per image.
        negative_rate: the repulsion per edge, in negatives' worth (:data:`NEGATIVE_DRAWS` of the batch's codes
            share it).
        min_dist: UMAP's ``min_dist`` (how tightly codes may pack), giving ``a`` and ``b``.
        seed: seeds the generator of edges and negatives.
        kind: ``"umap"``: UMAP's cross-entropy (:func:`umap_loss`); ``"tsne"``: InfoNC-t-SNE (:func:`tsne_loss`;
            ``negative_rate`` and ``min_dist`` unused).

    ``forward(idx)``: (B, 1) samples as :func:`replearn.train.fit` batches them; only B counts: B edges are
    drawn from the whole graph -> (B,) losses. Use ``sampler.total`` samples per epoch for UMAP's epoch.
    """

    def __init__(self, encoder: nn.Module, inputs: torch.Tensor, graph: sp.spmatrix, decoder: nn.Module | None = None,
                 images: torch.Tensor | None = None, recon_weight: float = 0.0, recon_loss: str = "bce",
                 negative_rate: float = 5.0, min_dist: float = 0.1, seed: int = 0, kind: str = "umap") -> None:
        super().__init__()
        images = inputs if images is None else images
        if inputs.shape[0] != graph.shape[0] or (decoder is not None and (images.dim() != 4 or len(images) != len(inputs))):
            raise ReplearnError(f"UMAP: need inputs (N, ...) and images (N, C, H, W) for a graph of {graph.shape[0]} "
                                f"vertices, got {tuple(inputs.shape)} and {tuple(images.shape)}")
        if not negative_rate > 0:
            raise ReplearnError(f"UMAP: negative_rate must be positive, got {negative_rate}")
        if recon_weight < 0 or (recon_weight > 0 and decoder is None):
            raise ReplearnError(f"UMAP: recon_weight must be >= 0 and needs a decoder, got {recon_weight}")
        if recon_loss not in ("bce", "mse"):
            raise ReplearnError(f"UMAP: recon_loss must be 'bce' or 'mse', got {recon_loss!r}")
        if kind not in KINDS:
            raise ReplearnError(f"UMAP: kind must be one of {', '.join(KINDS)}, got {kind!r}")
        self.kind = kind
        self.encoder = encoder
        self.decoder = decoder
        self.register_buffer("inputs", inputs, persistent=False)
        self.register_buffer("images", images, persistent=False)
        self.sampler = EdgeSampler(graph)
        self.recon_weight = float(recon_weight)
        self.recon_loss = recon_loss
        self.negative_rate = float(negative_rate)
        self.a, self.b = find_ab(min_dist)
        self.generator = torch.Generator().manual_seed(int(seed))

    def get_extra_state(self) -> torch.Tensor:
        """The edge generator's state, saved in ``state_dict()`` so a resumed fit draws the same."""
        return self.generator.get_state()

    def set_extra_state(self, state: torch.Tensor) -> None:
        """Restore the generator from :meth:`get_extra_state`'s tensor."""
        self.generator.set_state(state.cpu())

    @staticmethod
    def _float(x: torch.Tensor) -> torch.Tensor:
        return x.float() / 255.0 if x.dtype == torch.uint8 else x

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        n = max(len(idx), 2)
        heads, tails = self.sampler.sample(n, self.generator)
        both = torch.cat([heads, tails]).to(self.inputs.device)
        codes = self.encoder(self._float(self.inputs[both]))
        recon = None
        if self.decoder is not None:
            z = codes[:n] if self.recon_weight > 0 else codes[:n].detach()
            recon = self.decoder(z)
        with torch.autocast(codes.device.type, enabled=False):
            c = codes.float()
            # negatives, per edge: any of the batch's 2n codes but the head's own
            draws = NEGATIVE_DRAWS if self.kind == "umap" else TSNE_NEGATIVES
            offset = torch.randint(1, 2 * n, (n, draws), generator=self.generator)
            neg = ((torch.arange(n)[:, None] + offset) % (2 * n)).to(codes.device)
            loss = (umap_loss(c[:n], c[n:], c[neg], self.a, self.b, self.negative_rate) if self.kind == "umap"
                    else tsne_loss(c[:n], c[n:], c, neg))
            if recon is not None:
                r, t = recon.float().clamp(0, 1), self._float(self.images[both[:n]]).float()
                per_pixel = F.binary_cross_entropy(r, t, reduction="none") if self.recon_loss == "bce" else (r - t) ** 2
                per_image = per_pixel.flatten(1).mean(1)
                loss = loss + (self.recon_weight if self.recon_weight > 0 else 1.0) * per_image
            return loss[: len(idx)]
