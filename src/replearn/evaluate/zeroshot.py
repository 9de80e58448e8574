"""Zero-shot classification: a map from image features to class descriptions (after Socher et al. 2013).

Every class has a description vector (attributes, a word embedding). A ridge regression learns to
map standardised image features to the description of their class, from seen classes only; an
image of any class is then labelled with the class whose description lies nearest to the mapped
features, among the candidate classes (the unseen ones, or all of them in the generalised setting)::

    clf = AttributeClassifier(vectors, alpha=1.0).fit(seen_features, seen_labels)
    clf.predict(unseen_features, candidates=[5, 6, 7, 8, 9])
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from replearn.errors import ReplearnError

METRICS = ("cosine", "euclidean")


class AttributeClassifier(ClassifierMixin, BaseEstimator):
    """Ridge map from features (N, F) to description space (K, D), then the nearest class description.

    Args:
        class_vectors: (K, D) description of every class; row k belongs to class label k.
        alpha: ridge penalty.
        metric: ``"cosine"``: cosine similarity after subtracting the mean description of the classes
            seen in ``fit`` (the map's predictions shrink towards that mean); ``"euclidean"``: distance.

    Attributes:
        map_: the fitted ``Pipeline`` (StandardScaler, Ridge).
        centre_: (D,) the mean description of the seen classes (zeros for ``"euclidean"``).
        seen_: the class labels seen in ``fit``.
    """

    def __init__(self, class_vectors: Any = None, alpha: float = 1.0, metric: str = "cosine") -> None:
        self.class_vectors = class_vectors
        self.alpha = alpha
        self.metric = metric

    def _vectors(self) -> np.ndarray:
        v = np.asarray(self.class_vectors, dtype=np.float64)
        if v.ndim != 2 or not np.isfinite(v).all():
            raise ReplearnError("AttributeClassifier: class_vectors must be a finite (classes, D) array")
        return v

    def fit(self, X: np.ndarray, y: np.ndarray) -> "AttributeClassifier":
        """Learn the map from features ``X`` (N, F) of seen-class items with labels ``y`` (N,) in 0..K-1."""
        if self.metric not in METRICS:
            raise ReplearnError(f"AttributeClassifier: metric {self.metric!r} is unknown; use {' or '.join(METRICS)}")
        vectors = self._vectors()
        y = np.asarray(y, dtype=np.int64)
        if y.min() < 0 or y.max() >= len(vectors):
            raise ReplearnError(f"AttributeClassifier: labels must be in 0..{len(vectors) - 1}")
        self.seen_ = np.unique(y)
        self.map_ = Pipeline([("scale", StandardScaler()), ("ridge", Ridge(alpha=float(self.alpha)))])
        self.map_.fit(np.asarray(X, dtype=np.float64).reshape(len(X), -1), vectors[y])
        self.centre_ = vectors[self.seen_].mean(axis=0) if self.metric == "cosine" else np.zeros(vectors.shape[1])
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """Features (N, F) mapped to the description space: (N, D)."""
        return self.map_.predict(np.asarray(X, dtype=np.float64).reshape(len(X), -1))

    def scores(self, X: np.ndarray, candidates: Sequence[int] | None = None) -> np.ndarray:
        """Similarity (N, C) of each item to each candidate class (higher is nearer)."""
        vectors = self._vectors()
        cand = np.arange(len(vectors)) if candidates is None else np.asarray(candidates, dtype=np.int64)
        mapped, targets = self.transform(X) - self.centre_, vectors[cand] - self.centre_
        if self.metric == "cosine":
            mapped = mapped / np.maximum(np.linalg.norm(mapped, axis=1, keepdims=True), 1e-12)
            targets = targets / np.maximum(np.linalg.norm(targets, axis=1, keepdims=True), 1e-12)
            return mapped @ targets.T
        return -np.linalg.norm(mapped[:, None, :] - targets[None, :, :], axis=2)

    def predict(self, X: np.ndarray, candidates: Sequence[int] | None = None) -> np.ndarray:
        """The nearest candidate class (default: every class) of each item: (N,) labels."""
        cand = np.arange(len(self._vectors())) if candidates is None else np.asarray(candidates, dtype=np.int64)
        return cand[np.argmax(self.scores(X, cand), axis=1)]


def check_distinct(vectors: np.ndarray, classes: Sequence[int], class_names: Sequence[str], where: str) -> None:
    """One line when two of ``classes`` have the same description (they could not be told apart)."""
    for i, a in enumerate(classes):
        for b in classes[i + 1:]:
            if np.allclose(vectors[a], vectors[b]):
                raise ReplearnError(f"{where}: classes {class_names[a]!r} and {class_names[b]!r} have the same "
                                    "description vector; zero-shot cannot tell them apart")
