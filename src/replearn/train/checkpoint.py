"""Training checkpoints: one ``checkpoint.pt`` per run folder, written atomically, read without unpickling.

A checkpoint holds only tensors, dicts, lists, numbers and strings, so
``torch.load(..., weights_only=True)`` reads it back.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from replearn.errors import ReplearnError
from replearn.utils.atomic import atomic_path

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT = "replearn-train-checkpoint"
VERSION = 1


def checkpoint_path(checkpoint_dir: str | os.PathLike) -> Path:
    """The checkpoint file inside ``checkpoint_dir``."""
    return Path(checkpoint_dir) / CHECKPOINT_NAME


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> Path:
    """Write ``state`` (weights_only-safe values) to ``path`` atomically; return the path."""
    payload = {"format": FORMAT, "version": VERSION, **state}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` onto the CPU.

    Raises :class:`ReplearnError` (one line) when it is missing, unreadable or not a replearn checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise ReplearnError(f"resume: no checkpoint at {path}; train without resume first")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or unsafe files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ReplearnError(f"resume: cannot read checkpoint {path}: {first}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ReplearnError(f"resume: {path} is not a replearn training checkpoint")
    if state.get("version") != VERSION:
        raise ReplearnError(
            f"resume: {path} has checkpoint version {state.get('version')!r}; this replearn reads {VERSION}"
        )
    return state


def check_compatible(model: nn.Module, saved: Mapping[str, torch.Tensor], path: str | os.PathLike) -> None:
    """Raise :class:`ReplearnError` unless ``saved`` (a state dict) fits ``model`` key for key and shape for shape."""
    current = model.state_dict()
    missing = [k for k in current if k not in saved]
    extra = [k for k in saved if k not in current]
    if missing or extra:
        example = f"missing {missing[0]!r}" if missing else f"unexpected {extra[0]!r}"
        raise ReplearnError(
            f"resume: checkpoint {path} was written for a different model "
            f"({len(missing)} missing and {len(extra)} unexpected entries, e.g. {example})"
        )
    for key, tensor in current.items():
        if tuple(saved[key].shape) != tuple(tensor.shape):
            raise ReplearnError(
                f"resume: checkpoint {path} was written for a different model: {key!r} has shape "
                f"{tuple(saved[key].shape)} in the checkpoint but {tuple(tensor.shape)} in the model"
            )
