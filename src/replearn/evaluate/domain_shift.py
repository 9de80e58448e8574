"""How far apart two sets of codes are: a domain classifier, nearest-neighbour distances, guessed stages.

The lecture's domain-adaptation slide: a model trained on a *source* domain
(here, synthetic crops) places images of a *target* domain (real cells) in its
feature space; when the two clouds do not overlap, what the model learnt about
the source (which region is which stage) need not hold for the target. These
functions put numbers on that picture:

- :func:`domain_classifier_score`: can a linear classifier tell the two sets of
  codes apart? Cross-validated accuracy and ROC AUC of a logistic regression
  (standardised codes) on a balanced subsample; 0.5 = no detectable shift,
  1.0 = the domains are completely separated in code space.
- :func:`nearest_neighbour_ratio`: mean Euclidean distance from each target code
  to its nearest source code, over the same for source codes (leave-one-out);
  about 1 when target points sit inside the source cloud, larger when they lie
  off it.
- :func:`knn_stage_guess`: the stages a k-NN fitted on the labelled source codes
  assigns to the target codes. For unlabelled targets that is a model's guess,
  not ground truth; the k-NN's cross-validated accuracy on the source says how
  reliable it is *there*, and nothing about the target.
- :func:`prediction_summary`: the same for a classifier's softmax outputs, with
  its mean confidence (a confident model on shifted data is not a correct one).
- :func:`reference_meta` / :func:`read_reference`: a seeded sample of a model's
  training crops, stored in its saved ``meta``, so that :func:`shift_check` can
  later tell whether new crops look like them (``replearn predict`` and
  ``replearn embed`` warn when they do not).
"""

from __future__ import annotations

import base64
from typing import Any, Sequence

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from replearn.data.tensors import seeded_subset, to_tensor
from replearn.errors import ReplearnError

__all__ = [
    "domain_classifier_score",
    "knn_stage_guess",
    "nearest_neighbour_ratio",
    "nearest_reference_ratio",
    "prediction_summary",
    "read_reference",
    "reference_meta",
    "shift_check",
    "shift_sentence",
]

REFERENCE_KEY = "training_reference"
"""The key of a saved model's ``meta`` that holds the sample of its training crops."""
N_REFERENCE = 128
"""Training crops kept as the reference (uint8, 40x40: 200 KB of the model's JSON sidecar)."""
SHIFT_AUC_THRESHOLD = 0.8
"""Domain-classifier AUC (reference crops vs new crops, the model's codes) above which new crops are called
unlike the training crops. Two samples of one distribution give about 0.5 (below 0.65 in the tests)."""
MIN_SHIFT_CROPS = 20
"""Fewer new crops than this: no set-level verdict (the cross-validated AUC would be noise)."""
CROP_RATIO_THRESHOLD = 2.0
"""Per crop: distance of its code to the nearest reference code, over the reference codes' median
nearest-neighbour distance; above this the crop lies off the training crops' cloud."""


