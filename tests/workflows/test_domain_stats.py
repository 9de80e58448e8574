"""_domain_stats: each image statistic measures what it says, on crops drawn to known values."""

from __future__ import annotations

import numpy as np
import pytest

from replearn.workflows._domain_stats import STATISTICS, crop_statistics, per_crop_statistics, statistics_table


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


def test_refuses_a_non_stack():
    with pytest.raises(ValueError, match="expected crops"):
        per_crop_statistics(np.zeros((40, 40), np.uint8))
