"""Few-label draws: exactly ``k`` labelled images per class, the rest unlabelled.

The labelled sets of a few-label experiment (``replearn fewlabels``): draw
``r`` of a data set is a function of ``(labels, k, seed + r)`` alone, so every
method of one draw sees the same labelled images, and a rerun sees them again.
"""

from __future__ import annotations

import numpy as np

from replearn.errors import ReplearnError


def draw_labelled(labels: np.ndarray, per_class: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A stratified, deterministic draw of ``per_class`` images of every class.

    Args:
        labels: (N,) integer class labels of the training set.
        per_class: images per class to label; None: all of them (nothing left unlabelled).
        seed: the draw's seed; the same ``(labels, per_class, seed)`` gives the same draw.

    Returns:
        ``(labelled, unlabelled)``: sorted int64 indices into ``labels``, disjoint, together all of it.

    Raises:
        ReplearnError: ``per_class`` < 1, or a class with fewer than ``per_class`` images (named).
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ReplearnError(f"draw_labelled: labels must be a non-empty 1-D array, got shape {labels.shape}")
    everything = np.arange(labels.size, dtype=np.int64)
    if per_class is None:
        return everything, np.zeros(0, dtype=np.int64)
    if isinstance(per_class, bool) or int(per_class) != per_class or per_class < 1:
        raise ReplearnError(f"draw_labelled: per_class must be an integer >= 1 or None (all), got {per_class!r}")
    rng = np.random.default_rng([int(seed), int(per_class)])
    chosen = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if members.size < per_class:
            raise ReplearnError(f"draw_labelled: class {c} has {members.size} images, fewer than {per_class} per class")
        chosen.append(rng.choice(members, int(per_class), replace=False))
    labelled = np.sort(np.concatenate(chosen)).astype(np.int64)
    return labelled, np.setdiff1d(everything, labelled).astype(np.int64)
