"""Multi-process training with PyTorch ``DistributedDataParallel`` (DDP), launched by ``torchrun``.

One process per GPU (or several CPU processes with the gloo backend); ``torchrun``
sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and ``MASTER_PORT``::

    torchrun --nproc-per-node 4 -m replearn fashion --ddp                 # one machine, 4 GPUs
    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d \\
        --rdzv-endpoint HOST:29500 -m replearn fashion --ddp              # two machines

Call :func:`init_from_env` once per process before training; :func:`replearn.train.fit`
then trains distributed on its own (see its ``distributed`` argument):

- ``TrainConfig.batch_size`` stays the *global* batch: every step, the same seeded
  permutation is cut into global batches on every rank and each rank takes its
  share (``batch_size / world_size`` samples), so all ranks run the same number
  of steps and one step sees the same samples as in a single-process run.
- Gradients are averaged by DDP and weighted by each rank's share, so a step equals
  the single-process step up to BatchNorm: batch statistics are computed per rank
  (``SyncBatchNorm`` needs CUDA; convert the model with
  ``torch.nn.SyncBatchNorm.convert_sync_batchnorm`` yourself on GPUs if wanted).
  BatchNorm running statistics are taken from rank 0 after every epoch, so every
  rank ends with identical weights and buffers.
- Training and evaluation metrics are summed over ranks (evaluation sets are split
  across ranks), so every rank logs the same numbers.
- Only rank 0 writes checkpoints and shows progress bars; workflows should write
  their files only where :func:`is_main_process` is true.
"""

from __future__ import annotations

import datetime
import os
import warnings
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.distributed as dist
from torch import nn

from replearn.errors import ReplearnError

#: Environment variables ``torchrun`` sets in each process.
ENV_KEYS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job: ``rank`` in ``0 .. world_size - 1``, ``local_rank`` on its node."""

    rank: int
    world_size: int
    local_rank: int
    backend: str


def launched_by_torchrun() -> bool:
    """Whether ``torchrun`` (or another launcher) set ``RANK`` and ``WORLD_SIZE`` for this process."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def default_backend() -> str:
    """``"nccl"`` when CUDA (and NCCL) are available, else ``"gloo"``."""
    return "nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"


def init_from_env(backend: str | None = None, timeout_s: float = 1800.0) -> DistInfo:
    """Join the process group described by ``torchrun``'s environment variables; return this process's place.

    Idempotent (a second call returns the current group). On CUDA it also selects
    GPU ``LOCAL_RANK`` for this process. ``backend``: ``"gloo"`` (CPU), ``"nccl"``
    (CUDA) or ``None`` for :func:`default_backend`.

    Raises:
        ReplearnError: not launched by ``torchrun`` (variables missing) or the backend is unavailable.
    """
    if not dist.is_available():
        raise ReplearnError("--ddp: this PyTorch build has no torch.distributed support")
    if dist.is_initialized():
        return info()
    missing = [k for k in ENV_KEYS if k not in os.environ]
    if missing:
        raise ReplearnError(
            f"--ddp: environment variable(s) {', '.join(missing)} not set; start with "
            "`torchrun --nproc-per-node N -m replearn <workflow> --ddp`"
        )
    backend = backend or default_backend()
    if backend not in ("gloo", "nccl"):
        raise ReplearnError(f"--ddp: backend {backend!r} is not supported; allowed: 'gloo', 'nccl'")
    if backend == "nccl" and not (torch.cuda.is_available() and dist.is_nccl_available()):
        raise ReplearnError("--ddp: backend 'nccl' needs CUDA with NCCL; use 'gloo' on CPUs")
    local_rank = int(os.environ["LOCAL_RANK"])
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=timeout_s))
    return info()


def is_distributed() -> bool:
    """Whether a process group with more than one process is active."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def info() -> DistInfo:
    """This process's :class:`DistInfo` (rank 0 of 1 when no process group is active)."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistInfo(rank=0, world_size=1, local_rank=0, backend="none")
    return DistInfo(
        rank=dist.get_rank(),
        world_size=dist.get_world_size(),
        local_rank=int(os.environ.get("LOCAL_RANK", dist.get_rank())),
        backend=str(dist.get_backend()),
    )


