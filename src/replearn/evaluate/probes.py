"""Simple classifiers ("probes") on encodings: scikit-learn Pipelines behind one factory.

The assignment's task (c) trains simpler classifiers on the codes of the
labelled images. Every probe is a ``Pipeline`` that standardises its input
first (``StandardScaler``), so the codes' scale does not matter, then applies
one classical classifier::

    probe = create_probe("rbf_svm", seed=0)
    probe.fit(codes[train_idx], labels[train_idx]).score(codes[val_idx], labels[val_idx])

Registered probes (:data:`PROBES`): ``logreg`` (multinomial logistic
regression), ``linear_svm`` and ``rbf_svm`` (support vector machines),
``knn`` (k nearest neighbours) and ``mlp`` (one hidden layer); outside the
registry, :func:`majority` always answers the largest class of the training set
(the floor every model must beat).

:func:`fit_predict_views` trains a probe on the codes of the crops as given (or, with
``d4_train``, on the codes of all 8 symmetric versions as extra training copies) and predicts by
averaging its class scores over the codes of the 8 symmetric versions of each crop (test-time
augmentation, :mod:`replearn.evaluate.tta`). They accept a
few keyword overrides (``C``, ``k``, ``hidden``), listed in :data:`PROBE_PARAMS`.
"""

from __future__ import annotations

import difflib
from typing import Any, Callable

import numpy as np
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from replearn.errors import ReplearnError


def _pipe(clf: Any) -> Pipeline:
    return Pipeline([("scale", StandardScaler()), ("clf", clf)])


def logreg(seed: int = 0, C: float = 0.1) -> Pipeline:
    """Standardise, then multinomial logistic regression (L2, strength ``1/C``)."""
    return _pipe(LogisticRegression(C=C, max_iter=1000, random_state=seed))


def linear_svm(seed: int = 0, C: float = 0.1) -> Pipeline:
    """Standardise, then a linear support vector machine (one-vs-one)."""
    return _pipe(SVC(kernel="linear", C=C, random_state=seed))


def rbf_svm(seed: int = 0, C: float = 1.0) -> Pipeline:
    """Standardise, then an RBF-kernel support vector machine (``gamma="scale"``)."""
    return _pipe(SVC(kernel="rbf", C=C, gamma="scale", random_state=seed))


class _KNeighbors(KNeighborsClassifier):
    """scikit-learn's k-NN classifier that refuses, in one line, fewer training examples than neighbours."""

    def fit(self, X: Any, y: Any) -> "_KNeighbors":
        if len(X) < self.n_neighbors:
            raise ReplearnError(f"k-NN probe: k = {self.n_neighbors} neighbours, but the training split has only "
                                f"{len(X)} examples; lower the probe's k or use more labelled examples")
        return super().fit(X, y)


def knn(seed: int = 0, k: int = 5) -> Pipeline:
    """Standardise, then k nearest neighbours (Euclidean, uniform votes). ``seed`` is unused."""
    return _pipe(_KNeighbors(n_neighbors=k))


def mlp(seed: int = 0, hidden: int = 64) -> Pipeline:
    """Standardise, then a small MLP (one ReLU hidden layer, L-BFGS, weight decay 1e-2)."""
    return _pipe(MLPClassifier(hidden_layer_sizes=(hidden,), solver="lbfgs", alpha=1e-2, max_iter=300,
                               random_state=seed))


def majority(seed: int = 0) -> DummyClassifier:
    """Always the most frequent class of the training labels (``seed`` is unused)."""
    return DummyClassifier(strategy="most_frequent")


PROBES: dict[str, Callable[..., Any]] = {
    "logreg": logreg,
    "linear_svm": linear_svm,
    "rbf_svm": rbf_svm,
    "knn": knn,
    "mlp": mlp,
}
"""Probe name -> factory ``f(seed=0, **params) -> Pipeline``."""

PROBE_PARAMS: dict[str, tuple[str, ...]] = {
    "logreg": ("C",),
    "linear_svm": ("C",),
    "rbf_svm": ("C",),
    "knn": ("k",),
    "mlp": ("hidden",),
}
"""The keyword overrides each probe accepts."""

PROBE_TITLES: dict[str, str] = {
    "logreg": "logistic regression",
    "linear_svm": "linear SVM",
    "rbf_svm": "RBF SVM",
    "knn": "k-NN",
    "mlp": "small MLP",
}
"""Human-readable names for reports."""


def list_probes() -> list[str]:
    """Names of the registered probes."""
    return list(PROBES)


def check_probe_name(name: str, source: str = "probe") -> str:
    """Return ``name`` if it is a registered probe; else raise one line with a did-you-mean hint."""
    if name not in PROBES:
        close = difflib.get_close_matches(str(name), list(PROBES), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ReplearnError(f"{source}: unknown probe {name!r}{hint} Available: {', '.join(PROBES)}")
    return name


def create_probe(name: str, seed: int = 0, **params: Any) -> Pipeline:
    """A new, unfitted probe ``name`` (see :data:`PROBES`) with ``seed`` and keyword overrides.

    Raises:
        ReplearnError: an unknown probe name (with a did-you-mean hint) or parameter.
    """
    check_probe_name(name)
    allowed = PROBE_PARAMS[name]
    for key in params:
        if key not in allowed:
            raise ReplearnError(f"probe {name!r}: unknown parameter {key!r}; allowed: {', '.join(allowed)}")
    return PROBES[name](seed=seed, **params)


def class_scores(probe: Any, codes: np.ndarray) -> np.ndarray:
    """A fitted probe's per-class scores (N, K) of ``codes`` (N, D): probabilities, else decision values."""
    if hasattr(probe, "predict_proba"):
        return probe.predict_proba(codes)
    scores = np.asarray(probe.decision_function(codes), dtype=np.float64)
    return np.stack([-scores, scores], axis=1) if scores.ndim == 1 else scores


def fit_predict_views(probe: Any, views: np.ndarray, labels: np.ndarray, train_idx: np.ndarray,
                      val_idx: np.ndarray, d4_train: bool = False, tta: bool = True) -> np.ndarray:
    """Fit ``probe`` on training items, predict the classes of validation items.

    Args:
        probe: an unfitted scikit-learn classifier (see :func:`create_probe`).
        views: (V, N, D) codes of every item, one slice per view; view 0 is the crops as given, the
            others their symmetric versions (V = 8 for the symmetries of the square), or V = 1.
        labels: (N,) classes; train_idx, val_idx: items to fit on and to predict.
        d4_train: fit on the codes of all V views of the training items (V copies of each).
        tta: average the class scores over all V views of each validation item (else view 0 only).

    Returns:
        (len(val_idx),) predicted classes.
    """
    views = np.asarray(views)
    n_views = len(views) if d4_train else 1
    x = views[:n_views, train_idx].reshape(-1, views.shape[-1])
    probe.fit(x, np.tile(np.asarray(labels)[train_idx], n_views))
    use = views[:, val_idx] if tta else views[:1, val_idx]
    scores = np.mean([class_scores(probe, v) for v in use], axis=0)
    return np.asarray(probe.classes_)[scores.argmax(axis=1)]
