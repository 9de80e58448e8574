"""Training checkpoints: one ``checkpoint.pt`` per training stage, written atomically, read without unpickling.

A checkpoint holds only tensors, dicts, lists, numbers and strings, so
``torch.load(..., weights_only=True)`` reads it back.

A run that trains once keeps its checkpoint in the run folder
(``<run>/checkpoint.pt``). A run that trains in several stages (layer-wise
pretraining, then end to end; several transfer variants) keeps one per stage in
``<run>/checkpoints/<stage>/checkpoint.pt`` (:func:`stage_dir`). Resuming such a
run replays its stages in order: a stage with a checkpoint continues from it
(a finished stage just loads its final state, and the random-number state it
ended with), a stage without one starts afresh (:func:`continues`). Every stage
seeds itself, so the resumed run ends bit-identical to an uninterrupted one (on
the same device and number of threads)::

    for k, stage in enumerate(stages):
        where = stage_dir(run_dir, f"stage-{k + 1}")
        fit(stage_model, data, config=config, checkpoint_dir=where, resume=continues(where, resume))
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
STAGES_DIR = "checkpoints"
"""Folder of a run's per-stage checkpoints (``<run>/checkpoints/<stage>/checkpoint.pt``)."""
FORMAT = "replearn-train-checkpoint"
VERSION = 1


def checkpoint_path(checkpoint_dir: str | os.PathLike) -> Path:
    """The checkpoint file inside ``checkpoint_dir``."""
    return Path(checkpoint_dir) / CHECKPOINT_NAME


def stage_dir(checkpoint_dir: str | os.PathLike | None, stage: str) -> Path | None:
    """The checkpoint folder of training stage ``stage`` of the run in ``checkpoint_dir`` (None: no checkpoints)."""
    if checkpoint_dir is None:
        return None
    if not stage or "/" in stage or stage.startswith("."):
        raise ReplearnError(f"checkpoint stage name {stage!r}: use a plain name such as 'layerwise-1'")
    return Path(checkpoint_dir) / STAGES_DIR / stage


def continues(checkpoint_dir: str | os.PathLike | None, resume: bool) -> bool:
    """Whether a training stage continues from its checkpoint: ``resume`` is set and the stage wrote one.

    Without a checkpoint (a run stopped before this stage finished its first epoch) the stage
    starts afresh, which is what an uninterrupted run did too.
    """
    return bool(resume) and checkpoint_dir is not None and checkpoint_path(checkpoint_dir).is_file()


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
