"""``embed_2d``: PCA, t-SNE and ISOMAP views, also of degenerate points (identical, duplicated)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from replearn.data.limits import DataWarning
from replearn.evaluate import embed_2d


@pytest.mark.parametrize("method", ["pca", "tsne", "isomap"])
@pytest.mark.parametrize("value", [0.0, 0.5])
def test_identical_points_give_one_point_and_a_one_line_warning(method, value):
    """All-identical codes (a collapsed encoder) crashed t-SNE's process; now a single point and a warning."""
    ref, query = np.full((40, 8), value, np.float32), np.full((10, 8), value, np.float32)
    with pytest.warns(DataWarning, match="all 50 points are identical") as caught:
        r2, q2 = embed_2d(method, ref, query, seed=0)
    assert "\n" not in str(caught[0].message)
    assert r2.shape == (40, 2) and q2.shape == (10, 2) and not r2.any() and not q2.any()


def test_points_identical_but_for_a_rounding_error_count_as_identical():
    ref = np.zeros((30, 4), np.float32)
    ref[0, 0] = 1e-30  # t-SNE's PCA initialisation divides by a zero spread here
    with pytest.warns(DataWarning, match="identical"):
        r2, _ = embed_2d("tsne", ref, seed=0)
    assert not r2.any()


@pytest.mark.parametrize("method", ["pca", "tsne", "isomap"])
def test_duplicated_and_nearly_constant_points_are_embedded(method):
    """Two distinct points, 20 times each, and points that differ by 1e-6: finite views; the groups stay apart."""
    rng = np.random.default_rng(0)
    dup = np.repeat(rng.random((2, 8)).astype(np.float32), 20, axis=0)
    tiny = np.zeros((40, 8), np.float32)
    tiny[0, 0] = 1e-6
    for ref in (dup, tiny):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            r2, q2 = embed_2d(method, ref, ref[:5], seed=0)
        assert np.isfinite(r2).all() and np.isfinite(q2).all() and r2.shape == (40, 2)
        assert all(w.category is DataWarning and "identical" not in str(w.message) for w in caught)
    r2, _ = embed_2d(method, dup, seed=0)
    assert len({tuple(np.round(p, 3)) for p in r2}) >= 2


def test_isomap_on_a_graph_in_parts_says_so_in_one_line():
    dup = np.repeat(np.random.default_rng(0).random((2, 8)).astype(np.float32), 20, axis=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        embed_2d("isomap", dup, seed=0)
    assert [w.category for w in caught] == [DataWarning]
    assert "falls into 2 parts" in str(caught[0].message) and "\n" not in str(caught[0].message)


def test_one_point_is_one_point():
    with pytest.warns(DataWarning):
        r2, q2 = embed_2d("tsne", np.ones((1, 3)))
    assert r2.shape == (1, 2) and q2 is None
