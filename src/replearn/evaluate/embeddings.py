"""2-D views of representations: PCA, t-SNE and ISOMAP (scikit-learn)."""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.manifold import TSNE, Isomap

from replearn.errors import ReplearnError

METHODS = ("pca", "tsne", "isomap")

NOTES = {
    "pca": "PCA fitted on the reference points; query points transformed.",
    "isomap": "ISOMAP (10 neighbours) fitted on the reference points; query points transformed.",
    "tsne": (
        "t-SNE has no out-of-sample transform: reference and query points were embedded together "
        "in one run, then split."
    ),
}


def embed_2d(method: str, ref: np.ndarray, query: np.ndarray | None = None, seed: int = 0) -> tuple[np.ndarray, np.ndarray | None]:
    """Embed ``ref`` (N, D) and optionally ``query`` (M, D) into 2-D with ``method``.

    Returns (ref_2d (N, 2), query_2d (M, 2) or None). See :data:`NOTES` for
    how each method treats the query points.
    """
    ref = np.asarray(ref, dtype=np.float32).reshape(len(ref), -1)
    q = None if query is None else np.asarray(query, dtype=np.float32).reshape(len(query), -1)
    if method == "pca":
        model = PCA(n_components=2, random_state=seed).fit(ref)
        return model.transform(ref), None if q is None else model.transform(q)
    if method == "isomap":
        model = Isomap(n_neighbors=min(10, len(ref) - 1), n_components=2).fit(ref)
        return model.embedding_, None if q is None else model.transform(q)
    if method == "tsne":
        both = ref if q is None else np.concatenate([ref, q])
        perplexity = float(min(30, max(2, (len(both) - 1) / 3)))
        out = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(both)
        return out[: len(ref)], None if q is None else out[len(ref):]
    raise ReplearnError(f"unknown embedding {method!r}; choose from {', '.join(METHODS)}")
