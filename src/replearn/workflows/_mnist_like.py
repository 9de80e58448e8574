"""Machinery shared by the ``fashion`` and ``transfer`` workflows (MNIST-style 28x28 data).

Loading a split as tensors (optionally a seeded, stratified subset), BatchNorm
momentum presets and the results table (class names: :data:`replearn.data.CLASS_NAMES`).
"""

from __future__ import annotations

import os
import statistics
from typing import Any, Mapping, Sequence

import torch

from replearn.data import load_dataset, stratified_split, to_tensor
from replearn.errors import ReplearnError
from replearn.models import KERAS_BN_MOMENTUM

NORMALISATION = "x/255"
"""Pixel scaling of every model trained here (the lecture's ``astype("float32") / 255.0``)."""

INPUT_SHAPE = (1, 28, 28)

MIN_SUBSET = 20
"""The smallest stratified subset (2 images per class)."""

BN_MOMENTA = {"torch": 0.1, "keras": KERAS_BN_MOMENTUM}
"""PyTorch-convention BatchNorm momenta: PyTorch's default, and Keras's 0.99 (= PyTorch 0.01)."""


def bn_momentum(name: str) -> float:
    """The PyTorch-convention momentum for ``"torch"`` or ``"keras"``."""
    if name not in BN_MOMENTA:
        raise ReplearnError(f"--bn-momentum {name!r} is not known; choose one of: {', '.join(BN_MOMENTA)}")
    return BN_MOMENTA[name]


def load_tensors(
    name: str,
    split: str,
    data_dir: str | os.PathLike | None = None,
    limit: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One split of MNIST or Fashion-MNIST as model inputs.

    Args:
        name: ``"mnist"`` or ``"fashion"``.
        split: ``"train"`` or ``"test"``.
        data_dir: folder holding ``mnist/`` and ``fashion-mnist/`` (see :func:`replearn.data.load_dataset`).
        limit: keep a stratified subset of this many images, drawn with ``seed`` (``None``: all).
        seed: seed of the subset.
        progress: progress bar if a download is needed.

    Returns:
        x: float32 (N, 1, 28, 28) in [0, 1] (``x/255``); y: int64 (N,).
    """
    images, labels = load_dataset(name, split, data_dir, progress=progress)
    if limit is not None and limit < len(labels):
        check_subset(split, limit)
        _, keep = stratified_split(labels, n_val=int(limit), seed=seed)
        images, labels = images[keep], labels[keep]
    return to_tensor(images), torch.from_numpy(labels.astype("int64"))


def check_subset(split: str, limit: int | None) -> None:
    """Raise one line when a subset of ``limit`` images (0/None: all) is too small to hold every class twice."""
    if limit and limit < MIN_SUBSET:
        raise ReplearnError(f"{split} subset of {limit} images is too small; use at least {MIN_SUBSET} (2 per class)")


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for a single value)."""
    values = [float(v) for v in values]
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


RESULTS_HEADERS = ("variant", "test accuracy (mean ± std)", "seeds", "trainable params", "training time (mean)")


def results_rows(rows: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    """The cells of :func:`results_table`, one list per variant (for a report's table)."""
    cells = []
    for name, row in rows.items():
        acc_mean, acc_std = mean_std(row["test_accuracy"])
        time_mean, _ = mean_std(row["train_time_s"])
        cells.append([name, f"{100 * acc_mean:.2f}% ± {100 * acc_std:.2f}", str(len(row["test_accuracy"])),
                      f"{int(row['trainable_params']):,}", f"{time_mean:.0f} s"])
    return cells


def results_table(rows: Mapping[str, Mapping[str, Any]]) -> str:
    """Markdown table: variant | test accuracy (mean ± std over seeds) | trainable params | training time.

    ``rows`` maps a variant name to ``{"test_accuracy": [..per seed..], "trainable_params": int,
    "train_time_s": [..per seed..]}``.
    """
    lines = ["| " + " | ".join(RESULTS_HEADERS) + " |", "|" + "---|" * len(RESULTS_HEADERS)]
    lines += ["| " + " | ".join(cells) + " |" for cells in results_rows(rows)]
    return "\n".join(lines) + "\n"
