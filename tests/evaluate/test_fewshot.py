"""Few-shot episodes: exactly k per class, support and queries disjoint, deterministic per seed; accuracies."""

from __future__ import annotations

import numpy as np
import pytest

from replearn.errors import ReplearnError
from replearn.evaluate.fewshot import episode_accuracies, episode_rng, fewshot_classifier, sample_episode

LABELS = np.repeat(np.arange(6), 20)  # 6 classes, 20 items each
CLASSES = [1, 3, 4]


@pytest.mark.parametrize("k", [1, 5, 10])
@pytest.mark.parametrize("n_query", [0, 7])
def test_exactly_k_per_class_and_disjoint(k, n_query):
    support, query = sample_episode(LABELS, CLASSES, k, n_query, episode_rng(0, k, 3))
    assert not set(support) & set(query)
    for c in CLASSES:
        assert np.sum(LABELS[support] == c) == k
        assert np.sum(LABELS[query] == c) == (20 - k if n_query == 0 else n_query)
    assert set(LABELS[support]) == set(LABELS[query]) == set(CLASSES)  # no other class is ever drawn
    assert len(set(support)) == len(support) and len(set(query)) == len(query)


def test_episodes_are_deterministic_per_seed_and_differ_between_episodes():
    draw = lambda seed, e: sample_episode(LABELS, CLASSES, 5, 0, episode_rng(seed, 5, e))  # noqa: E731
    a, b = draw(0, 4), draw(0, 4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(draw(0, 4)[0], draw(0, 5)[0])
    assert not np.array_equal(draw(0, 4)[0], draw(1, 4)[0])


def test_a_class_too_small_is_named():
    labels = np.array([0] * 10 + [1] * 3)
    with pytest.raises(ReplearnError, match="class 1 has 3 items; a 5-shot episode needs at least 6"):
        sample_episode(labels, [0, 1], 5, 0, episode_rng(0, 5, 0))


def test_accuracies_per_episode_on_separable_and_random_features():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(6, 8)) * 10
    separable = centres[LABELS] + rng.normal(size=(len(LABELS), 8))
    acc = episode_accuracies(separable, LABELS, CLASSES, k=1, n_episodes=12, seed=0)
    assert set(acc) == {"ncm", "logreg"} and acc["ncm"].shape == (12,)
    assert acc["ncm"].min() > 0.9 and acc["logreg"].mean() > 0.9
    noise = rng.normal(size=(len(LABELS), 8))
    chance = episode_accuracies(noise, LABELS, CLASSES, k=5, n_episodes=40, seed=0)["ncm"].mean()
    assert abs(chance - 1 / 3) < 0.1
    again = episode_accuracies(separable, LABELS, CLASSES, k=1, n_episodes=12, seed=0)
    np.testing.assert_array_equal(acc["logreg"], again["logreg"])


def test_unknown_classifier_or_k():
    with pytest.raises(ReplearnError, match="unknown"):
        fewshot_classifier("svm")
    with pytest.raises(ReplearnError, match="k >= 1"):
        sample_episode(LABELS, CLASSES, 0, 0, episode_rng(0, 0, 0))
