"""Device placement and mixed precision shared by ``fit``, ``evaluate`` and ``predict``."""

from __future__ import annotations

import contextlib
import functools
import warnings
from pathlib import Path

import torch
from torch import nn

#: Data sets up to this size are copied to an accelerator once instead of per batch.
MAX_DEVICE_COPY_BYTES = 1 << 30


@functools.lru_cache(maxsize=None)
def bf16_supported(device_type: str) -> bool:
    """Whether ``torch.autocast(device_type, dtype=torch.bfloat16)`` works here."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if not torch.amp.is_autocast_available(device_type):
        return False
    try:
        with torch.autocast(device_type, dtype=torch.bfloat16):
            a = torch.ones(4, 4, device=device_type)
            out = torch.nn.functional.conv2d(a[None, None], torch.ones(1, 1, 3, 3, device=device_type)) @ a[:2, :2]
        return out.dtype == torch.bfloat16 and bool(torch.isfinite(out.float()).all())
    except (RuntimeError, NotImplementedError):
        return False


@functools.lru_cache(maxsize=None)
def bf16_native(device_type: str) -> bool:
    """Whether ``device_type`` computes bfloat16 natively (CUDA with bf16; x86 CPUs with AVX512-BF16 or AMX).

    Elsewhere bf16 autocast may still work (:func:`bf16_supported`) but is emulated and slower than float32.
    """
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device_type != "cpu":
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


BF16_SETTINGS = ("auto", "on", "off")
"""The one bf16 convention: ``auto`` (where the device computes bf16 natively), ``on`` (wherever autocast works), ``off``."""


def bf16_enabled(setting: str | bool, device_type: str) -> bool:
    """Whether a bf16 ``setting`` (``"auto"``, ``"on"``, ``"off"``; True/False mean on/off) turns autocast on.

    ``auto`` is on where bf16 is native (:func:`bf16_native`), where it is faster than float32;
    ``on`` wherever bf16 autocast works (:func:`bf16_supported`).
    """
    setting = {True: "on", False: "off"}.get(setting, setting) if isinstance(setting, bool) else setting
    if setting == "auto":
        return bf16_native(device_type)
    if setting == "on":
        return bf16_supported(device_type)
    return False


def resolve_bf16(requested: bool, device: torch.device) -> bool:
    """Return whether to use bf16 autocast; warn and fall back when asked for but unsupported."""
    if not requested:
        return False
    if bf16_supported(device.type):
        return True
    warnings.warn(f"bf16 autocast is not supported on {device.type}; training in float32", RuntimeWarning,
                  stacklevel=3)
    return False


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to bfloat16 when ``enabled``, else a no-op context."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def model_device(model: nn.Module) -> torch.device:
    """Device of the model's first parameter or buffer (CPU for a stateless model)."""
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return torch.device("cpu")


def place(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy ``t`` to an accelerator once when it is small enough; otherwise leave it (batches move later)."""
    if device.type != "cpu" and t.device != device and t.numel() * t.element_size() <= MAX_DEVICE_COPY_BYTES:
        return t.to(device)
    return t


def to_device(t: torch.Tensor, device: torch.device, channels_last: bool = False) -> torch.Tensor:
    """Move a batch to ``device`` (non-blocking) and, for 4-D tensors, to channels-last if asked."""
    if t.device != device:
        t = t.to(device, non_blocking=True)
    if channels_last and t.dim() == 4:
        t = t.contiguous(memory_format=torch.channels_last)
    return t
