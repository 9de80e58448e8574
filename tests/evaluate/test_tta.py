"""Test-time augmentation: the 8 symmetries of the square, averaged exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from replearn.evaluate.tta import D4, d4_copies, d4_views, tta_average


def test_the_eight_views_are_the_distinct_symmetries_of_the_square():
    x = np.arange(2 * 5 * 5, dtype=np.float32).reshape(2, 5, 5)
    views = d4_views(x)
    assert len(views) == 8 and np.array_equal(views[0], x)
    assert len({v.tobytes() for v in views}) == 8  # all different on an asymmetric image
    expected = [np.rot90(x, k, axes=(1, 2)) for k in range(4)]
    expected += [e[..., ::-1] for e in expected]
    for v, e in zip(views, expected):
        np.testing.assert_array_equal(v, e)
    # the torch version gives the same views
    for v, t in zip(views, d4_views(torch.from_numpy(x))):
        np.testing.assert_array_equal(v, t.numpy())
    with pytest.raises(ValueError, match="square"):
        d4_views(np.zeros((1, 4, 5)))


def test_tta_averages_the_eight_views_exactly():
    x = np.random.default_rng(0).random((3, 6, 6))
    calls = []

    def score(v):  # scores that identify the view: (N, 2) = (pixel [0, 0], pixel [0, 1])
        calls.append(v)
        return np.stack([v[:, 0, 0], v[:, 0, 1]], axis=1)

    out = tta_average(score, x)
    assert len(calls) == 8
    expected = np.mean([np.stack([v[:, 0, 0], v[:, 0, 1]], axis=1) for v in d4_views(x)], axis=0)
    np.testing.assert_allclose(out, expected, rtol=0, atol=0)
    # the corner pixel of the 8 views is each of the 4 corners twice
    corners = [x[:, 0, 0], x[:, 0, -1], x[:, -1, 0], x[:, -1, -1]]
    np.testing.assert_allclose(out[:, 0], np.mean(corners, axis=0))


def test_a_symmetric_score_is_unchanged_and_copies_keep_labels():
    x = np.random.default_rng(1).random((4, 5, 5))
    np.testing.assert_allclose(tta_average(lambda v: v.sum(axis=(1, 2))[:, None], x), x.sum(axis=(1, 2))[:, None])
    xs, ys = d4_copies(x, np.array([0, 1, 2, 1]))
    assert xs.shape == (32, 5, 5) and ys.tolist() == [0, 1, 2, 1] * 8
    assert D4[0] == (0, False) and len(set(D4)) == 8
