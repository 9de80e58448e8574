"""The methods of ``replearn fewlabels``: each trains on one draw's labelled images (and, where it uses them,
the unlabelled rest) and predicts the test images. Label-free pretraining (SimCLR, the autoencoder) and the
other data set's CNN (transfer) are trained once per run and shared by every draw."""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch

from replearn.encoders import (AutoEncoderEmbedding, CNNClassifier, ContrastiveEmbedding, FineTunedClassifier,
                               SemiSupervisedClassifier, pretrained_encoder)
from replearn.data import seeded_subset
from replearn.evaluate.probes import create_probe
from replearn.train import bf16_enabled
from replearn.train.semisup import fixmatch_views
from replearn.workflows._fewlabels_data import VIEWS, FewLabelData, load

TITLES = {
    "cnn": "CNN from random initialisation", "cnn_aug": "CNN with augmentation",
    "layerwise": "greedy layer-wise AE pretraining, fine-tuned", "ae_lr": "autoencoder codes + logistic regression",
    "simclr_lr": "SimCLR features + logistic regression", "simclr_ft": "SimCLR fine-tuned",
    "semisup": "semi-supervised (FixMatch-style)", "simclr_semi": "SimCLR fine-tuned, semi-supervised on top",
    "transfer": "transfer from the other data set, fine-tuned",
}
SEMI_SUPERVISED = ("semisup", "simclr_semi")  # trained with the unlabelled images, for --semisup-steps
SHARED = {"ae_lr": "autoencoder", "layerwise": "autoencoder", "simclr_lr": "simclr", "simclr_ft": "simclr",
          "simclr_semi": "simclr", "transfer": "transfer_base"}
"""The method -> the shared label-free encoder it needs (a :class:`Pretrained` method)."""
METHODS = tuple(TITLES)
FINE_TUNE_EPOCHS = 10  # a short labelled set is repeated so that these epochs hold the step budget
OTHER = {"mnist": "fashion", "fashion": "mnist"}


def _network(cfg: Any) -> dict[str, Any]:
    return {"depth": 3, "width": cfg.width, "dropout": 0.0, "dense": 128}


def uses_bf16(cfg: Any, device: str) -> bool:
    """Whether ``--bf16`` turns bfloat16 autocast on for the networks this run trains on ``device``."""
    return bf16_enabled(cfg.bf16, torch.device(device).type)


def cnn_epochs(n: int, steps: int, batch: int) -> int:
    """Epochs of a ``CNNClassifier`` (one epoch: ceil(n / batch) steps) that make about ``steps`` steps."""
    return max(1, round(steps / math.ceil(n / batch)))


def repeated_epochs(n: int, steps: int, batch: int) -> tuple[int, int]:
    """(epochs, steps_per_epoch) of an estimator that repeats a short labelled set: about ``steps`` steps."""
    natural = math.ceil(n / batch)
    per_epoch = math.ceil(steps / FINE_TUNE_EPOCHS)
    if natural >= per_epoch:
        return max(1, round(steps / natural)), 1
    return FINE_TUNE_EPOCHS, per_epoch


class Pretrained:
    """Label-free encoders (and the transfer base), built on first use and kept for every draw."""

    def __init__(self, data: FewLabelData, cfg: Any, device: str) -> None:
        self.data, self.cfg, self.device, self._cache = data, cfg, device, {}
        self.seconds: dict[str, float] = {}

    def get(self, name: str, build: Callable[[], Any]) -> Any:
        if name not in self._cache:
            import time
            start = time.perf_counter()
            print(f"  pretraining {name} (once, shared by every draw) ...")
            self._cache[name] = build()
            self.seconds[name] = time.perf_counter() - start
        return self._cache[name]

    def images(self) -> torch.Tensor:
        """Every training image without its label, plus the extra unlabelled ones."""
        return torch.cat([self.data.x, self.data.extra]) if len(self.data.extra) else self.data.x

    def simclr(self) -> ContrastiveEmbedding:
        c, kind = self.cfg, VIEWS[self.data.name]
        views = None if kind == "cells" else fixmatch_views(kind, 1.0)[1]
        return self.get("SimCLR", lambda: ContrastiveEmbedding(
            depth=3, width=c.width, epochs=c.pretrain_epochs, batch_size=256, views=views, seed=c.seed,
            device=self.device, bf16=uses_bf16(c, self.device), progress=c.progress).fit(self.images()))

    def autoencoder(self) -> AutoEncoderEmbedding:
        c = self.cfg
        return self.get("autoencoder", lambda: AutoEncoderEmbedding(
            code_dim=32, epochs=c.pretrain_epochs, layerwise_epochs=1, seed=c.seed, device=self.device,
            bf16=uses_bf16(c, self.device), progress=c.progress).fit(self.images()))

    def transfer_base(self) -> torch.nn.Module:
        c, other = self.cfg, OTHER[self.data.name]

        def build() -> torch.nn.Module:
            o = load(other, c.data_dir, None, 0, 0, c.seed, c.progress)
            epochs = cnn_epochs(len(o.y), c.steps * 4, c.batch_size)
            clf = CNNClassifier(network_params=_network(c), epochs=epochs, batch_size=c.batch_size, lr=3e-3,
                                schedule="cosine", seed=c.seed, device=self.device, bf16=uses_bf16(c, self.device),
                                progress=c.progress)
            return clf.fit(o.x, o.y).model_.truncate("features")

        return self.get(f"CNN on {other}", build)