def _codes(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 0 or len(x) == 0:
        raise ReplearnError(f"{name}: no codes given; at least one is needed")
    x = x.reshape(len(x), -1)
    if not np.all(np.isfinite(x)):
        raise ReplearnError(f"{name}: codes contain NaN or inf values")
    return x


def domain_classifier_score(
    source: np.ndarray, target: np.ndarray, n_splits: int = 5, seed: int = 0, C: float = 1.0
) -> dict[str, object]:
    """Cross-validated accuracy and AUC of telling ``target`` (M, D) codes from ``source`` (N, D) codes.

    Both sets are subsampled (seeded) to ``n = min(N, M)`` points each, so chance is
    exactly 0.5 accuracy; a ``StandardScaler`` + ``LogisticRegression(C)`` is scored
    with ``n_splits``-fold stratified cross-validation (fewer folds when n is small).

    Returns:
        ``accuracy``, ``accuracy_std``, ``auc``, ``auc_std`` (mean and standard
        deviation over the folds), ``fold_accuracy``, ``fold_auc``, ``n_per_domain``,
        ``n_splits`` and ``chance`` (0.5).
    """
    a, b = _codes(source, "source"), _codes(target, "target")
    if a.shape[1] != b.shape[1]:
        raise ReplearnError(f"source codes have {a.shape[1]} dimensions but target codes {b.shape[1]}; they must match")
    n = min(len(a), len(b))
    if n < 2:
        raise ReplearnError(f"domain classifier: needs at least 2 codes per domain, got {len(a)} and {len(b)}")
    rng = np.random.default_rng(seed)
    a = a[np.sort(rng.choice(len(a), n, replace=False))]
    b = b[np.sort(rng.choice(len(b), n, replace=False))]
    x = np.concatenate([a, b])
    y = np.concatenate([np.zeros(n, dtype=np.int64), np.ones(n, dtype=np.int64)])
    k = int(min(n_splits, n))
    folds = list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(x, y))
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
    proba = cross_val_predict(clf, x, y, cv=folds, method="predict_proba")[:, 1]
    accs, aucs = [], []
    for _, test in folds:
        accs.append(float(np.mean((proba[test] >= 0.5) == y[test])))
        aucs.append(float(roc_auc_score(y[test], proba[test])))
    return {
        "accuracy": float(np.mean(accs)), "accuracy_std": float(np.std(accs)),
        "auc": float(np.mean(aucs)), "auc_std": float(np.std(aucs)),
        "fold_accuracy": accs, "fold_auc": aucs, "n_per_domain": int(n), "n_splits": k, "chance": 0.5,
    }


def nearest_neighbour_ratio(source: np.ndarray, target: np.ndarray) -> dict[str, float]:
    """Mean distance target -> nearest source code, over source -> nearest *other* source code.

    Args:
        source: (N, D) codes, N >= 2.
        target: (M, D) codes.

    Returns:
        ``target_to_source`` and ``source_to_source`` (mean Euclidean distances),
        their ``ratio``, and the medians ``target_to_source_median``,
        ``source_to_source_median``.
    """
    a, b = _codes(source, "source"), _codes(target, "target")
    if len(a) < 2:
        raise ReplearnError(f"nearest-neighbour ratio: needs at least 2 source codes, got {len(a)}")
    if a.shape[1] != b.shape[1]:
        raise ReplearnError(f"source codes have {a.shape[1]} dimensions but target codes {b.shape[1]}; they must match")
    nn = NearestNeighbors(n_neighbors=2).fit(a)
    d_ss = nn.kneighbors(a, 2)[0][:, 1]  # the nearest point other than itself
    d_ts = nn.kneighbors(b, 1)[0][:, 0]
    ss, ts = float(d_ss.mean()), float(d_ts.mean())
    return {
        "target_to_source": ts, "source_to_source": ss,
        "ratio": ts / ss if ss > 0 else float("inf"),
        "target_to_source_median": float(np.median(d_ts)), "source_to_source_median": float(np.median(d_ss)),
    }


def knn_stage_guess(
    source: np.ndarray, source_labels: np.ndarray, target: np.ndarray, n_classes: int, k: int = 5,
    n_splits: int = 5, seed: int = 0,
) -> dict[str, object]:
    """Stages a k-NN on labelled ``source`` codes (N, D) assigns to ``target`` codes (M, D).

    Returns:
        ``predicted`` (M,) class indices, ``counts`` and ``fractions`` per class,
        ``mean_vote`` (mean share of the k neighbours agreeing with the guess),
        ``source_fractions`` (class mix of the source) and ``source_cv_accuracy``
        (the same k-NN's stratified cross-validated accuracy on the source: how well
        the codes separate the stages where the labels are known).
    """
    a, b = _codes(source, "source"), _codes(target, "target")
    y = np.asarray(source_labels, dtype=np.int64)
    if len(y) != len(a):
        raise ReplearnError(f"source_labels has {len(y)} entries but source has {len(a)} codes")
    k = int(min(k, len(a)))
    knn = KNeighborsClassifier(n_neighbors=k).fit(a, y)
    proba = knn.predict_proba(b)
    pred = knn.classes_[proba.argmax(axis=1)]
    counts = np.bincount(pred, minlength=n_classes)
    cv = None
    per_class = np.bincount(y, minlength=n_classes)
    folds = int(min(n_splits, per_class[per_class > 0].min()))
    if folds >= 2:
        split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        cv_pred = cross_val_predict(KNeighborsClassifier(n_neighbors=k), a, y, cv=split)
        cv = float(np.mean(cv_pred == y))
    return {
        "predicted": pred.astype(np.int64), "counts": counts.tolist(),
        "fractions": (counts / max(1, len(b))).tolist(), "mean_vote": float(proba.max(axis=1).mean()),
        "source_fractions": (per_class / len(y)).tolist(), "source_cv_accuracy": cv, "k": k,
    }


