"""Figures people would rather look at than read: curves, scatters, image grids, confusion matrices.

Every function returns a matplotlib ``Figure``; :func:`save_figure` writes it
atomically and closes it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from replearn.utils.atomic import atomic_path  # noqa: E402


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Write ``fig`` as PNG to ``path`` atomically, close it, return the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path


def learning_curves(
    histories: Mapping[str, Mapping[str, Sequence[float]]],
    metrics: Sequence[str] = ("accuracy", "val_accuracy"),
    title: str = "",
) -> Figure:
    """One panel per variant: each metric in ``metrics`` per epoch (Keras-style history dicts)."""
    n = max(1, len(histories))
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.4), sharey=True, squeeze=False)
    for ax, (name, hist) in zip(axes[0], histories.items()):
        for metric in metrics:
            values = hist.get(metric)
            if values:
                ax.plot(range(1, len(values) + 1), values, marker="o", ms=3, label=metric.replace("_", " "))
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel(", ".join(m.split("_")[-1] for m in metrics[:1]))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def scatter_2d(
    ax, codes: np.ndarray, labels: np.ndarray, class_names: Sequence[str] | None = None, title: str = "", s: float = 3,
    fontsize: float = 7,
) -> None:
    """The lecture's plot: 2-D codes (N, 2) coloured by class, with a legend."""
    classes = np.unique(labels)
    cmap = plt.get_cmap("tab10" if len(classes) <= 10 else "tab20")
    for cl in classes:
        mask = labels == cl
        name = class_names[int(cl)] if class_names is not None and int(cl) < len(class_names) else str(cl)
        ax.scatter(codes[mask, 0], codes[mask, 1], s=s, color=cmap(int(cl) % cmap.N), label=name, alpha=0.7,
                   linewidths=0)  # colour by class, so panels missing a class still agree
    ax.set_title(title, fontsize=max(fontsize + 2, 10))
    ax.legend(markerscale=max(1.0, 12 / s), fontsize=fontsize, loc="best", framealpha=0.7)
    ax.set_xticks([])
    ax.set_yticks([])


def embeddings_figure(
    panels: Mapping[str, tuple[np.ndarray, np.ndarray]], class_names: Sequence[str] | None = None, title: str = "",
    ncols: int | None = None, fontsize: float = 7,
) -> Figure:
    """2-D scatters: ``panels`` maps a name to (codes (N, 2), labels (N,)); ``ncols`` per row (default: one row)."""
    n = max(1, len(panels))
    cols = min(n, ncols or n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 4.6 * rows), squeeze=False)
    for ax, (name, (codes, labels)) in zip(axes.flat, panels.items()):
        scatter_2d(ax, codes, labels, class_names, title=name, s=3 if len(codes) > 2000 else 10, fontsize=fontsize)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=max(fontsize + 3, 12))
    fig.tight_layout()
    return fig


def image_rows(rows: Mapping[str, np.ndarray], n: int = 10, title: str = "") -> Figure:
    """A grid with one row per entry of ``rows`` (name -> images (N, H, W) in [0, 1]), ``n`` columns."""
    names = list(rows)
    n = min(n, min(len(v) for v in rows.values()))
    fig, axes = plt.subplots(len(names), n, figsize=(1.1 * n, 1.2 * len(names)), squeeze=False)
    for r, name in enumerate(names):
        for c in range(n):
            ax = axes[r][c]
            ax.imshow(np.asarray(rows[name][c]).squeeze(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r][0].set_ylabel(name, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def grouped_bars(
    groups: Mapping[str, Sequence[float]], categories: Sequence[str], ylabel: str = "", title: str = "",
    ylim: tuple[float, float] | None = None,
) -> Figure:
    """Grouped bars: for each of ``categories``, one bar per entry of ``groups`` (name -> one value per category)."""
    fig, ax = plt.subplots(figsize=(7.2, 3.6))
    width = 0.8 / max(1, len(groups))
    x = np.arange(len(categories))
    for i, (label, values) in enumerate(groups.items()):
        ax.bar(x + (i - (len(groups) - 1) / 2) * width, values, width, label=label)
    ax.set_xticks(x, categories, fontsize=8)
    ax.set_ylabel(ylabel)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def confusion_figure(confusion: Sequence[Sequence[int]], class_names: Sequence[str], title: str = "") -> Figure:
    """A confusion matrix (rows true, columns predicted) with counts in the cells."""
    cm = np.asarray(confusion)
    fig, ax = plt.subplots(figsize=(1.2 * len(cm) + 2, 1.1 * len(cm) + 1.5))
    ax.imshow(cm, cmap="Blues")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center", color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xticks(range(len(class_names)), class_names, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(class_names)), class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def montage(images: np.ndarray, ncols: int = 10, titles: Sequence[str] | None = None, title: str = "") -> Figure:
    """Images (N, H, W) in a grid of ``ncols`` columns, each scaled to its own range, optional titles."""
    images = np.asarray(images)
    n = len(images)
    nrows = max(1, int(np.ceil(n / ncols)))
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * 0.9, nrows * 0.95 + (0.4 if title else 0)), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i], cmap="gray")
            if titles is not None:
                ax.set_title(titles[i], fontsize=6, pad=1)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(pad=0.2)
    return fig
