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

Which splits: :func:`choose_protocol` keeps the course's repeated 300/100 splits for a 400-crop file
and uses repeated stratified K-fold cross-validation (:func:`stratified_folds`, out-of-fold
predictions: every crop scored once per repeat) for any other size. Honest selection:
with ``inner=True`` every model is also trained on :func:`inner_split` of each split's training items
and scored on the rest of them; :func:`nested_selection` picks, split by split, the model with the best
inner score and reports the outer score of that choice, so the outer items never decide the choice.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from scipy import stats
from sklearn.model_selection import StratifiedKFold, StratifiedShuffleSplit

from replearn.errors import ReplearnError
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
    inner_accuracy: list[float] = field(default_factory=list)
    """Accuracy on each split's inner validation items (trained on the inner training items); empty without."""
    predicted: list[np.ndarray] = field(default_factory=list, repr=False)
    """The predicted classes of each split's validation items."""

    def add(self, metrics: Mapping[str, Any], predicted: np.ndarray | None = None) -> None:
        """Append one split's :func:`~replearn.evaluate.classification_metrics` (and its predictions)."""
        self.accuracy.append(float(metrics["accuracy"]))
        self.macro_f1.append(float(metrics["macro_f1"]))
        self.confusion.append(metrics["confusion"])
        if predicted is not None:
            self.predicted.append(np.asarray(predicted))

    @property
    def runs(self) -> int:
        return len(self.accuracy)

    def rank(self) -> tuple[float, float]:
        """What "best" means: the higher mean accuracy, ties broken by the higher mean macro-F1."""
        return float(np.mean(self.accuracy)), float(np.mean(self.macro_f1))

    def summary(self) -> dict[str, Any]:
        """Mean and 95% CI half-width of accuracy and macro-F1; confusion summed over the splits, and the
        recall of each class (its row of the summed confusion); the inner accuracies when there are any."""
        acc_m, acc_h = mean_ci(self.accuracy)
        f1_m, f1_h = mean_ci(self.macro_f1)
        confusion = np.sum(np.asarray(self.confusion), axis=0)
        rows = confusion.sum(axis=1)
        recall = [float(confusion[i, i] / rows[i]) if rows[i] else float("nan") for i in range(len(rows))]
        out = {
            "accuracy": [float(v) for v in self.accuracy], "macro_f1": [float(v) for v in self.macro_f1],
            "accuracy_mean": acc_m, "accuracy_ci": acc_h, "macro_f1_mean": f1_m, "macro_f1_ci": f1_h,
            "confusion": confusion.tolist(), "recall": recall, "runs": self.runs,
        }
        if self.inner_accuracy:
            out["inner_accuracy"] = [float(v) for v in self.inner_accuracy]
        return out


def evaluate_on_splits(
    fit_predict: FitPredict,
    labels: np.ndarray,
    splits: Sequence[Split],
    n_classes: int,
    after: Callable[[int, dict[str, Any]], None] | None = None,
    inner: bool = False,
    seed: int = 0,
) -> Scores:
    """Score ``fit_predict`` on every split: train on ``train_idx``, predict ``val_idx``, compare with ``labels``.

    Args:
        fit_predict: ``f(train_idx, val_idx, repeat)`` -> the predicted classes (0..n_classes-1) of ``val_idx``.
        labels: (N,) true classes of all items; the splits index into it.
        splits: (train_idx, val_idx) pairs, the same for every model compared (paired comparisons).
        n_classes: number of classes (size of the confusion matrices).
        after: optional ``f(repeat, metrics)`` called after each split (e.g. a progress bar).
        inner: also train on :func:`inner_split` ``(train_idx, seed + repeat)`` and score on its held-out
            part (``Scores.inner_accuracy``), for :func:`nested_selection`; the validation items are never used.
        seed: the inner splits' seed.

    Returns:
        The :class:`Scores` of the splits, in split order.
    """
    labels = np.asarray(labels)
    scores = Scores()
    for repeat, (train_idx, val_idx) in enumerate(splits):
        if inner:
            in_tr, in_va = inner_split(labels, train_idx, seed + repeat)
            guess = np.asarray(fit_predict(in_tr, in_va, repeat))
            scores.inner_accuracy.append(float(np.mean(guess == labels[in_va])))
        predicted = np.asarray(fit_predict(train_idx, val_idx, repeat))
        metrics = classification_metrics(labels[val_idx], predicted, n_classes)
        scores.add(metrics, predicted)
        if after is not None:
            after(repeat, metrics)
    return scores


def planned_fits(labels: np.ndarray, splits: Sequence[Split], inner: bool = False,
                 seed: int = 0) -> list[tuple[int, np.ndarray, np.ndarray, bool]]:
    """The fits :func:`evaluate_on_splits` asks ``fit_predict`` for, in its order: ``(repeat, train_idx, val_idx,
    is_inner)``; for computing them ahead, e.g. in parallel (:func:`replearn.utils.parallel.run_units`)."""
    out = []
    for repeat, (train_idx, val_idx) in enumerate(splits):
        if inner:
            out.append((repeat, *inner_split(np.asarray(labels), train_idx, seed + repeat), True))
        out.append((repeat, np.asarray(train_idx), np.asarray(val_idx), False))
    return out


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


