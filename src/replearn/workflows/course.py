"""The whole course in one run: Fashion base, transfer with comparison, autoencoder, assignment.

Runs each workflow with its defaults (or ``--quick``) as its own process, in
``<run>/<stage>/``, measuring its wall time and peak memory (resident set
size), then writes one combined report (``report.md`` / ``report.html``) and
``metrics.json`` with every stage's time, memory and headline numbers. The
course's time budget is 30 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from replearn.errors import ReplearnError

COMMAND = "course"
HELP = "run the whole course (fashion, transfer, autoencoder, assignment) and write one combined report"
EXAMPLES = """\
examples:
  replearn course                        # every stage with its defaults (budget: 30 min on 2 cores)
  replearn course --quick                # every stage on small subsets: a smoke test of the whole course
  replearn course --stages autoencoder,assignment --assignment-data data.npz
"""

STAGES = ("fashion", "transfer", "autoencoder", "assignment")
BUDGET_S = 30 * 60


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``replearn course`` (plus the common ones, passed on to every stage)."""
    parser.add_argument("--stages", default=",".join(STAGES),
                        help=f"comma-separated stages to run, in course order (default: {','.join(STAGES)})")
    parser.add_argument("--assignment-data", metavar="NPZ",
                        help="the course's data.npz for the assignment stage (default: built-in SYNTHETIC crops)")
    parser.add_argument("--no-compare", action="store_true",
                        help="skip the comparisons (from-scratch transfer, PCA/t-SNE/ISOMAP) to save time")


# ---------------------------------------------------------------------------- Stages
def _stage_args(stage: str, run_dir: Path, args: argparse.Namespace) -> list[str]:
    """The command line of one stage (without the common options)."""
    compare = not args.no_compare
    if stage == "fashion":
        return ["fashion"]
    if stage == "transfer":
        base = run_dir / "fashion"
        if not (base / "model.safetensors").is_file():
            raise ReplearnError(f"the transfer stage needs the fashion stage's model in {base}; include 'fashion' in --stages")
        return ["transfer", "--base", str(base)] + (["--compare", "--fine-tune"] if compare else [])
    if stage == "autoencoder":
        return ["autoencoder"] + (["--compare"] if compare else [])
    if stage == "assignment":
        return ["assignment"] + (["--data", args.assignment_data] if args.assignment_data else [])
    raise AssertionError(stage)


def _common_args(args: argparse.Namespace) -> list[str]:
    out = ["--seed", str(args.seed), "--device", args.device]
    if args.data_dir:
        out += ["--data-dir", args.data_dir]
    if args.quick:
        out.append("--quick")
    if args.no_progress:
        out.append("--no-progress")
    return out


def run_stage(argv: list[str]) -> tuple[int, float, float]:
    """Run ``replearn <argv>`` as a child process; return (exit code, wall seconds, peak RSS in MB)."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "replearn", *argv])
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, time.perf_counter() - start, usage.ru_maxrss / 1024  # Linux reports KiB


# ---------------------------------------------------------------------------- Headlines
def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _fashion(m: dict) -> str:
    return f"Fashion-MNIST test accuracy {_pct(m['test_accuracy'])}"


def _transfer(m: dict) -> str:
    return "; ".join(f"{name}: MNIST test {_pct(v['test_accuracy_mean'])}" for name, v in m["variants"].items())


def _autoencoder(m: dict) -> str:
    return "; ".join(
        f"{r['method']}: 5-NN {r['knn5']:.3f}" + (f", trust. {r['trustworthiness']:.3f}" if r.get("trustworthiness") is not None else "")
        for r in m["methods"]
    )


def _assignment(m: dict) -> str:
    parts = []
    for key, where in (("cnn", "cnn"), ("probe", "probes")):
        name = m["best"].get(key)
        if name:
            parts.append(f"best {key} {name}: val. accuracy {m[where][name]['accuracy_mean']:.3f}")
    return ("SYNTHETIC data; " if m.get("synthetic") else "") + "; ".join(parts)


HEADLINES: dict[str, Callable[[dict], str]] = {
    "fashion": _fashion, "transfer": _transfer, "autoencoder": _autoencoder, "assignment": _assignment,
}
FIGURES = {
    "fashion": ["fashion_curves.png"],
    "transfer": ["transfer_curves.png"],
    "autoencoder": ["autoencoder_codes.png", "autoencoder_reconstructions.png", "autoencoder_compare.png"],
    "assignment": ["cnn_learning_curves.png", "embedding_2d.png"],
}


def headline(stage: str, stage_dir: Path) -> str:
    """One line of the stage's main numbers, read from its ``metrics.json``."""
    try:
        metrics = json.loads((stage_dir / "metrics.json").read_text())
        return HEADLINES[stage](metrics)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"(no headline: {type(exc).__name__} reading {stage_dir / 'metrics.json'})"


