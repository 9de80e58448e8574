"""Raw-pixel baselines on the labelled draws of ``replearn fewlabels``: the bar a few-label method must clear.

For each draw (seed ``--seed`` + i, the draws ``fewlabels`` makes) the probes of ``replearn.evaluate.probes`` train on
the raw pixels of the k labelled images per class and are scored on the official test set. Writes every draw's
accuracy to ``--out`` (JSON).

    python bench/fewlabels_pixels.py --dataset fashion --labels 10 --draws 5
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from replearn.evaluate.metrics import mean_ci
from replearn.evaluate.probes import create_probe
from replearn.utils.atomic import write_text
from replearn.utils.runtime import machine_info
from replearn.workflows._fewlabels_data import load


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="fashion", choices=("mnist", "fashion"))
    ap.add_argument("--labels", type=int, default=10, help="labelled images per class")
    ap.add_argument("--draws", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--probes", nargs="+", default=["logreg", "linear_svm", "rbf_svm", "knn"])
    ap.add_argument("--out", default=f"fewlabels-pixels-{time.strftime('%Y%m%d-%H%M%S')}.json")
    args = ap.parse_args(argv)
    data = load(args.dataset, None, None, 0, 0, 0, False)
    x, y = data.x.reshape(len(data.x), -1).numpy(), data.y.numpy()
    x_test, y_test = data.x_test.reshape(len(data.x_test), -1).numpy(), data.y_test.numpy()
    runs: dict[str, list[float]] = {name: [] for name in args.probes}
    for seed in range(args.seed, args.seed + args.draws):
        labelled, _ = data.draw(args.labels, seed)
        for name in args.probes:
            probe = create_probe(name, seed=seed).fit(x[labelled], y[labelled])
            runs[name].append(float((probe.predict(x_test) == y_test).mean()))
    summary = {name: mean_ci(acc) for name, acc in runs.items()}
    for name, (mean, half) in summary.items():
        print(f"{name:11s} {100 * mean:.2f} +- {100 * half:.2f}%  {[round(100 * a, 2) for a in runs[name]]}")
    write_text(args.out, json.dumps({"args": vars(args), "data": data.source, "accuracy": runs,
                                     "mean_ci": summary, "machine": machine_info()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