def shown_better(a: Scores, b: Scores, alpha: float = 0.05) -> bool:
    """True when ``a`` has the higher mean accuracy and a paired t-test over the splits gives p < ``alpha``."""
    x, y = np.asarray(a.accuracy, float), np.asarray(b.accuracy, float)
    if len(x) != len(y) or len(x) < 2 or x.mean() <= y.mean():
        return False
    d = x - y
    if np.allclose(d, d[0]):
        return True  # the same positive difference on every split
    return bool(stats.ttest_rel(x, y).pvalue < alpha)


def compare(title: str, name_a: str, a: Scores, name_b: str, b: Scores) -> Comparison:
    """Compare the validation accuracy of two models scored on the same splits (a paired t-test)."""
    sentence = compare_sentence(name_a, a.accuracy, name_b, b.accuracy, "validation accuracy", paired=True)
    return Comparison(title, name_a, name_b, "accuracy", sentence)


# =============================================================================================
# Which splits: the course's holdout for 400 crops, repeated stratified K-fold otherwise
# =============================================================================================
COURSE_SIZE = 400
"""The course's number of labelled crops: the 300/100 splits are kept for a file of this size."""
MIN_TRAIN_FRACTION = 2 / 3
"""By default no model trains on fewer than two thirds of the labelled crops (at least 3 folds)."""


def _class_counts(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ReplearnError(f"labels have shape {labels.shape}; expected a non-empty (N,) array")
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2:
        raise ReplearnError(f"every labelled crop is stage {classes[0]}: a classifier needs at least 2 stages "
                            "with labelled crops; label crops of the other stages")
    return classes, counts


def stratified_folds(labels: np.ndarray, folds: int, repeats: int, seed: int = 0) -> list[Split]:
    """Repeated stratified K-fold: ``repeats`` shuffles (seed ``seed + repeat``) cut into ``folds`` folds.

    Split ``repeat * folds + k`` validates on fold k of that repeat, so every item is validated exactly
    once per repeat (out-of-fold predictions); class proportions are kept in every fold. Index arrays are
    sorted int64. The same arguments give the same splits.

    Raises:
        ReplearnError: fewer than 2 folds or repeats below 1, one class only, or a class with fewer items than folds.
    """
    classes, counts = _class_counts(labels)
    if folds < 2 or repeats < 1:
        raise ReplearnError(f"cross-validation needs at least 2 folds and 1 repeat, got {folds} folds, {repeats} repeats")
    if counts.min() < folds:
        c = classes[int(np.argmin(counts))]
        raise ReplearnError(f"class {c} has {int(counts.min())} labelled crops, fewer than the {folds} folds; "
                            f"use at most {int(counts.min())} folds")
    out: list[Split] = []
    for r in range(repeats):
        kfold = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed + r)
        for tr, va in kfold.split(np.zeros(len(labels)), labels):
            out.append((np.sort(tr).astype(np.int64), np.sort(va).astype(np.int64)))
    return out


def inner_split(labels: np.ndarray, train_idx: np.ndarray, seed: int, fraction: float = 0.25) -> Split:
    """A stratified holdout of the training items ``train_idx``: (inner_train, inner_val), both subsets of it.

    Used to choose a model without looking at the split's validation items (nested selection). A class
    with a single training item stays in the inner training part.
    """
    train_idx = np.asarray(train_idx)
    y = np.asarray(labels)[train_idx]
    classes, counts = np.unique(y, return_counts=True)
    keep = np.isin(y, classes[counts < 2])
    pool = np.flatnonzero(~keep)
    n_val = max(int(round(fraction * len(pool))), len(np.unique(y[pool])))
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=n_val, random_state=seed)
    tr, va = next(splitter.split(np.zeros(len(pool)), y[pool]))
    inner_tr = np.sort(np.concatenate([train_idx[pool[tr]], train_idx[keep]])).astype(np.int64)
    return inner_tr, np.sort(train_idx[pool[va]]).astype(np.int64)


@dataclass
class Protocol:
    """The splits every model is scored on, and why these.

    Attributes:
        kind: ``"holdout"`` (repeated stratified train/validation splits) or ``"cv"`` (repeated K-fold).
        splits: the (train_idx, val_idx) pairs, the same for every model.
        folds: K of the cross-validation (0 for holdout).
        repeats: repeats of the K-fold shuffle, or number of holdout splits.
        reason: one sentence saying why this protocol ran.
        note: a change from what was asked (e.g. fewer folds), or "".
    """

    kind: str
    splits: list[Split]
    folds: int
    repeats: int
    reason: str
    note: str = ""

    def describe(self) -> str:
        """E.g. ``5-fold cross-validation, 2 repeats (10 splits)``."""
        if self.kind == "cv":
            return f"{self.folds}-fold cross-validation, {self.repeats} repeat(s) ({len(self.splits)} splits)"
        tr, va = self.splits[0]
        return f"{self.repeats} stratified {len(tr)}/{len(va)} train/validation splits"

    def to_dict(self) -> dict[str, Any]:
        tr, va = self.splits[0]
        return {"kind": self.kind, "folds": self.folds, "repeats": self.repeats, "splits": len(self.splits),
                "n_train": int(len(tr)), "n_val": int(len(va)), "reason": self.reason, "note": self.note,
                "description": self.describe()}


