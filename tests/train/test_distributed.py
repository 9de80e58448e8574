"""DDP training: 2 CPU processes (gloo, launched by torchrun) against a single-process run; shard helpers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from replearn.errors import ReplearnError
from replearn.train import TrainConfig, fit
from replearn.train import distributed
from replearn.train.batching import epoch_permutation

from . import _ddp_worker as worker
from ._tiny import blobs, tiny_classifier

WORKER = Path(worker.__file__)
METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")


# ---------------------------------------------------------------------------- helpers without a process group
@pytest.mark.parametrize("n,batch,world", [(256, 32, 2), (250, 32, 2), (101, 10, 3), (37, 64, 2), (5, 8, 3)])
def test_shards_cover_each_global_batch_once(n, batch, world):
    x = torch.arange(n, dtype=torch.float32)[:, None]
    order = epoch_permutation(n, seed=3, epoch=1)
    steps = distributed.num_global_batches(n, batch, world)
    per_rank = [list(distributed.shard_batches(x, None, batch, order, r, world)) for r in range(world)]
    assert all(len(p) == steps for p in per_rank)  # every rank runs the same number of steps
    for b in range(steps):
        pieces = [per_rank[r][b][0][:, 0].long() for r in range(world)]
        assert torch.equal(torch.cat(pieces), order[b * batch: (b + 1) * batch])
        assert {per_rank[r][b][2] for r in range(world)} == {sum(p.numel() for p in pieces)}
        assert all(p.numel() >= 2 for p in pieces)  # BatchNorm needs two samples per rank
    kept = steps * batch if n % batch < 2 * world else n
    assert sum(p[0].shape[0] for r in range(world) for p in per_rank[r]) == min(kept, n)


def test_shard_range_partitions_evaluation_samples():
    for n, world in [(90, 2), (7, 3), (2, 4), (0, 2)]:
        parts = [distributed.shard_range(n, r, world) for r in range(world)]
        covered = [i for s in parts for i in range(n)[s]]
        assert covered == list(range(n))
        assert max(len(range(n)[s]) for s in parts) - min(len(range(n)[s]) for s in parts) <= 1


def test_single_process_defaults_and_errors(monkeypatch):
    assert distributed.is_main_process() and not distributed.is_distributed()
    assert distributed.info() == distributed.DistInfo(rank=0, world_size=1, local_rank=0, backend="none")
    distributed.barrier()  # no-op without a group
    assert distributed.all_reduce_sum([1.5, 2.0], torch.device("cpu")) == [1.5, 2.0]
    assert distributed.broadcast_text("runs/x") == "runs/x"
    for key in distributed.ENV_KEYS:
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(ReplearnError, match="torchrun"):
        distributed.init_from_env()
    with pytest.raises(ReplearnError, match="distributed=True needs a process group"):
        fit(tiny_classifier(), blobs(32), config=TrainConfig(epochs=1, device="cpu", monitor="loss"),
            progress=False, distributed=True)


# ---------------------------------------------------------------------------- 2 processes vs 1
@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory) -> Path:
    """Run the worker on 2 CPU processes with torchrun (gloo on 127.0.0.1); return its output folder."""
    out = tmp_path_factory.mktemp("ddp")
    env = {k: v for k, v in os.environ.items() if k not in distributed.ENV_KEYS}
    env.update(OMP_NUM_THREADS="1", MASTER_ADDR="127.0.0.1", PYTHONWARNINGS="ignore")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes", "1",
           "--nproc-per-node", "2", str(WORKER), str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    if proc.returncode != 0 and "SIGABRT" in proc.stderr:
        # Seen once on a heavily overloaded 2-core machine: a rank aborted inside the C++ runtime
        # ("terminate called without an active exception"). Try once more;
        # a second failure, or any other failure, fails the test.
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out


def _single(name: str) -> tuple[dict[str, torch.Tensor], dict[str, list[float]]]:
    model = worker.scenarios()[name]
    train, val = worker.data()
    history = fit(model, train, val, TrainConfig(**worker.CONFIG), progress=False, distributed=False)
    return model.state_dict(), history.history


def _load(out: Path, name: str, rank: int) -> tuple[dict[str, torch.Tensor], dict]:
    state = torch.load(out / f"{name}-rank{rank}.pt", weights_only=True)
    return state, json.loads((out / f"{name}-rank{rank}.json").read_text())


@pytest.mark.parametrize("name", ["mlp", "bn"])
def test_ranks_end_with_identical_weights_and_metrics(ddp_run, name):
    s0, r0 = _load(ddp_run, name, 0)
    s1, r1 = _load(ddp_run, name, 1)
    assert r0["world_size"] == r1["world_size"] == 2
    assert r0["main"] and not r1["main"]
    assert r0["shared"] == r1["shared"] == "rank 0's folder \u00e9"  # broadcast_text
    assert s0.keys() == s1.keys() and all(torch.equal(s0[k], s1[k]) for k in s0)  # parameters and BN buffers
    for key in METRICS:  # metrics are reduced over ranks, so both log the same numbers
        assert r0["history"][key] == r1["history"][key]
    assert r0["history2"]["loss"] == r1["history2"]["loss"]  # a second fit on the same model also runs DDP
    assert (ddp_run / f"ckpt-{name}" / "checkpoint.pt").is_file()  # written by rank 0 only


def test_ddp_without_batchnorm_matches_single_process(ddp_run):
    """Global batch 32 = 2 x 16: same samples per step, gradients averaged -> the single-process run."""
    state, rec = _load(ddp_run, "mlp", 0)
    single_state, single = _single("mlp")
    for key, value in single_state.items():
        torch.testing.assert_close(state[key], value, rtol=1e-4, atol=1e-5)
    for key in ("loss", "val_loss"):
        assert rec["history"][key] == pytest.approx(single[key], rel=1e-4, abs=1e-5)
    for key in ("accuracy", "val_accuracy"):  # allow one sample flipping at a decision boundary
        assert rec["history"][key] == pytest.approx(single[key], abs=1.01 / 90)
    assert single["val_accuracy"][-1] > 0.6  # it did learn (chance is 1/3)


def test_ddp_with_batchnorm_close_to_single_process(ddp_run):
    """BatchNorm statistics are per rank (16 samples instead of 32): close, not equal."""
    state, rec = _load(ddp_run, "bn", 0)
    single_state, single = _single("bn")
    for key in ("0.weight", "4.weight"):
        rel = (state[key] - single_state[key]).norm() / single_state[key].norm()
        assert 0 < rel < 0.1
    for key in ("loss", "val_loss"):
        assert rec["history"][key] == pytest.approx(single[key], rel=0.15)
    assert rec["history"]["val_accuracy"][-1] == pytest.approx(single["val_accuracy"][-1], abs=0.1)
    assert single["val_accuracy"][-1] > 0.6
