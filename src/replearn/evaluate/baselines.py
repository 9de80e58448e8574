"""The baselines every learned model must beat, always in the assignment's table.

Each baseline is a probe (:mod:`replearn.evaluate.probes`) on a fixed representation of the crops,
nothing learned without labels:

========================  ====================================================================
``majority``              always the largest class of the training crops
``logreg``                logistic regression on the raw pixels
``linear_svm``            linear SVM on the raw pixels
``rbf_svm_d4``            RBF SVM on the raw pixels, the 8 symmetries of each training crop added as copies
``hog_svm``               RBF SVM on HOG features (histograms of oriented gradients, scikit-image)
========================  ====================================================================

Like every probe they predict with test-time augmentation over the 8 symmetries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.feature import hog


@dataclass(frozen=True)
class Baseline:
    """A baseline: ``probe`` on ``representation`` (``"raw pixels"`` or ``"HOG features"``)."""

    name: str
    title: str
    probe: str
    representation: str
    d4_train: bool = False


BASELINES: tuple[Baseline, ...] = (
    Baseline("majority", "majority class (always the largest stage)", "majority", "raw pixels"),
    Baseline("logreg", "logistic regression on raw pixels", "logreg", "raw pixels"),
    Baseline("linear_svm", "linear SVM on raw pixels", "linear_svm", "raw pixels"),
    Baseline("rbf_svm_d4", "RBF SVM on raw pixels + D4 copies", "rbf_svm", "raw pixels", d4_train=True),
    Baseline("hog_svm", "RBF SVM on HOG features", "rbf_svm", "HOG features"),
)
"""The baselines, in the order of the report."""

HOG_CELL = 8
"""HOG cell side in pixels (a 40x40 crop: 5x5 cells, 2x2-cell blocks, 9 orientations: 576 features)."""


def hog_features(images: np.ndarray, cell: int = HOG_CELL) -> np.ndarray:
    """HOG features (N, F) float32 of grayscale crops (N, H, W) in [0, 1] (9 orientations, 2x2-cell blocks, L2-Hys)."""
    images = np.asarray(images, dtype=np.float32)
    return np.stack([hog(im, orientations=9, pixels_per_cell=(cell, cell), cells_per_block=(2, 2),
                         block_norm="L2-Hys", feature_vector=True) for im in images]).astype(np.float32)
