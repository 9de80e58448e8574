"""Kill tests: every resumable workflow, SIGKILLed at seeded random moments and resumed, ends as an uninterrupted run.

Each case runs the command once without interruption (the reference), then, for each kill, starts it again
into a new folder, waits until the run has started (its ``config.json`` is there), sleeps a seeded random
fraction of the reference's duration, sends SIGKILL, and runs ``--out <folder> --resume``. The resumed
run must exit 0 and end with the reference's ``metrics.json`` (every number, timings aside) and
bit-identical weights, with no stray temporary file left. Same seed and thread count (one thread)
throughout; the reference and the resumed runs run in the test's process, the killed ones in their own.
CI runs one kill per workflow on tiny settings; ``-m slow`` runs more.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors import safe_open

import replearn
from replearn.cli import main
from test_autoencoder import toy_npz
from test_equivalence import VOLATILE  # keys that hold times and facts of the machine


def _env() -> dict[str, str]:
    src = str(Path(replearn.__file__).resolve().parents[1])
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg",
            "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}


def _run_here(argv: list[str], out: Path, *extra: str) -> float:
    """Run the command in this process on one thread, as the killed runs do (rc 0); its seconds."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    start = time.monotonic()
    try:
        assert main([*argv, "--out", str(out), "--no-progress", "--device", "cpu", *extra]) == 0
    finally:
        torch.set_num_threads(threads)
    return time.monotonic() - start


def _without_timings(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_without_timings(v) for v in value]
    return value


def _metrics(out: Path) -> Any:
    """``metrics.json`` of the run in ``out`` without its timings; the run's folder named ``<run>``."""
    return _without_timings(json.loads((out / "metrics.json").read_text().replace(str(out), "<run>")))


def _weights(out: Path) -> dict[str, tuple[dict[str, Any], Any]]:
    """Every saved model under ``out``: its tensors, and its sidecar (meta) with the run's folder named ``<run>``.

    Checksums are left out: the file's bytes differ between two saves (safetensors writes its metadata table in
    no fixed order) and the meta names paths inside the run folder (transfer's base).
    """
    found = {}
    for path in sorted(out.rglob("*.safetensors")):
        if "checkpoints" in path.relative_to(out).parts:  # the units of a resumable run, not saved models
            continue
        with safe_open(str(path), "pt") as f:
            tensors = {k: f.get_tensor(k) for k in f.keys()}
            header = {k: v for k, v in (f.metadata() or {}).items() if not k.endswith("_sha256")}
        sidecar = json.loads(path.with_suffix(".json").read_text().replace(str(out), "<run>"))
        found[str(path.relative_to(out))] = (tensors, (header, _without_checksums(sidecar)))
    return found


def _without_checksums(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_checksums(v) for k, v in value.items() if not k.endswith("_sha256")}
    return value


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(
        a[n][1] == b[n][1] and a[n][0].keys() == b[n][0].keys() and all(torch.equal(a[n][0][k], b[n][0][k])
                                                                         for k in a[n][0]) for n in a)


def kill_and_resume(argv: list[str], tmp_path: Path, kills: int, seed: int, resume_args: tuple[str, ...] = (),
                    window: tuple[float, float] = (0.0, 1.0)) -> int:
    """The reference run, then ``kills`` runs (each a process of its own) killed at seeded moments and resumed;
    every one compared with the reference. A kill comes at a uniform random fraction in ``window`` of the
    reference's duration after the run started. Returns how many were still running when their kill came."""
    reference = tmp_path / "reference"
    duration = _run_here(argv, reference)
    expected = _metrics(reference)
    weights = _weights(reference)
    rng = random.Random(seed)
    landed, moments = 0, []
    for k in range(kills):
        out = tmp_path / f"killed-{k}"
        proc = subprocess.Popen([sys.executable, "-m", "replearn", *argv, "--out", str(out), "--no-progress",
                                 "--device", "cpu"], env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while not (out / "config.json").exists() and proc.poll() is None:  # the run has started
            time.sleep(0.01)
        delay = rng.uniform(*window) * duration
        time.sleep(delay)
        still_running = proc.poll() is None
        if still_running:
            landed += 1
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        _run_here([argv[0]], out, "--resume", *resume_args)
        got = _metrics(out)
        assert got == expected, f"kill {k} at {delay:.2f} s of {duration:.2f} s: the metrics differ"
        assert _same_weights(_weights(out), weights), f"kill {k} at {delay:.2f} s: the weights differ"
        assert not list(out.rglob(".*.tmp")), f"kill {k}: a temporary file was left behind"
        moments.append(f"{delay:.1f}" + ("" if still_running else " (after the end)"))
    print(f"kill test {argv[0]}: {landed} of {kills} kills while running, at {', '.join(moments)} s of {duration:.1f} s")
    return landed


ONE_KILL = (0.1, 0.7)
"""Where CI's single kill comes: well inside the run, also when the machine's load makes a run faster or slower."""


# ----------------------------------------------------------------------------- autoencoder
def _autoencoder(tmp_path: Path, *options: str) -> list[str]:
    data = tmp_path / "toy.npz"  # SYNTHETIC: two clusters
    toy_npz(data, n_labelled=40, n_unlabelled=96)
    return ["autoencoder", "--dataset", str(data), "--blocks", "4/4", "--batch-size", "16", "--epochs", "2",
            "--compare-ref", "40", "--compare-queries", "20", *options]


def test_autoencoder_killed_once_resumes_to_the_same_result(tmp_path):
    """Layer-wise stages, then end to end with input noise: one kill at a seeded moment."""
    kill_and_resume(_autoencoder(tmp_path, "--layerwise", "1", "--noise", "0.2"), tmp_path, kills=1, seed=0,
                    window=ONE_KILL)


@pytest.mark.slow
def test_autoencoder_killed_at_many_moments_resumes_to_the_same_result(tmp_path):
    landed = kill_and_resume(_autoencoder(tmp_path, "--layerwise", "2", "--noise", "0.2", "--noise-kind", "dropout",
                                          "--compare"), tmp_path, kills=5, seed=1)
    assert landed >= 3  # most kills came while it ran


@pytest.mark.slow
def test_autoencoder_mnist_quick_killed_resumes_to_the_same_result(tmp_path, shared_datasets):
    argv = ["autoencoder", "--quick", "--layerwise", "1", "--data-dir", str(shared_datasets)]
    kill_and_resume(argv, tmp_path, kills=2, seed=2, resume_args=("--data-dir", str(shared_datasets)))


# ----------------------------------------------------------------------------- transfer and fashion
@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory, shared_datasets) -> Path:
    """A `replearn fashion` run on 200 images, 1 epoch: a base for transfer (not a good one)."""
    out = tmp_path_factory.mktemp("base")
    assert main(["fashion", "--train-size", "200", "--test-size", "100", "--epochs", "1", "--batch-size", "64",
                 "--data-dir", str(shared_datasets), "--out", str(out), "--overwrite", "--no-progress",
                 "--device", "cpu"]) == 0
    return out


