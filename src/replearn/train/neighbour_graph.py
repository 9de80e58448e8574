"""The fuzzy k-nearest-neighbour graph of UMAP (McInnes, Healy & Melville 2018, section 3.1).

:func:`knn` finds each point's exact nearest neighbours with scikit-learn's
``NearestNeighbors``; :func:`fuzzy_memberships` turns their distances into
membership strengths ``exp(-(d - rho_i) / sigma_i)`` (``rho_i``: distance to the
nearest neighbour, ``sigma_i`` chosen so that the strengths of point i sum to
``log2(k)``); :func:`fuzzy_union` symmetrises them, ``A + A.T - A * A.T``.
:func:`neighbour_graph` does all three on images or feature rows; :func:`nearest_images` gives the
neighbours alone (e.g. for :class:`replearn.train.semisup.FixMatchObjective`'s neighbour views).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from replearn.errors import ReplearnError

SIGMA_ITERATIONS = 64
"""Bisection steps for each point's bandwidth (UMAP's ``smooth_knn_dist`` uses 64 too)."""
MIN_K_DIST_SCALE = 1e-3
"""A bandwidth is at least this fraction of the point's mean neighbour distance (as in UMAP)."""


def knn(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact Euclidean ``k`` nearest neighbours of every row of ``x`` (N, D) among the others.

    Returns (indices (N, k) int64, distances (N, k) float32), nearest first, the point itself excluded.
    """
    from sklearn.neighbors import NearestNeighbors

    n = len(x)
    if not 1 <= k < n:
        raise ReplearnError(f"neighbour graph: n_neighbors must be between 1 and {n - 1} for {n} points, got {k}")
    dist, idx = NearestNeighbors(n_neighbors=k + 1, algorithm="brute").fit(x).kneighbors(x)
    # Drop each point itself; with exact duplicates it may not be in column 0, so drop by index.
    not_self = idx != np.arange(n)[:, None]
    keep = not_self & (np.cumsum(not_self, axis=1) <= k)
    return idx[keep].reshape(n, k).astype(np.int64), dist[keep].reshape(n, k).astype(np.float32)


def fuzzy_memberships(dist: np.ndarray) -> np.ndarray:
    """Membership strengths (N, k) in (0, 1] of each point's neighbours from their distances (N, k), nearest first.

    ``w_ij = exp(-max(0, d_ij - rho_i) / sigma_i)`` with ``rho_i`` the smallest positive distance and
    ``sigma_i`` found by bisection so that ``sum_j w_ij = log2(k + 1)`` (UMAP counts the point itself in k).
    """
    d = dist.astype(np.float64)
    n, k = d.shape
    target = np.log2(k + 1)
    positive = np.where(d > 0, d, np.inf)
    rho = positive.min(axis=1)
    rho[~np.isfinite(rho)] = 0.0
    gap = np.maximum(d - rho[:, None], 0.0)
    lo, hi = np.zeros(n), np.full(n, np.inf)
    sigma = np.ones(n)
    for _ in range(SIGMA_ITERATIONS):
        total = np.exp(-gap / sigma[:, None]).sum(axis=1)
        too_big = total > target  # sum falls as sigma falls
        hi = np.where(too_big, sigma, hi)
        lo = np.where(too_big, lo, sigma)
        sigma = np.where(np.isfinite(hi), (lo + hi) / 2, sigma * 2)
    sigma = np.maximum(sigma, MIN_K_DIST_SCALE * d.mean(axis=1))
    sigma[sigma == 0] = 1.0  # all distances 0: every neighbour gets strength 1
    return np.exp(-gap / sigma[:, None]).astype(np.float32)


def fuzzy_union(idx: np.ndarray, weights: np.ndarray) -> sp.csr_matrix:
    """The symmetric graph (N, N) from directed strengths ``weights`` (N, k) to neighbours ``idx`` (N, k).

    Probabilistic t-conorm of the two directions: ``A + A.T - A * A.T`` (A: the directed graph).
    """
    n, k = idx.shape
    a = sp.csr_matrix((weights.ravel().astype(np.float64), (np.repeat(np.arange(n), k), idx.ravel())), shape=(n, n))
    a.sum_duplicates()
    g = (a + a.T - a.multiply(a.T)).tocsr()
    g.eliminate_zeros()
    g.sort_indices()
    return g.astype(np.float32)


def nearest_images(x: np.ndarray, k: int, pca_dims: int | None = 50, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """:func:`knn` of images or rows ``x`` (N, ...) (flattened): indices (N, k) int64 and distances (N, k).

    With ``pca_dims`` the neighbours are searched in that many principal components of the rows (exact search,
    much faster than in 784 pixels; None: in the rows themselves).
    """
    rows = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
    if pca_dims is not None and pca_dims < min(rows.shape):
        from sklearn.decomposition import PCA

        rows = PCA(n_components=int(pca_dims), random_state=seed).fit_transform(rows).astype(np.float32)
    return knn(rows, int(k))


def neighbour_graph(x: np.ndarray, n_neighbors: int = 15, pca_dims: int | None = 50, seed: int = 0) -> sp.csr_matrix:
    """UMAP's fuzzy neighbour graph of ``x`` (N, ...) (images are flattened): a symmetric CSR matrix (N, N).

    ``n_neighbors`` counts the point itself, as UMAP does (15: 14 neighbours); ``pca_dims`` as in
    :func:`nearest_images`.
    """
    idx, dist = nearest_images(x, int(n_neighbors) - 1, pca_dims, seed)
    return fuzzy_union(idx, fuzzy_memberships(dist))
