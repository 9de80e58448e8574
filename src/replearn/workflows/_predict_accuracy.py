"""``replearn predict`` on a file that has ``labels``: the accuracy of the predictions against them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from replearn.evaluate.metrics import classification_metrics


def accuracy_against_labels(images: str, key: str | None, items: list[str], probs: np.ndarray) -> dict[str, Any] | None:
    """Accuracy, macro-F1, per-stage recall and confusion of ``probs`` (N, K) on the crops of an ``.npz``'s
    ``labelled`` array, against its ``labels``; None when ``images`` is not such a file or ``labelled`` was not predicted."""
    path = Path(images)
    if path.suffix.lower() != ".npz" or key not in (None, "labelled"):
        return None
    with np.load(path, allow_pickle=False) as npz:
        if "labels" not in npz.files:
            return None
        labels = np.asarray(npz["labels"]).astype(np.int64).ravel()
    rows = [i for i, item in enumerate(items) if item.startswith("labelled[")]
    k = probs.shape[1]
    if len(rows) != len(labels) or not len(rows) or labels.min() < 0 or labels.max() >= k:
        return None
    m = classification_metrics(labels, probs[rows].argmax(axis=1), k)
    cm = np.asarray(m["confusion"])
    recall = [float(cm[i, i] / cm[i].sum()) if cm[i].sum() else float("nan") for i in range(k)]
    return {"n": len(rows), "correct": int(np.trace(cm)), **m, "recall": recall}


def accuracy_line(acc: dict[str, Any] | None) -> str:
    """``; accuracy against the file's labels 0.852 (144 of 169)``, or "" without labels."""
    if acc is None:
        return ""
    return f"; accuracy against the file's labels {acc['accuracy']:.3f} ({acc['correct']} of {acc['n']})"
