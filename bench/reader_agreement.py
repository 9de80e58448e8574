"""How much two readers of the shared field's cell stages agree, and how models score against each of them.

    python bench/reader_agreement.py                       # the two readings in bench/labels/
    python bench/reader_agreement.py --first mine.csv --second colleague.csv   # any two readings of the same cells
    python bench/reader_agreement.py --proba bench/results/real-cells-session21/screen-plain-proba-run.proba.json

Prints agreement, Cohen's kappa (scikit-learn) and the confusion matrix of two readings (``cell id, stage`` CSVs as
``replearn crops --labels`` reads them), on every cell and, where each reading has a ``-sure.csv`` beside it, on the
cells both readers marked sure. With ``--proba`` (the per-fold probabilities that ``cnn_screen.py
--cases aureus-169 --proba`` writes; the models trained on the first reading), each seed's out-of-fold predictions
are scored against the first reading, the second, and the cells where the two agree, beside the two readings'
own agreement on the same cells. ``--json`` writes everything.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import cohen_kappa_score, confusion_matrix

sys.path.insert(0, str(Path(__file__).resolve().parent))
from assignment_realistic import field_draw  # noqa: E402
from cnn_screen import case_protocol  # noqa: E402

from replearn.data.crops import read_stages  # noqa: E402

LABELS = Path(__file__).resolve().parent / "labels"
FIRST, SECOND = LABELS / "aureus-maicrobe-stages.csv", LABELS / "aureus-maicrobe-stages-reader2.csv"


def sure_ids(path: Path) -> set[int] | None:
    """The ids in the reading's ``-sure.csv`` beside it (the cells its reader did not mark unsure); None without."""
    sure = path.with_name(path.stem + "-sure.csv")
    return set(read_stages(sure)) if sure.is_file() else None


def agreement(a: np.ndarray, b: np.ndarray) -> dict:
    return {"cells": int(len(a)), "agree": float(np.mean(a == b)), "kappa": float(cohen_kappa_score(a, b)),
            "confusion": confusion_matrix(a, b, labels=[0, 1, 2]).tolist()}


def score_oof(proba_file: Path, first: np.ndarray, second: np.ndarray) -> dict:
    """Each variant's and seed's out-of-fold accuracy against the two readings and their consensus."""
    out = {}
    for variant, runs in json.loads(proba_file.read_text()).items():
        for key, folds in runs.items():
            case, seed = key.rsplit("-s", 1)
            data, protocol = case_protocol(case, int(seed))
            lab, _ = field_draw(len(data.labels), int(seed))  # the case's labelled cells (indices in id order)
            assert np.array_equal(first[lab], data.labels), "the draw does not match the case's labels"
            cells, predicted = [], []
            for (_, va), proba in zip(protocol.splits, folds):
                cells.append(lab[va])
                predicted.append(np.asarray(proba).argmax(1))
            cells, predicted = np.concatenate(cells), np.concatenate(predicted)
            both = first[cells] == second[cells]
            out[f"{variant} {key}"] = {
                "predictions": int(len(cells)),
                "vs_first": float(np.mean(predicted == first[cells])),
                "vs_second": float(np.mean(predicted == second[cells])),
                "on_consensus": float(np.mean(predicted[both] == first[cells][both])), "consensus": int(both.sum()),
                "readers_agree": float(np.mean(both)),
            }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--first", type=Path, default=FIRST)
    ap.add_argument("--second", type=Path, default=SECOND)
    ap.add_argument("--proba", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    r1, r2 = read_stages(args.first), read_stages(args.second)
    ids = sorted(set(r1) & set(r2))  # a second reading of a subset compares on that subset
    if not ids:
        sys.exit(f"{args.first} and {args.second} name no cell in common")
    if args.proba and len(ids) != len(r1):
        sys.exit("--proba needs both readings of every cell")
    if len(ids) < max(len(r1), len(r2)):
        print(f"comparing the {len(ids)} cells both readings name ({len(r1)} and {len(r2)} in the files)")
    first, second = np.array([r1[i] for i in ids]), np.array([r2[i] for i in ids])
    result = {"all": agreement(first, second), "counts": {"first": np.bincount(first, minlength=3).tolist(),
                                                          "second": np.bincount(second, minlength=3).tolist()}}
    sure_first, sure_second = sure_ids(args.first), sure_ids(args.second)
    if sure_first is not None and sure_second is not None:
        both_sure = np.array([i in sure_first & sure_second for i in ids])
        result["both_sure"] = agreement(first[both_sure], second[both_sure])
    for name, r in (("every cell", result["all"]), ("cells both readers marked sure", result.get("both_sure"))):
        if r is None:
            continue
        print(f"{name}: {r['cells']} cells, agreement {r['agree']:.3f}, Cohen's kappa {r['kappa']:.3f}; "
              f"confusion (rows first reading, columns second): {r['confusion']}")
    print(f"stage counts 0/1/2: first {result['counts']['first']}, second {result['counts']['second']}")
    if args.proba:
        result["oof"] = score_oof(args.proba, first, second)
        for key, r in result["oof"].items():
            print(f"{key}: {r['predictions']} out-of-fold predictions; accuracy vs first reading {r['vs_first']:.3f}, "
                  f"vs second {r['vs_second']:.3f}, on the {r['consensus']} cells both readings agree on "
                  f"{r['on_consensus']:.3f} (the readings agree on {r['readers_agree']:.3f} of these cells)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
