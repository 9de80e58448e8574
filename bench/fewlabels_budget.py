"""Budget check of issue 17: one method at one label count on MNIST (default: semi-supervised, 4 per class).

Runs ``replearn fewlabels`` in-process for one method and one label count and writes
``bench/results/fewlabels-<stamp>.json``: the accuracy of every draw, wall and CPU seconds, the load average
before and after (a shared machine's wall time says little without it), the machine. The target is 10 minutes
of wall time on 2 otherwise idle cores; CPU seconds are the load-independent number.

    python bench/fewlabels_budget.py                              # semisup, 4 per class, 1 draw
    python bench/fewlabels_budget.py --method cnn_aug --draws 5
    python bench/fewlabels_budget.py --extra=--semisup-steps=1500
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="semisup")
    parser.add_argument("--labels", default="4")
    parser.add_argument("--draws", type=int, default=1)
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--data-dir", default=None, help="folder with mnist/ and fashion-mnist/ (default: replearn's)")
    parser.add_argument("--extra", action="append", default=[], help="more fewlabels flags, e.g. --extra=--ratio=3")
    args = parser.parse_args()
    from replearn.cli import main as replearn_main
    from replearn.utils.runtime import machine_info

    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = Path(tempfile.mkdtemp(prefix="fewlabels-bench-")) / "run"  # the run folder is not kept in the repo
    argv = ["fewlabels", "--dataset", args.dataset, "--labels", args.labels, "--draws", str(args.draws),
            "--methods", args.method, "--out", str(out), "--no-progress", *args.extra]
    argv += ["--data-dir", args.data_dir] if args.data_dir else []
    load_before, wall, cpu = os.getloadavg(), time.perf_counter(), time.process_time()
    code = replearn_main(argv)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    record = {"argv": argv, "exit_code": code, "wall_s": wall, "cpu_s": cpu, "load_before": load_before,
              "load_after": os.getloadavg(), "machine": machine_info(), "target_wall_s": 600}
    if code == 0:
        metrics = json.loads((out / "metrics.json").read_text())
        record["records"] = metrics["records"]
    path = HERE / "results" / f"fewlabels-{stamp}.json"
    path.write_text(json.dumps(record, indent=2))
    print(f"wrote {path}: wall {wall:.0f} s, CPU {cpu:.0f} s, load {load_before[0]:.1f} -> {os.getloadavg()[0]:.1f}")
    return code


if __name__ == "__main__":
    sys.exit(main())
