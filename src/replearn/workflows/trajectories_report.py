"""What ``replearn trajectories`` shows: the path panels, the groups' table and the closing line."""

from __future__ import annotations

from typing import Any, Mapping

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from replearn.evaluate import Report

COLOURS = {"without": "Oranges", "with": "Blues"}
LABELS = {"without": "without pretraining", "with": "with layer-wise pretraining"}
TITLES = {"tsne": "t-SNE", "isomap": "ISOMAP"}


def path_panels(projected: Mapping[str, np.ndarray], groups: tuple[str, ...], title: str = "") -> Figure:
    """One panel per projection: ``projected[method]`` is (groups, networks, snapshots, 2).

    One path per network, coloured by group; later snapshots darker and larger; start (circle) and
    end (cross) marked.
    """
    fig, axes = plt.subplots(1, len(projected), figsize=(6.4 * len(projected), 6.0), squeeze=False)
    for ax, (method, points) in zip(axes[0], projected.items()):
        n_snap = points.shape[2]
        shade = np.linspace(0.35, 1.0, n_snap)
        sizes = np.linspace(4, 28, n_snap)
        for g, group in enumerate(groups):
            cmap = plt.get_cmap(COLOURS[group])
            for path in points[g]:
                ax.plot(path[:, 0], path[:, 1], color=cmap(0.6), lw=0.6, alpha=0.45, zorder=1)
                ax.scatter(path[:, 0], path[:, 1], c=cmap(shade), s=sizes, linewidths=0, zorder=2)
                ax.scatter(*path[0], marker="o", s=40, facecolors="none", edgecolors=cmap(0.9), lw=1.0, zorder=3)
                ax.scatter(*path[-1], marker="X", s=55, color=cmap(0.95), edgecolors="white", lw=0.5, zorder=4)
        ax.set_title(f"{TITLES.get(method, method)} of the output vectors", fontsize=11)
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [Line2D([], [], color=plt.get_cmap(COLOURS[g])(0.7), lw=2, label=LABELS[g]) for g in groups]
    handles += [Line2D([], [], marker="o", ls="", mfc="none", mec="grey", label="start of fine-tuning"),
                Line2D([], [], marker="X", ls="", color="grey", label="end"),
                Line2D([], [], marker=".", ls="", color="grey", label="later snapshots: darker, larger")]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=9, frameon=False)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def group_rows(summary: Mapping[str, Mapping[str, Any]]) -> list[list[str]]:
    """Table rows: group, networks, accuracy and loss (mean ± 95% CI), end-point spread."""
    return [[LABELS[g], str(s["networks"]), f"{100 * s['accuracy_mean']:.2f}% ± {100 * s['accuracy_ci95']:.2f}",
             f"{s['loss_mean']:.4f} ± {s['loss_ci95']:.4f}", f"{s['end_spread']:.3f}"] for g, s in summary.items()]


def add_outputs(result: Any, cfg: Any, projected: Mapping[str, np.ndarray], summary: Mapping[str, Any],
                sentence: str) -> None:
    """The figure, the report and the closing line, added to ``result``."""
    net = (f"dense {'-'.join(['784', *map(str, cfg.hidden), '10'])}, sigmoid" if cfg.arch == "dense"
           else "the lecture's conv blocks")
    result.figure("trajectories.png", path_panels(
        projected, tuple(summary), title=f"{cfg.networks} networks per group ({net}) on {cfg.dataset}: "
                                         f"outputs on {cfg.probe_size} test images while fine-tuning"))
    w, wo = summary["with"], summary["without"]
    result.summary = (f"test accuracy with pretraining {100 * w['accuracy_mean']:.2f}% ± "
                      f"{100 * w['accuracy_ci95']:.2f}, without {100 * wo['accuracy_mean']:.2f}% ± "
                      f"{100 * wo['accuracy_ci95']:.2f} ({cfg.networks} networks each); end-point spread "
                      f"{w['end_spread']:.3f} vs {wo['end_spread']:.3f}")
    report = Report("replearn trajectories: networks with and without unsupervised pretraining in function space")
    report.text(f"{cfg.networks} networks per group ({net}), trained on {cfg.train_size:,} {cfg.dataset} training "
                f"images for {cfg.epochs} epochs (Adam, lr {cfg.lr}, batch {cfg.batch_size}); the 'with' group first "
                f"had {cfg.pretrain_epochs} epochs of greedy layer-wise pretraining per stage. Network i of both "
                f"groups starts from the same initial weights (seed {cfg.seed} + i) and sees the same images in the "
                "same order. Each point is one snapshot of a network's class probabilities on "
                f"{cfg.probe_size} fixed test images ({cfg.probe_size * 10} numbers), all projected together.")
    report.figure("trajectories.png", "paths of the networks' output vectors (t-SNE left, ISOMAP right)")
    report.heading("Final test accuracy and loss")
    report.table(["group", "networks", "test accuracy (mean ± 95% CI)", "test loss (mean ± 95% CI)",
                  "end-point spread"], group_rows(summary))
    report.text(f"Test set: {cfg.test_size:,} images. End-point spread: mean pairwise Euclidean distance of the "
                f"networks' final output vectors within the group. {sentence}")
    report.text("What is seen here is what these runs measured; the lecture (after Erhan et al.) expects the "
                "pretrained networks to end in a smaller region with lower test error.")
    result.report = report
