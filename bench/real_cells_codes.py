"""Do the autoencoder's codes carry the division stage of REAL cells, and what do the generated crops do to them?

On the shared field's 244 cells with the engineer's stage annotation (``bench/labels/``), trains the assignment's
default 16-D autoencoder on three sets of crops (no labels seen) and scores the same probes on its codes, on PCA-16
(fitted on the same crops) and on raw pixels, by repeated stratified 5-fold cross-validation over the 244 cells:

- ``run``: what ``replearn assignment`` pretrains on at 169 + 75 crops: 75 real cells plus 1,000 generated
  ``widefield`` crops (SYNTHETIC), the default epochs and batch;
- ``real``: the 244 real cells alone, the default epochs and batch (few steps);
- ``real-long``: the 244 real cells alone, batch 32 and 100 epochs;
- ``run-balanced`` (``--sets``): ``run`` with the 75 real cells repeated 13 times (about half of the crops);
- ``unlabelled-long`` (``--sets``): the 75 real cells alone, batch 32 and 300 epochs.

    python bench/real_cells_codes.py --out bench/results/real-cells-session21/codes.json
    python bench/real_cells_codes.py --params '{"septum_brightness": [[1.2, 2.2], [1.6, 2.6]]}'   # another generator
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings

import numpy as np
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import RepeatedStratifiedKFold, cross_val_score

from assignment_realistic import ROOT, field_cells
from replearn.data import synthetic_aureus
from replearn.encoders import AutoEncoderEmbedding
from replearn.evaluate.probes import create_probe
from replearn.utils.atomic import write_text
from replearn.workflows import _assignment_grid as grid
from widefield_realism import params

PROBES = ("logreg", "rbf_svm", "knn")


def scores(codes: np.ndarray, labels: np.ndarray, seed: int) -> dict[str, float]:
    """Mean accuracy of each probe over 5 folds x 4 repeats."""
    cv = RepeatedStratifiedKFold(n_splits=5, n_repeats=4, random_state=seed)
    return {p: round(float(cross_val_score(create_probe(p, seed), codes, labels, cv=cv).mean()), 4) for p in PROBES}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--params", help="JSON overrides of the widefield preset for the generated crops")
    ap.add_argument("--sets", nargs="+", default=["run", "real", "real-long"],
                    choices=["run", "real", "real-long", "run-balanced", "unlabelled-long"])
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / f"real-cells-codes-{time.strftime('%Y%m%d-%H%M%S')}.json"))
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore", ConvergenceWarning)
    cells = field_cells()
    images, labels = cells.labelled, cells.labels
    unl = images[np.random.default_rng(args.seed).permutation(len(images))[:75]]
    overrides = params(args.params, before=False)
    generated = synthetic_aureus(0, 1000, seed=args.seed + 7919, preset="widefield", **overrides).unlabelled
    a = grid.DEFAULTS["autoencoder"]
    sets = {"run": (np.concatenate([unl, generated]), a["epochs"], a["batch_size"]),
            "real": (images, a["epochs"], a["batch_size"]),
            "real-long": (images, 100, 32),
            # session 23: the 75 real crops repeated 13 times beside the 1,000 generated ones (about half each)
            "run-balanced": (np.concatenate([np.tile(unl, (13, 1, 1)), generated]), a["epochs"], a["batch_size"]),
            "unlabelled-long": (unl, 300, 32)}  # the 75 real crops alone, about as many steps as real-long
    sets = {k: sets[k] for k in args.sets}
    flat = images.reshape(len(images), -1).astype(np.float32) / 255.0
    out = {"data": f"{len(images)} REAL cells, stages {np.bincount(labels).tolist()} (engineer's annotation)",
           "generator overrides": args.params,
           "raw pixels": scores(flat, labels, args.seed)}
    print("raw pixels", out["raw pixels"], flush=True)
    for name, (crops, epochs, batch) in sets.items():
        t = time.perf_counter()
        ae = AutoEncoderEmbedding(code_dim=16, blocks=[tuple(b) for b in a["blocks"]], epochs=epochs,
                                  batch_size=batch, lr=a["lr"], loss=a["loss"], seed=args.seed, progress=False)
        ae.fit(crops)
        steps = epochs * -(-len(crops) // batch)
        recon = np.asarray(ae.reconstruct(images)).reshape(len(images), -1)
        pca = PCA(n_components=16, random_state=args.seed).fit(crops.reshape(len(crops), -1) / 255.0)
        out[name] = {"crops": len(crops), "epochs": epochs, "batch": batch, "steps": steps,
                     "AE-16": scores(np.asarray(ae.transform(images)), labels, args.seed),
                     "PCA-16": scores(pca.transform(flat), labels, args.seed),
                     "AE reconstruction MSE": round(float(((recon - flat) ** 2).mean()), 5),
                     "seconds": round(time.perf_counter() - t, 1)}
        print(name, out[name], flush=True)
    write_text(args.out, json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
