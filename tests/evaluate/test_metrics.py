"""Metrics on constructed cases with known answers."""

import numpy as np
import pytest
from sklearn.manifold import trustworthiness as _sk_trust

from replearn.evaluate import classification_metrics, knn_accuracy, mean_ci, reconstruction_errors, trustworthiness


def _clusters(n=60, sep=50.0, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), n // 3)
    centres = np.array([[0, 0], [sep, 0], [0, sep]])
    return centres[labels] + rng.normal(size=(n, 2)), labels


def test_well_separated_clusters_give_perfect_knn():
    ref, ref_y = _clusters(seed=0)
    query, query_y = _clusters(seed=1)
    assert knn_accuracy(ref, ref_y, query, query_y, k=5) == 1.0
    assert knn_accuracy(ref, ref_y, query, query_y, k=1) == 1.0


def test_random_labels_give_chance_knn():
    rng = np.random.default_rng(0)
    ref, query = rng.normal(size=(600, 2)), rng.normal(size=(600, 2))
    acc = knn_accuracy(ref, rng.integers(0, 3, 600), query, rng.integers(0, 3, 600), k=5)
    assert 0.25 < acc < 0.42


def test_trustworthiness_identity_is_one_and_shuffle_is_low():
    rng = np.random.default_rng(0)
    high = rng.normal(size=(200, 5))
    assert trustworthiness(high, high[:, :5]) == pytest.approx(1.0)
    assert trustworthiness(high, rng.permutation(high)[:, :2]) < 0.7


def test_trustworthiness_on_few_points_uses_fewer_neighbours():
    rng = np.random.default_rng(0)
    high = rng.normal(size=(10, 5))  # scikit-learn refuses 5 neighbours on 10 points
    assert trustworthiness(high, high) == pytest.approx(1.0)
    assert trustworthiness(high, high[:, :2]) == pytest.approx(_sk_trust(high, high[:, :2], n_neighbors=4))
    assert np.isnan(trustworthiness(high[:2], high[:2]))


def test_reconstruction_errors_known_values():
    x = np.array([0.0, 1.0, 0.5, 0.5])
    assert reconstruction_errors(x, x)["mse"] == 0.0
    out = reconstruction_errors(np.zeros(4), np.full(4, 0.5))
    assert out["mse"] == pytest.approx(0.25)
    assert out["bce"] == pytest.approx(np.log(2))


def test_classification_metrics_and_confusion():
    m = classification_metrics(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 2]), 3)
    assert m["accuracy"] == 0.75
    assert m["confusion"] == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]
    assert m["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)


def test_mean_ci_matches_t_interval():
    mean, half = mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert half == pytest.approx(4.302653 * 1.0 / np.sqrt(3), rel=1e-5)
    assert mean_ci([0.7]) == (0.7, 0.0)
