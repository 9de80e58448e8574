"""Few-shot evaluation: k labelled examples per class, the rest as queries, over many random episodes.

An episode draws, for every class, exactly ``k`` support items and (without overlap) the query
items; a simple classifier fitted on the support features labels the queries. Episodes are seeded
by ``(seed, k, episode)``, so each one can be drawn again on its own. Two classifiers
(:data:`FEWSHOT_CLASSIFIERS`): ``ncm``, the nearest class mean of the L2-normalised features
(scikit-learn's ``NearestCentroid``), and ``logreg``, the logistic-regression probe of
:mod:`replearn.evaluate.probes` (standardised features)::

    acc = episode_accuracies(features, labels, classes=[5, 6, 7, 8, 9], k=5, n_episodes=100)
    mean, half_width = mean_ci(acc["ncm"])
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
from sklearn.neighbors import NearestCentroid
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import Normalizer

from replearn.errors import ReplearnError
from replearn.evaluate.probes import create_probe

FEWSHOT_CLASSIFIERS = ("ncm", "logreg")
"""Classifiers of an episode: nearest class mean (L2-normalised features) and logistic regression."""

CLASSIFIER_TITLES = {"ncm": "nearest class mean", "logreg": "logistic regression"}


def fewshot_classifier(name: str, seed: int = 0) -> Pipeline:
    """A new, unfitted episode classifier ``name`` (see :data:`FEWSHOT_CLASSIFIERS`)."""
    if name == "ncm":
        return Pipeline([("l2", Normalizer()), ("clf", NearestCentroid())])
    if name == "logreg":
        return create_probe("logreg", seed=seed)
    raise ReplearnError(f"few-shot classifier {name!r} is unknown; choose from {', '.join(FEWSHOT_CLASSIFIERS)}")


def sample_episode(labels: np.ndarray, classes: Sequence[int], k: int, n_query: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices into ``labels`` (N,): exactly ``k`` support items per class and, disjoint from them,
    ``n_query`` query items per class (0: all the others of the class).

    Returns (support (k * classes,), query) int64 index arrays, each grouped by class in ``classes`` order.

    Raises:
        ReplearnError: a class with too few items for ``k`` support and at least one query (named).
    """
    if k < 1:
        raise ReplearnError(f"few-shot episodes need k >= 1 labelled examples per class, got {k}")
    labels = np.asarray(labels)
    support, query = [], []
    for c in classes:
        idx = np.flatnonzero(labels == c)
        need = k + max(n_query, 1)
        if len(idx) < need:
            raise ReplearnError(f"class {c} has {len(idx)} items; a {k}-shot episode needs at least {need} "
                                f"({k} labelled + {max(n_query, 1)} queries)")
        order = rng.permutation(idx)
        support.append(order[:k])
        query.append(order[k:] if n_query == 0 else order[k:k + n_query])
    return np.concatenate(support).astype(np.int64), np.concatenate(query).astype(np.int64)


def episode_rng(seed: int, k: int, episode: int) -> np.random.Generator:
    """The generator of episode ``episode`` of the ``k``-shot runs under ``seed``."""
    return np.random.default_rng([int(seed), int(k), int(episode)])


def episode_accuracies(
    features: np.ndarray,
    labels: np.ndarray,
    classes: Sequence[int],
    k: int,
    n_episodes: int = 100,
    n_query: int = 0,
    seed: int = 0,
    classifiers: Sequence[str] = FEWSHOT_CLASSIFIERS,
) -> dict[str, np.ndarray]:
    """Query accuracy of each classifier in each of ``n_episodes`` ``k``-shot episodes.

    Args:
        features: (N, D) features of the items.
        labels: (N,) their classes.
        classes: the classes of the episodes (items of other classes are never drawn).

    Returns:
        classifier name -> float64 (n_episodes,) accuracies; all classifiers see the same episodes.
    """
    features = np.asarray(features, dtype=np.float64).reshape(len(features), -1)
    labels = np.asarray(labels)
    out = {name: np.empty(n_episodes) for name in classifiers}
    for e in range(n_episodes):
        support, query = sample_episode(labels, classes, k, n_query, episode_rng(seed, k, e))
        for name in classifiers:
            with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # NearestCentroid's spread, unused, at k = 1
                clf = fewshot_classifier(name, seed).fit(features[support], labels[support])
            out[name][e] = float(np.mean(clf.predict(features[query]) == labels[query]))
    return out
