"""Peak memory (RSS) and wall time of every workflow's run, each in its own process.

    python bench/workflow_memory.py --quick          # the --quick runs (a few minutes)
    python bench/workflow_memory.py                  # the default runs (long: the whole course)
    python bench/workflow_memory.py --only fashion,autoencoder

Each step runs ``python -m replearn <workflow> ...`` as a child process; its
peak resident set size comes from ``os.wait4`` (the kernel's ``ru_maxrss`` of
that child alone). Steps that need an earlier step's output (``transfer`` needs
``fashion``'s run) are skipped when it failed; the exit code is 1 when any step
failed or was skipped. MNIST and Fashion-MNIST are read from ``--data-dir``
(default: ``../shared/datasets`` when it exists). Holds ``/tmp/replearn-heavy.lock``
unless ``--no-lock``. Writes ``bench/results/memory-<timestamp>.json`` and
``bench/results/memory-latest.md``.
"""

from __future__ import annotations

import argparse
import datetime
import fcntl
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED = REPO.parent / "shared" / "datasets"
LOCK = Path("/tmp/replearn-heavy.lock")
LIMIT_MB = 1536  # the budget: 1.5 GB per workflow's default run
FIELD = SHARED / "aureus-maicrobe"


def steps(tmp: Path, data_dir: str | None) -> list[tuple[str, list[str], list[str]]]:
    """(name, replearn arguments, names of steps it needs) in running order."""
    data = ["--data-dir", data_dir] if data_dir else []  # MNIST / Fashion-MNIST
    return [
        ("synth", ["synth", "--out", str(tmp / "synth.npz")], []),
        ("fashion", ["fashion", "--out", str(tmp / "fashion"), *data], []),
        ("transfer", ["transfer", "--base", str(tmp / "fashion"), "--compare", "--out", str(tmp / "transfer"), *data],
         ["fashion"]),
        ("autoencoder", ["autoencoder", "--out", str(tmp / "autoencoder"), *data], []),
        ("assignment", ["assignment", "--out", str(tmp / "assignment")], []),
        ("crops", ["crops", "--membrane", str(FIELD / "test_membrane.tif"), "--phase", str(FIELD / "test_phase.tif"),
                   "--dna", str(FIELD / "test_dna.tif"), "--out", str(tmp / "cells.npz")], []),
    ]


def run_step(argv: list[str], env: dict[str, str], log) -> dict:
    """Run ``python -m replearn argv`` and return exit code, wall seconds and the child's peak RSS in MB."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "replearn", *argv], stdout=log, stderr=subprocess.STDOUT,
                            env=env, cwd=REPO)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"exit_code": proc.returncode, "wall_seconds": round(time.perf_counter() - start, 1),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="pass --quick to every workflow")
    p.add_argument("--only", default="", help="comma-separated step names (default: all)")
    p.add_argument("--extra", action="append", default=[], metavar="ARG", help="extra argument for every step")
    p.add_argument("--data-dir", default=str(SHARED) if SHARED.is_dir() else None,
                   help="folder holding mnist/ and fashion-mnist/ (default: ../shared/datasets when present, "
                        "else the workflows' own lookup)")
    p.add_argument("--no-lock", action="store_true")
    p.add_argument("--out", default=str(HERE / "results"))
    args = p.parse_args(argv)

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    env = dict(os.environ, PYTHONPATH=str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""),
               MPLBACKEND="Agg")
    only = {s for s in args.only.split(",") if s}
    lock_file = None if args.no_lock else open(LOCK, "a+")
    if lock_file is not None:
        print(f"memory: waiting for {LOCK} ...", file=sys.stderr)
        fcntl.flock(lock_file, fcntl.LOCK_EX)
    results: dict[str, dict] = {}
    load_start = [round(v, 2) for v in os.getloadavg()]
    try:
        with tempfile.TemporaryDirectory(prefix="replearn-mem-") as tmp, \
                open(out_dir / f"memory-{stamp}.log", "w") as log:
            for name, step_argv, needs in steps(Path(tmp), args.data_dir):
                if only and name not in only:
                    continue
                if any(results.get(n, {}).get("exit_code") != 0 for n in needs):
                    results[name] = {"skipped": f"needs {', '.join(needs)}"}
                    continue
                bars = [] if name == "synth" else ["--no-progress"]  # commands with progress bars
                full = step_argv + (["--quick"] if args.quick else []) + bars + args.extra
                print(f"memory: replearn {' '.join(full)}", file=sys.stderr)
                log.write(f"\n$ replearn {' '.join(full)}\n")
                log.flush()
                r = run_step(full, env, log)
                r["argv"] = full
                results[name] = r
                print(f"memory:   exit {r['exit_code']}, {r['wall_seconds']} s, peak RSS {r['peak_rss_mb']} MB",
                      file=sys.stderr)
    finally:
        if lock_file is not None:
            fcntl.flock(lock_file, fcntl.LOCK_UN)
            lock_file.close()

    report = {"timestamp": stamp, "quick": args.quick, "limit_mb": LIMIT_MB, "load_start": load_start,
              "load_end": [round(v, 2) for v in os.getloadavg()], "steps": results}
    (out_dir / f"memory-{stamp}.json").write_text(json.dumps(report, indent=1))
    lines = [f"# Workflow peak memory {stamp} ({'--quick runs' if args.quick else 'default runs'})", "",
             "| workflow | exit | wall s | peak RSS MB | under 1.5 GB |", "|---|---|---|---|---|"]
    for name, r in results.items():
        if "skipped" in r:
            lines.append(f"| {name} | skipped ({r['skipped']}) | | | |")
        elif r["exit_code"] != 0:
            lines.append(f"| {name} | **{r['exit_code']}** (failed: see memory-{stamp}.log) | {r['wall_seconds']} | "
                         f"{r['peak_rss_mb']:,.0f} | not measured |")
        else:
            ok = "yes" if r["peak_rss_mb"] < LIMIT_MB else "**no**"
            lines.append(f"| {name} | {r['exit_code']} | {r['wall_seconds']} | {r['peak_rss_mb']:,.0f} | {ok} |")
    lines += ["", f"Load average before {load_start}, after {report['load_end']}.", ""]
    md = "\n".join(lines)
    (out_dir / "memory-latest.md").write_text(md)
    print(md)
    failed = [n for n, r in results.items() if "skipped" in r or r["exit_code"] != 0]
    if failed:
        print(f"memory: {', '.join(failed)} failed or skipped; see {out_dir / f'memory-{stamp}.log'}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
