"""The few-label sampler: exactly k per class, deterministic, the rest unlabelled."""

from __future__ import annotations

import numpy as np
import pytest

from replearn.data.draws import draw_labelled
from replearn.errors import ReplearnError

LABELS = np.repeat(np.arange(5), [30, 12, 25, 40, 9])


@pytest.mark.parametrize("k", [1, 4, 9])
def test_draws_exactly_k_per_class_and_the_rest_is_unlabelled(k):
    lab, unl = draw_labelled(LABELS, k, seed=7)
    assert np.bincount(LABELS[lab], minlength=5).tolist() == [k] * 5
    assert np.intersect1d(lab, unl).size == 0
    assert np.array_equal(np.sort(np.concatenate([lab, unl])), np.arange(LABELS.size))
    assert np.all(np.diff(lab) > 0) and lab.dtype == np.int64


def test_draws_are_deterministic_per_seed_and_differ_between_seeds():
    a, _ = draw_labelled(LABELS, 4, seed=3)
    b, _ = draw_labelled(LABELS.copy(), 4, seed=3)
    c, _ = draw_labelled(LABELS, 4, seed=4)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_all_labels_and_refusals():
    lab, unl = draw_labelled(LABELS, None, seed=0)
    assert lab.size == LABELS.size and unl.size == 0
    with pytest.raises(ReplearnError, match="class 4 has 9 images, fewer than 10"):
        draw_labelled(LABELS, 10, seed=0)
    with pytest.raises(ReplearnError, match="per_class"):
        draw_labelled(LABELS, 0, seed=0)
