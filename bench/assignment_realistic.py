"""The assignment's whole protocol on labelled sets we have, as stand-ins for the hidden real cells.

Cases (``--cases``, default all): the built-in generator's presets ``sim`` and ``widefield``
(SYNTHETIC), and three-class subsets of Fashion-MNIST (T-shirt/top, pullover, shirt) and MNIST
(digits 0, 6, 8) padded from 28x28 to 40x40 (real images with known labels), each at 169 labelled +
73 unlabelled crops (the hidden set's size and class mix, 52/26/22 %) and at 400 + 3,892 (the course's
size); and ``aureus-169``: REAL cells, the 244 that ``replearn crops`` cuts from the shared field, 169 of
them labelled (a stratified draw per seed, in the annotation's own class mix) with the stages of
``bench/labels/aureus-maicrobe-stages.csv`` (an engineer's annotation, not a microbiologist's), the other 75
unlabelled. Each case runs ``replearn assignment`` with its default grid (or ``--config``) on an ``.npz``
written to a temporary folder, and keeps every method's accuracy (mean and 95% interval), the
recommended model and its nested (honest) accuracy, the baselines and the wall time.

    python bench/assignment_realistic.py                          # every case (long: run it under nice)
    python bench/assignment_realistic.py --cases fashion-169 mnist-169 --config my_grid.toml
    python bench/assignment_realistic.py --markdown bench/results/assignment-latest.md
    python bench/assignment_realistic.py --table a.json b.json --markdown table.md   # merge earlier results

Writes ``bench/results/assignment-<stamp>.json`` and a Markdown table (``--markdown``).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from replearn.data import AssignmentData, synthetic_aureus
from replearn.data.crops import process_field, read_stages
from replearn.data.idx import read_idx
from replearn.data.tiff import read_channel
from replearn.workflows import _assignment_grid as grid
from replearn.workflows import assignment
from replearn.workflows._run import execute

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
if not DATASETS.is_dir():  # a worktree under /work/wt/<name>
    DATASETS = Path("/work/shared/datasets")
SIZES = {"169": (169, 73), "400": (400, 3892)}
SHARES = (0.52, 0.26, 0.22)  # the hidden real set: 88 / 44 / 37 of 169
REAL = {"fashion": ("fashion-mnist", (0, 2, 6), ["T-shirt/top", "pullover", "shirt"]),
        "mnist": ("mnist", (0, 6, 8), ["digit 0", "digit 6", "digit 8"])}
FIELD = DATASETS / "aureus-maicrobe"
FIELD_STAGES = ROOT / "bench" / "labels" / "aureus-maicrobe-stages.csv"
CASES = [f"{src}-{n}" for src in ("sim", "widefield", "fashion", "mnist") for n in SIZES] + ["aureus-169"]


def counts(n: int) -> list[int]:
    """Class counts of ``n`` crops in the hidden set's proportions (largest remainder)."""
    raw = np.array(SHARES) * n
    out = np.floor(raw).astype(int)
    out[np.argsort(raw - out)[::-1][: n - out.sum()]] += 1
    return out.tolist()


def real_subset(source: str, n_lab: int, n_unl: int, seed: int) -> AssignmentData:
    """Three classes of Fashion-MNIST or MNIST (training files), padded to 40x40, labelled + unlabelled."""
    folder, classes, names = REAL[source]
    images = read_idx(DATASETS / folder / "train-images-idx3-ubyte.gz", 3)
    labels = read_idx(DATASETS / folder / "train-labels-idx1-ubyte.gz", 1)
    rng = np.random.default_rng(seed)
    lab, lab_y, unl = [], [], []
    for k, (c, n_l, n_u) in enumerate(zip(classes, counts(n_lab), counts(n_unl))):
        idx = rng.permutation(np.flatnonzero(labels == c))[: n_l + n_u]
        lab.append(images[idx[:n_l]])
        lab_y += [k] * n_l
        unl.append(images[idx[n_l:]])
    pad = ((0, 0), (6, 6), (6, 6))
    order = rng.permutation(n_lab)
    return AssignmentData(np.pad(np.concatenate(lab), pad)[order], np.array(lab_y, np.int64)[order],
                          np.pad(np.concatenate(unl), pad)[rng.permutation(n_unl)],
                          source=f"{folder} classes {classes}", synthetic=False, class_names=names)


@functools.cache
def field_channels() -> dict[str, np.ndarray]:
    """The shared field's membrane, phase and DNA images."""
    return {name: read_channel(FIELD / f"test_{name}.tif", name) for name in ("membrane", "phase", "dna")}


@functools.cache
def field_cells() -> AssignmentData:
    """The shared field's 244 real cells (``replearn crops`` defaults), all labelled with the annotation."""
    channels = field_channels()
    stages = read_stages(FIELD_STAGES)
    return process_field(channels["membrane"], channels["phase"], channels["dna"], stages=stages,
                         source="aureus-maicrobe field (REAL cells)", progress=False).data


