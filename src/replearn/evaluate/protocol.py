"""One evaluation protocol: every model scored on the same repeated splits, summarised and compared alike.

A model enters the protocol as a function ``fit_predict(train_idx, val_idx, repeat) -> predictions``:
it trains on the training indices of split ``repeat`` (with its own seed, e.g. ``seed + repeat``) and
predicts the classes of the validation indices. :func:`evaluate_on_splits` runs it on every split and
keeps accuracy, macro-F1 and the confusion matrix of each one; :class:`Scores` summarises them (mean and
95% t-interval over the splits, confusion summed) and :func:`compare` turns two models' scores into a
paired comparison sentence. A CNN trained end to end and a simple classifier on fixed codes go through the
same loop, so their numbers land in one table::

    def fit_predict(tr, va, r):
        return create_probe("logreg", seed=seed + r).fit(codes[tr], labels[tr]).predict(codes[va])

    scores = evaluate_on_splits(fit_predict, labels, splits, n_classes=3)
    scores.summary()["accuracy_mean"]
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from replearn.evaluate.compare import compare_sentence
from replearn.evaluate.metrics import classification_metrics, mean_ci

Split = tuple[np.ndarray, np.ndarray]
FitPredict = Callable[[np.ndarray, np.ndarray, int], Any]
"""``fit_predict(train_idx, val_idx, repeat) -> predicted classes of the validation items``."""


@dataclass
class Scores:
    """Per-split scores of one model: accuracy, macro-F1 and confusion matrix (rows true) of each split."""

    accuracy: list[float] = field(default_factory=list)
    macro_f1: list[float] = field(default_factory=list)
    confusion: list[list[list[int]]] = field(default_factory=list)

    def add(self, metrics: Mapping[str, Any]) -> None:
        """Append one split's :func:`~replearn.evaluate.classification_metrics`."""
        self.accuracy.append(float(metrics["accuracy"]))
        self.macro_f1.append(float(metrics["macro_f1"]))
        self.confusion.append(metrics["confusion"])

    @property
    def runs(self) -> int:
        return len(self.accuracy)

    def rank(self) -> tuple[float, float]:
        """What "best" means: the higher mean accuracy, ties broken by the higher mean macro-F1."""
        return float(np.mean(self.accuracy)), float(np.mean(self.macro_f1))

    def summary(self) -> dict[str, Any]:
        """Mean and 95% CI half-width of accuracy and macro-F1; confusion summed over the splits."""
        acc_m, acc_h = mean_ci(self.accuracy)
        f1_m, f1_h = mean_ci(self.macro_f1)
        return {
            "accuracy": [float(v) for v in self.accuracy], "macro_f1": [float(v) for v in self.macro_f1],
            "accuracy_mean": acc_m, "accuracy_ci": acc_h, "macro_f1_mean": f1_m, "macro_f1_ci": f1_h,
            "confusion": np.sum(np.asarray(self.confusion), axis=0).tolist(), "runs": self.runs,
        }


def evaluate_on_splits(
    fit_predict: FitPredict,
    labels: np.ndarray,
    splits: Sequence[Split],
    n_classes: int,
    after: Callable[[int, dict[str, Any]], None] | None = None,
) -> Scores:
    """Score ``fit_predict`` on every split: train on ``train_idx``, predict ``val_idx``, compare with ``labels``.

    Args:
        fit_predict: ``f(train_idx, val_idx, repeat)`` -> the predicted classes (0..n_classes-1) of ``val_idx``.
        labels: (N,) true classes of all items; the splits index into it.
        splits: (train_idx, val_idx) pairs, the same for every model compared (paired comparisons).
        n_classes: number of classes (size of the confusion matrices).
        after: optional ``f(repeat, metrics)`` called after each split (e.g. a progress bar).

    Returns:
        The :class:`Scores` of the splits, in split order.
    """
    labels = np.asarray(labels)
    scores = Scores()
    for repeat, (train_idx, val_idx) in enumerate(splits):
        predicted = np.asarray(fit_predict(train_idx, val_idx, repeat))
        metrics = classification_metrics(labels[val_idx], predicted, n_classes)
        scores.add(metrics)
        if after is not None:
            after(repeat, metrics)
    return scores


def mean_history(histories: Sequence[Mapping[str, Sequence[float]]]) -> dict[str, list[float]]:
    """Per-epoch mean over the repeats of training histories (every repeat trains the same number of epochs)."""
    return {key: np.mean([h[key] for h in histories], axis=0).tolist() for key in histories[0]}


def best_of(scores: Mapping[str, Scores]) -> str | None:
    """The name with the best :meth:`Scores.rank` (ties: the first listed); None when there is none."""
    if not scores:
        return None
    return max(scores, key=lambda name: scores[name].rank())


@dataclass
class Comparison:
    """A paired comparison of two models' validation accuracy, with its sentence."""

    title: str
    a: str
    b: str
    metric: str
    sentence: str

    def to_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


def compare(title: str, name_a: str, a: Scores, name_b: str, b: Scores) -> Comparison:
    """Compare the validation accuracy of two models scored on the same splits (a paired t-test)."""
    sentence = compare_sentence(name_a, a.accuracy, name_b, b.accuracy, "validation accuracy", paired=True)
    return Comparison(title, name_a, name_b, "accuracy", sentence)
