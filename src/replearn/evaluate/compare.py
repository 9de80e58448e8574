"""Sentences generated from numbers: which variant is better, and is it within the noise?"""

from __future__ import annotations

import numpy as np
from scipy import stats

from replearn.evaluate.metrics import mean_ci


def compare_sentence(
    name_a: str, values_a, name_b: str, values_b, metric: str = "accuracy", paired: bool = True, alpha: float = 0.05
) -> str:
    """One sentence comparing two sets of repeated measurements of ``metric``.

    With ``paired`` (same seeds / splits for both), a paired t-test; otherwise
    Welch's t-test. With fewer than 2 values each no test is possible, and the
    sentence says so.
    """
    a, b = np.asarray(values_a, float), np.asarray(values_b, float)
    ma, ha = mean_ci(a)
    mb, hb = mean_ci(b)
    better, worse = (name_a, name_b) if ma >= mb else (name_b, name_a)
    diff = abs(ma - mb)
    head = f"{better} has the higher mean {metric} ({max(ma, mb):.3f} vs {min(ma, mb):.3f}, difference {diff:.3f})"
    if len(a) < 2 or len(b) < 2:
        return head + "; with a single run each, no test of whether this is noise is possible."
    if paired and len(a) == len(b):
        d = a - b
        p = 1.0 if np.allclose(d, d[0]) and d[0] == 0 else float(stats.ttest_rel(a, b).pvalue)
        test = f"paired t-test over {len(a)} runs"
    else:
        p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
        test = f"Welch t-test, {len(a)} and {len(b)} runs"
    if np.isnan(p):
        p = 1.0
    if p < alpha:
        return head + f"; the difference is larger than the run-to-run noise ({test}, p = {p:.3g})."
    return head + f", but the difference is within the noise ({test}, p = {p:.2g}): {worse} is not shown to be worse."
