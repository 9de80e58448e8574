"""Simple image statistics of two sets of crops, side by side: what a domain classifier may key on.

:func:`crop_statistics` measures each crop (N, H, W) uint8 the same way, whichever set it
comes from, and returns the mean and standard deviation over the crops of each statistic
(:data:`STATISTICS` says what each one is). :func:`statistics_table` puts two sets side by
side. :func:`statistics_classifier` says how well the statistics *together* tell two sets apart (a domain
classifier on them), and which one it leans on most: sets can differ in how the statistics go together while
no single one is far apart. Used by ``replearn domain`` (:mod:`replearn.workflows._domain_measure`), by
``bench/widefield_realism.py`` (the ``widefield`` preset against the real crops of the shared field) and by the
tests of the preset.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from replearn.evaluate.domain_shift import domain_classifier_score

STATISTICS = {
    "mean": "mean grey value of the crop",
    "std": "standard deviation of the grey values in the crop",
    "background": "10th percentile of the crop's grey values (the dark background between cells)",
    "noise": "pixel noise in the darkest 30% of the crop (5x5 mean): robust SD of horizontal neighbour differences / sqrt 2",
    "saturated": "fraction of pixels at 255",
    "dark": "fraction of pixels at 0",
    "border": "mean grey value of the 3-px frame (neighbouring cells cut by the crop edge)",
    "centre": "mean grey value of the central 8x8 px (the cell's cytoplasm or septum)",
    "ring_radius": "radius (px) of the brightest ring around the crop centre (radial mean profile, 3-16 px)",
    "edge_radius": "radius (px) where the radial mean profile falls halfway from its peak (r <= 12) to the background",
    "ring_contrast": "radial profile at the ring over the profile at the centre (1 = as bright as the cytoplasm)",
    "high_freq_power": "fraction of the crop's power (mean removed) above 0.25 cycles/px (noise, sharp edges)",
    "mid_freq_power": "fraction of the crop's power between 0.08 and 0.25 cycles/px (ring and septum scale)",
}
"""Every statistic of :func:`crop_statistics`, with what it measures (all per crop, grey values 0-255)."""


def _radial_profile(x: np.ndarray, max_r: int) -> np.ndarray:
    """Mean grey value (N, max_r + 1) in 1-px rings around the crop centre ``(H/2, W/2)``."""
    _, h, w = x.shape
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.rint(np.hypot(yy - h / 2, xx - w / 2)).astype(int)
    flat, ring = x.reshape(len(x), -1), r.ravel()
    return np.stack([flat[:, ring == k].mean(axis=1) for k in range(max_r + 1)], axis=1)


def _half_drop(prof: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Per profile (N, R): the radius (interpolated) past the peak (r <= 12) where it falls below halfway to ``background``."""
    out = np.full(len(prof), float(prof.shape[1] - 1))
    for i, p in enumerate(prof):
        top = int(np.argmax(p[:13]))
        half = background[i] + 0.5 * (p[top] - background[i])
        below = np.flatnonzero(p[top:] < half)
        if below.size:
            r = top + int(below[0])
            out[i] = r - 1 + (p[r - 1] - half) / max(p[r - 1] - p[r], 1e-9)
    return out


