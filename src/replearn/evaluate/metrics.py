"""Metrics for classifiers, reconstructions and 2-D embeddings (scikit-learn underneath)."""

from __future__ import annotations

import numpy as np
from scipy import stats
from sklearn.manifold import trustworthiness as _trustworthiness
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
from sklearn.neighbors import KNeighborsClassifier


def knn_accuracy(
    ref_codes: np.ndarray, ref_labels: np.ndarray, query_codes: np.ndarray, query_labels: np.ndarray, k: int = 5
) -> float:
    """Accuracy of a k-NN classifier fitted on reference codes (N, D) and scored on query codes (M, D)."""
    knn = KNeighborsClassifier(n_neighbors=k).fit(ref_codes, ref_labels)
    return float(knn.score(query_codes, query_labels))


def trustworthiness(
    high: np.ndarray, low: np.ndarray, n_neighbors: int = 5, max_points: int = 5000, seed: int = 0
) -> float:
    """scikit-learn's trustworthiness of ``low`` (N, d) as an embedding of ``high`` (N, D).

    It costs O(N^2) memory, so at most ``max_points`` points (a seeded random
    subset) are used. scikit-learn needs ``n_neighbors < N / 2``: with fewer than
    ``2 * n_neighbors + 1`` points the largest allowed number is used instead, and
    with fewer than 3 points the score is undefined (NaN).
    """
    high = np.asarray(high).reshape(len(high), -1)
    low = np.asarray(low)
    if len(high) > max_points:
        idx = np.random.default_rng(seed).choice(len(high), max_points, replace=False)
        high, low = high[idx], low[idx]
    k = min(int(n_neighbors), -(-len(high) // 2) - 1)
    if k < 1:
        return float("nan")
    return float(_trustworthiness(high, low, n_neighbors=k))


def reconstruction_errors(x: np.ndarray, x_hat: np.ndarray) -> dict[str, float]:
    """Mean squared error and binary cross-entropy between images in [0, 1] and their reconstructions."""
    x = np.asarray(x, dtype=np.float64)
    x_hat = np.asarray(x_hat, dtype=np.float64)
    mse = float(np.mean((x - x_hat) ** 2))
    p = np.clip(x_hat, 1e-7, 1 - 1e-7)
    bce = float(np.mean(-(x * np.log(p) + (1 - x) * np.log(1 - p))))
    return {"mse": mse, "bce": bce}


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> dict:
    """Accuracy, macro-F1 and the confusion matrix (rows true, columns predicted)."""
    labels = list(range(n_classes))
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "confusion": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
    }


def mean_ci(values, confidence: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the Student-t confidence interval of the mean (0 for one value)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    if v.size == 1:
        return float(v[0]), 0.0
    half = stats.t.ppf(0.5 + confidence / 2, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size)
    return float(v.mean()), float(half)