def field_draw(n_lab: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (cell id - 1) of :func:`field_subset`'s ``n_lab`` labelled cells (stratified, seeded), and the rest."""
    labels = field_cells().labels
    return tuple(train_test_split(np.arange(len(labels)), train_size=n_lab, stratify=labels, random_state=seed))


def field_subset(n_lab: int, seed: int) -> AssignmentData:
    """``n_lab`` of the field's annotated cells labelled (stratified, seeded), the rest unlabelled."""
    cells = field_cells()
    lab, unl = field_draw(n_lab, seed)
    return AssignmentData(cells.labelled[lab], cells.labels[lab], cells.labelled[unl], source=cells.source,
                          synthetic=False, class_names=cells.class_names)


def case_data(case: str, seed: int) -> AssignmentData:
    source, size = case.rsplit("-", 1)
    if source == "aureus":
        return field_subset(int(size), seed)
    n_lab, n_unl = SIZES[size]
    if source in REAL:
        return real_subset(source, n_lab, n_unl, seed)
    data = synthetic_aureus(n_lab, n_unl, seed=seed, preset=source)
    return data


def run_case(case: str, seed: int, config: str | None, quick: bool, work: Path) -> dict:
    data = case_data(case, seed)
    npz = work / f"{case}.npz"
    data.save_npz(npz)
    tables = grid.load_grid(config) if config else {}  # the file's tables, as `replearn assignment --config` reads them
    cfg = assignment.Config(data_file=str(npz), config=config, seed=seed, quick=quick, progress=False, **tables)
    cfg.check()
    t = time.perf_counter()
    result = execute(assignment, cfg, work / case)
    wall = time.perf_counter() - t
    m = result.metrics
    models = {**m["cnn"], **m["probes"]}  # per split: paired tests across runs, selection rules replayed offline
    rows = [{**{k: r[k] for k in ("name", "kind", "accuracy_mean", "accuracy_ci", "macro_f1_mean", "runs", "recall",
                                  "not_better_than_majority")}, "accuracy": models[r["name"]]["accuracy"],
             "inner_accuracy": models[r["name"]].get("inner_accuracy", [])} for r in m["results"]]
    v = m["verdict"]
    return {"case": case, "seed": seed, "synthetic": bool(data.synthetic), "n_labelled": len(data.labels),
            "n_unlabelled": len(data.unlabelled), "protocol": m["protocol"]["description"],
            "recommended": v["recommended"], "recommended_nested": {k: v["selection"][k] for k in
                                                                    ("accuracy_mean", "accuracy_ci", "runs")},
            "best_baseline": v["best_baseline"], "learned_beating_baseline": v["learned_beating_baseline"],
            "not_better_than_majority": v["not_better_than_majority"], "wall_s": wall, "rows": rows,
            "comparisons": m["comparisons"]}


def markdown(results: list[dict], header: str) -> str:
    """One table: rows = methods, columns = cases, cells = accuracy mean ± 95% half-width."""
    names: list[str] = []
    for r in results:
        names += [row["name"] for row in r["rows"] if row["name"] not in names]
    seeds = {r.get("seed") for r in results}
    cols = [r["case"] + (f" seed {r['seed']}" if len(seeds) > 1 else "") + (" (SYNTHETIC)" if r["synthetic"] else "")
            for r in results]
    lines = [header, "", "| method | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name in names:
        cells = []
        for r in results:
            row = next((x for x in r["rows"] if x["name"] == name), None)
            cells.append("-" if row is None else f"{row['accuracy_mean']:.3f} ± {row['accuracy_ci']:.3f}"
                         + (" (≤ majority)" if row["not_better_than_majority"] else ""))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("| **recommended (nested, honest)** | " + " | ".join(
        f"{r['recommended']}: {r['recommended_nested']['accuracy_mean']:.3f} ± "
        f"{r['recommended_nested']['accuracy_ci']:.3f}" for r in results) + " |")
    lines.append("| protocol | " + " | ".join(r["protocol"] for r in results) + " |")
    lines.append("| wall time (s) | " + " | ".join(f"{r['wall_s']:.0f}" for r in results) + " |")
    return "\n".join(lines) + "\n"


def write(args: argparse.Namespace, results: list[dict], load: tuple[float, float, float]) -> None:
    """The JSON record (and the Markdown table) of the cases run so far."""
    record = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load_before": load,
                          "load_after": os.getloadavg(), "threads": os.environ.get("OMP_NUM_THREADS")},
              "config": args.config, "seed": args.seed, "quick": args.quick, "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=1) + "\n")
    if args.markdown:
        head = (f"Accuracy mean ± 95% interval over the protocol's splits, seed {args.seed}"
                + (", --quick" if args.quick else "") + f"; load average before {load[0]:.1f} (2 cores shared).")
        Path(args.markdown).write_text(markdown(results, head))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", nargs="+", default=CASES, choices=CASES)
    ap.add_argument("--config", help="grid config (TOML) instead of the default grid")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="--quick runs (a smoke test of the script)")
    ap.add_argument("--markdown", help="also write the table to this Markdown file")
    ap.add_argument("--table", nargs="+", metavar="JSON", help="only write --markdown from earlier result files")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / f"assignment-{time.strftime('%Y%m%d-%H%M%S')}.json"))
    args = ap.parse_args(argv)
    if args.table:
        records = [json.loads(Path(f).read_text()) for f in args.table]
        results = [r for rec in records for r in rec["results"]]
        loads = ", ".join(f"{rec['machine']['load_before'][0]:.1f}" for rec in records)
        seeds = ", ".join(str(s) for s in sorted({rec["seed"] for rec in records}))
        head = (f"Accuracy mean ± 95% interval over the protocol's splits, seed(s) {seeds}; load average "
                f"before each batch of cases {loads} (2 cores shared by other jobs: wall times are taken under load).")
        Path(args.markdown or "/dev/stdout").write_text(markdown(results, head))
        return 0
    results = []
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases:
            print(f"== {case}", flush=True)
            results.append(run_case(case, args.seed, args.config, args.quick, Path(tmp)))
            r = results[-1]
            print(f"   recommended {r['recommended']}: {r['recommended_nested']['accuracy_mean']:.3f}; "
                  f"best baseline {r['best_baseline']}; {r['wall_s']:.0f} s", flush=True)
            write(args, results, load)  # after every case: a long run that stops keeps what it measured
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
