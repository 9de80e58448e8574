"""UMAP's fuzzy neighbour graph: exact neighbours without the point itself, memberships, the symmetric union."""

from __future__ import annotations

import numpy as np
import pytest

from replearn.errors import ReplearnError
from replearn.train.neighbour_graph import fuzzy_memberships, fuzzy_union, knn, nearest_images, neighbour_graph


def clusters(n_per: int = 40, k: int = 3, dim: int = 20, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """SYNTHETIC points: ``k`` well-separated Gaussian clusters in ``dim`` dimensions."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 10, size=(k, dim))
    labels = np.repeat(np.arange(k), n_per)
    return (centres[labels] + rng.normal(0, 1, size=(len(labels), dim))).astype(np.float32), labels


def test_knn_excludes_each_point_itself_even_with_duplicates():
    x, _ = clusters()
    x[1] = x[0]  # an exact duplicate: either may come first in the search
    idx, dist = knn(x, 5)
    assert idx.shape == dist.shape == (len(x), 5)
    assert not (idx == np.arange(len(x))[:, None]).any()
    assert idx[0, 0] == 1 and idx[1, 0] == 0 and dist[0, 0] == dist[1, 0] == 0
    assert (np.diff(dist, axis=1) >= 0).all()  # nearest first


def test_memberships_sum_to_log2_k_and_nearest_is_one():
    _, dist = knn(clusters()[0], 14)
    w = fuzzy_memberships(dist)
    assert w.shape == dist.shape and (w > 0).all() and (w <= 1).all()
    np.testing.assert_allclose(w[:, 0], 1.0)  # distance rho_i: strength exp(0)
    np.testing.assert_allclose(w.sum(axis=1), np.log2(15), rtol=1e-4)


def test_union_is_the_probabilistic_or_of_both_directions():
    idx = np.array([[1], [2], [1]])
    g = fuzzy_union(idx, np.array([[0.5], [0.4], [0.6]], dtype=np.float32)).toarray()
    assert g[0, 1] == g[1, 0] == pytest.approx(0.5)
    assert g[1, 2] == g[2, 1] == pytest.approx(0.4 + 0.6 - 0.24)
    assert g[0, 2] == 0 and np.diag(g).sum() == 0


def test_graph_shape_symmetry_and_clusters():
    x, labels = clusters()
    g = neighbour_graph(x, n_neighbors=10, pca_dims=5)
    assert g.shape == (len(x), len(x)) and g.format == "csr"
    assert abs(g - g.T).max() == 0
    assert g.diagonal().sum() == 0 and g.data.min() > 0 and g.data.max() <= 1
    rows, cols = g.nonzero()
    assert (np.diff(g.indptr) >= 9).all()  # every point keeps its 9 neighbours (and gains those that chose it)
    assert (labels[rows] == labels[cols]).mean() == 1.0  # far-apart clusters: no edge between them


def test_images_are_flattened_and_bad_k_is_one_line():
    x = np.random.default_rng(0).integers(0, 255, size=(30, 6, 6)).astype(np.uint8)
    assert neighbour_graph(x, n_neighbors=5, pca_dims=None).shape == (30, 30)
    with pytest.raises(ReplearnError, match="n_neighbors must be between 1 and 29"):
        neighbour_graph(x, n_neighbors=31)


def test_nearest_images_stay_in_their_cluster_in_pca_space():
    x, labels = clusters()
    images = x.reshape(len(x), 1, 2, -1)  # as images: flattened again inside
    idx, dist = nearest_images(images, 4, pca_dims=3)
    assert idx.shape == dist.shape == (len(x), 4) and idx.dtype == np.int64
    assert (idx != np.arange(len(x))[:, None]).all() and (np.diff(dist, axis=1) >= 0).all()
    assert (labels[idx] == labels[:, None]).all()
