"""Test-time augmentation over the 8 symmetries of the square (the dihedral group D4).

A cell crop has no orientation: turning or mirroring it gives an equally valid crop of the same
stage. :func:`d4_views` makes the 8 versions of a batch, :func:`tta_average` averages a scoring
function (class probabilities or decision scores) over them, so a prediction no longer depends on how
the crop happened to lie::

    scores = tta_average(model.predict_proba, crops)      # (N, K), mean over the 8 views
    stages = scores.argmax(axis=1)
"""

from __future__ import annotations

from typing import Callable, TypeVar

import numpy as np
import torch

Array = TypeVar("Array", np.ndarray, torch.Tensor)

D4 = tuple((k, flip) for flip in (False, True) for k in range(4))
"""The 8 symmetries as (quarter turns, then mirror left-right); the first is the identity."""


def d4_view(x: Array, k: int, flip: bool) -> Array:
    """Images (..., H, W) turned by ``k`` quarter turns, then mirrored left-right when ``flip``."""
    if isinstance(x, torch.Tensor):
        out = torch.rot90(x, k, dims=(-2, -1)) if k else x
        return torch.flip(out, dims=(-1,)) if flip else out
    out = np.rot90(x, k, axes=(-2, -1)) if k else x
    return np.ascontiguousarray(out[..., ::-1] if flip else out)


def d4_views(x: Array) -> list[Array]:
    """The 8 symmetric versions of images (..., H, W) (square crops), identity first."""
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"d4_views: crops must be square, got {tuple(x.shape[-2:])}")
    return [d4_view(x, k, flip) for k, flip in D4]


def d4_copies(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Training copies: images (N, ..., H, W) and labels (N,) -> (8N, ..., H, W) and (8N,), view by view."""
    return np.concatenate(d4_views(x)), np.tile(np.asarray(y), 8)


def tta_average(score: Callable[[Array], np.ndarray], x: Array) -> np.ndarray:
    """Mean of ``score(view)`` (N, K) over the 8 views of images ``x`` (N, ..., H, W): (N, K) float64."""
    return np.mean([np.asarray(score(view), dtype=np.float64) for view in d4_views(x)], axis=0)
