"""Domain-shift metrics on constructed cases: identical clouds, separated clouds, known neighbours."""

from __future__ import annotations

import numpy as np
import pytest

from replearn.errors import ReplearnError
from replearn.evaluate.domain_shift import (
    domain_classifier_score,
    knn_stage_guess,
    nearest_neighbour_ratio,
    prediction_summary,
    shift_sentence,
)


def gaussian(n: int, d: int = 8, shift: float = 0.0, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)) + shift


def test_identical_distributions_score_near_chance():
    res = domain_classifier_score(gaussian(400, seed=1), gaussian(300, seed=2), seed=0)
    assert res["n_per_domain"] == 300 and res["n_splits"] == 5 and res["chance"] == 0.5
    assert abs(res["accuracy"] - 0.5) < 0.08
    assert abs(res["auc"] - 0.5) < 0.08
    assert len(res["fold_accuracy"]) == 5 and len(res["fold_auc"]) == 5


def test_separated_distributions_score_near_one():
    res = domain_classifier_score(gaussian(200, seed=1), gaussian(200, shift=3.0, seed=2))
    assert res["accuracy"] > 0.97 and res["auc"] > 0.99


def test_partial_shift_is_in_between_and_grows_with_the_shift():
    small = domain_classifier_score(gaussian(300, seed=1), gaussian(300, shift=0.15, seed=2))["auc"]
    large = domain_classifier_score(gaussian(300, seed=1), gaussian(300, shift=0.5, seed=2))["auc"]
    assert 0.5 < small < large < 0.99


def test_domain_classifier_is_seeded_and_balanced():
    a, b = gaussian(500, seed=1), gaussian(60, shift=0.3, seed=2)
    r1, r2 = domain_classifier_score(a, b, seed=3), domain_classifier_score(a, b, seed=3)
    assert r1 == r2 and r1["n_per_domain"] == 60
    assert domain_classifier_score(a[:3], b[:3])["n_splits"] == 3  # fewer folds than 5 for tiny sets


def test_nearest_neighbour_ratio_known_geometry():
    grid = np.array([[i, j] for i in range(10) for j in range(10)], dtype=float)  # spacing 1
    inside = grid[:20] + 0.5  # half a step away: distance sqrt(0.5)
    res = nearest_neighbour_ratio(grid, inside)
    assert res["source_to_source"] == pytest.approx(1.0)
    assert res["target_to_source"] == pytest.approx(np.sqrt(0.5))
    far = nearest_neighbour_ratio(grid, grid[:5] + np.array([100.0, 0.0]))
    assert far["ratio"] > 50
    same = nearest_neighbour_ratio(gaussian(400, d=2, seed=1), gaussian(400, d=2, seed=2))
    assert 0.7 < same["ratio"] < 1.4


def test_knn_stage_guess_counts_and_source_accuracy():
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    labels = np.repeat(np.arange(3), 20)
    source = centres[labels] + np.random.default_rng(0).normal(scale=0.5, size=(60, 2))
    target = np.array([[0.2, 0.1], [9.5, 0.3], [10.2, -0.4], [0.1, 9.9]])
    res = knn_stage_guess(source, labels, target, n_classes=3, k=5)
    assert res["predicted"].tolist() == [0, 1, 1, 2]
    assert res["counts"] == [1, 2, 1] and res["fractions"] == [0.25, 0.5, 0.25]
    assert res["source_cv_accuracy"] == 1.0 and res["mean_vote"] == 1.0
    assert res["source_fractions"] == pytest.approx([1 / 3] * 3)


def test_prediction_summary():
    probs = np.array([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.1, 0.6, 0.3]])
    res = prediction_summary(probs, 3)
    assert res["counts"] == [1, 2, 0]
    assert res["mean_confidence"] == pytest.approx((0.9 + 0.7 + 0.6) / 3)
    with pytest.raises(ReplearnError, match=r"expected \(M, 4\)"):
        prediction_summary(probs, 4)


