"""_domain_stats: each image statistic measures what it says, on crops drawn to known values."""

from __future__ import annotations

import numpy as np
import pytest

from replearn.evaluate.domain_shift import domain_classifier_score
from replearn.workflows._domain_stats import (
    STATISTICS,
    crop_statistics,
    per_crop_statistics,
    statistics_classifier,
    statistics_table,
)


def ring(radius: float, n: int = 4, size: int = 40, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """``n`` crops (n, size, size) uint8: a bright ring of ``radius`` around the centre on a level-20 background."""
    yy, xx = np.mgrid[0:size, 0:size]
    r = np.hypot(yy - size / 2, xx - size / 2)
    img = 20 + 180 * np.exp(-0.5 * ((r - radius) / 1.2) ** 2)
    rng = np.random.default_rng(seed)
    return np.clip(np.rint(img + noise * rng.standard_normal((n, size, size))), 0, 255).astype(np.uint8)


def test_ring_radius_background_and_contrast_of_drawn_rings():
    for radius in (6, 9, 12):
        s = per_crop_statistics(ring(radius))
        assert np.all(np.abs(s["ring_radius"] - radius) <= 1)
        assert np.allclose(s["background"], 20, atol=1)
        assert np.all(s["ring_contrast"] > 5)  # the ring is far brighter than the empty centre


def test_noise_estimate_recovers_the_added_noise():
    flat = np.clip(np.rint(60 + 4.0 * np.random.default_rng(0).standard_normal((20, 40, 40))), 0, 255)
    s = per_crop_statistics(flat.astype(np.uint8))
    assert np.nanmean(s["noise"]) == pytest.approx(4.0, rel=0.1)
    assert np.nanmean(per_crop_statistics(ring(9, noise=0.0))["noise"]) < 0.5


def test_saturation_dark_border_and_spectrum():
    x = np.zeros((2, 40, 40), np.uint8)
    x[:, :3, :] = 255  # a bright band on the top edge: 120 of 1600 px, all in the frame
    s = per_crop_statistics(x)
    assert np.allclose(s["saturated"], 120 / 1600) and np.allclose(s["dark"], 1 - 120 / 1600)
    assert np.allclose(s["border"], 255 * 120 / (1600 - 34 * 34))
    noisy = per_crop_statistics(ring(9, noise=20.0))["high_freq_power"].mean()
    assert noisy > 5 * per_crop_statistics(ring(9))["high_freq_power"].mean()


def test_summary_and_table_cover_every_statistic():
    a, b = crop_statistics(ring(8)), crop_statistics(ring(10))
    assert set(a) == set(STATISTICS) and a["ring_radius"]["mean"] == 8 and a["ring_radius"]["sd"] == 0
    table = statistics_table(a, b, ("A", "B"))
    assert table.count("\n") == len(STATISTICS) + 1 and "| ring_radius | 8.00 +- 0.00 | 10.00 +- 0.00 |" in table


def test_statistics_together_separate_what_differs_and_not_what_does_not():
    a = per_crop_statistics(ring(9, n=40, noise=3.0, seed=1))
    alike = statistics_classifier(a, per_crop_statistics(ring(9, n=40, noise=3.0, seed=2)))
    differ = statistics_classifier(a, per_crop_statistics(ring(11, n=40, noise=3.0, seed=3)))
    assert alike["auc"] < 0.75 < 0.95 < differ["auc"] and differ["n_per_domain"] == 40
    assert set(differ["without"]) == set(STATISTICS)
    assert list(differ["without"].values()) == sorted(differ["without"].values())
    # The same classifier as replearn.evaluate.domain_shift on the stacked statistics.
    stack = lambda s: np.stack([s[k] for k in STATISTICS], axis=1)  # noqa: E731
    other = per_crop_statistics(ring(11, n=40, noise=3.0, seed=3))
    assert differ["auc"] == pytest.approx(domain_classifier_score(stack(a), stack(other))["auc"])


def test_statistics_classifier_finds_a_difference_in_how_two_statistics_go_together():
    """Noise rises with the background in both sets, offset up in one and down in the other: each alone is under an
    SD apart, together they separate the sets, and the two statistics are the ones it leans on."""
    rng = np.random.default_rng(0)
    n = 200

    def crops(shift: float) -> dict[str, np.ndarray]:
        s = {k: rng.normal(0.0, 1.0, n) for k in STATISTICS}
        s["background"] = rng.uniform(0.0, 3.0, n)
        s["noise"] = s["background"] + shift + rng.normal(0.0, 0.05, n)
        return s

    a, b = crops(0.25), crops(-0.25)
    apart = abs(a["noise"].mean() - b["noise"].mean()) / np.sqrt((a["noise"].var() + b["noise"].var()) / 2)
    assert apart < 1.0
    together = statistics_classifier(a, b)
    assert together["auc"] > 0.97
    assert set(list(together["without"])[:2]) == {"noise", "background"}
    assert max(list(together["without"].values())[:2]) < 0.8


def test_statistics_classifier_fills_a_missing_statistic():
    a, b = per_crop_statistics(ring(9, n=20, noise=3.0)), per_crop_statistics(ring(11, n=20, noise=3.0, seed=1))
    a["noise"][:5] = np.nan  # crops without a dark region
    b["ring_contrast"][:] = np.nan
    out = statistics_classifier(a, b)
    assert np.isfinite(out["auc"]) and out["auc"] > 0.9 and all(np.isfinite(list(out["without"].values())))


def test_refuses_a_non_stack():
    with pytest.raises(ValueError, match="expected crops"):
        per_crop_statistics(np.zeros((40, 40), np.uint8))
