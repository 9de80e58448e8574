"""From arrays to model inputs: image tensors, one-hot targets, seeded stratified splits.

Pixel scaling in :func:`to_tensor`: uint8 (and other integer) images are
divided by 255; float images whose maximum is at most 1 are taken to be in
[0, 1] already and kept; float images with values above 1 are taken to be in
[0, 255] and divided by 255. (A float image in 0..255 that is almost black,
max <= 1, would be misread; store such data as uint8.)
"""

from __future__ import annotations

from typing import Iterator

import numpy as np
import torch
from sklearn.model_selection import StratifiedShuffleSplit

from replearn.errors import ReplearnError


def to_tensor(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Convert images to a float32 tensor (N, 1, H, W) with values in [0, 1].

    Args:
        images: (N, H, W) or (N, 1, H, W); uint8/integer in 0..255, or float in [0, 1] or [0, 255].

    Returns:
        float32 tensor (N, 1, H, W) on the CPU (a new tensor; the input is not modified).
    """
    arr = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 3:
        raise ReplearnError(f"images have shape {arr.shape}; expected (N, H, W) or (N, 1, H, W)")
    kind = arr.dtype.kind
    if kind in "ui":
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise ReplearnError(f"integer images have values {arr.min()}..{arr.max()}; allowed 0..255")
        out = arr.astype(np.float32) / np.float32(255.0)
    elif kind == "f":
        if arr.size and not np.isfinite(arr).all():
            raise ReplearnError("images contain NaN/inf values; pixels must be finite")
        lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
        if lo < 0 or hi > 255:
            raise ReplearnError(f"float images have values {lo:g}..{hi:g}; allowed [0, 1] or [0, 255]")
        out = arr.astype(np.float32) / np.float32(255.0 if hi > 1.0 else 1.0)
    else:
        raise ReplearnError(f"images have dtype {arr.dtype}; allowed uint8 (0..255) or float")
    return torch.from_numpy(np.ascontiguousarray(out)).unsqueeze(1)


def one_hot(labels: np.ndarray | torch.Tensor, k: int) -> torch.Tensor:
    """One-hot targets: (N,) integer labels in 0..k-1 -> float32 tensor (N, k)."""
    t = torch.as_tensor(np.asarray(labels) if not isinstance(labels, torch.Tensor) else labels)
    if t.ndim != 1 or t.dtype.is_floating_point or t.dtype == torch.bool:
        raise ReplearnError(f"labels have shape {tuple(t.shape)} and dtype {t.dtype}; expected (N,) integers")
    if t.numel() and (int(t.min()) < 0 or int(t.max()) >= k):
        raise ReplearnError(f"labels span {int(t.min())}..{int(t.max())}; allowed 0..{k - 1} for k={k}")
    return torch.nn.functional.one_hot(t.long().cpu(), num_classes=k).float()


def _validated_splitter(labels: np.ndarray, n_val: int | float, n_splits: int, seed: int) -> StratifiedShuffleSplit:
    """Check the labels and n_val, and build the sklearn splitter."""
    if labels.ndim != 1 or labels.size == 0:
        raise ReplearnError(f"labels have shape {labels.shape}; expected a non-empty (N,) array")
    n = len(labels)
    classes, counts = np.unique(labels, return_counts=True)
    few = classes[counts < 2]
    if few.size:
        c = few[0]
        raise ReplearnError(
            f"class {c} has only {int(counts[classes == c][0])} example; a stratified split needs at least 2 per class"
        )
    if isinstance(n_val, (bool, np.bool_)) or not isinstance(n_val, (int, np.integer, float, np.floating)):
        raise ReplearnError(f"n_val={n_val!r}: expected a count (int) or a fraction (float in (0, 1))")
    if isinstance(n_val, (float, np.floating)):
        if not 0.0 < n_val < 1.0:
            raise ReplearnError(f"n_val={n_val}: a fraction must lie strictly between 0 and 1")
        n_val_count = int(np.ceil(n_val * n))
    else:
        n_val_count = int(n_val)
    n_train = n - n_val_count
    if n_val_count < len(classes) or n_train < len(classes):
        raise ReplearnError(
            f"n_val={n_val} gives {n_val_count} validation and {n_train} training examples of {n}; "
            f"both need at least one per class ({len(classes)} classes)"
        )
    test_size = n_val if isinstance(n_val, (float, np.floating)) else n_val_count
    return StratifiedShuffleSplit(n_splits=n_splits, test_size=test_size, random_state=seed)


def repeated_stratified_splits(
    labels: np.ndarray, n_val: int | float, n_repeats: int, seed: int = 0
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``n_repeats`` seeded stratified (train_idx, val_idx) splits of ``labels``.

    The first split equals :func:`stratified_split` with the same arguments.
    Index arrays are sorted int64.
    """
    labels = np.asarray(labels)
    if n_repeats < 1:
        raise ReplearnError(f"n_repeats={n_repeats}: must be at least 1")
    splitter = _validated_splitter(labels, n_val, n_repeats, seed)
    for train_idx, val_idx in splitter.split(np.zeros(len(labels)), labels):
        yield np.sort(train_idx).astype(np.int64), np.sort(val_idx).astype(np.int64)


def stratified_split(labels: np.ndarray, n_val: int | float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded stratified split: (train_idx, val_idx), sorted int64 index arrays.

    Args:
        labels: (N,) class labels.
        n_val: number of validation examples (int), or their fraction (float in (0, 1)).
        seed: random seed; the same seed gives the same split.

    Raises:
        ReplearnError: a class with fewer than 2 examples (named), or an ``n_val`` that
            leaves a side without one example per class.
    """
    return next(repeated_stratified_splits(labels, n_val, 1, seed))


def seeded_subset(n: int, k: int, seed: int) -> np.ndarray:
    """Sorted seeded random subset of ``k`` of ``range(n)`` (all of it when ``k >= n``)."""
    if k >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, k, replace=False))
