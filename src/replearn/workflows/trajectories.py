"""Why unsupervised pretraining regularises: the paths of many networks through function space.

Erhan et al. (2010), "Why does unsupervised pre-training help deep learning?", and the lecture's
t-SNE / ISOMAP slide: N networks are trained without and N with greedy layer-wise unsupervised
pretraining (different seeds; network i of both groups starts from the same initial weights and
sees the same images in the same order, so the groups differ only in pretraining). While each
network is fine-tuned, its output vector (the class probabilities of a fixed subset of test images,
concatenated) is recorded at regular steps. All snapshots of all networks are projected together to
2-D with t-SNE and with ISOMAP: one path per network, coloured by group, darker and larger as
training goes on. The report gives the final test accuracy and loss per group (mean and 95% CI
over the networks) and the spread of the end points (mean pairwise distance of the final output
vectors within a group).

The default networks are dense stacks of sigmoid layers (the paper's setting; one pretraining stage
per hidden layer); ``--arch conv`` uses the lecture's convolutional blocks (one stage per block).

Writes into the run folder: ``trajectories.png``, ``trajectories.npz`` (the 2-D paths, the steps,
the final output vectors), ``config.json``, ``report.md``/``report.html`` and ``metrics.json``.
See docs/lecture_concepts.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from replearn.data import CLASS_NAMES, seeded_subset
from replearn.errors import ReplearnError
from replearn.evaluate import compare_sentence, embed_2d
from replearn.utils.atomic import save_npz
from replearn.utils.parallel import with_threads
from replearn.utils.runtime import machine_summary
from replearn.workflows import trajectories_report
from replearn.workflows._mnist_like import check_subset, load_tensors
from replearn.workflows._run import (MnistRunOptions, ParallelOptions, Result, check_at_least, option,
                                    parse_int_list)
from replearn.workflows._trajectories_train import GROUPS, Data, group_summary, record_every, train_groups

COMMAND = "trajectories"
HELP = "Erhan et al. 2010: networks with/without layer-wise pretraining as paths in function space (t-SNE, ISOMAP)"
EXAMPLES = """\
examples:
  replearn trajectories --quick                  # 4 networks per group on small subsets: seconds
  replearn trajectories                          # 50 networks per group, dense 784-256-256-256-10 on 10,000 MNIST
                                                 # images: 5 min of CPU on one core (docs/lecture_concepts.md)
  replearn trajectories --arch conv --networks 10 --train-size 2000   # the lecture's conv blocks: ~4 min of CPU
  replearn trajectories --dataset fashion --pretrain-epochs 3
"""
CONFIG_FILE = True


# ----------------------------------------------------------------------------- Setup
@dataclass
class Config(MnistRunOptions, ParallelOptions):
    """The default run: 2 x 50 dense networks on 10,000 MNIST training images (see docs/lecture_concepts.md)."""

    dataset: str = option("mnist", "data set", choices=("mnist", "fashion"))
    arch: str = option("dense", "'dense': sigmoid layers (Erhan et al.); 'conv': the lecture's conv blocks",
                       choices=("dense", "conv"))
    hidden: list = option([256, 256, 256], "dense widths (--arch dense)", metavar="W,W", parse=parse_int_list)
    networks: int = option(50, "networks per group (with / without pretraining)", metavar="N")
    train_size: int = option(10000, "stratified subset of training images", metavar="N")
    test_size: int = option(10000, "stratified subset of test images for the final accuracy", metavar="N")
    probe_size: int = option(200, "test images whose outputs make a network's output vector", metavar="M")
    epochs: int = option(4, "supervised (fine-tuning) epochs")
    pretrain_epochs: int = option(2, "layer-wise pretraining epochs per stage (the 'with' group)")
    batch_size: int = option(64, "images per step")
    lr: float = option(1e-3, "Adam learning rate (pretraining and fine-tuning)")
    snapshots: int = option(20, "snapshots of each network's outputs after its start")

    def check(self) -> None:
        check_at_least(self, 1, "epochs", "batch_size", "snapshots", "probe_size")
        check_at_least(self, 2, "networks")
        check_at_least(self, 0, "pretrain_epochs")
        check_subset("train", self.train_size), check_subset("test", self.test_size)
        if self.arch == "dense" and (not self.hidden or min(self.hidden) < 1):
            raise ReplearnError(f"--hidden {self.hidden}: give at least one positive width, e.g. 256,256")


QUICK = {"networks": 4, "train_size": 1000, "test_size": 1000, "probe_size": 100, "epochs": 2,
         "pretrain_epochs": 1, "snapshots": 8}


# ----------------------------------------------------------------------------- Run
@with_threads  # --threads: in this process and in each worker
def run(cfg: Config, out: Path | None = None) -> Result:
    """Train both groups, project their output paths, summarise; the figure, the paths, the report."""
    # Prepare the data: stratified subsets; the probe images are a fixed seeded subset of the test images.
    x_tr, y_tr = load_tensors(cfg.dataset, "train", cfg.data_dir, cfg.train_size, cfg.seed, cfg.progress)
    x_te, y_te = load_tensors(cfg.dataset, "test", cfg.data_dir, cfg.test_size, cfg.seed, cfg.progress)
    probe = seeded_subset(len(y_te), cfg.probe_size, cfg.seed + 1)
    data = Data(x_tr, y_tr, x_te, y_te, x_te[probe])
    print(f"{cfg.dataset}: train {tuple(x_tr.shape)}, test {tuple(x_te.shape)}, probe {tuple(data.x_probe.shape)}; "
          f"{cfg.networks} networks per group, a snapshot every {record_every(cfg, len(y_tr))} steps")

    # Train: network i of both groups from the same initial weights (seed + i); only pretraining differs.
    start = time.perf_counter()
    runs = train_groups(cfg, data, cfg.workers())  # --jobs worker processes (or --scheduler), one unit per network
    train_seconds = time.perf_counter() - start

    # Evaluate: all snapshots of all networks projected together; accuracy, loss, spread per group.
    paths = np.stack([np.stack([r["snapshots"].reshape(len(r["steps"]), -1) for r in runs[g]]) for g in GROUPS])
    flat = paths.reshape(-1, paths.shape[-1])  # (2 * N * S, M * K)
    start = time.perf_counter()
    projected = {m: embed_2d(m, flat, seed=cfg.seed)[0].reshape(*paths.shape[:3], 2) for m in ("tsne", "isomap")}
    project_seconds = time.perf_counter() - start
    summary = {g: group_summary(runs[g]) for g in GROUPS}
    sentence = compare_sentence("with pretraining", summary["with"]["test_accuracy"], "without pretraining",
                                summary["without"]["test_accuracy"], metric="test accuracy", paired=True)

    # Save the paths and the metrics; the figure and the report.
    result = Result(metrics={
        "workflow": COMMAND, "dataset": cfg.dataset, "classes": list(CLASS_NAMES[cfg.dataset]),
        "groups": summary, "comparison": sentence, "steps": runs["with"][0]["steps"],
        "pretraining_stages": runs["with"][0]["pretraining"], "train_seconds": round(train_seconds, 1),
        "projection_seconds": round(project_seconds, 1), "machine": machine_summary()})
    result.add("trajectories.npz", lambda path: save_npz(
        path, tsne=projected["tsne"], isomap=projected["isomap"], steps=np.asarray(runs["with"][0]["steps"]),
        final_outputs=paths[:, :, -1], probe_index=probe, groups=np.asarray(GROUPS)))
    trajectories_report.add_outputs(result, cfg, projected, summary, sentence)
    return result
