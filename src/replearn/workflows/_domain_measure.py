"""The numbers of ``replearn domain`` (:mod:`replearn.evaluate.domain_shift`): how far apart the two domains are.

:func:`measure` returns every number of the report (JSON-ready) and the
per-crop arrays the figures and ``codes.npz`` need (guesses, reconstructions).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.decomposition import PCA

from replearn.data import seeded_subset, to_tensor
from replearn.encoders.loading import LoadedEncoder
from replearn.evaluate.domain_shift import (
    domain_classifier_score,
    knn_stage_guess,
    nearest_neighbour_ratio,
    prediction_summary,
    shift_sentence,
)
from replearn.workflows._domain_data import Crops
from replearn.workflows._domain_stats import (
    STATISTICS,
    per_crop_statistics,
    statistics_classifier,
    statistics_matrix,
    summarise,
)

PIXEL_PCA = 50  # raw-pixel reference: domain classifier on this many principal components


def pixels(images: np.ndarray) -> np.ndarray:
    """Images (N, H, W) -> float32 (N, H*W) in [0, 1]."""
    return to_tensor(images).numpy().reshape(len(images), -1)


def image_statistics(per_s: dict[str, np.ndarray], per_r: dict[str, np.ndarray], seed: int) -> dict[str, Any]:
    """Simple statistics of both sets of crops (per crop, from :func:`per_crop_statistics`), with how many pooled
    SDs apart the two means are, largest first, and how well they tell the sets apart together (``classifier``):
    what a domain classifier may key on."""
    s, r = summarise(per_s), summarise(per_r)
    apart = {k: abs(s[k]["mean"] - r[k]["mean"]) / max(np.sqrt((s[k]["sd"] ** 2 + r[k]["sd"] ** 2) / 2), 1e-12)
             for k in STATISTICS}
    order = sorted(STATISTICS, key=lambda k: -apart[k])
    return {"synthetic": s, "real": r, "sds_apart": {k: float(apart[k]) for k in order}, "what": STATISTICS,
            "classifier": statistics_classifier(per_s, per_r, seed=seed),
            "scale": "grey values 0-255 (each set as replearn reads it, scaled to [0, 1], times 255)"}


def measure(
    enc: LoadedEncoder, source: Crops, real: Crops, s_codes: np.ndarray, r_codes: np.ndarray, k: int, seed: int,
    device: Any,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Every number of the report (JSON-ready), and the arrays the figures need."""
    n_classes = len(source.class_names)
    out: dict[str, Any] = {}
    arrays: dict[str, np.ndarray] = {}
    codes_clf = domain_classifier_score(s_codes, r_codes, seed=seed)
    ratio = nearest_neighbour_ratio(s_codes, r_codes)
    n = min(len(s_codes), len(r_codes))
    sp, rp = pixels(source.images), pixels(real.images)
    pooled = np.concatenate([sp[seeded_subset(len(sp), n, seed)], rp[seeded_subset(len(rp), n, seed + 1)]])
    pca = PCA(n_components=min(PIXEL_PCA, len(pooled) - 1, sp.shape[1]), random_state=seed).fit(pooled)
    pix_clf = domain_classifier_score(pca.transform(sp), pca.transform(rp), seed=seed)
    out["domain_classifier"] = {
        "codes": dict(codes_clf),
        "raw_pixels_pca": {**pix_clf, "n_components": int(pca.n_components_)},
        "method": "StandardScaler + LogisticRegression(C=1), stratified 5-fold CV, balanced seeded subsample "
                  "(n per domain = the smaller set); raw pixels: PCA fitted on the pooled balanced subsample",
    }
    out["nearest_neighbour"] = {**ratio, "space": f"the model's {s_codes.shape[1]}-D codes, Euclidean"}
    out["sentence"] = shift_sentence(codes_clf["auc"], ratio["ratio"])
    # The statistics on the 0-255 scale, each set as replearn reads it.
    per_s = per_crop_statistics(255 * sp.reshape(source.images.shape))
    per_r = per_crop_statistics(255 * rp.reshape(real.images.shape))
    out["image_statistics"] = image_statistics(per_s, per_r, seed)
    arrays["statistics_synthetic"], arrays["statistics_real"] = statistics_matrix(per_s), statistics_matrix(per_r)

    guess = knn_stage_guess(s_codes, source.labels, r_codes, n_classes, k=k, seed=seed)
    arrays["knn_guess"] = guess.pop("predicted")
    out["knn_guess"] = {**guess, "note": "GUESS of a k-NN fitted on the synthetic codes; the real cells have no labels"}
    labelled = real.labels >= 0
    if labelled.any():
        out["knn_guess"]["real_labelled_accuracy"] = float(np.mean(arrays["knn_guess"][labelled] ==
                                                                   real.labels[labelled]))
        out["knn_guess"]["real_labelled_n"] = int(labelled.sum())

    if enc.kind == "classifier":
        ps, pr = enc.probabilities(source.images, device), enc.probabilities(real.images, device)
        on_s, on_r = prediction_summary(ps, ps.shape[1]), prediction_summary(pr, pr.shape[1])
        arrays["cnn_guess"] = on_r.pop("predicted")
        pred_s = on_s.pop("predicted")
        out["classifier"] = {
            "synthetic": {**on_s, "accuracy": float(np.mean(pred_s == source.labels)),
                          "note": "fresh synthetic crops with known stages (held out from the model's training "
                                  "when they are the built-in crops)"},
            "real": {**on_r, "note": "GUESS of the classifier; the real cells have no labels"},
        }
        if labelled.any():
            out["classifier"]["real"]["labelled_accuracy"] = float(
                np.mean(arrays["cnn_guess"][labelled] == real.labels[labelled]))
    if enc.kind == "autoencoder":
        rs, rr = enc.reconstruct(source.images, device), enc.reconstruct(real.images, device)
        es = np.mean((rs - sp.reshape(rs.shape)) ** 2, axis=(1, 2))
        er = np.mean((rr - rp.reshape(rr.shape)) ** 2, axis=(1, 2))
        arrays.update(recon_synthetic=rs, recon_real=rr)
        out["reconstruction"] = {
            "synthetic_mse": float(es.mean()), "real_mse": float(er.mean()),
            "ratio": float(er.mean() / es.mean()) if es.mean() > 0 else float("inf"),
            "real_above_synthetic_p95": float(np.mean(er > np.percentile(es, 95))),
        }
    return out, arrays
