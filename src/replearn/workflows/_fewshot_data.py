"""The data of ``replearn fewshot`` and ``replearn zeroshot``: class splits, seen and unseen images, crops.

MNIST / Fashion-MNIST: the classes are split into seen and unseen. Representations learn from
seen-class training images only; the unseen classes' test images are the pool that episodes (and
zero-shot predictions) draw from. The assignment's crops (``--dataset data.npz`` or ``synthetic``):
representations learn from the unlabelled crops only; the labelled crops of every stage are the pool.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from replearn.data import CLASS_NAMES, load_assignment, load_dataset, seeded_subset, synthetic_aureus
from replearn.errors import ReplearnError

MNIST_LIKE = {"mnist": "MNIST", "fashion": "Fashion-MNIST"}


def parse_classes(text: str, option: str = "--seen", n_classes: int = 10) -> list[int]:
    """``"0-4"`` or ``"0,1,2,3,4"`` (or ``"0-2,7"``) -> sorted class indices; one line for anything else."""
    out: set[int] = set()
    try:
        for part in (p.strip() for p in str(text).split(",") if p.strip()):
            lo, _, hi = part.partition("-")
            out.update(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise ReplearnError(f"{option} {text!r}: expected class numbers like 0-4 or 0,2,4") from None
    bad = sorted(c for c in out if not 0 <= c < n_classes)
    if bad:
        raise ReplearnError(f"{option} {text!r}: class {bad[0]} does not exist; classes are 0-{n_classes - 1}")
    return sorted(out)


def split_classes(seen: str, unseen: str, n_classes: int = 10) -> tuple[list[int], list[int]]:
    """The seen and unseen classes (``unseen`` empty: every class not seen); one line for an empty side or overlap."""
    s = parse_classes(seen, "--seen", n_classes)
    u = parse_classes(unseen, "--unseen", n_classes) if str(unseen).strip() else [c for c in range(n_classes)
                                                                                 if c not in s]
    if not s:
        raise ReplearnError(f"--seen {seen!r}: no seen class; representations need at least one class to learn from")
    if len(u) < 2:
        raise ReplearnError(f"--seen {seen!r} / --unseen {unseen!r}: {len(u)} unseen class(es); "
                            "classifying unseen classes needs at least 2")
    both = sorted(set(s) & set(u))
    if both:
        raise ReplearnError(f"class {both[0]} is both seen and unseen; a class must be on one side only")
    return s, u


@dataclass
class Task:
    """Images (N, H, W) uint8 and labels for one few-shot / zero-shot experiment.

    ``learn``: images the unsupervised representations train on; ``seen_x``/``seen_y``: labelled seen-class
    images (the supervised CNN; None for crops); ``pool_x``/``pool_y``: the images classified (unseen
    classes, or every stage of the labelled crops); ``test_seen_x``/``test_seen_y``: seen-class test images.
    """

    title: str
    learn: np.ndarray
    seen_x: np.ndarray | None
    seen_y: np.ndarray | None
    pool_x: np.ndarray
    pool_y: np.ndarray
    classes: list[int]
    class_names: list[str]
    seen: list[int] = field(default_factory=list)
    test_seen_x: np.ndarray | None = None
    test_seen_y: np.ndarray | None = None
    synthetic: bool = False

    def line(self) -> str:
        """One line saying what is learned from and what is classified."""
        tag = "SYNTHETIC " if self.synthetic else ""
        seen = f"seen classes {self.seen}, " if self.seen else ""
        return (f"data: {tag}{self.title}; {seen}representations learn from {len(self.learn):,} images; "
                f"{len(self.pool_x):,} images of classes {self.classes} to classify")


def prepare_task(cfg: Any) -> Task:
    """The seen/unseen split of MNIST or Fashion-MNIST, or the assignment's crops (``cfg.dataset``)."""
    name = str(cfg.dataset)
    if name in MNIST_LIKE:
        seen, unseen = split_classes(cfg.seen, cfg.unseen)
        x_tr, y_tr = load_dataset(name, "train", cfg.data_dir, progress=cfg.progress)
        x_te, y_te = load_dataset(name, "test", cfg.data_dir, progress=cfg.progress)
        keep = np.flatnonzero(np.isin(y_tr, seen))
        keep = keep[seeded_subset(len(keep), cfg.train_size, cfg.seed)]
        pool = np.flatnonzero(np.isin(y_te, unseen))
        pool = pool[seeded_subset(len(pool), cfg.pool_size, cfg.seed + 1)] if cfg.pool_size else pool
        test_seen = np.flatnonzero(np.isin(y_te, seen))
        test_seen = test_seen[seeded_subset(len(test_seen), len(pool), cfg.seed + 2)]
        return Task(MNIST_LIKE[name], x_tr[keep], x_tr[keep], y_tr[keep].astype(np.int64), x_te[pool],
                    y_te[pool].astype(np.int64), unseen, list(CLASS_NAMES[name]), seen, x_te[test_seen],
                    y_te[test_seen].astype(np.int64))
    if name == "synthetic":
        data = synthetic_aureus(seed=cfg.seed)
    elif Path(name).suffix.lower() == ".npz":
        data = load_assignment(name)
    else:
        raise ReplearnError(f"--dataset {name!r}: expected 'mnist', 'fashion', 'synthetic' or a data.npz file")
    if len(data.unlabelled) < 2:
        raise ReplearnError(f"--dataset {name}: has {len(data.unlabelled)} unlabelled crops; the representations "
                            "learn from the unlabelled crops only and need at least 2")
    learn = data.unlabelled[seeded_subset(len(data.unlabelled), cfg.train_size, cfg.seed)]
    classes = sorted(int(c) for c in np.unique(data.labels))
    return Task("built-in S. aureus crops" if name == "synthetic" else name, learn, None, None,
                data.labelled, data.labels.astype(np.int64), classes, list(data.class_names),
                synthetic=bool(data.synthetic))