def test_bad_inputs_are_one_line_errors():
    with pytest.raises(ReplearnError, match="dimensions"):
        domain_classifier_score(gaussian(10, d=3), gaussian(10, d=4))
    with pytest.raises(ReplearnError, match="at least 2 codes per domain"):
        domain_classifier_score(gaussian(10), gaussian(1))
    with pytest.raises(ReplearnError, match="NaN"):
        nearest_neighbour_ratio(np.full((3, 2), np.nan), gaussian(2, d=2))
    with pytest.raises(ReplearnError, match="no codes"):
        nearest_neighbour_ratio(gaussian(3, d=2), np.zeros((0, 2)))


def test_shift_sentence_follows_the_numbers():
    assert "hardly" in shift_sentence(0.52, 1.0) and "inside" in shift_sentence(0.52, 1.0)
    s = shift_sentence(0.99, 3.1)
    assert "almost perfectly" in s and "off the synthetic cloud" in s and "0.99" in s and "3.10x" in s


# ----------------------------------------------------------------------------- the training reference
def test_reference_meta_round_trips_a_seeded_sample_of_the_training_crops():
    import json

    from replearn.evaluate.domain_shift import REFERENCE_KEY, read_reference, reference_meta

    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 256, (30, 8, 8), dtype=np.uint8), rng.integers(0, 256, (20, 8, 8), dtype=np.uint8)
    meta = json.loads(json.dumps(reference_meta(a, b, seed=3, n=16)))  # survives the JSON sidecar
    crops = read_reference(meta)
    assert crops.shape == (16, 8, 8) and crops.dtype == np.uint8 and meta[REFERENCE_KEY]["n"] == 16
    pooled = np.concatenate([a, b])
    assert all(any(np.array_equal(c, p) for p in pooled) for c in crops)  # every reference crop is a training crop
    assert np.array_equal(crops, read_reference(reference_meta(a, b, seed=3, n=16)))  # deterministic
    assert not np.array_equal(crops, read_reference(reference_meta(a, b, seed=4, n=16)))
    floats = read_reference(reference_meta(a / 255.0, seed=0, n=100))  # float pixels in [0, 1] -> the same uint8
    assert floats.shape == (30, 8, 8) and np.array_equal(np.sort(floats.ravel()), np.sort(a.ravel()))
    assert read_reference({"class_names": ["a", "b"]}) is None
    with pytest.raises(ReplearnError, match="damaged"):
        read_reference({REFERENCE_KEY: {"shape": [2, 8, 8], "data": "not base64!"}})


def test_shift_check_separates_alike_from_unlike_crops():
    from replearn.evaluate.domain_shift import CROP_RATIO_THRESHOLD, SHIFT_AUC_THRESHOLD, shift_check

    ref = gaussian(128, seed=1)
    alike = shift_check(ref, gaussian(200, seed=2))
    unlike = shift_check(ref, gaussian(200, shift=1.5, seed=3))
    assert alike["auc"] < 0.65 and alike["shifted"] is False
    assert "no large shift" in alike["sentence"] and "does not show that its answers are right" in alike["sentence"]
    assert unlike["auc"] > 0.95 and unlike["shifted"] is True and unlike["sentence"].startswith("WARNING")
    assert alike["threshold"] == SHIFT_AUC_THRESHOLD == 0.8 and alike["crop_threshold"] == CROP_RATIO_THRESHOLD
    assert alike["crop_ratio"].shape == (200,) and alike["n_unlike"] < 20 < unlike["n_unlike"]
    few = shift_check(ref, gaussian(5, shift=1.5, seed=4))
    assert few["auc"] is None and few["shifted"] is None and "too few crops (5 < 20)" in few["sentence"]


def test_nearest_reference_ratio_is_zero_on_reference_points_and_grows_off_them():
    from replearn.evaluate.domain_shift import nearest_reference_ratio

    ref = gaussian(100, d=2, seed=1)
    assert np.allclose(nearest_reference_ratio(ref, ref[:10]), 0.0)
    far = nearest_reference_ratio(ref, gaussian(10, d=2, shift=20.0, seed=2))
    assert far.min() > 10