def per_crop_statistics(images: np.ndarray) -> dict[str, np.ndarray]:
    """Each statistic of :data:`STATISTICS` for each crop: ``{name: (N,) float64}``; images (N, H, W) uint8."""
    x = np.asarray(images, dtype=np.float64)
    if x.ndim != 3 or len(x) == 0:
        raise ValueError(f"expected crops (N, H, W) with N >= 1, got shape {x.shape}")
    n, h, w = x.shape
    flat = x.reshape(n, -1)
    out: dict[str, np.ndarray] = {"mean": flat.mean(axis=1), "std": flat.std(axis=1),
                                  "background": np.percentile(flat, 10, axis=1)}
    # The dark region is chosen on a smoothed copy, so that the choice does not select the noise itself.
    smooth = ndimage.uniform_filter(x, size=(1, 5, 5), mode="nearest")
    diff = x[:, :, 1:] - x[:, :, :-1]
    level = np.percentile(smooth.reshape(n, -1), 30, axis=1)[:, None, None]
    dark = np.maximum(smooth[:, :, 1:], smooth[:, :, :-1]) <= level
    noise = np.empty(n)
    for i in range(n):
        d = diff[i][dark[i]]
        noise[i] = 1.4826 * np.median(np.abs(d - np.median(d))) / np.sqrt(2) if d.size >= 10 else np.nan
    out["noise"] = noise
    out["saturated"] = (flat >= 255).mean(axis=1)
    out["dark"] = (flat <= 0).mean(axis=1)
    frame = np.ones((h, w), bool)
    frame[3:-3, 3:-3] = False
    out["border"] = x[:, frame].mean(axis=1)
    cy, cx = h // 2, w // 2
    out["centre"] = x[:, cy - 4:cy + 4, cx - 4:cx + 4].mean(axis=(1, 2))
    max_r = min(16, min(h, w) // 2 - 1)
    prof = _radial_profile(x, max_r)
    peak = 3 + np.argmax(prof[:, 3:], axis=1)
    out["ring_radius"] = peak.astype(np.float64)
    prof_far = _radial_profile(x, min(h, w) // 2 - 1)
    out["edge_radius"] = _half_drop(prof_far, out["background"])
    out["ring_contrast"] = prof[np.arange(n), peak] / np.maximum(prof[:, :2].mean(axis=1), 1.0)
    power = np.abs(np.fft.fft2(x - x.mean(axis=(1, 2), keepdims=True))) ** 2
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.fftfreq(w)[None, :]
    f = np.hypot(fy, fx)
    total = np.maximum(power.sum(axis=(1, 2)), 1e-12)
    out["high_freq_power"] = power[:, f > 0.25].sum(axis=1) / total
    out["mid_freq_power"] = power[:, (f > 0.08) & (f <= 0.25)].sum(axis=1) / total
    return out


def crop_statistics(images: np.ndarray) -> dict[str, dict[str, float]]:
    """Mean and SD over the crops of each statistic: ``{name: {"mean": m, "sd": s}}``; images (N, H, W) uint8."""
    return summarise(per_crop_statistics(images))


def summarise(per_crop: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Mean and SD over the crops of each statistic of a :func:`per_crop_statistics` result."""
    return {k: {"mean": float(np.nanmean(v)), "sd": float(np.nanstd(v))} for k, v in per_crop.items()}


def statistics_matrix(per_crop: dict[str, np.ndarray]) -> np.ndarray:
    """A :func:`per_crop_statistics` result as one float64 array (N, 13), columns in :data:`STATISTICS` order."""
    return np.stack([np.asarray(per_crop[k], dtype=np.float64) for k in STATISTICS], axis=1)


def statistics_classifier(a: dict[str, np.ndarray], b: dict[str, np.ndarray], seed: int = 0) -> dict[str, object]:
    """How well every statistic together tells set ``b`` from set ``a`` (two :func:`per_crop_statistics` results).

    The domain classifier of :func:`replearn.evaluate.domain_shift.domain_classifier_score` (seed ``seed``) on the
    statistics of each crop (a statistic a crop lacks, e.g. the noise of a crop without a dark region, takes the
    pooled median), then again without each statistic in turn. Returns ``auc``, ``auc_std``, ``accuracy``,
    ``accuracy_std``, ``n_per_domain`` and ``without`` (``{statistic: AUC without it}``, lowest first: the first is the one the
    classifier leans on most in combination with the others).
    """
    xa, xb = statistics_matrix(a), statistics_matrix(b)
    x = np.concatenate([xa, xb])
    empty = np.isnan(x).all(axis=0)
    fill = np.nanmedian(np.where(empty, 0.0, x), axis=0)  # a statistic that no crop has: 0
    xa, xb = (np.where(np.isnan(m), fill, m) for m in (xa, xb))
    whole = domain_classifier_score(xa, xb, seed=seed)
    without = {k: float(domain_classifier_score(np.delete(xa, i, 1), np.delete(xb, i, 1), seed=seed)["auc"])
               for i, k in enumerate(STATISTICS)}
    return {"auc": float(whole["auc"]), "auc_std": float(whole["auc_std"]), "accuracy": float(whole["accuracy"]),
            "accuracy_std": float(whole["accuracy_std"]), "n_per_domain": int(whole["n_per_domain"]),
            "without": dict(sorted(without.items(), key=lambda kv: kv[1]))}


def statistics_table(a: dict[str, dict[str, float]], b: dict[str, dict[str, float]], names: tuple[str, str]) -> str:
    """A Markdown table of two :func:`crop_statistics` results side by side (mean +- SD over crops)."""
    rows = [f"| statistic | {names[0]} | {names[1]} | what it measures |", "|---|---|---|---|"]
    for key, what in STATISTICS.items():
        fmt = ".4f" if key in ("saturated", "dark", "high_freq_power", "mid_freq_power") else ".2f"
        rows.append(f"| {key} | {a[key]['mean']:{fmt}} +- {a[key]['sd']:{fmt}} | "
                    f"{b[key]['mean']:{fmt}} +- {b[key]['sd']:{fmt}} | {what} |")
    return "\n".join(rows)
