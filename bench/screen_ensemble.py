"""Would averaging two CNN rows beat either? Scores it from two ``cnn_screen.py --proba`` outputs, paired fold by fold.

Each input is the ``<out>.proba.json`` of a ``cnn_screen.py`` run (TTA probabilities of every outer fold); the two
runs must cover the same cases and seeds (the folds are then the same). For every fold the average of the two rows'
probabilities is scored against the fold's labels (rebuilt from the case and seed), and compared with each row:
the mean paired difference with its 95 % interval over all folds.

    python bench/cnn_screen.py --row plain --variants base --proba --out plain.json
    python bench/cnn_screen.py --row sim2real --variants base --proba --out sim2real.json
    python bench/screen_ensemble.py plain.proba.json sim2real.proba.json --variant base --out ensemble.json
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from cnn_screen import case_protocol
from replearn.evaluate.metrics import mean_ci
from replearn.utils.atomic import write_text


def fold_labels(key: str) -> list[np.ndarray]:
    """The labels of each outer fold of ``<case>-s<seed>``, as ``cnn_screen.py`` split them."""
    case, seed = key.rsplit("-s", 1)
    data, protocol = case_protocol(case, int(seed))
    return [data.labels[va] for _, va in protocol.splits]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("a", help="first row's <out>.proba.json")
    ap.add_argument("b", help="second row's <out>.proba.json")
    ap.add_argument("--variant", default="base", help="the variant of both runs to average (VARIANT or A+B)")
    ap.add_argument("--out", help="write the fold accuracies and the paired differences here (JSON)")
    args = ap.parse_args(argv)
    va, vb = args.variant.split("+") if "+" in args.variant else (args.variant, args.variant)
    a, b = json.load(open(args.a))[va], json.load(open(args.b))[vb]
    keys = [k for k in a if k in b]
    if not keys:
        print(f"no case and seed is in both files for variant {args.variant!r}", file=sys.stderr)
        return 1
    acc: dict[str, dict[str, list[float]]] = {"a": {}, "b": {}, "ensemble": {}}
    for key in keys:
        for name in acc:
            acc[name][key] = []
        for f, y in enumerate(fold_labels(key)):
            pa, pb = np.asarray(a[key][f]), np.asarray(b[key][f])
            for name, p in (("a", pa), ("b", pb), ("ensemble", pa + pb)):
                acc[name][key].append(float((p.argmax(1) == y).mean()))
        print(key, {name: round(float(np.mean(v[key])), 3) for name, v in acc.items()})
    flat = {name: np.concatenate([v[k] for k in keys]) for name, v in acc.items()}
    paired = {}
    for row in ("a", "b"):
        mean, half = mean_ci(flat["ensemble"] - flat[row])
        paired[f"ensemble - {row}"] = {"mean": mean, "ci": half, "folds": len(flat[row])}
        print(f"ensemble - {row}: {mean:+.4f} +- {half:.4f} ({len(flat[row])} folds)")
    if args.out:
        write_text(args.out, json.dumps({"a": args.a, "b": args.b, "variant": args.variant, "accuracy": acc,
                                         "paired": paired}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
