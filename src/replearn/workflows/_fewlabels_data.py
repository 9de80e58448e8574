"""The data of ``replearn fewlabels``: a training set (labels used only through the draws), extra unlabelled
images, a test set that no method ever trains on, and the view kind for semi-supervised training."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from replearn.data import load_assignment, stratified_split, synthetic_aureus, to_tensor
from replearn.data.draws import draw_labelled
from replearn.errors import ReplearnError
from replearn.workflows._mnist_like import load_tensors

DATASETS = ("mnist", "fashion", "crops")
TITLES = {"mnist": "MNIST", "fashion": "Fashion-MNIST", "crops": "S. aureus crops"}
VIEWS = {"mnist": "digits", "fashion": "fashion", "crops": "cells"}
#: The built-in crops: labelled crops made (a quarter becomes the test set) and extra unlabelled crops.
CROPS_LABELLED, CROPS_UNLABELLED, CROPS_TEST_FRACTION = 1600, 2400, 0.25
QUICK_CROPS = 400, 400  # --quick: fewer built-in crops


def parse_labels(text: str) -> list[int | None]:
    """``"1,4,all"`` -> ``[1, 4, None]`` (None: every training label)."""
    out: list[int | None] = []
    for word in str(text).split(","):
        word = word.strip()
        if word == "all":
            out.append(None)
        elif word.isdigit() and int(word) >= 1:
            out.append(int(word))
        else:
            raise ReplearnError(f"--labels {text!r}: expected counts per class >= 1 or 'all', like 1,4,10,all")
    return out


@dataclass
class FewLabelData:
    """Train images (N, C, H, W) + labels (N,), extra unlabelled images (M, C, H, W), test images + labels."""

    name: str
    x: torch.Tensor
    y: torch.Tensor
    extra: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int
    source: str
    synthetic: bool = False
    file: str | None = None  # the --data file: a user's crops are named by it, not called S. aureus

    @property
    def title(self) -> str:
        if self.file is not None and not self.synthetic:
            return f"crops of {Path(self.file).name}"
        return TITLES[self.name] + (" (SYNTHETIC)" if self.synthetic else "")

    def draw(self, per_class: int | None, seed: int) -> tuple[np.ndarray, torch.Tensor]:
        """Labelled indices into ``x`` (k per class, deterministic) and the unlabelled images: the rest of
        ``x`` plus ``extra`` (with every image labelled: all of ``x``, whose labels are then not used)."""
        labelled, rest = draw_labelled(self.y.numpy(), per_class, seed)
        unlabelled = self.x[torch.from_numpy(rest)] if rest.size else self.x
        return labelled, torch.cat([unlabelled, self.extra]) if len(self.extra) else unlabelled

    def smallest_class(self) -> int:
        return int(np.bincount(self.y.numpy(), minlength=self.n_classes).min())


def load(name: str, data_dir: str | None, data_file: str | None, train_size: int, test_size: int,
         seed: int, progress: bool, quick: bool = False) -> FewLabelData:
    """MNIST / Fashion-MNIST (train and test splits) or the crops (built-in SYNTHETIC, or ``--data``)."""
    if name in ("mnist", "fashion"):
        x, y = load_tensors(name, "train", data_dir, train_size or None, seed, progress)
        xt, yt = load_tensors(name, "test", data_dir, test_size or None, seed, progress)
        return FewLabelData(name, x, y, torch.zeros(0, *x.shape[1:]), xt, yt, 10, f"{name} IDX files")
    if name != "crops":
        raise ReplearnError(f"--dataset {name!r} is not known; choose one of: {', '.join(DATASETS)}")
    if data_file is None:
        data = synthetic_aureus(*(QUICK_CROPS if quick else (CROPS_LABELLED, CROPS_UNLABELLED)), seed=seed)
    else:
        data = load_assignment(data_file)
    train_idx, test_idx = stratified_split(data.labels, CROPS_TEST_FRACTION, seed=seed)
    if train_size and train_size < len(train_idx):
        train_idx = train_idx[stratified_split(data.labels[train_idx], train_size, seed=seed)[1]]
    if test_size and test_size < len(test_idx):
        test_idx = test_idx[stratified_split(data.labels[test_idx], test_size, seed=seed)[1]]
    x = to_tensor(data.labelled)
    extra = to_tensor(data.unlabelled) if len(data.unlabelled) else torch.zeros(0, *x.shape[1:])
    y = torch.from_numpy(data.labels.astype(np.int64))
    return FewLabelData("crops", x[train_idx], y[train_idx], extra, x[test_idx], y[test_idx], data.n_classes,
                        data.source, bool(data.synthetic), data_file)