def is_main_process() -> bool:
    """True on rank 0 and in ordinary single-process runs: the process that writes files and prints."""
    return info().rank == 0


def barrier() -> None:
    """Wait until every process reaches this point (no-op without a process group)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def shutdown() -> None:
    """Leave the process group (no-op without one); call once at the end of a ``--ddp`` run."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def broadcast_text(text: str, src: int = 0) -> str:
    """Return rank ``src``'s ``text`` on every rank (e.g. the run folder rank 0 chose); unchanged without a group.

    Sent as UTF-8 bytes in a tensor (no pickling).
    """
    if not is_distributed():
        return text
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    data = text.encode("utf-8")
    size = torch.tensor([len(data)], dtype=torch.int64, device=device)
    dist.broadcast(size, src=src)
    buf = torch.zeros(int(size.item()), dtype=torch.uint8, device=device)
    if dist.get_rank() == src:
        buf.copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))
    dist.broadcast(buf, src=src)
    return bytes(buf.cpu().tolist()).decode("utf-8")


def device_for(device: torch.device, dinfo: DistInfo) -> torch.device:
    """Pin a bare ``cuda`` device to this process's GPU (``cuda:LOCAL_RANK``); other devices unchanged."""
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", dinfo.local_rank)
    return device


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """``DistributedDataParallel(model)``; parameters and buffers are broadcast from rank 0.

    Silences DDP's "grad strides do not match bucket view strides" notice: with channels-last
    weights of one input channel both stride orders describe the same memory (no cost).
    """
    warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
    device_ids = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Element-wise sum of ``values`` over all processes (float64; unchanged without a process group)."""
    if not is_distributed():
        return [float(v) for v in values]
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def any_process(flag: bool, device: torch.device) -> bool:
    """True on every process when ``flag`` is true on at least one."""
    return all_reduce_sum([1.0 if flag else 0.0], device)[0] > 0


def sync_buffers(model: nn.Module, src: int = 0) -> None:
    """Copy every floating-point buffer (BatchNorm running statistics) from rank ``src`` to all ranks."""
    if not is_distributed():
        return
    for buf in model.buffers():
        dist.broadcast(buf.data, src=src)


def num_global_batches(n: int, batch_size: int, world_size: int) -> int:
    """Steps per epoch of :func:`shard_batches`: global batches of ``batch_size``, the last,
    smaller one kept only when every rank gets at least 2 of its samples (BatchNorm cannot
    train on one)."""
    full, rest = divmod(n, batch_size)
    return full + (1 if rest >= 2 * world_size else 0)


def shard_batches(
    x: torch.Tensor,
    y: torch.Tensor | None,
    batch_size: int,
    order: torch.Tensor,
    rank: int,
    world_size: int,
) -> Iterator[tuple[torch.Tensor, torch.Tensor | None, int]]:
    """Yield this rank's part of each global batch: ``(x_local, y_local, global_batch_size)``.

    ``order`` (int64 (N,)) must be the same permutation on every rank; global batch
    ``b`` is ``order[b * batch_size : (b + 1) * batch_size]`` and rank ``r`` takes
    the ``r``-th of ``world_size`` nearly equal contiguous pieces of it.
    """
    n = x.shape[0]
    for b in range(num_global_batches(n, batch_size, world_size)):
        idx = order[b * batch_size: min((b + 1) * batch_size, n)]
        local = torch.tensor_split(idx, world_size)[rank]
        yield x.index_select(0, local), (None if y is None else y.index_select(0, local)), int(idx.shape[0])


def shard_range(n: int, rank: int, world_size: int) -> slice:
    """This rank's contiguous slice of ``n`` evaluation samples (sizes differ by at most one)."""
    base, extra = divmod(n, world_size)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (1 if rank < extra else 0))
