"""The evaluation protocol: the same splits for every model, scores summarised and compared the same way."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from replearn.evaluate.protocol import Comparison, Scores, best_of, compare, evaluate_on_splits, mean_history

LABELS = np.array([0, 0, 1, 1, 2, 2, 0, 1, 2, 0])
SPLITS = [(np.array([0, 2, 4, 6, 8]), np.array([1, 3, 5, 7, 9])),
          (np.array([1, 3, 5, 7, 9]), np.array([0, 2, 4, 6, 8]))]


def test_perfect_and_constant_predictions_give_known_scores():
    seen = []

    def perfect(tr, va, r):
        seen.append((tr.tolist(), va.tolist(), r))
        return LABELS[va]

    scores = evaluate_on_splits(perfect, LABELS, SPLITS, 3)
    assert seen == [(tr.tolist(), va.tolist(), r) for r, (tr, va) in enumerate(SPLITS)]
    assert scores.accuracy == [1.0, 1.0] and scores.macro_f1 == [1.0, 1.0] and scores.runs == 2
    s = scores.summary()
    assert (s["accuracy_mean"], s["accuracy_ci"], s["runs"]) == (1.0, 0.0, 2)
    assert s["confusion"] == [[4, 0, 0], [0, 3, 0], [0, 0, 3]]  # summed over both splits: every item once

    zeros = evaluate_on_splits(lambda tr, va, r: np.zeros(len(va), int), LABELS, SPLITS, 3)
    # split 0 validates items 1,3,5,7,9 = classes 0,1,2,1,0 (2 zeros); split 1 items 0,2,4,6,8 = 0,1,2,0,2 (2 zeros)
    assert zeros.accuracy == [0.4, 0.4]
    # macro-F1 of "always class 0" with 2 of 5 right: F1 of class 0 = 2*0.4*1/(0.4+1), others 0
    assert zeros.macro_f1 == pytest.approx([2 * 0.4 / 1.4 / 3] * 2)
    assert zeros.summary()["confusion"] == [[4, 0, 0], [3, 0, 0], [3, 0, 0]]


def test_summary_is_the_mean_and_the_95_percent_t_interval():
    # a fake model right on item 1 only of split 0 (0.2) and on every item of split 1 (1.0)
    scores = evaluate_on_splits(lambda tr, va, r: LABELS[va] if r else np.where(va == 1, 0, 9), LABELS, SPLITS, 10)
    assert scores.accuracy == [0.2, 1.0]
    s = scores.summary()
    half = stats.t.ppf(0.975, 1) * np.std([0.2, 1.0], ddof=1) / np.sqrt(2)
    assert s["accuracy_mean"] == pytest.approx(0.6) and s["accuracy_ci"] == pytest.approx(half)
    assert s["accuracy"] == [0.2, 1.0] and len(s["confusion"]) == 10


def test_after_sees_every_split_in_order():
    calls = []
    evaluate_on_splits(lambda tr, va, r: LABELS[va], LABELS, SPLITS, 3, after=lambda r, m: calls.append((r, m["accuracy"])))
    assert calls == [(0, 1.0), (1, 1.0)]


def test_best_of_ranks_by_mean_accuracy_then_macro_f1_then_order():
    a = Scores(accuracy=[0.75, 0.25], macro_f1=[0.5, 0.5])
    b = Scores(accuracy=[0.5, 0.5], macro_f1=[0.75, 0.75])  # same mean accuracy, better F1
    c = Scores(accuracy=[0.5, 0.5], macro_f1=[0.75, 0.75])  # as good as b, listed later
    assert best_of({"a": a, "b": b, "c": c}) == "b"
    assert best_of({"a": a, "top": Scores([0.9], [0.1])}) == "top"
    assert best_of({}) is None


def test_mean_history_averages_each_epoch_over_the_repeats():
    h = mean_history([{"loss": [1.0, 0.5], "accuracy": [0.2, 0.4]}, {"loss": [3.0, 1.5], "accuracy": [0.4, 0.8]}])
    assert h == {"loss": [2.0, 1.0], "accuracy": [pytest.approx(0.3), pytest.approx(0.6)]}


def test_compare_is_a_paired_test_on_the_accuracies():
    a = Scores(accuracy=[0.9, 0.92, 0.91, 0.93], macro_f1=[0, 0, 0, 0])
    b = Scores(accuracy=[0.7, 0.71, 0.69, 0.72], macro_f1=[0, 0, 0, 0])
    c = compare("A vs B", "A", a, "B", b)
    assert isinstance(c, Comparison) and (c.title, c.a, c.b, c.metric) == ("A vs B", "A", "B", "accuracy")
    p = stats.ttest_rel(a.accuracy, b.accuracy).pvalue
    assert c.sentence.startswith("A has the higher mean validation accuracy (0.915 vs 0.705, difference 0.210)")
    assert f"paired t-test over 4 runs, p = {p:.3g}" in c.sentence
    assert c.to_dict() == {"title": "A vs B", "a": "A", "b": "B", "metric": "accuracy", "sentence": c.sentence}
    same = compare("same", "A", a, "A again", a)
    assert "within the noise" in same.sentence and "p = 1" in same.sentence