def prediction_summary(probs: np.ndarray, n_classes: int) -> dict[str, object]:
    """Predicted classes of softmax outputs (M, K): ``predicted``, ``counts``, ``fractions``, ``mean_confidence``."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != n_classes:
        raise ReplearnError(f"probabilities have shape {p.shape}; expected (M, {n_classes})")
    pred = p.argmax(axis=1)
    counts = np.bincount(pred, minlength=n_classes)
    return {
        "predicted": pred.astype(np.int64), "counts": counts.tolist(),
        "fractions": (counts / max(1, len(p))).tolist(),
        "mean_confidence": float(p.max(axis=1).mean()) if len(p) else float("nan"),
    }


def shift_sentence(auc: float, ratio: float, names: Sequence[str] = ("synthetic", "real")) -> str:
    """One plain sentence from the domain classifier's AUC and the nearest-neighbour ratio."""
    src, tgt = names
    if auc < 0.6:
        how = f"a linear classifier can hardly tell {tgt} from {src} codes"
    elif auc < 0.8:
        how = f"a linear classifier tells {tgt} from {src} codes only partly"
    elif auc < 0.95:
        how = f"a linear classifier tells {tgt} from {src} codes apart most of the time"
    else:
        how = f"a linear classifier separates {tgt} from {src} codes almost perfectly"
    where = ("inside the " + src + " cloud" if ratio < 1.25 else
             "near the edge of the " + src + " cloud" if ratio < 2.0 else "off the " + src + " cloud")
    return (f"{how.capitalize()} (cross-validated AUC {auc:.2f}; 0.5 = no shift), and {tgt} codes lie {where} "
            f"(nearest-{src} distance {ratio:.2f}x the typical {src}-to-{src} distance).")


def reference_meta(*image_sets: Any, seed: int = 0, n: int = N_REFERENCE) -> dict[str, dict[str, Any]]:
    """``{REFERENCE_KEY: ...}`` for a saved model's ``meta``: a seeded sample of its training crops.

    Args:
        image_sets: the training images, one or more arrays (N_i, H, W) or (N_i, 1, H, W) (uint8, or float in
            [0, 1]); they are pooled, and ``n`` of them are drawn with ``seed``.

    Returns:
        ``{"training_reference": {"n", "shape", "dtype", "data"}}``, ``data`` the uint8 crops (n, H, W) in base64.
    """
    sets = [to_tensor(x)[:, 0] for x in image_sets if x is not None and len(x)]
    if not sets:
        raise ReplearnError("reference_meta: no training crops given")
    pooled = _pool(sets)
    keep = np.sort(seeded_subset(len(pooled), min(n, len(pooled)), seed))
    crops = np.rint(pooled[keep] * 255.0).astype(np.uint8)
    return {REFERENCE_KEY: {"n": int(len(crops)), "shape": list(crops.shape), "dtype": "uint8",
                            "data": base64.b64encode(crops.tobytes()).decode("ascii"),
                            "note": "a seeded sample of the model's training crops, for the domain-shift check"}}


