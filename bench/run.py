"""Paired benchmark: the lecture's Keras/TensorFlow code against replearn, on this CPU.

Runs the two sides alternately (Keras, replearn, Keras, replearn, ...) for each
workload, every measurement in a fresh process, while holding the machine's
heavy-job lock (``/tmp/replearn-heavy.lock``) so no other heavy job runs at the
same time. Writes ``bench/results/<timestamp>.json`` (every run, machine,
versions, load) and ``bench/results/latest.md`` (medians and paired ratios).

    python bench/run.py                                   # 3 pairs, both workloads, the default variants
    python bench/run.py --pairs 5 --steps 30
    python bench/run.py --variants cnn=fp32,cl,bf16+cl --variants ae=cl,bf16+cl

The Keras side runs from ``bench/.keras-venv`` (created on first use by
``bench/keras_reference/setup_venv.sh``); nothing is installed into the project's environment.
"""

from __future__ import annotations

import argparse
import datetime
import fcntl
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
KERAS_VENV = HERE / ".keras-venv"
LOCK = Path("/tmp/replearn-heavy.lock")
WORKLOADS = ("cnn", "ae")
#: replearn settings measured by default ("+" joins flags; see bench/replearn_side.py).
DEFAULT_VARIANTS = {"cnn": ["fp32", "cl", "bf16+cl+torchdrop", "bf16+cl"], "ae": ["fp32", "cl", "bf16+cl"]}
#: Timed training steps per measurement (the autoencoder's steps are short, so it gets more).
DEFAULT_STEPS = {"cnn": 20, "ae": 40}
NAMES = {"cnn": "MiniVGG CNN (Fashion-MNIST, batch 512, SGD)", "ae": "conv autoencoder (MNIST, batch 256, Adam)"}
GOAL = 4.0


def machine() -> dict:
    """CPU model, core count, relevant ISA flags and OS, from lscpu and platform."""
    info: dict = {"platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count()}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    for key in ("Model name", "CPU(s)", "Thread(s) per core", "Core(s) per socket", "L2 cache", "L3 cache",
                "Hypervisor vendor"):
        if key in fields:
            info[key] = fields[key]
    flags = set(fields.get("Flags", "").split())
    info["isa"] = sorted(f for f in flags if f.startswith(("avx512", "amx", "avx_vnni", "avx2", "fma")))
    try:
        info["mem_total_gb"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    return info


def ensure_keras_venv() -> Path:
    """Path of the Keras venv's python, creating the venv on first use."""
    python = KERAS_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run(["bash", str(HERE / "keras_reference" / "setup_venv.sh")], check=True)
    return python


def run_one(cmd: list[str], env: dict[str, str], log) -> dict:
    """Run one measurement process; return its JSON plus the load average before and after."""
    load_before = os.getloadavg()
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    log.write(f"$ {' '.join(cmd)}\n{proc.stderr}\n{proc.stdout}\n")
    log.flush()
    if proc.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd)} failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = time.perf_counter() - start
    result["loadavg_before"] = [round(v, 2) for v in load_before]
    result["loadavg_after"] = [round(v, 2) for v in os.getloadavg()]
    return result