def _transfer(shared_datasets: Path, base: Path) -> list[str]:
    return ["transfer", "--base", str(base), "--train-size", "300", "--test-size", "100", "--epochs", "2",
            "--fine-tune-epochs", "1", "--batch-size", "32", "--compare", "--fine-tune", "--data-dir",
            str(shared_datasets)]


def test_transfer_killed_once_resumes_to_the_same_result(tmp_path, shared_datasets, tiny_base):
    """Frozen, fine-tuned and scratch variants, each with its checkpoint: one kill at a seeded moment."""
    kill_and_resume(_transfer(shared_datasets, tiny_base), tmp_path, kills=1, seed=0,
                    resume_args=("--data-dir", str(shared_datasets)), window=ONE_KILL)


@pytest.mark.slow
def test_transfer_killed_at_many_moments_resumes_to_the_same_result(tmp_path, shared_datasets, tiny_base):
    landed = kill_and_resume(_transfer(shared_datasets, tiny_base), tmp_path, kills=5, seed=1,
                             resume_args=("--data-dir", str(shared_datasets)))
    assert landed >= 3


@pytest.mark.slow
def test_transfer_with_its_base_killed_resumes_to_the_same_result(tmp_path, shared_datasets):
    """``--train-base --quick``: a kill during the base's training resumes the base, then the variants."""
    argv = ["transfer", "--train-base", "--quick", "--compare", "--data-dir", str(shared_datasets)]
    kill_and_resume(argv, tmp_path, kills=3, seed=3, resume_args=("--data-dir", str(shared_datasets)))
    _run_here(argv, tmp_path / "killed-0", "--overwrite")  # the earlier run's base is replaced too


@pytest.mark.slow
def test_fashion_killed_at_many_moments_resumes_to_the_same_result(tmp_path, shared_datasets):
    argv = ["fashion", "--train-size", "400", "--test-size", "200", "--epochs", "3", "--batch-size", "32",
            "--data-dir", str(shared_datasets)]
    kill_and_resume(argv, tmp_path, kills=4, seed=4, resume_args=("--data-dir", str(shared_datasets)))


# ----------------------------------------------------------------------------- assignment
ASSIGNMENT_GRID = """
[data]
folds = 3
cv_repeats = 1
[cnn]
depth = [1]
width = [8]
augment = [false, true]
epochs = 2
[autoencoder]
code_dim = [2]
epochs = 2
[ssl]
epochs = 1
[probes]
names = ["logreg", "knn"]
[report]
embedding = "pca"
"""
"""``--quick`` shrunk further (SYNTHETIC crops): 2 CNN points x 3 folds, an autoencoder and SimCLR, two probes."""


def _assignment(tmp_path: Path) -> list[str]:
    grid = tmp_path / "grid.toml"
    grid.write_text(ASSIGNMENT_GRID)
    return ["assignment", "--quick", "--config", str(grid)]


def test_assignment_killed_once_resumes_to_the_same_result(tmp_path):
    """CNN fits and probes kept as units, autoencoder and SimCLR checkpoints: one kill at a seeded moment."""
    kill_and_resume(_assignment(tmp_path), tmp_path, kills=1, seed=0, window=ONE_KILL)


@pytest.mark.slow
def test_assignment_killed_at_many_moments_resumes_to_the_same_result(tmp_path):
    landed = kill_and_resume(_assignment(tmp_path), tmp_path, kills=5, seed=1)
    assert landed >= 3
