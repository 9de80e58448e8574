"""The baselines and a probe with test-time augmentation."""

from __future__ import annotations

import numpy as np

from replearn.evaluate.baselines import BASELINES, hog_features
from replearn.evaluate.probes import create_probe, fit_predict_views, majority
from replearn.evaluate.tta import d4_views


def test_the_five_baselines_of_the_issue():
    assert [b.name for b in BASELINES] == ["majority", "logreg", "linear_svm", "rbf_svm_d4", "hog_svm"]
    assert [b.d4_train for b in BASELINES] == [False, False, False, True, False]
    assert {b.representation for b in BASELINES} == {"raw pixels", "HOG features"}


def test_hog_features_see_edges_and_orientation():
    img = np.zeros((2, 40, 40), np.float32)
    img[0, :, 20:] = 1.0  # a vertical edge
    img[1, 20:, :] = 1.0  # a horizontal edge
    f = hog_features(img)
    assert f.shape == (2, 576) and f.dtype == np.float32
    assert not np.allclose(f[0], f[1]) and np.all(hog_features(np.zeros((1, 40, 40))) == 0)


def test_majority_and_tta_probe_predictions():
    rng = np.random.default_rng(0)
    y = np.array([0] * 12 + [1] * 6 + [2] * 6)
    images = rng.random((24, 8, 8)).astype(np.float32) * 0.1
    images[y == 1, :4] += 1.0  # top half bright: turned crops put it elsewhere, TTA still agrees
    images[y == 2, :, :4] += 1.0
    images[y == 2] = images[y == 2] * 0.5  # stage 2 dimmer
    views = np.stack([v.reshape(24, -1) for v in d4_views(images)])
    tr, va = np.arange(0, 24, 2), np.arange(1, 24, 2)
    assert fit_predict_views(majority(), views, y, tr, va).tolist() == [0] * 12
    pred = fit_predict_views(create_probe("logreg", C=1.0), views, y, tr, va, d4_train=True)
    assert (pred == y[va]).mean() >= 0.9
    single = fit_predict_views(create_probe("logreg", C=1.0), views[:1], y, tr, va)
    assert single.shape == (12,)
