"""Replay rules for choosing the recommended model on saved `assignment_realistic.py` results.

    python bench/selection_rules.py RESULTS.json [...] [--json OUT.json]

For every run (case and seed) and every split, each rule picks one row from the rows' inner accuracies (the
accuracy on a held-out quarter of that split's training crops, what the run's nested selection sees); the rule's
score on the split is the chosen row's outer accuracy there. Rules:

- ``best-inner``: the highest inner accuracy, ties to the first listed (the rule the run uses);
- ``one-se``: the first listed row whose inner accuracy is within one standard error of the best one
  (``sqrt(a (1 - a) / n)``, ``n`` the inner validation crops; the "one-standard-error rule" of Hastie,
  Tibshirani & Friedman, *The Elements of Statistical Learning*, 2nd ed., section 7.10);
- ``half-se``: the same within half a standard error;
- ``one-se-s2r``: ``one-se`` with the sim-to-real CNN row listed before the plain one;
- ``max-noise``: as ``one-se`` within ``sqrt(2 ln K)`` standard errors, ``K`` the number of rows: about how far the
  best of ``K`` equally good rows lands above them by chance on the inner crops (the winner's curse);
- ``oracle``: the row with the best mean outer accuracy of the run (not a rule: the ceiling, flattered).

Rows are listed as the run lists its candidates: the CNN rows in the grid's order, then the others.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
from scipy import stats

CNN_ORDER = ("cnn d4 w16 p0.25 +aug", "cnn d4 w16 p0.25 +aug +sim2real widefield")


def listed(rows: list[dict], order: tuple[str, ...] = CNN_ORDER) -> list[dict]:
    """The candidates in the run's order: the grid's CNN rows first, then the others as saved."""
    cnn = sorted((r for r in rows if r["kind"] == "CNN"),
                 key=lambda r: order.index(r["name"]) if r["name"] in order else len(order))
    return cnn + [r for r in rows if r["kind"] != "CNN"]


def inner_size(run: dict) -> int:
    """Inner validation crops per split: a quarter of the split's training crops."""
    n = run["n_labelled"]
    train = 300 if "300/100" in run["protocol"] else round(n * 4 / 5)
    return round(train / 4)


def choose(rows: list[dict], split: int, n_inner: int, rule: str) -> dict:
    best = max(rows, key=lambda r: r["inner_accuracy"][split])  # first listed wins a tie
    if rule == "best-inner":
        return best
    width = {"one-se": 1.0, "one-se-s2r": 1.0, "half-se": 0.5, "max-noise": math.sqrt(2 * math.log(len(rows)))}[rule]
    a = best["inner_accuracy"][split]
    floor = a - width * math.sqrt(max(a * (1 - a), 1e-12) / n_inner)
    return next(r for r in rows if r["inner_accuracy"][split] >= floor - 1e-12)


RULES = ("best-inner", "half-se", "one-se", "one-se-s2r", "max-noise")


def replay(run: dict) -> dict:
    rows = listed(run["rows"])
    n_splits = len(rows[0]["accuracy"])
    n_inner = inner_size(run)
    out = {"case": run["case"], "seed": run["seed"], "n_inner": n_inner}
    for rule in RULES:
        ordered = listed(run["rows"], CNN_ORDER[::-1]) if rule.endswith("s2r") else rows
        picks = [choose(ordered, s, n_inner, rule) for s in range(n_splits)]
        out[rule] = {"accuracy": [p["accuracy"][s] for s, p in enumerate(picks)], "chosen": [p["name"] for p in picks]}
    oracle = max(rows, key=lambda r: np.mean(r["accuracy"]))
    out["oracle"] = {"accuracy": list(oracle["accuracy"]), "chosen": [oracle["name"]] * n_splits}
    out["saved_nested"] = run["recommended_nested"]["accuracy_mean"]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+")
    ap.add_argument("--json")
    args = ap.parse_args()
    runs = [r for path in args.results for r in json.loads(Path(path).read_text())["results"]]
    replays = [replay(r) for r in runs if all(row.get("inner_accuracy") for row in r["rows"])]
    print(f"{'case':<16}{'seed':>5}" + "".join(f"{k:>12}" for k in (*RULES, "oracle")) + "   (check: saved nested)")
    for rp in replays:
        print(f"{rp['case']:<16}{rp['seed']:>5}" + "".join(f"{np.mean(rp[k]['accuracy']):>12.3f}"
                                                       for k in (*RULES, "oracle")) + f"   ({rp['saved_nested']:.3f})")
    base = np.concatenate([rp["best-inner"]["accuracy"] for rp in replays])
    for rule in RULES[1:]:
        diff = np.concatenate([rp[rule]["accuracy"] for rp in replays]) - base
        p = stats.ttest_1samp(diff, 0).pvalue if np.any(diff) else 1.0
        print(f"{rule} - best-inner over {len(diff)} splits: {diff.mean():+.4f} +- "
              f"{stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / math.sqrt(len(diff)):.4f} (p = {p:.3f}); "
              f"ahead on {int((diff > 0).sum())}, behind on {int((diff < 0).sum())}")
    if args.json:
        Path(args.json).write_text(json.dumps(replays, indent=1))


if __name__ == "__main__":
    main()
