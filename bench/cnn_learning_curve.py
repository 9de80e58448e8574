"""How far the assignment's CNN gets with more labels: a learning curve of the default grid's CNN rows per stand-in.

The 0.85 target of the real-cells issue is set for 169 labelled crops. This script asks what the same network (the
default grid's ``cnn d4 w16 p0.25 +aug`` row, its settings untouched except the number of epochs) reaches on each
stand-in of ``assignment_realistic.py`` when it trains on more labelled images of the same source: 135 (what a fold
of the 169-crop protocol trains on), 300 (the course's split), 1,000 and 4,000, each scored with TTA on the same
1,000 held-out images of that source (same class shares). Larger sets get fewer epochs (at least as many steps as
the 300-image run: ``epochs = max(15, 90 * 300 / n)``, capped at the grid's 90).

    python bench/cnn_learning_curve.py --cases widefield fashion --seeds 0

Writes ``{"<source>-s<seed>": {"<n>": accuracy}}``, the settings and the machine to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch

from assignment_realistic import REAL, ROOT, real_subset
from cnn_screen import row_point
from replearn.data import synthetic_aureus
from replearn.data.cell_augment import CellAugment
from replearn.data.tensors import to_tensor
from replearn.evaluate.tta import tta_average
from replearn.utils.atomic import write_text
from replearn.utils.runtime import machine_info
from replearn.workflows import _assignment_grid as grid
from replearn.workflows import _assignment_models as models

SOURCES = ("sim", "widefield", "fashion", "mnist")
N_TEST = 1000


def epochs_for(n: int, base: int) -> int:
    """Epochs for ``n`` training images: the grid's ``base`` up to 300 images, then about as many steps as 300 get."""
    return int(min(base, max(15, round(base * 300 / n))))


def curve(source: str, seed: int, sizes: list[int], config: dict) -> dict[str, float]:
    """Test accuracy of the plain CNN row trained on the first n images of ``source`` (seed ``seed``), n in sizes."""
    total = max(sizes) + N_TEST
    data = real_subset(source, total, 0, seed) if source in REAL else synthetic_aureus(total, 0, seed=seed,
                                                                                       preset=source)
    x, y = to_tensor(data.labelled), data.labels
    x_test, y_test = x[-N_TEST:], y[-N_TEST:]
    point = row_point(config, "plain")
    augment = CellAugment(**config["augment"])
    out = {}
    for n in sizes:
        clf = models.grid_estimator(point, config, data.n_classes, seed, "cpu", augment)
        clf.set_params(progress=False, epochs=epochs_for(n, config["cnn"]["epochs"]))
        t = time.perf_counter()
        clf.fit(x[:n], torch.from_numpy(y[:n]))
        out[str(n)] = float((tta_average(clf.predict_proba, x_test).argmax(1) == y_test).mean())
        print(f"{source} seed {seed} n={n} ({clf.epochs} epochs): {out[str(n)]:.3f} "
              f"{time.perf_counter() - t:.0f} s", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", nargs="+", default=list(SOURCES), choices=SOURCES)
    ap.add_argument("--sizes", nargs="+", type=int, default=[135, 300, 1000, 4000])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / f"cnn-curve-{time.strftime('%Y%m%d-%H%M%S')}.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = grid.complete({}, None, False)
    results: dict[str, dict[str, float]] = {}
    for source in args.cases:
        for seed in args.seeds:
            results[f"{source}-s{seed}"] = curve(source, seed, sorted(args.sizes), config)
            epochs = {n: epochs_for(n, config["cnn"]["epochs"]) for n in sorted(args.sizes)}
            write_text(args.out, json.dumps({"n_test": N_TEST, "sizes": sorted(args.sizes), "epochs": epochs,
                                             "results": results, "machine": machine_info()}, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
