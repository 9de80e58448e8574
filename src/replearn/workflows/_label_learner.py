"""Which crop to label next: a classifier on the crops' features, retrained in the background.

Features: the codes of a trained encoder (``--model``: the assignment's SimCLR encoder, an autoencoder),
or without one the first principal components of the pixels. The classifier is the logistic-regression
probe of :mod:`replearn.evaluate.probes`; its accuracy is estimated by stratified k-fold cross-validation
on the labels so far (k = min(5, smallest class count)). The active rule is margin sampling: the
unlabelled crop whose two most probable classes are closest. Until two classes have labels, and under
``rule="random"``, the next crop is drawn at random (seeded).
"""

from __future__ import annotations

import threading
import warnings
from typing import Any

import numpy as np

RULES = ("margin", "random")
PCA_DIM = 32


def pixel_features(pool: np.ndarray, others: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """PCA (fitted on the pool) of crops as pixel rows: pool (M, H, W) -> (M, k), others (P, H, W) -> (P, k)."""
    from sklearn.decomposition import PCA

    def rows(x: np.ndarray) -> np.ndarray:
        return x.reshape(len(x), -1).astype(np.float32) / (255.0 if x.dtype == np.uint8 else 1.0)

    k = min(PCA_DIM, len(pool), int(np.prod(pool.shape[1:])))
    pca = PCA(n_components=k, random_state=seed).fit(rows(pool))
    return pca.transform(rows(pool)), pca.transform(rows(others)) if len(others) else np.zeros((0, k))


def fit_probe(x: np.ndarray, y: np.ndarray, seed: int) -> Any | None:
    """The logistic-regression probe fitted on features (N, D) and labels (N,); None with fewer than 2 classes."""
    from replearn.evaluate.probes import create_probe

    if len(np.unique(y)) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_probe("logreg", seed=seed).fit(x, y)


def cv_accuracy(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[float, int] | None:
    """(mean accuracy, folds) of stratified k-fold CV of the probe; None while a class has fewer than 2 labels."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    from replearn.evaluate.probes import create_probe

    _, counts = np.unique(y, return_counts=True)
    if len(counts) < 2 or counts.min() < 2:
        return None
    folds = int(min(5, counts.min()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = cross_val_score(create_probe("logreg", seed=seed), x, y,
                                 cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
    return float(scores.mean()), folds


def pick(model: Any | None, features: np.ndarray, candidates: np.ndarray, rule: str,
         rng: np.random.Generator) -> int:
    """The next pool index among ``candidates`` (C,): smallest top-2 margin of ``model`` on ``features`` (M, D)."""
    if rule == "random" or model is None:
        return int(rng.choice(candidates))
    probs = model.predict_proba(features[candidates])
    top = np.sort(probs, axis=1)
    margin = top[:, -1] - top[:, -2] if top.shape[1] > 1 else -top[:, -1]
    return int(candidates[int(np.argmin(margin))])


class BackgroundLearner:
    """Retrains the probe in a thread whenever :meth:`update` brings new labels; :meth:`next` uses the latest.

    Args:
        features: (M, D) features of the pool crops.
        prior: (P, D) features of crops that came labelled, with ``prior_labels`` (P,).
        rule: ``"margin"`` or ``"random"``.
        seed: seeds the random picks and the probe.
    """

    def __init__(self, features: np.ndarray, prior: np.ndarray, prior_labels: np.ndarray, rule: str = "margin",
                 seed: int = 0) -> None:
        self.features, self.prior, self.prior_labels = features, prior, prior_labels
        self.rule, self.seed, self.rng = rule, seed, np.random.default_rng(seed)
        self.model: Any | None = None
        self.accuracy: tuple[float, int] | None = None
        self.trained_on = -1
        self._wanted: tuple[int, list[int], list[int]] | None = None
        self._cond = threading.Condition()
        self._busy = self._closed = False
        threading.Thread(target=self._loop, daemon=True, name="replearn-label-learner").start()

    def update(self, version: int, order: list[int], stages: list[int]) -> None:
        """Ask for a retrain on pool crops ``order`` with classes ``stages`` (returns at once)."""
        with self._cond:
            self._wanted = (version, list(order), list(stages))
            self._cond.notify_all()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while self._wanted is None and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                version, order, stages = self._wanted
                self._wanted, self._busy = None, True
            x = np.concatenate([self.prior, self.features[order]]) if order else self.prior
            y = np.concatenate([self.prior_labels, np.asarray(stages, dtype=np.int64)])
            try:
                model, accuracy = fit_probe(x, y, self.seed), cv_accuracy(x, y, self.seed)
            except ValueError:  # a degenerate label set: keep the previous model
                model, accuracy = self.model, self.accuracy
            with self._cond:
                self.model, self.accuracy, self.trained_on, self._busy = model, accuracy, version, False
                self._cond.notify_all()

    def close(self) -> None:
        """Stop the training thread (after the retrain under way, if any)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def wait(self, version: int, timeout: float = 30.0) -> bool:
        """Block until the model trained on ``version`` (or later) is in place; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self.trained_on >= version and self._wanted is None
                                       and not self._busy, timeout)

    def next(self, candidates: np.ndarray) -> int | None:
        """The next crop to label among ``candidates``, or None when there is none."""
        if len(candidates) == 0:
            return None
        with self._cond:
            model = self.model
        return pick(model, self.features, candidates, self.rule, self.rng)
