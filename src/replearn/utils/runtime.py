"""Seeding and device selection, shared by every workflow."""

from __future__ import annotations

import random

import numpy as np
import torch

from replearn.errors import ReplearnError


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (CPU and CUDA) random number generators."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


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