# ---------------------------------------------------------------------------- Run
def run(args: argparse.Namespace) -> int:
    from replearn.evaluate import Report
    from replearn.utils.atomic import save_json
    from replearn.utils.rundir import make_run_dir

    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = [s for s in stages if s not in STAGES]
    if unknown or not stages:
        raise ReplearnError(f"--stages: unknown stage {unknown[0] if unknown else '(none)'!r}; choose from {', '.join(STAGES)}")
    stages = [s for s in STAGES if s in stages]
    if args.assignment_data and not Path(args.assignment_data).is_file():
        raise ReplearnError(f"--assignment-data {args.assignment_data}: no such file")
    run_dir = make_run_dir(args.out, COMMAND)
    print(f"replearn course: stages {', '.join(stages)} -> {run_dir}")

    results: dict[str, Any] = {}
    for stage in stages:
        argv = _stage_args(stage, run_dir, args) + ["--out", str(run_dir / stage)] + _common_args(args)
        print(f"\n=== {stage}: replearn {' '.join(argv)}", flush=True)
        code, seconds, rss_mb = run_stage(argv)
        results[stage] = {"exit_code": code, "wall_s": round(seconds, 1), "peak_rss_mb": round(rss_mb, 1),
                          "command": "replearn " + " ".join(argv)}
        if code != 0:
            raise ReplearnError(f"stage {stage!r} failed with exit code {code} (its message is above); "
                                f"finished stages are in {run_dir}")
        results[stage]["headline"] = headline(stage, run_dir / stage)

    total = sum(r["wall_s"] for r in results.values())
    metrics = {"workflow": COMMAND, "quick": args.quick, "seed": args.seed, "stages": results,
               "total_wall_s": round(total, 1), "budget_s": BUDGET_S,
               "within_budget": total <= BUDGET_S, "peak_rss_mb": max(r["peak_rss_mb"] for r in results.values())}

    report = Report("replearn course: representation learning, end to end",
                    banner="QUICK RUN on small subsets: numbers are not representative" if args.quick else "")
    report.text(f"{len(stages)} stages, {total / 60:.1f} min in all (budget {BUDGET_S // 60} min), "
                f"peak memory {metrics['peak_rss_mb']:.0f} MB; seed {args.seed}.")
    report.table(["stage", "time", "peak memory", "headline"],
                 [[s, f"{r['wall_s']:.0f} s", f"{r['peak_rss_mb']:.0f} MB", r["headline"]] for s, r in results.items()])
    for stage in stages:
        report.heading(stage)
        report.code(results[stage]["command"])
        for name in FIGURES[stage]:
            path = run_dir / stage / name
            if path.is_file():
                report.figure(path, f"{stage}: {name}")
        report.text(f"Full outputs: {stage}/ (metrics.json, report or results.md, weights).")
    report.write(run_dir)
    save_json(run_dir / "metrics.json", metrics)
    print(f"\ncourse done in {total / 60:.1f} min (budget {BUDGET_S // 60} min), peak memory "
          f"{metrics['peak_rss_mb']:.0f} MB; report: {run_dir / 'report.html'}")
    return 0
