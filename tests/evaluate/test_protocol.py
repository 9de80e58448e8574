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


# ------------------------------------------------------------------------------------------- the protocol
from replearn.errors import ReplearnError  # noqa: E402
from replearn.evaluate.protocol import (  # noqa: E402
    choose_protocol, inner_split, nested_selection, stratified_folds,
)

REAL_LIKE = np.array([0] * 88 + [1] * 44 + [2] * 37)  # the hidden real set's class counts


def test_folds_are_stratified_deterministic_and_cover_every_crop_once_per_repeat():
    splits = stratified_folds(REAL_LIKE, 5, 2, seed=3)
    assert len(splits) == 10
    for r in range(2):
        vals = np.concatenate([va for _, va in splits[5 * r: 5 * r + 5]])
        assert sorted(vals.tolist()) == list(range(len(REAL_LIKE)))  # every crop validated exactly once
        for tr, va in splits[5 * r: 5 * r + 5]:
            assert not set(tr) & set(va) and len(tr) + len(va) == len(REAL_LIKE)
            counts = np.bincount(REAL_LIKE[va], minlength=3)
            assert np.all(np.abs(counts - np.array([88, 44, 37]) / 5) < 1)  # stratified: within one crop
    again = stratified_folds(REAL_LIKE, 5, 2, seed=3)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(splits, again))
    other = stratified_folds(REAL_LIKE, 5, 2, seed=4)
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(splits, other))
    assert not np.array_equal(splits[0][1], splits[5][1])  # the repeats shuffle differently


def test_course_size_keeps_the_300_100_splits_and_any_other_size_is_cross_validated():
    course = np.repeat([0, 1, 2], [180, 120, 100])
    p = choose_protocol(course, n_val=100, repeats=5, folds=5, seed=0)
    assert p.kind == "holdout" and len(p.splits) == 5 and {len(va) for _, va in p.splits} == {100}
    assert "course" in p.reason
    small = choose_protocol(REAL_LIKE, n_val=100, repeats=5, folds=5, seed=0, cv_repeats=2)
    assert small.kind == "cv" and small.folds == 5 and len(small.splits) == 10
    assert "169 labelled crops" in small.reason and "cross-validation" in small.reason
    assert min(len(tr) for tr, _ in small.splits) >= 2 / 3 * len(REAL_LIKE)
    asked = choose_protocol(course, n_val=100, repeats=5, cv=4, seed=0, cv_repeats=1)
    assert asked.kind == "cv" and asked.folds == 4 and "--cv 4" in asked.reason


def test_a_stage_with_fewer_crops_than_folds_gets_fewer_folds_with_a_note_or_one_line():
    few = np.array([0] * 30 + [1] * 20 + [2] * 4)
    p = choose_protocol(few, n_val=100, repeats=1, folds=5)
    assert p.folds == 4 and "class 2 has only 4 labelled crops, so 4 folds" in p.note
    with pytest.raises(ReplearnError, match=r"^class 2 has only 2 labelled crops; .* at least 3 per class"):
        choose_protocol(np.array([0] * 30 + [1] * 20 + [2] * 2), n_val=100, repeats=1)
    with pytest.raises(ReplearnError, match=r"--cv 6: class 2 has only 4 labelled crops"):
        choose_protocol(few, n_val=100, repeats=1, cv=6)


def test_a_single_class_is_one_line():
    with pytest.raises(ReplearnError, match=r"^every labelled crop is stage 1: a classifier needs at least 2 stages"):
        choose_protocol(np.ones(50, int), n_val=10, repeats=1)


def test_inner_split_stays_inside_the_training_items():
    for tr, va in stratified_folds(REAL_LIKE, 5, 1, seed=0):
        inner_tr, inner_va = inner_split(REAL_LIKE, tr, seed=1)
        assert set(inner_tr) | set(inner_va) == set(tr) and not set(inner_tr) & set(inner_va)
        assert not (set(inner_tr) | set(inner_va)) & set(va)
        assert set(REAL_LIKE[inner_va]) == {0, 1, 2}


def test_nested_selection_never_sees_the_outer_fold():
    """Model "peeker" is perfect on the validation items but bad on anything else; "honest" is decent
    everywhere. Selection must choose "honest" on every split, and every fit must avoid the validation items."""
    labels = REAL_LIKE
    splits = stratified_folds(labels, 5, 1, seed=0)
    seen: list[tuple[set, set, set]] = []

    def peeker(tr, va, r):
        outer = set(splits[r][1])
        seen.append((set(tr), set(va), outer))
        return labels[va] if set(va) == outer else (labels[va] + 1) % 3

    def honest(tr, va, r):
        guess = labels[va].copy()
        guess[::4] = (guess[::4] + 1) % 3  # 75 % right
        return guess

    scores = {"peeker": evaluate_on_splits(peeker, labels, splits, 3, inner=True),
              "honest": evaluate_on_splits(honest, labels, splits, 3, inner=True)}
    for tr, va, outer in seen:
        assert not tr & outer  # no fit ever trains on the outer validation items
    assert all(len(s.inner_accuracy) == 5 for s in scores.values())
    selection = nested_selection(scores, labels, splits, 3)
    assert selection.chosen == ["honest"] * 5 and selection.recommended == "honest"
    assert selection.scores.accuracy == scores["honest"].accuracy  # the outer scores of the choice
    assert max(scores, key=lambda n: np.mean(scores[n].accuracy)) == "peeker"  # picking on the outer folds would flatter


def test_summary_gives_recall_per_class():
    s = evaluate_on_splits(lambda tr, va, r: np.zeros(len(va), int), LABELS, SPLITS, 3).summary()
    assert s["recall"] == [1.0, 0.0, 0.0]
