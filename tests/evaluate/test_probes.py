"""Probes: every registered probe is a clonable Pipeline that learns a simple problem."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from replearn.errors import ReplearnError
from replearn.evaluate.probes import PROBE_PARAMS, PROBE_TITLES, PROBES, create_probe, list_probes


def blobs(n: int = 150, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three well separated Gaussian clusters in 6-D, on a large, shifted scale."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), n // 3)
    centres = rng.normal(0, 4, size=(3, 6))
    x = centres[y] + rng.normal(0, 1, size=(len(y), 6))
    return 1000.0 * x + 50.0, y


def test_registry_lists_the_five_probes_with_titles_and_params():
    assert list_probes() == ["logreg", "linear_svm", "rbf_svm", "knn", "mlp"]
    assert set(PROBE_TITLES) == set(PROBES) == set(PROBE_PARAMS)


@pytest.mark.parametrize("name", list(PROBES))
def test_probe_is_a_scaled_pipeline_that_learns_separable_clusters(name):
    x, y = blobs()
    xt, yt = blobs(seed=0)[0][::2], y[::2]
    probe = create_probe(name, seed=0)
    assert isinstance(probe, Pipeline) and probe.steps[0][0] == "scale"
    probe.fit(x[1::2], y[1::2])
    assert probe.score(xt, yt) > 0.9
    # sklearn contract: clone gives an unfitted equal-parameter estimator
    twin = clone(probe).fit(x[1::2], y[1::2])
    np.testing.assert_array_equal(twin.predict(xt), probe.predict(xt))


def test_overrides_are_applied():
    assert create_probe("knn", k=3).named_steps["clf"].n_neighbors == 3
    assert create_probe("mlp", seed=4, hidden=8).named_steps["clf"].hidden_layer_sizes == (8,)
    assert create_probe("rbf_svm", C=2.0).named_steps["clf"].C == 2.0


def test_unknown_name_and_parameter_give_one_line():
    with pytest.raises(ReplearnError, match=r"unknown probe 'rbf_svn'; did you mean 'rbf_svm'\?"):
        create_probe("rbf_svn")
    with pytest.raises(ReplearnError, match="unknown parameter 'k'; allowed: C"):
        create_probe("logreg", k=3)


def test_knn_probe_with_more_neighbours_than_examples_is_one_line():
    """A tiny labelled set (4 training crops) and k = 5: one line, not scikit-learn's traceback."""
    probe = create_probe("knn", k=5)
    with pytest.raises(ReplearnError, match="k = 5 neighbours, but the training split has only 4 examples") as err:
        probe.fit(np.arange(8.0).reshape(4, 2), [0, 1, 0, 1])
    assert "\n" not in str(err.value)
    assert create_probe("knn", k=4).fit(np.arange(8.0).reshape(4, 2), [0, 1, 0, 1]).predict([[0.0, 1.0]]).shape == (1,)