def _stats(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def summarise(runs: list[dict]) -> dict:
    """Per workload and setting: medians, ranges and paired ratios to the Keras run of the same pair."""
    out: dict = {}
    for workload in WORKLOADS:
        mine = [r for r in runs if r["workload"] == workload]
        if not mine:
            continue
        keras = {r["pair"]: r for r in mine if r["side"] == "keras"}
        entry: dict = {}
        for variant in dict.fromkeys(f"{r['side']}:{r['variant']}" for r in mine):
            rs = [r for r in mine if f"{r['side']}:{r['variant']}" == variant]
            metric = "test_accuracy" if workload == "cnn" else "test_mse"
            e = {
                "train_img_per_s": _stats([r["train_img_per_s"] for r in rs]),
                "infer_img_per_s": _stats([r["infer_img_per_s"] for r in rs]),
                "peak_rss_mb": max(r["peak_rss_mb"] for r in rs),
                metric: statistics.median(r[metric] for r in rs),
                "warmup_seconds": statistics.median(r["warmup_seconds"] for r in rs),
            }
            if not variant.startswith("keras:") and keras:
                e["train_ratio"] = _stats([r["train_img_per_s"] / keras[r["pair"]]["train_img_per_s"]
                                           for r in rs if r["pair"] in keras])
                e["infer_ratio"] = _stats([r["infer_img_per_s"] / keras[r["pair"]]["infer_img_per_s"]
                                           for r in rs if r["pair"] in keras])
            entry[variant] = e
        out[workload] = entry
    return out


def markdown(report: dict) -> str:
    """The Markdown summary (the table pasted into bench/README.md and docs/performance.md)."""
    m, s = report["machine"], report["settings"]
    lines = [
        f"# Benchmark {report['timestamp']}",
        "",
        f"Machine: {m.get('Model name', '?')}, {m.get('CPU(s)', m.get('cpu_count'))} CPUs, "
        f"{m.get('mem_total_gb', '?')} GB; ISA: {', '.join(m.get('isa', [])) or '?'}; {m['platform']}.",
        f"Versions: replearn side torch {report['versions'].get('torch', '?')}; Keras side "
        f"TensorFlow {report['versions'].get('tensorflow', '?')}, Keras {report['versions'].get('keras', '?')}.",
        f"Settings: {s['pairs']} pairs run alternately (Keras, replearn, ...), timed training steps "
        f"{', '.join(f'{w} {n}' for w, n in s['steps'].items())} "
        f"after a warm-up epoch of as many steps, inference on {s['infer']} test images; one process per "
        f"measurement; lock held: {s['lock']}. Load average before the first run "
        f"{report['load_start']}, after the last {report['load_end']}.",
        "",
        "| workload | setting | train img/s (median, min-max) | x Keras (paired median, min-max) "
        "| inference img/s | x Keras | peak RSS MB | metric |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for workload, entry in report["summary"].items():
        for variant, e in entry.items():
            t, i = e["train_img_per_s"], e["infer_img_per_s"]
            tr, ir = e.get("train_ratio"), e.get("infer_ratio")
            metric = (f"acc {e['test_accuracy']:.3f}" if "test_accuracy" in e else f"mse {e['test_mse']:.4f}")
            lines.append(
                f"| {workload} | {variant} | {t['median']:,.0f} ({t['min']:,.0f}-{t['max']:,.0f}) | "
                + (f"**{tr['median']:.2f}** ({tr['min']:.2f}-{tr['max']:.2f})" if tr else "1") + " | "
                + f"{i['median']:,.0f} | " + (f"{ir['median']:.2f}" if ir else "1") + " | "
                + f"{e['peak_rss_mb']:,.0f} | {metric} |"
            )
    lines += ["", "Goal: replearn training at least 4x the Keras reference (paired ratio)."]
    for workload, entry in report["summary"].items():
        best = max((e["train_ratio"]["median"], v) for v, e in entry.items() if "train_ratio" in e)
        verdict = "met" if best[0] >= GOAL else "not met"
        lines.append(f"- {NAMES[workload]}: best {best[1]} at {best[0]:.2f}x: {verdict}.")
    lines += [
        "",
        "The metric is measured after two epochs over the small bench subset: a sanity check that both "
        "sides train, not the workflows' accuracy. Timings on a shared 2-core VM vary by about +-25% "
        "between runs; compare only ratios from the same paired run.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pairs", type=int, default=3, help="Keras/replearn pairs per workload (default 3)")
    p.add_argument("--steps", type=int, default=0,
                   help=f"timed training steps per measurement (default: {DEFAULT_STEPS})")
    p.add_argument("--infer", type=int, default=10000, help="test images for inference (default 10000)")
    p.add_argument("--workloads", default="cnn,ae", help="comma-separated: cnn, ae")
    p.add_argument("--variants", action="append", default=[], metavar="WORKLOAD=V1,V2",
                   help="replearn settings for a workload, flags joined by '+', e.g. cnn=cl,bf16+cl")
    p.add_argument("--threads", type=int, default=0, help="torch threads on the replearn side (0: default)")
    p.add_argument("--no-lock", action="store_true", help=f"do not take {LOCK} (results are then noisier)")
    p.add_argument("--lock-held", action="store_true", help=f"the caller already holds {LOCK} (flock ... run.py)")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)

    workloads = [w for w in args.workloads.split(",") if w]
    for w in workloads:
        if w not in WORKLOADS:
            raise SystemExit(f"--workloads: {w!r} is unknown; allowed: {', '.join(WORKLOADS)}")
    variants = {k: list(v) for k, v in DEFAULT_VARIANTS.items()}
    for item in args.variants:
        w, _, vs = item.partition("=")
        if w not in WORKLOADS or not vs:
            raise SystemExit(f"--variants {item!r}: expected WORKLOAD=V1,V2 with WORKLOAD in {WORKLOADS}")
        variants[w] = [v.replace("+", ",") for v in vs.split(",")]
    variants = {w: [v.replace("+", ",") for v in vs] for w, vs in variants.items()}

    keras_python = ensure_keras_venv()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "MKL_", "TF_NUM"))}
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    steps = {w: args.steps or DEFAULT_STEPS[w] for w in WORKLOADS}

    lock_file = open(LOCK, "a+") if not (args.no_lock or args.lock_held) else None
    if lock_file is not None:
        print(f"bench: waiting for {LOCK} ...", file=sys.stderr)
        fcntl.flock(lock_file, fcntl.LOCK_EX)
    runs: list[dict] = []
    load_start = [round(v, 2) for v in os.getloadavg()]
    try:
        with open(out_dir / f"{stamp}.log", "w") as log:
            for pair in range(args.pairs):
                for workload in workloads:
                    common = ["--steps", str(steps[workload]), "--infer", str(args.infer)]
                    cmds = [("keras", "lecture", [str(keras_python), str(HERE / "keras_reference" / "lecture_keras.py"),
                                                  "--workload", workload, *common])]
                    for v in variants[workload]:
                        cmds.append(("replearn", v, [sys.executable, str(HERE / "replearn_side.py"), "--workload",
                                                     workload, "--variant", v, "--threads", str(args.threads),
                                                     *common]))
                    for side, variant, cmd in cmds:
                        print(f"bench: pair {pair + 1}/{args.pairs} {workload} {side} {variant}", file=sys.stderr)
                        r = run_one(cmd, env, log)
                        r["pair"] = pair
                        runs.append(r)
                        print(f"bench:   train {r['train_img_per_s']:,.0f} img/s, infer {r['infer_img_per_s']:,.0f}"
                              f" img/s, peak RSS {r['peak_rss_mb']:,.0f} MB", file=sys.stderr)
    finally:
        if lock_file is not None:
            fcntl.flock(lock_file, fcntl.LOCK_UN)
            lock_file.close()

    versions: dict = {}
    for r in runs:
        versions.update(r.get("versions", {}))
    report = {
        "timestamp": stamp,
        "machine": machine(),
        "versions": versions,
        "settings": {"pairs": args.pairs, "steps": {w: steps[w] for w in workloads}, "infer": args.infer,
                     "variants": variants, "threads": args.threads, "lock": not args.no_lock},
        "load_start": load_start,
        "load_end": [round(v, 2) for v in os.getloadavg()],
        "summary": summarise(runs),
        "runs": runs,
    }
    tmp = out_dir / f"{stamp}.json.tmp"
    tmp.write_text(json.dumps(report, indent=1))
    tmp.replace(out_dir / f"{stamp}.json")
    md = markdown(report)
    tmp = out_dir / "latest.md.tmp"
    tmp.write_text(md)
    tmp.replace(out_dir / "latest.md")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
