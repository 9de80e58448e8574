"""2-D codes of ``replearn autoencoder --objective ...``: 5-NN, trustworthiness (k = 5 and 10), reconstruction MSE,
embedding speed, time and peak memory, per seed, as JSON (issue #20's targets).

    python bench/umap2d.py --objective umap --seeds 0 1 2
    python bench/umap2d.py --dataset fashion --objective umap --seeds 0
    python bench/umap2d.py --dataset data.npz --objective umap --seeds 0
    python bench/umap2d.py --objective umap --seeds 0 --params '{"min_dist": 0.0, "hidden": [256, 256, 256]}'

Each seed runs the workflow's own recipe (``prepare_data`` and ``estimator`` of ``replearn autoencoder``, every
option at its default unless given) and is scored as the workflow scores it: train codes as the 5-NN reference,
test codes as queries; trustworthiness on a seeded subset of 5,000 test images. Writes
``bench/results/umap2d-<dataset>-<objective>-<stamp>.json``, with the load average before and after each seed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--objective", default="umap", choices=("recon", "umap", "recon+umap", "tsne", "recon+tsne"))
    parser.add_argument("--model", default=None, help="default: the objective's (workflow default)")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--bf16", default=None, choices=("auto", "on", "off"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--data-dir", default=os.environ.get("REPLEARN_DATA", "../shared/datasets"))
    parser.add_argument("--out", default=None)
    parser.add_argument("--params", default=None, help="estimator parameters to override, as JSON, e.g. "
                        "'{\"pca_dims\": null, \"min_dist\": 0.0}'; \"hidden\": [w, ...] rebuilds umap_autoencoder "
                        "with those widths")
    parser.add_argument("--codes", default=None, help="also save each seed's query codes and labels here (npz, "
                        "'{seed}' in the name is replaced)")
    args = parser.parse_args()

    from replearn.data import to_tensor
    from replearn.evaluate import knn_accuracy, reconstruction_errors, trustworthiness
    from replearn.utils.runtime import machine_summary
    from replearn.workflows import autoencoder

    runs = []
    for seed in args.seeds:
        overrides = {k: v for k, v in (("epochs", args.epochs), ("batch_size", args.batch_size), ("lr", args.lr),
                                                     ("bf16", args.bf16))
                     if v is not None}
        cfg = autoencoder.Config(dataset=args.dataset, objective=args.objective, model=args.model, seed=seed,
                                 data_dir=args.data_dir, quick=args.quick, progress=False, device="cpu", **overrides)
        if args.quick:
            for key, value in autoencoder.QUICK.items():
                if key not in overrides:
                    setattr(cfg, key, value)
        cfg.check()
        load_before = os.getloadavg()
        start = time.perf_counter()
        data = autoencoder.prepare_data(cfg)
        est = autoencoder.estimator(cfg)
        if args.params:
            params = json.loads(args.params)
            hidden = params.pop("hidden", None)
            est.set_params(**params)
            if hidden:
                from replearn.models.dense_autoencoder import umap_autoencoder

                est.set_params(model=umap_autoencoder(input_shape=(1, *data.train.shape[-2:]), hidden=hidden))
        est.fit(data.train)
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        query_codes = est.transform(data.query)
        embed_seconds = time.perf_counter() - start
        ref_codes = est.transform(data.ref)
        originals = to_tensor(data.held_out).numpy()[:, 0]
        recon = reconstruction_errors(originals, est.reconstruct(data.held_out))
        flat = to_tensor(data.query).numpy().reshape(len(data.query), -1)
        run = {
            "seed": seed, "knn1": knn_accuracy(ref_codes, data.ref_labels, query_codes, data.query_labels, k=1),
            "knn5": knn_accuracy(ref_codes, data.ref_labels, query_codes, data.query_labels, k=5),
            "trustworthiness_k5": trustworthiness(flat, query_codes, 5, 5000, seed),
            "trustworthiness_k10": trustworthiness(flat, query_codes, 10, 5000, seed),
            "test_mse": recon["mse"], "test_bce": recon["bce"],
            "fit_seconds_incl_graph": round(fit_seconds, 1), "graph_seconds": round(getattr(est, "graph_seconds_", 0), 1),
            "embed_images_per_second": round(len(data.query) / embed_seconds),
            "peak_rss_mb_so_far": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
            "n_train": len(data.train), "n_reference": len(data.ref), "n_queries": len(data.query),
            "final_loss": est.history_["loss"][-1],
        }
        if args.codes:
            np.savez(args.codes.format(seed=seed), codes=query_codes, labels=data.query_labels)
        print(json.dumps(run), flush=True)
        runs.append(run)

    knn5 = [r["knn5"] for r in runs]
    result = {"dataset": args.dataset, "objective": args.objective, "model": args.model, "quick": args.quick,
              "params": args.params,
              "config": autoencoder.recipe(cfg), "runs": runs, "knn5_mean": float(np.mean(knn5)),
              "machine": machine_summary(), "threads": os.environ.get("OMP_NUM_THREADS")}
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(args.out) if args.out else Path(__file__).parent / "results" / (
        f"umap2d-{Path(args.dataset).stem}-{args.objective.replace('+', '-')}-{stamp}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"5-NN mean {result['knn5_mean']:.4f} over seeds {args.seeds}; wrote {out}")


if __name__ == "__main__":
    main()
