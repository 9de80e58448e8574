"""Seeding, device selection and a description of the machine, shared by every workflow."""

from __future__ import annotations

import os
import platform
import random
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch

from replearn.errors import ReplearnError


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) random number generators."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


@contextmanager
def timed(timing: dict[str, float], key: str) -> Iterator[None]:
    """Time the block: ``timing[key]`` = its wall-clock seconds."""
    start = time.perf_counter()
    yield
    timing[key] = time.perf_counter() - start


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Return ``cuda`` when available for ``"auto"``, else the named device.

    Raises :class:`ReplearnError` when CUDA is asked for but not present.
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ReplearnError(f"--device {device}: CUDA is not available on this machine; use --device cpu")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise ReplearnError(f"--device {device!r} is not a device name (try 'auto', 'cpu' or 'cuda')") from exc


def cpuinfo() -> dict[str, str]:
    """The first CPU's fields of ``/proc/cpuinfo`` ("model name", "cpu family", "model", ...); {} without it."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, sep, value = line.partition(":")
            if sep:
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def machine_info() -> dict[str, Any]:
    """CPU model, cores, torch version and threads, for the records of a timed run."""
    return {
        "cpu": cpuinfo().get("model name") or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
    }


def machine_summary() -> str:
    """:func:`machine_info` in one line, for reports: ``"<cpu>, <n> threads, torch <version>"`` (+ the GPU)."""
    info = machine_info()
    gpu = f", {info['cuda']}" if info["cuda"] else ""
    return f"{info['cpu']}, {info['threads']} threads, torch {info['torch']}{gpu}"
