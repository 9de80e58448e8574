"""Does the labelling page's "next" help? Accuracy after 30 / 60 / 120 labels, active rule vs random order.

    python bench/active_learning.py                 # both data sets, 5 seeds (a few minutes on 2 cores)
    python bench/active_learning.py --seeds 2 --budgets 30,60

Simulates ``replearn label`` with the true labels as the person labelling: from a pool of crops, the
next crop is chosen by the page's rule (:func:`replearn.workflows._label_learner.pick`: margin sampling
on the logistic-regression probe, retrained after every label; random until two classes have labels)
or in a random order, and the probe trained on the labels so far is scored on held-out images. The
features are those the page would use: PCA of the pixels (no ``--model``), and on the synthetic crops
also a SimCLR encoder trained without labels on separate unlabelled crops (``--model``, as an
assignment run's ``simclr-encoder.safetensors``).

Data: the built-in SYNTHETIC S. aureus crops (pool 1,500, test 500, one draw) and Fashion-MNIST (pool
5,000 of the training set, test 2,000 of the test set), from ``--data-dir`` (default
``../shared/datasets``). Writes ``bench/results/active_learning.json`` (every seed's accuracies, means
and 95% t-intervals, paired differences) and prints the table that docs/labelling.md shows.
Holds ``/tmp/replearn-heavy.lock`` while it runs.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import platform
import time
from pathlib import Path

import numpy as np
from scipy import stats

from replearn.data import load_dataset, seeded_subset, stratified_split, synthetic_aureus
from replearn.workflows._label_learner import fit_probe, pick, pixel_features

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "datasets"


def simulate(features: np.ndarray, labels: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, rule: str,
             budgets: list[int], seed: int) -> dict[int, float]:
    """Test accuracy after each budget of labels chosen from the pool (M, D) by ``rule``."""
    rng = np.random.default_rng(seed)
    chosen: list[int] = []
    remaining = np.ones(len(features), bool)
    model, scores = None, {}
    while len(chosen) < max(budgets):
        i = pick(model, features, np.flatnonzero(remaining), rule, rng)
        chosen.append(i)
        remaining[i] = False
        model = fit_probe(features[chosen], labels[chosen], seed)
        if len(chosen) in budgets:
            scores[len(chosen)] = float((model.predict(test_x) == test_y).mean()) if model is not None else 0.0
    return scores


def interval(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% t-interval."""
    v = np.asarray(values)
    half = float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")
    return float(v.mean()), half


def data_sets(data_dir: Path) -> dict[str, tuple]:
    """name -> (pool images, pool labels, test images, test labels)."""
    syn = synthetic_aureus(2000, 0, seed=100)
    train, test = stratified_split(syn.labels, 500, seed=0)
    x, y = load_dataset("fashion", "train", data_dir, download=False)
    tx, ty = load_dataset("fashion", "test", data_dir, download=False)
    keep, tkeep = seeded_subset(len(x), 5000, 0), seeded_subset(len(tx), 2000, 0)
    return {"synthetic": (syn.labelled[train], syn.labels[train], syn.labelled[test], syn.labels[test]),
            "fashion": (x[keep], y[keep], tx[tkeep], ty[tkeep])}


def simclr_features(pool: np.ndarray, test: np.ndarray, epochs: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Features of a SimCLR encoder (the assignment's [ssl] settings) trained on other, unlabelled synthetic crops."""
    from replearn.encoders import ContrastiveEmbedding

    start = time.perf_counter()
    unlabelled = synthetic_aureus(0, 3892, seed=7).unlabelled
    enc = ContrastiveEmbedding(depth=3, width=16, epochs=epochs, batch_size=256, lr=0.003, temperature=0.5,
                               proj_dim=32, shift=3, seed=0, device="cpu").fit(unlabelled)
    return enc.transform(pool), enc.transform(test), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--budgets", default="30,60,120")
    parser.add_argument("--ssl-epochs", type=int, default=30, help="SimCLR epochs (0: no SimCLR features)")
    parser.add_argument("--data-dir", default=str(SHARED))
    parser.add_argument("--out", default=str(HERE / "results" / "active_learning.json"))
    args = parser.parse_args()
    budgets = [int(b) for b in args.budgets.split(",")]
    lock = open("/tmp/replearn-heavy.lock", "a+")  # noqa: SIM115 - held until the process ends
    fcntl.flock(lock, fcntl.LOCK_EX)
    started = time.perf_counter()
    results: dict = {"budgets": budgets, "seeds": args.seeds, "rules": ["margin", "random"], "runs": {},
                     "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, taken under load "
                                "(2 cores shared)"}
    for name, (px, py, tx, ty) in data_sets(Path(args.data_dir)).items():
        feats = {"pca": pixel_features(px, tx, seed=0)}
        if name == "synthetic" and args.ssl_epochs:
            fp, ft, seconds = simclr_features(px, tx, args.ssl_epochs)
            feats["simclr"] = (fp, ft)
            results["simclr_seconds"] = round(seconds, 1)
        for kind, (fp, ft) in feats.items():
            key = f"{name}/{kind}"
            run = {rule: [simulate(fp, py, ft, ty, rule, budgets, s) for s in range(args.seeds)]
                   for rule in ("margin", "random")}
            summary = {}
            for b in budgets:
                m = [r[b] for r in run["margin"]]
                r = [r[b] for r in run["random"]]
                summary[b] = {"margin": interval(m), "random": interval(r),
                              "difference": interval([a - c for a, c in zip(m, r)])}
                print(f"{key:18s} {b:4d} labels: margin {summary[b]['margin'][0]:.3f} ± {summary[b]['margin'][1]:.3f}"
                      f"  random {summary[b]['random'][0]:.3f} ± {summary[b]['random'][1]:.3f}"
                      f"  difference {summary[b]['difference'][0]:+.3f} ± {summary[b]['difference'][1]:.3f}",
                      flush=True)
            results["runs"][key] = {"pool": len(px), "test": len(tx), "per_seed": run, "summary": summary,
                                    "synthetic": name == "synthetic"}
    results["seconds"] = round(time.perf_counter() - started, 1)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out} in {results['seconds']:.0f} s")


if __name__ == "__main__":
    main()
