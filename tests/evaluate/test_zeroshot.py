"""The zero-shot map: above chance on a synthetic problem whose attributes are known; bad arguments."""

from __future__ import annotations

import numpy as np
import pytest

from replearn.errors import ReplearnError
from replearn.evaluate.zeroshot import AttributeClassifier, check_distinct


def known_attributes(seed: int = 0, n_classes: int = 8, n_attr: int = 6, per_class: int = 60):
    """SYNTHETIC: binary class attributes; features = a fixed linear mix of the attributes + noise."""
    rng = np.random.default_rng(seed)
    while True:
        vectors = rng.integers(0, 2, size=(n_classes, n_attr)).astype(float)
        if len({tuple(v) for v in vectors}) == n_classes:
            break
    mix = rng.normal(size=(n_attr, 20))
    labels = np.repeat(np.arange(n_classes), per_class)
    features = vectors[labels] @ mix + 0.3 * rng.normal(size=(len(labels), 20))
    return vectors, features, labels


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_unseen_classes_recognised_above_chance(metric):
    vectors, x, y = known_attributes()
    seen = y < 5
    clf = AttributeClassifier(vectors, alpha=1.0, metric=metric).fit(x[seen], y[seen])
    unseen = [5, 6, 7]
    acc = np.mean(clf.predict(x[~seen], candidates=unseen) == y[~seen])
    assert acc > 0.8, acc  # chance is 1/3
    assert set(np.unique(clf.predict(x[~seen], candidates=unseen))) <= set(unseen)
    assert clf.scores(x[:4], unseen).shape == (4, 3) and clf.transform(x[:4]).shape == (4, 6)


def test_random_descriptions_stay_near_chance():
    vectors, x, y = known_attributes()
    rng = np.random.default_rng(5)
    x = rng.normal(size=x.shape)  # features that carry no attribute
    seen = y < 5
    clf = AttributeClassifier(vectors).fit(x[seen], y[seen])
    assert np.mean(clf.predict(x[~seen], candidates=[5, 6, 7]) == y[~seen]) < 0.55


def test_bad_arguments_are_one_line():
    vectors, x, y = known_attributes()
    with pytest.raises(ReplearnError, match="metric"):
        AttributeClassifier(vectors, metric="manhattan").fit(x, y)
    with pytest.raises(ReplearnError, match="labels must be in 0..7"):
        AttributeClassifier(vectors).fit(x, y + 1)
    same = vectors.copy()
    same[6] = same[5]
    with pytest.raises(ReplearnError, match="'five' and 'six' have the same description"):
        check_distinct(same, [5, 6, 7], ["a", "b", "c", "d", "e", "five", "six", "seven"], "table")
