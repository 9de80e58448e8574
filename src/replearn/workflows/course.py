"""The whole course in one run: Fashion base, transfer with comparison, autoencoder, assignment.

Runs each workflow with its defaults (or ``--quick``) as its own process, in
``<run>/<stage>/``, measuring its wall time and peak memory (resident set
size), then writes one combined report (``report.md`` / ``report.html``) and
``metrics.json`` with every stage's time, memory and headline numbers. The
course's time budget is 30 minutes on 2 CPU cores.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from replearn.errors import ReplearnError
from replearn.workflows import course_report
from replearn.workflows._run import MnistRunOptions, Result, option, output_location

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
COMMON = ("seed", "device", "data_dir", "quick", "progress")
"""The options passed on to every stage that has them."""


@dataclass
class Config(MnistRunOptions):
    """Which stages to run and the options they share."""

    stages: str = option(",".join(STAGES), f"comma-separated stages to run, in course order "
                                           f"(default: {','.join(STAGES)})")
    assignment_data: str | None = option(None, "the course's data.npz for the assignment stage "
                                               "(default: built-in SYNTHETIC crops)", metavar="NPZ")
    compare: bool = option(True, "the comparisons (from-scratch transfer, PCA/t-SNE/ISOMAP); --no-compare skips "
                                 "them to save time")

    def check(self) -> None:
        self.selected()
        if self.assignment_data and not Path(self.assignment_data).is_file():
            raise ReplearnError(f"--assignment-data {self.assignment_data}: no such file")

    def selected(self) -> list[str]:
        """The stages to run, in course order."""
        stages = [s.strip() for s in self.stages.split(",") if s.strip()]
        unknown = [s for s in stages if s not in STAGES]
        if unknown or not stages:
            raise ReplearnError(f"--stages: unknown stage {unknown[0] if unknown else '(none)'!r}; "
                                f"choose from {', '.join(STAGES)}")
        return [s for s in STAGES if s in stages]


# ---------------------------------------------------------------------------- Stages
def stage_args(stage: str, run_dir: Path, cfg: Config) -> list[str]:
    """The command line of one stage (without the common options)."""
    if stage == "fashion":
        return ["fashion"]
    if stage == "transfer":
        base = run_dir / "fashion"
        if not (base / "model.safetensors").is_file():
            raise ReplearnError(f"the transfer stage needs the fashion stage's model in {base}; include 'fashion' in --stages")
        return ["transfer", "--base", str(base)] + (["--compare", "--fine-tune"] if cfg.compare else [])
    if stage == "autoencoder":
        return ["autoencoder"] + (["--compare"] if cfg.compare else [])
    if stage == "assignment":
        return ["assignment"] + (["--data", cfg.assignment_data] if cfg.assignment_data else [])
    raise AssertionError(stage)


def common_args(stage: str, cfg: Config) -> list[str]:
    """The common options for ``stage``: each one the stage's command declares (all of them for older commands)."""
    module = importlib.import_module(f"replearn.workflows.{stage}")
    accepted = {f.name for f in dataclasses.fields(module.Config)} if hasattr(module, "Config") else set(COMMON)
    given = {"seed": ["--seed", str(cfg.seed)], "device": ["--device", cfg.device],
             "data_dir": ["--data-dir", cfg.data_dir] if cfg.data_dir else [],
             "quick": ["--quick"] if cfg.quick else [], "progress": [] if cfg.progress else ["--no-progress"]}
    return [word for name in COMMON if name in accepted for word in given[name]]


def run_stage(argv: list[str]) -> tuple[int, float, float]:
    """Run ``replearn <argv>`` as a child process; return (exit code, wall seconds, peak RSS in MB)."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "replearn", *argv])
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, time.perf_counter() - start, usage.ru_maxrss / 1024  # Linux reports KiB


# ---------------------------------------------------------------------------- Run
def run(cfg: Config, out: Path | None = None) -> Result:
    """Run the stages one after the other into ``out/<stage>/``; the combined report and metrics."""
    run_dir = Path(out) if out is not None else output_location(sys.modules[__name__], None)
    stages = cfg.selected()
    print(f"replearn course: stages {', '.join(stages)} -> {run_dir}")

    results: dict[str, Any] = {}
    for stage in stages:
        argv = stage_args(stage, run_dir, cfg) + ["--out", str(run_dir / stage)] + common_args(stage, cfg)
        print(f"\n=== {stage}: replearn {' '.join(argv)}", flush=True)
        code, seconds, rss_mb = run_stage(argv)
        results[stage] = {"exit_code": code, "wall_s": round(seconds, 1), "peak_rss_mb": round(rss_mb, 1),
                          "command": "replearn " + " ".join(argv)}
        if code != 0:
            raise ReplearnError(f"stage {stage!r} failed with exit code {code} (its message is above); "
                                f"finished stages are in {run_dir}")
        results[stage]["headline"] = course_report.headline(stage, run_dir / stage)

    total = sum(r["wall_s"] for r in results.values())
    metrics = {"workflow": COMMAND, "quick": cfg.quick, "seed": cfg.seed, "stages": results,
               "total_wall_s": round(total, 1), "budget_s": BUDGET_S,
               "within_budget": total <= BUDGET_S, "peak_rss_mb": max(r["peak_rss_mb"] for r in results.values())}
    return Result(metrics=metrics, report=course_report.report(metrics, run_dir), summary=(
        f"\ncourse done in {total / 60:.1f} min (budget {BUDGET_S // 60} min), peak memory "
        f"{metrics['peak_rss_mb']:.0f} MB; report: {run_dir / 'report.html'}"))
