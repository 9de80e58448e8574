"""The redesign changed no number: each workflow's metrics equal those recorded before it (same seed, threads).

The baselines in ``baselines/`` were recorded on main before the workflows moved to the harness
(commit a01fd35), with ``REPLEARN_RECORD_BASELINES=1`` running this file against that code. Every
number of a baseline's ``metrics.json`` (timings, memory and machine facts aside) must be equal in the new
run; the new run may add keys. Training is deterministic on the CPU for a given machine and number of
threads only (and differs with native bf16), so the test skips elsewhere. Baselines for machines with native
bf16 (``<case>.bf16.json``) were recorded later, from main after wave 2's merges (see git log), as regression
guards rather than redesign checks. Machines that share a model name differ in the last bits (BLAS and oneDNN
kernels per CPU model): from session 13 a baseline may name its CPU model (``<case>.bf16.family-25-model-17.json``,
recorded from main when a new model gave other numbers for the same code), and is preferred on that model. Session 15
changed the assignment's defaults (batch size 16, bf16 "auto"): the assignment-derived cases were recorded again on
family 25 model 17 only, and their generic ``.bf16`` files (stale now) were removed, so other models skip them.
The ``--quick`` profiles are marked slow (about 6 minutes in all); the tiny profiles run in CI.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path

import pytest
import torch

from replearn.cli import main
from replearn.train._device import bf16_native
from replearn.utils.runtime import cpuinfo, machine_info

BASELINES = Path(__file__).parent / "baselines"
RECORD = os.environ.get("REPLEARN_RECORD_BASELINES") == "1"
# Keys whose values are times, memory or facts of the machine, not results.
VOLATILE = {"machine", "timing", "time", "seconds", "train_time_s", "wall_time_s_this_session", "train_seconds",
            "eval_seconds", "environment", "train_time_s_mean", "train_time_s_std", "runs_seconds", "wall_s",
            "peak_rss_mb", "total_wall_s", "data_s"}

# name: (command line, what to compare, the cases it needs first). {d}: data dir, {o}: this case's output,
# {<case>}: another case's output.
CASES = {
    "fashion_tiny": ("fashion --train-size 400 --test-size 200 --epochs 2 --batch-size 64", "metrics.json", []),
    "transfer_tiny": ("transfer --base {fashion_tiny} --train-size 400 --test-size 200 --epochs 1 "
                      "--fine-tune-epochs 1 --batch-size 64 --compare --fine-tune", "metrics.json", ["fashion_tiny"]),
    "autoencoder_tiny": ("autoencoder --quick --epochs 1 --compare --compare-ref 300 --compare-queries 100",
                         "metrics.json", []),
    "assignment_quick": ("assignment --quick", "metrics.json", []),
    "synth_quick": ("synth --quick --out {o}/synth.npz", "synth.npz", []),
    "domain_quick": ("domain --quick --model {assignment_quick} --real {synth_quick}/synth.npz", "metrics.json",
                     ["assignment_quick", "synth_quick"]),
    "embed_quick": ("embed --model {assignment_quick} {synth_quick}/synth.npz --key labelled --out {o}/codes.csv",
                    "codes.csv", ["assignment_quick", "synth_quick"]),
    "predict_quick": ("predict --model {assignment_quick} {synth_quick}/synth.npz --key labelled "
                      "--out {o}/predictions.csv", "predictions.csv", ["assignment_quick", "synth_quick"]),
    "fashion_quick": ("fashion --quick", "metrics.json", []),
    "transfer_quick": ("transfer --quick --base {fashion_quick} --compare --fine-tune", "metrics.json",
                       ["fashion_quick"]),
    "autoencoder_quick": ("autoencoder --quick --compare", "metrics.json", []),
}
SLOW = {"fashion_quick", "transfer_quick", "autoencoder_quick"}


def _cpu_model() -> str:
    """The CPU's family and model numbers: machines with one model name ("AMD EPYC") differ in BLAS and oneDNN
    kernels, and so in the last bits of the numbers."""
    fields = cpuinfo()
    return f"family {fields.get('cpu family', '?')} model {fields.get('model', '?')}"


def _machine() -> dict:
    """What decides the numbers: the CPU and its model, the thread count, torch, and whether bfloat16 is native
    (the defaults of fashion/transfer train in bf16, which the CPU rounds differently with and without AVX512-BF16)."""
    info = machine_info()
    return {"cpu": info["cpu"], "threads": torch.get_num_threads(), "torch": info["torch"],
            "bf16_native": bf16_native("cpu"), "cpu_model": _cpu_model()}


def _baseline_file(name: str, machine: dict) -> Path:
    """The baseline for this kind of machine: ``<case>[.bf16].<cpu model>.json`` where one was recorded on this CPU
    model (session 13 on), else ``<case>.json`` without native bf16, ``<case>.bf16.json`` with (recorded before CPU
    models were told apart; a machine of another model then skips)."""
    base = f"{name}.bf16" if machine["bf16_native"] else name
    specific = BASELINES / f"{base}.{machine['cpu_model'].replace(' ', '-')}.json"
    return specific if specific.exists() or RECORD else BASELINES / f"{base}.json"


def _recorded_on(baseline: dict) -> dict:
    """The machine of a baseline; the first baselines (a01fd35) were recorded without native bf16 and say nothing,
    and those before session 13 without the CPU model (taken as this machine's: they are compared as before)."""
    return {"bf16_native": False, "cpu_model": _cpu_model(), **baseline["machine"]}


@pytest.fixture(scope="module")
def outputs(tmp_path_factory, shared_datasets):
    """Runs each case once (and the cases it needs) into a shared folder."""
    root = tmp_path_factory.mktemp("equivalence")
    done: dict[str, Path] = {}

    def run(name: str) -> Path:
        if name in done:
            return done[name]
        argv, _, needs = CASES[name]
        paths = {n: str(run(n)) for n in needs}
        out = root / name
        out.mkdir()
        words = argv.format(d=shared_datasets, o=out, **paths).split()
        if "--out" not in words:
            words += ["--out", str(out)]
        if words[0] in ("fashion", "transfer", "autoencoder"):
            words += ["--data-dir", str(shared_datasets)]
        if words[0] not in ("synth", "embed", "predict"):  # commands with progress bars
            words.append("--no-progress")
        assert main(words) == 0, name
        done[name] = out
        return out

    return run


def _numbers(obj, path=""):
    """Every number and string of a JSON value, by its path; volatile keys left out."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k not in VOLATILE:
                yield from _numbers(v, f"{path}/{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _numbers(v, f"{path}[{i}]")
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool):
        yield path, obj


def _lookup(obj, path):
    import re

    for part in re.findall(r"/([^/\[]+)|\[(\d+)\]", path):
        key, index = part
        obj = obj[key] if key else obj[int(index)]
    return obj


def _digest(path: Path) -> dict:
    if path.name.endswith(".json"):
        return json.loads(path.read_text())
    return {"sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in CASES])
def test_metrics_equal_the_recorded_baseline(name, outputs):
    file = _baseline_file(name, _machine())
    what = CASES[name][1]
    if RECORD:
        BASELINES.mkdir(exist_ok=True)
        record = {"machine": _machine(), "file": what, "value": _digest(outputs(name) / what)}
        file.write_text(json.dumps(record, indent=1) + "\n")
        return
    if not file.exists():
        pytest.skip(f"no baseline recorded on a machine like this one ({_machine()})")
    baseline = json.loads(file.read_text())
    if _recorded_on(baseline) != _machine():
        pytest.skip(f"baseline recorded on {baseline['machine']}; training is deterministic per machine and threads")
    new = _digest(outputs(name) / what)
    old = baseline["value"]
    if "sha256" in old:
        assert new == old
        return
    leaves = list(_numbers(old))
    assert leaves, "a baseline without numbers cannot fail"
    for path, value in leaves:
        got = _lookup(new, path)
        if isinstance(value, float) and math.isnan(value):
            assert math.isnan(got), path
        else:
            assert got == value, f"{name}{path}: {got!r} != baseline {value!r}"