def choose_protocol(labels: np.ndarray, n_val: int, repeats: int, folds: int = 5, cv: int = 0,
                    seed: int = 0, cv_repeats: int | None = None, course_size: int = COURSE_SIZE) -> Protocol:
    """The splits for ``labels``: the course's holdout for a ``course_size`` file, else repeated K-fold.

    Args:
        labels: (N,) classes of the labelled items.
        n_val: validation items per holdout split (the course: 100 of 400).
        repeats: holdout splits (and repeats of the K-fold shuffle unless ``cv_repeats`` is given).
        folds: K when cross-validation is chosen automatically (lowered, with a note, when a class has
            fewer items; never below 3, so at least two thirds of the items train).
        cv: K > 0 asks for K-fold cross-validation whatever the size (``--cv K``); 0 chooses automatically.
        seed: the splits' seed.
        cv_repeats: repeats of the K-fold shuffle (default: ``repeats``).

    Raises:
        ReplearnError: one class only; a class too small for a 3-fold (or the asked ``cv``) cross-validation.
    """
    labels = np.asarray(labels)
    classes, counts = _class_counts(labels)
    n = len(labels)
    if cv == 0 and n == course_size:
        from replearn.data.tensors import repeated_stratified_splits

        splits = list(repeated_stratified_splits(labels, n_val, repeats, seed))
        reason = (f"the file has {n} labelled crops, the course's size, so the course's protocol ran: "
                  f"{n - n_val} training and {n_val} validation crops, {repeats} seeded stratified splits")
        return Protocol("holdout", splits, 0, repeats, reason)
    repeats = repeats if cv_repeats is None else cv_repeats
    small = int(counts.min())
    smallest = classes[int(np.argmin(counts))]
    if cv:
        k, reason = cv, f"cross-validation with {cv} folds was asked for (--cv {cv})"
        if small < cv:
            raise ReplearnError(f"--cv {cv}: class {smallest} has only {small} labelled crops, fewer than the folds; "
                                f"use --cv {small} or fewer (at least 2)")
    else:
        k = folds
        why = (f"{n} labelled crops (not the course's {course_size})" if n != course_size else
               f"{n} labelled crops")
        reason = (f"{why}: repeated stratified {folds}-fold cross-validation, so every crop is predicted once per "
                  f"repeat and every model trains on about {1 - 1 / folds:.0%} of the crops")
    note = ""
    if small < k:
        least = int(np.ceil(1 / (1 - MIN_TRAIN_FRACTION)))
        if small < least:
            raise ReplearnError(f"class {smallest} has only {small} labelled crop{'s' * (small != 1)}; "
                                f"cross-validation that trains on two thirds of the crops needs at least {least} "
                                f"per class: label more crops of stage {smallest}")
        note = (f"class {smallest} has only {small} labelled crops, so {small} folds are used instead of {k} "
                f"(each fold must hold every stage)")
        k = small
    return Protocol("cv", stratified_folds(labels, k, repeats, seed), k, repeats, reason, note)


# =============================================================================================
# Honest selection
# =============================================================================================
@dataclass
class Selection:
    """The outcome of :func:`nested_selection`: the choice on each split and the outer scores of those choices."""

    chosen: list[str]
    scores: Scores

    @property
    def recommended(self) -> str:
        """The model chosen on most splits (ties: the first chosen)."""
        names = list(dict.fromkeys(self.chosen))
        return max(names, key=self.chosen.count)

    def to_dict(self) -> dict[str, Any]:
        return {"chosen": list(self.chosen), "recommended": self.recommended,
                "times_chosen": {n: self.chosen.count(n) for n in dict.fromkeys(self.chosen)}, **self.scores.summary()}


def nested_selection(scores: Mapping[str, Scores], labels: np.ndarray, splits: Sequence[Split],
                     n_classes: int) -> Selection:
    """On each split, choose the model with the best inner accuracy; score that choice on the split's validation items.

    ``scores`` must come from :func:`evaluate_on_splits` with ``inner=True`` on ``splits``. The choice uses only
    the inner accuracies (items of the split's training part), so its outer score is an honest estimate of
    "train the grid, keep the best": the number to quote for the recommended model. Ties go to the model listed first.
    """
    names = list(scores)
    if not names or any(len(scores[n].inner_accuracy) != len(splits) for n in names):
        raise ValueError("nested_selection needs every model scored with inner=True on the same splits")
    labels = np.asarray(labels)
    out, chosen = Scores(), []
    for r, (_, val_idx) in enumerate(splits):
        best = max(names, key=lambda n: scores[n].inner_accuracy[r])  # first listed wins a tie
        chosen.append(best)
        predicted = scores[best].predicted[r]
        out.add(classification_metrics(labels[val_idx], predicted, n_classes), predicted)
        out.inner_accuracy.append(scores[best].inner_accuracy[r])
    return Selection(chosen, out)
