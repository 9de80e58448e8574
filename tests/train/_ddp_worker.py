"""One rank of the DDP test, started by ``torchrun`` from ``test_distributed.py``.

    torchrun --standalone --nproc-per-node 2 tests/train/_ddp_worker.py OUT_DIR

Trains the scenarios of :func:`scenarios` with ``fit(..., distributed=True)`` on the
gloo backend and writes, per rank, the final state dict and the history to OUT_DIR.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _tiny import blobs  # noqa: E402

from replearn.train import TrainConfig, fit  # noqa: E402
from replearn.train import distributed  # noqa: E402

#: Global batch 32 over 256 samples (8 steps per epoch; 16 samples per rank with 2 ranks).
NOISE = 4.0
CONFIG = dict(epochs=3, batch_size=32, optimizer="sgd", lr=0.05, momentum=0.9, device="cpu", seed=5)


def mlp(seed: int = 0) -> nn.Module:
    """No BatchNorm, no dropout: a DDP step equals the single-process step up to rounding."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 3))


def bn_cnn(seed: int = 0) -> nn.Module:
    """Conv -> BatchNorm -> ReLU -> Linear: BatchNorm statistics are per rank under DDP."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 8 * 8, 3))


def scenarios() -> dict[str, nn.Module]:
    """Name -> freshly initialised model (the same on every rank and in the single-process reference)."""
    return {"mlp": mlp(), "bn": bn_cnn()}


def data() -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Training (256 samples) and validation (90 samples, not divisible by 2 ranks' batches) sets."""
    return blobs(256, seed=0, noise=NOISE), blobs(90, seed=1, noise=NOISE)


def main(out: Path) -> int:
    dinfo = distributed.init_from_env(backend="gloo")
    shared = distributed.broadcast_text("rank 0's folder \u00e9" if dinfo.rank == 0 else "")
    train, val = data()
    for name, model in scenarios().items():
        ckpt = out / f"ckpt-{name}"
        history = fit(model, train, val, TrainConfig(**CONFIG), checkpoint_dir=ckpt, progress=False,
                      distributed=True)
        torch.save(model.state_dict(), out / f"{name}-rank{dinfo.rank}.pt")
        # A second call on the same model (distributed by default now): the first call's DDP hooks must be gone.
        history2 = fit(model, train, val, TrainConfig(**{**CONFIG, "epochs": 1}), progress=False)
        record = {"history": history.history, "history2": history2.history, "rank": dinfo.rank,
                  "world_size": dinfo.world_size, "main": distributed.is_main_process(), "shared": shared}
        (out / f"{name}-rank{dinfo.rank}.json").write_text(json.dumps(record))
    distributed.barrier()
    distributed.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
