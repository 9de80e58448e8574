"""2-D views of representations: PCA, t-SNE and ISOMAP (scikit-learn)."""

from __future__ import annotations

import warnings

import numpy as np
from scipy.sparse import SparseEfficiencyWarning
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE, Isomap

from replearn.data.limits import warn
from replearn.errors import ReplearnError

METHODS = ("pca", "tsne", "isomap")
NAMES = {"pca": "PCA", "tsne": "t-SNE", "isomap": "ISOMAP"}

NOTES = {
    "pca": "PCA fitted on the reference points; query points transformed.",
    "isomap": "ISOMAP (10 neighbours) fitted on the reference points; query points transformed.",
    "tsne": (
        "t-SNE has no out-of-sample transform: reference and query points were embedded together "
        "in one run, then split."
    ),
}


def _all_identical(x: np.ndarray) -> bool:
    """Whether the rows of ``x`` (N, D) are all the same, to float32 precision (also for N <= 1)."""
    if len(x) <= 1 or x.shape[1] == 0:
        return True
    spread = float(np.max(np.ptp(x, axis=0)))
    return not spread > 1e-12 * max(float(np.max(np.abs(x))), 1.0)  # NaN spreads count as not identical


def embed_2d(method: str, ref: np.ndarray, query: np.ndarray | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """Embed ``ref`` (N, D) and optionally ``query`` (M, D) into 2-D with ``method``.

    Returns (ref_2d (N, 2), query_2d (M, 2) or None). See :data:`NOTES` for
    how each method treats the query points. Points that are all identical (constant codes)
    give all-zero views and a one-line :class:`~replearn.data.limits.DataWarning`.
    """
    ref = np.asarray(ref, dtype=np.float32).reshape(len(ref), -1)
    q = None if query is None else np.asarray(query, dtype=np.float32).reshape(len(query), -1)
    if method in METHODS and _all_identical(ref if q is None else np.concatenate([ref, q])):
        # t-SNE crashes the process on such input; every method's answer would be one point anyway
        warn(f"{NAMES[method]}: all {len(ref) + (0 if q is None else len(q))} points are identical (e.g. "
                      "the constant codes of a collapsed encoder); their 2-D view is a single point")
        return np.zeros((len(ref), 2), np.float32), None if q is None else np.zeros((len(q), 2), np.float32)
    if method == "pca":
        model = PCA(n_components=2, random_state=seed).fit(ref)
        return model.transform(ref), None if q is None else model.transform(q)
    if method == "isomap":
        with warnings.catch_warnings(record=True) as caught:  # scikit-learn's multi-line notes, as one line
            warnings.simplefilter("always")
            model = Isomap(n_neighbors=min(10, len(ref) - 1), n_components=2).fit(ref)
            out = model.embedding_, None if q is None else model.transform(q)
        parts = [str(w.message) for w in caught if "connected components" in str(w.message)]
        if parts:
            count = parts[0].split("is ")[1].split(" ")[0] if "is " in parts[0] else "several"
            warn(f"ISOMAP: the 10-neighbour graph of the {len(ref)} points falls into {count} parts (duplicated or "
                 "well-separated codes); scikit-learn joined them, so distances between the parts are rough")
        for w in caught:
            if "connected components" not in str(w.message) and not issubclass(w.category, SparseEfficiencyWarning):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return out
    if method == "tsne":
        both = ref if q is None else np.concatenate([ref, q])
        perplexity = float(min(30, max(2, (len(both) - 1) / 3)))
        out = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(both)
        return out[: len(ref)], None if q is None else out[len(ref):]
    raise ReplearnError(f"unknown embedding {method!r}; choose from {', '.join(METHODS)}")
