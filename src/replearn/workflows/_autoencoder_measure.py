"""``replearn autoencoder``'s measurements: k-NN accuracy and trustworthiness of 2-D codes, and the comparison
with PCA, t-SNE and ISOMAP on the same images."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from replearn.data import seeded_subset, to_tensor
from replearn.workflows._autoencoder_umap import method_name

TRUST_NEIGHBOURS = 5
TRUST_MAX_POINTS = 5000
TRUST_NOTE = (f"scikit-learn, {TRUST_NEIGHBOURS} neighbours (fewer under {2 * TRUST_NEIGHBOURS + 1} points), on at "
              f"most {TRUST_MAX_POINTS} query points (seeded subset), pixels vs 2-D codes")
"""How trustworthiness is measured (in ``metrics.json`` and the report)."""


def _flat(x: np.ndarray) -> np.ndarray:
    return to_tensor(x).numpy().reshape(len(x), -1)


def embedding_metrics(
    ref_codes: np.ndarray, ref_labels: np.ndarray, query_codes: np.ndarray, query_labels: np.ndarray,
    query_images: np.ndarray, seed: int,
) -> dict[str, float]:
    """1-NN / 5-NN accuracy (reference -> queries) and trustworthiness of the query codes (N, d) with
    :data:`TRUST_NEIGHBOURS` (the table's) and 10 neighbours (``trustworthiness_k10``, issue #20's target)."""
    from replearn.evaluate import knn_accuracy, trustworthiness

    k_max = len(ref_codes)
    return {
        "knn1": knn_accuracy(ref_codes, ref_labels, query_codes, query_labels, k=min(1, k_max)),
        "knn5": knn_accuracy(ref_codes, ref_labels, query_codes, query_labels, k=min(5, k_max)),
        "trustworthiness": trustworthiness(_flat(query_images), query_codes, TRUST_NEIGHBOURS, TRUST_MAX_POINTS, seed),
        "trustworthiness_k10": trustworthiness(_flat(query_images), query_codes, 10, TRUST_MAX_POINTS, seed),
    }


def row(method: str, n_ref: int, n_query: int, metrics: dict[str, float], seconds: float, note: str) -> dict:
    """One method's line of ``metrics.json``'s ``methods`` (and of the table)."""
    return {"method": method, "n_reference": int(n_ref), "n_queries": int(n_query), **metrics,
            "seconds": round(float(seconds), 1), "note": note}


def compare_methods(data: Any, est: Any, cfg: Any) -> tuple[list[dict], dict]:
    """PCA, t-SNE and ISOMAP beside the autoencoder: metric rows and the figure's panels.

    PCA is fitted on every reference point. t-SNE and ISOMAP use seeded
    subsets (``compare_ref`` reference, ``compare_queries`` queries); the
    autoencoder is scored on that same subset too, so their rows compare alike.
    """
    from tqdm import tqdm

    from replearn.evaluate import EMBEDDING_NOTES, embed_2d
    from replearn.evaluate.embeddings import NAMES as EMBEDDING_NAMES

    seed = cfg.seed
    ri = seeded_subset(len(data.ref), int(cfg.compare_ref), seed)
    qi = seeded_subset(len(data.query), int(cfg.compare_queries), seed + 1)
    ref_s, ref_ys, q_s, q_ys = data.ref[ri], data.ref_labels[ri], data.query[qi], data.query_labels[qi]
    rows, panels = [], {}
    start = time.perf_counter()
    ae_ref, ae_q = est.transform(ref_s), est.transform(q_s)
    name = method_name(cfg)
    rows.append(row(f"{name} (subset)", len(ri), len(qi), embedding_metrics(ae_ref, ref_ys, ae_q, q_ys, q_s, seed),
                    time.perf_counter() - start, "encoder trained above; codes of the same subset as t-SNE/ISOMAP"))
    panels[name] = (ae_q, q_ys)
    bar = tqdm(["pca", "tsne", "isomap"], desc="compare", unit="method", disable=not cfg.progress)
    for method in bar:
        bar.set_postfix_str(method)
        full = method == "pca"
        r_img, r_y = (data.ref, data.ref_labels) if full else (ref_s, ref_ys)
        start = time.perf_counter()
        r2, q2 = embed_2d(method, _flat(r_img), _flat(q_s), seed=seed)
        seconds = time.perf_counter() - start
        name = EMBEDDING_NAMES[method]
        rows.append(row(name, len(r_img), len(qi), embedding_metrics(r2, r_y, q2, q_ys, q_s, seed), seconds,
                        EMBEDDING_NOTES[method]))
        panels[name] = (q2, q_ys)
    return rows, panels
