"""The assignment's grid in parallel: ``--jobs 1`` (2 threads, as before) against ``--jobs 2`` (the default threads:
1 per worker, every core for the stages outside the units; or ``--local-modes`` 1 thread everywhere), and a Dask
``LocalCluster`` with 1, 2 and 4 worker processes.

Each run is ``replearn assignment`` on the built-in SYNTHETIC crops in its own process (so worker start-up counts),
timed from outside; the metrics' own timings split it into the CNN grid (``cnn_s``) and the probes (``probes_s``),
the parts that run in parallel, and the autoencoder and SimCLR stages, which do not. The two local modes are
paired (alternating, ``--repeats`` each); every run records the load average before and after, since the
machine may be shared. Per-unit CNN times come from the unit files of the run folder.

    nice -n 10 python bench/parallel_grid.py --reduced --modes local    # 2 CNN epochs, small AE, no SimCLR
    nice -n 10 python bench/parallel_grid.py --reduced --modes cluster  # LocalCluster with 1, 2, 4 workers
    python bench/parallel_grid.py --modes local --repeats 3         # the default assignment run, 3 pairs
    python bench/parallel_grid.py --reduced --modes local --repeats 1

Writes ``bench/results/parallel-grid-<stamp>.json`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from safetensors import safe_open

from replearn.utils.parallel import cores
from replearn.utils.runtime import machine_info
from replearn.utils.units import UNITS_DIR

ROOT = Path(__file__).resolve().parents[1]
REDUCED = """
[data]
n_unlabelled = 300
[cnn]
epochs = 2
pretrain_n = 300
pretrain_epochs = 1
[autoencoder]
epochs = 1
[ssl]
epochs = 0
[pretrain]
generated = 0
[probes]
names = ["logreg", "knn"]
"""
"""The reduced config: the default grid (2 points x 5 splits x inner + outer = 20 CNN units) with 2 CNN epochs (after
1 epoch of sim-to-real pretraining on 300 crops), one autoencoder epoch on 300 unlabelled crops, no SimCLR, 2 probes;
for a machine too busy for the default run (on 2 shared cores one default run took over 10 minutes)."""


def one_run(flags: list[str], config: Path | None, seed: int) -> dict[str, Any]:
    """One ``replearn assignment`` in its own process: wall time, the metrics' timings, per-unit CNN seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "replearn", "assignment", "--out", str(out), "--no-progress", "--device", "cpu",
               "--seed", str(seed), *(["--config", str(config)] if config else []), *flags]
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
        load_before = os.getloadavg()
        start = time.perf_counter()
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if done.returncode:
            raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
        metrics = json.loads((out / "metrics.json").read_text())
        unit_s = []
        for f in (out / UNITS_DIR).glob("part=cnn*.safetensors"):
            with safe_open(str(f), "np") as fh:
                unit_s.append(json.loads(fh.metadata()["record"])["seconds"])
    timing = metrics["timing"]
    return {"flags": flags, "wall_s": wall, "load_before": load_before, "load_after": os.getloadavg(),
            "timing": timing, "cnn_units": len(unit_s), "cnn_unit_s_mean": float(np.mean(unit_s)),
            "cnn_unit_s_median": float(np.median(unit_s)), "cnn_unit_s_sum": float(np.sum(unit_s)),
            "recommended": metrics["cnn_selection"].get("recommended") if metrics.get("cnn_selection") else None,
            "cnn_accuracy": {k: v["accuracy_mean"] for k, v in metrics["cnn"].items()}}


def summary(runs: list[dict[str, Any]]) -> dict[str, float]:
    walls = [r["wall_s"] for r in runs]
    return {"wall_s_mean": float(np.mean(walls)), "wall_s_min": float(np.min(walls)),
            "cnn_s_mean": float(np.mean([r["timing"]["cnn_s"] for r in runs])),
            "probes_s_mean": float(np.mean([r["timing"]["probes_s"] for r in runs]))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reduced", action="store_true", help="2 CNN epochs, 1 autoencoder epoch, no SimCLR, 2 probes (REDUCED)")
    p.add_argument("--config", help="a grid config instead (TOML)")
    p.add_argument("--repeats", type=int, default=3, help="runs of each local mode (paired)")
    p.add_argument("--modes", nargs="+", default=["local", "cluster"], choices=["local", "cluster"])
    p.add_argument("--local-modes", nargs=2, default=["jobs1_threads2", "jobs2_threads0"],
                   choices=["jobs1_threads2", "jobs2_threads1", "jobs2_threads0"],
                   help="the two local modes to pair (the first is the reference); jobs2_threads0 is the default "
                        "(one thread per worker, every core for the stages outside the units)")
    p.add_argument("--cluster-workers", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp())
    config = Path(args.config) if args.config else None
    if args.reduced:
        config = tmp / "reduced.toml"
        config.write_text(REDUCED)
    record: dict[str, Any] = {
        "what": "replearn assignment on the built-in SYNTHETIC crops, each run in its own process, timed from outside",
        "config": "reduced: " + REDUCED.strip().replace("\n", "; ") if args.reduced else (args.config or "default"),
        "machine": machine_info(), "cores": cores(), "nice": os.nice(0), "started_load": os.getloadavg(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "local": {}, "cluster": {},
    }
    out = args.out or ROOT / "bench" / "results" / f"parallel-grid-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:  # after every run: a bench stopped by its time limit keeps what it measured
        record["finished_load"] = os.getloadavg()
        out.write_text(json.dumps(record, indent=1))

    every = {"jobs1_threads2": ["--jobs", "1", "--threads", "2"], "jobs2_threads1": ["--jobs", "2", "--threads", "1"],
             "jobs2_threads0": ["--jobs", "2", "--threads", "0"]}
    modes = {m: every[m] for m in args.local_modes}
    if "local" in args.modes:
        runs: dict[str, list] = {m: [] for m in modes}
        for i in range(args.repeats):  # paired: both modes once per round, the order alternating
            for m in (list(modes) if i % 2 == 0 else list(modes)[::-1]):
                runs[m].append(one_run(modes[m], config, seed=0))
                record["local"] = {k: {"runs": r} for k, r in runs.items()}
                save()
                print(f"round {i}: {m}: {runs[m][-1]['wall_s']:.1f} s (load {runs[m][-1]['load_before'][0]:.2f})",
                      flush=True)
        record["local"] = {m: {"runs": r, **summary(r)} for m, r in runs.items()}
        first, second = modes
        ratios = [a["wall_s"] / b["wall_s"] for a, b in zip(runs[first], runs[second])]
        record["local"]["speedup_paired"] = ratios
        record["local"]["speedup_mean"] = float(np.mean(ratios))
        print(f"speed-up of {second} over {first}: {np.round(ratios, 2).tolist()}", flush=True)
    if "cluster" in args.modes:
        from distributed import LocalCluster

        for n in args.cluster_workers:
            with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                              dashboard_address=None) as cluster:
                run = one_run(["--scheduler", cluster.scheduler_address, "--threads", "1"], config, seed=0)
            record["cluster"][str(n)] = run
            save()
            print(f"LocalCluster, {n} worker(s): {run['wall_s']:.1f} s, CNN grid {run['timing']['cnn_s']:.1f} s",
                  flush=True)
    save()
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