def _pool(sets: list[Any]) -> np.ndarray:
    """(N_i, H, W) tensors of one size -> one float32 array (sum N_i, H, W); crops of other sizes are refused."""
    shapes = {tuple(x.shape[1:]) for x in sets}
    if len(shapes) != 1:
        raise ReplearnError(f"reference_meta: the training crops have different sizes {sorted(shapes)}")
    return np.concatenate([x.numpy() for x in sets])


def read_reference(meta: dict[str, Any]) -> np.ndarray | None:
    """The reference crops (n, H, W) uint8 stored by :func:`reference_meta`; None when ``meta`` holds none."""
    ref = meta.get(REFERENCE_KEY) if isinstance(meta, dict) else None
    if not isinstance(ref, dict):
        return None
    try:
        shape = tuple(int(s) for s in ref["shape"])
        crops = np.frombuffer(base64.b64decode(ref["data"], validate=True), dtype=np.uint8)
        return crops.reshape(shape).copy()
    except (KeyError, TypeError, ValueError):
        raise ReplearnError(f"the saved model's {REFERENCE_KEY} is damaged; save the model again") from None


def nearest_reference_ratio(reference: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Per code (M,): distance to the nearest ``reference`` code (N, D), over the reference's median distance
    to its own nearest other code (so about 1 or less for a code among the reference codes)."""
    a, b = _codes(reference, "reference"), _codes(codes, "codes")
    if len(a) < 2:
        raise ReplearnError(f"nearest-reference ratio: needs at least 2 reference codes, got {len(a)}")
    nn = NearestNeighbors(n_neighbors=2).fit(a)
    typical = float(np.median(nn.kneighbors(a, 2)[0][:, 1]))
    return nn.kneighbors(b, 1)[0][:, 0] / max(typical, 1e-12)


def shift_check(reference: np.ndarray, codes: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """Do ``codes`` (M, D) of new crops look like the ``reference`` codes (N, D) of the training crops?

    Returns:
        ``auc`` (domain classifier, :func:`domain_classifier_score`; None below :data:`MIN_SHIFT_CROPS` new crops),
        ``threshold``, ``shifted`` (auc > threshold; None without auc), ``crop_ratio`` (M,) per crop
        (:func:`nearest_reference_ratio`), ``crop_threshold``, ``n_unlike`` (crops above it), ``n_reference``,
        ``n``, and ``sentence``, one plain line.
    """
    ratio = nearest_reference_ratio(reference, codes)
    n_unlike = int(np.sum(ratio > CROP_RATIO_THRESHOLD))
    auc = None
    if len(codes) >= MIN_SHIFT_CROPS:
        auc = float(domain_classifier_score(reference, codes, seed=seed)["auc"])
    shifted = None if auc is None else auc > SHIFT_AUC_THRESHOLD
    per_crop = (f"{n_unlike} of {len(ratio)} crops lie off the training crops' cloud "
                f"(nearest-training distance > {CROP_RATIO_THRESHOLD:g}x the typical)")
    if auc is None:
        sentence = (f"too few crops ({len(codes)} < {MIN_SHIFT_CROPS}) for the domain-shift check of the whole set; "
                    f"{per_crop}")
    elif shifted:
        sentence = (f"WARNING: these crops do not look like the model's training crops (domain-shift AUC {auc:.2f} > "
                    f"{SHIFT_AUC_THRESHOLD:g}; 0.5 = alike): what it learnt may not hold for them; {per_crop}")
    else:
        sentence = (f"no large shift from the model's training crops (domain-shift AUC {auc:.2f} <= "
                    f"{SHIFT_AUC_THRESHOLD:g}; 0.5 = alike), which does not show that its answers are right; "
                    f"{per_crop}")
    return {"auc": auc, "threshold": SHIFT_AUC_THRESHOLD, "shifted": shifted, "crop_ratio": ratio,
            "crop_threshold": CROP_RATIO_THRESHOLD, "n_unlike": n_unlike, "n_reference": int(len(reference)),
            "n": int(len(codes)), "sentence": sentence}
