"""``replearn trajectories``' training: the networks, one network's run, the groups' summaries.

Both groups train network ``i`` from the same initial weights (``torch.manual_seed(seed + i)``),
on the same images in the same order with the same fine-tuning settings; the only difference is
that the "with" group first runs greedy layer-wise pretraining (:mod:`replearn.train.layerwise`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.spatial.distance import pdist

from replearn.evaluate import mean_ci
from replearn.models import LECTURE_AE_BLOCKS, Network
from replearn.train import TrainConfig, evaluate, fit, num_batches
from replearn.train.layerwise import POOLS, pretrain_layerwise
from replearn.train.trajectory import OutputRecorder
from replearn.utils.parallel import Workers, run_units
from replearn.utils.units import Unit, UnitStore

GROUPS = ("without", "with")
"""Group names: without and with greedy layer-wise pretraining."""


def network_spec(arch: str, hidden: list[int], n_classes: int = 10) -> tuple[list[str], tuple[str, ...]]:
    """The classifier's layer spec and the ops after which a pretraining stage ends.

    ``dense``: flatten, then one sigmoid layer per width in ``hidden`` (the last named ``features``),
    then Dense(n_classes), Erhan et al.'s setting, one pretraining stage per hidden layer. ``conv``:
    the lecture's convolutional blocks (conv-ReLU-BN, 2x2 pool), flatten as ``features``, Dense(n_classes).
    """
    if arch == "dense":
        spec = ["flatten"]
        for i, width in enumerate(hidden):
            spec += [f"dense {int(width)}", "sigmoid" + (" as features" if i == len(hidden) - 1 else "")]
        return spec + [f"dense {n_classes}"], ("sigmoid",)
    spec = []
    for block in LECTURE_AE_BLOCKS:
        for width in block:
            spec += [f"conv {width}", "relu", "bn"]
        spec.append("maxpool")
    return spec + ["flatten as features", f"dense {n_classes}"], POOLS


def build_network(cfg: Any, seed: int, input_shape: tuple[int, ...] = (1, 28, 28)) -> tuple[Network, tuple[str, ...]]:
    """Network ``seed``'s classifier, its initial weights drawn with ``torch.manual_seed(seed)``."""
    spec, cuts = network_spec(cfg.arch, cfg.hidden)
    torch.manual_seed(seed)
    return Network(spec, input_shape), cuts


def train_config(cfg: Any, seed: int, epochs: int, loss: str = "cross_entropy") -> TrainConfig:
    """The optimiser settings shared by pretraining and fine-tuning (Adam, constant rate)."""
    return TrainConfig(epochs=epochs, batch_size=cfg.batch_size, optimizer="adam", lr=cfg.lr, loss=loss,
                       seed=seed, device=cfg.device, monitor="loss")


@dataclass
class Data:
    """Training images (N, 1, 28, 28) and labels, test images and labels, the fixed probe images (M, 1, 28, 28)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    x_probe: torch.Tensor


def record_every(cfg: Any, n_train: int) -> int:
    """Optimisation steps between snapshots, so that a run makes about ``cfg.snapshots`` after its start."""
    steps = cfg.epochs * num_batches(n_train, cfg.batch_size, drop_single=True)
    return max(1, steps // cfg.snapshots)


def train_one(cfg: Any, data: Data, seed: int, pretrain: bool) -> dict[str, Any]:
    """Train network ``seed`` (with or without pretraining) and record its outputs on the probe images.

    Returns ``snapshots`` float32 (S, M, K), ``steps`` (S,), final ``test_accuracy``/``test_loss``
    and the pretraining stages' records (empty without pretraining).
    """
    net, cuts = build_network(cfg, seed, tuple(data.x_train.shape[1:]))
    stages: list[dict[str, Any]] = []
    if pretrain and cfg.pretrain_epochs > 0:
        stages = pretrain_layerwise(net.truncate("features"), data.x_train,
                                    train_config(cfg, seed, cfg.pretrain_epochs, loss="model"),
                                    progress=False, cut_after=cuts)
    recorder = OutputRecorder(data.x_probe, every=record_every(cfg, len(data.y_train)))
    fit(net, (data.x_train, data.y_train), None, train_config(cfg, seed, cfg.epochs), progress=False,
        callbacks=[recorder])
    final = evaluate(net, data.x_test, data.y_test, batch_size=1024)
    return {"snapshots": recorder.snapshots(), "steps": list(recorder.steps_), "test_accuracy": final["accuracy"],
            "test_loss": final["loss"], "pretraining": stages}


def train_unit(cfg: Any, arrays: tuple[np.ndarray, ...], seed: int, pretrain: bool) -> Unit:
    """:func:`train_one` as a unit of a parallel sweep; ``arrays``: the :class:`Data` fields as numpy arrays (joblib
    memory-maps large ones for its workers instead of copying them into every task)."""
    run = train_one(cfg, Data(*(torch.from_numpy(np.array(a)) for a in arrays)), seed, pretrain)
    return Unit(record={k: v for k, v in run.items() if k != "snapshots"}, arrays={"snapshots": run["snapshots"]})


def train_groups(cfg: Any, data: Data, workers: Workers) -> dict[str, list[dict[str, Any]]]:
    """Network i of both groups (seed ``cfg.seed + i``), every one a unit run on ``workers``; group -> runs in order."""
    arrays = tuple(t.numpy() for t in (data.x_train, data.y_train, data.x_test, data.y_test, data.x_probe))
    plan = [({"network": i, "group": g}, functools.partial(train_unit, cfg, arrays, cfg.seed + i, g == "with"))
            for i in range(cfg.networks) for g in GROUPS]
    store = UnitStore(None)
    run_units(store, plan, workers, desc="networks", unit="net")
    runs: dict[str, list[dict[str, Any]]] = {g: [] for g in GROUPS}
    for key, compute in plan:
        unit = store.unit(key, compute)
        runs[key["group"]].append({**unit.record, "snapshots": unit.arrays["snapshots"]})
    return runs


def group_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and 95% CI of the final test accuracy and loss; the spread of the end points.

    The spread is the mean pairwise Euclidean distance between the networks' final output vectors
    (every probe image's class probabilities, concatenated).
    """
    acc, loss = [r["test_accuracy"] for r in runs], [r["test_loss"] for r in runs]
    ends = np.stack([r["snapshots"][-1].ravel() for r in runs])
    spread = float(pdist(ends).mean()) if len(runs) > 1 else float("nan")
    (acc_mean, acc_ci), (loss_mean, loss_ci) = mean_ci(acc), mean_ci(loss)
    return {"networks": len(runs), "test_accuracy": acc, "test_loss": loss, "accuracy_mean": acc_mean,
            "accuracy_ci95": acc_ci, "loss_mean": loss_mean, "loss_ci95": loss_ci, "end_spread": spread}