def _semi_supervised(cfg: Any, kind: str, unlabelled: torch.Tensor) -> dict[str, Any]:
    """The FixMatch-style settings of a semi-supervised method (``semisup``, ``simclr_semi``) from the options."""
    labelled_view = fixmatch_views(kind, cfg.strength)[1] if cfg.labelled_view == "strong" else None
    return dict(unlabelled=unlabelled, threshold=cfg.threshold, ratio=cfg.ratio, strength=cfg.strength, views=kind,
                ema=cfg.ema, align=cfg.aligns(), augment=labelled_view, neighbours=cfg.neighbour_count())


def train_and_predict(method: str, data: FewLabelData, labelled: np.ndarray, unlabelled: torch.Tensor,
                      seed: int, cfg: Any, pre: Pretrained, device: str) -> np.ndarray:
    """Test-set predictions (N_test,) of ``method`` trained on ``data.x[labelled]`` (+ ``unlabelled``)."""
    x, y = data.x[torch.from_numpy(labelled)], data.y[torch.from_numpy(labelled)]
    kind, classes = VIEWS[data.name], list(range(data.n_classes))
    steps = cfg.semisup_steps if method in SEMI_SUPERVISED else cfg.steps
    if method not in ("ae_lr", "simclr_lr") and len(y) > steps * cfg.batch_size:
        keep = torch.from_numpy(seeded_subset(len(y), steps * cfg.batch_size, seed))  # the budget's batches
        x, y = x[keep], y[keep]
    common = dict(batch_size=cfg.batch_size, lr=cfg.lr, schedule="cosine", seed=seed, classes=classes,
                  optimizer="adamw" if cfg.weight_decay else "adam", weight_decay=cfg.weight_decay, device=device,
                  bf16=uses_bf16(cfg, device), progress=False)
    if method in ("cnn", "cnn_aug"):
        epochs = cnn_epochs(len(y), cfg.steps, cfg.batch_size)
        augment = fixmatch_views(kind, cfg.strength)[1] if method == "cnn_aug" else None
        clf = CNNClassifier(network_params=_network(cfg), epochs=epochs, augment=augment, **common)
    elif method in ("ae_lr", "simclr_lr"):
        encoder = pre.autoencoder() if method == "ae_lr" else pre.simclr()
        probe = create_probe("logreg", seed=seed).fit(encoder.transform(x), y.numpy())
        return probe.predict(encoder.transform(data.x_test))
    elif method == "semisup":
        epochs, per_epoch = repeated_epochs(len(y), steps, cfg.batch_size)
        clf = SemiSupervisedClassifier(network_params=_network(cfg), epochs=epochs, steps_per_epoch=per_epoch,
                                       **_semi_supervised(cfg, kind, unlabelled), **common)
    else:
        encoder = getattr(pre, SHARED[method])()
        encoder = encoder if method == "transfer" else pretrained_encoder(encoder)  # the base is a network already
        epochs, per_epoch = repeated_epochs(len(y), steps, cfg.batch_size)
        semi = _semi_supervised(cfg, kind, unlabelled) if method == "simclr_semi" else {"views": kind}
        clf = FineTunedClassifier(encoder=encoder, encoder_lr_scale=cfg.encoder_lr_scale, head_hidden=128,
                                  epochs=epochs, steps_per_epoch=per_epoch, **semi, **common)
    return clf.fit(x, y).predict(data.x_test)
