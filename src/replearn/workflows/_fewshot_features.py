"""Representations learned without the classes to be recognised (``replearn fewshot`` and ``zeroshot``).

``pixels``: the raw pixels in [0, 1] (the baseline); ``cnn``: the global-average-pooled features of a
small CNN trained to classify the seen classes (supervised transfer; not for crops, which have no
seen classes); ``autoencoder``: the codes of the lecture's convolutional autoencoder trained on the
unlabelled / seen-class images; ``simclr``: SimCLR features trained on the same images. No image
of a class to be recognised is used while learning any of them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from replearn.data import to_tensor
from replearn.data.augment import random_shift
from replearn.data.cell_augment import CellAugment
from replearn.encoders import AutoEncoderEmbedding, CNNClassifier, ContrastiveEmbedding
from replearn.errors import ReplearnError
from replearn.train import bf16_enabled, predict
from replearn.utils.runtime import resolve_device
from replearn.workflows._run import MnistRunOptions, bf16_option, check_at_least, option

REPRESENTATIONS = ("pixels", "cnn", "autoencoder", "simclr")
TITLES = {"pixels": "raw pixels", "cnn": "supervised CNN (seen classes)", "autoencoder": "autoencoder codes",
          "simclr": "SimCLR features"}

Features = Callable[[np.ndarray], np.ndarray]


def _names(text: str) -> list[str]:
    return [w.strip() for w in text.split(",") if w.strip()]


@dataclass
class RepresentationOptions(MnistRunOptions):
    """The options of the representations and the data shared by ``fewshot`` and ``zeroshot``."""

    seen: str = option("0-4", "seen classes, e.g. 0-4 or 0,2,4,6,8")
    unseen: str = option("", "unseen classes (default: every class not seen)")
    representations: list = option(list(REPRESENTATIONS), "representations to compare", metavar="R,R",
                                   parse=_names)
    train_size: int = option(5000, "seen-class training images (crops: unlabelled crops) the representations "
                                   "learn from, a seeded subset", metavar="N")
    pool_size: int = option(2000, "unseen-class test images to classify, a seeded subset (0: all)", metavar="N")
    cnn_epochs: int = option(3, "epochs of the supervised CNN")
    ae_epochs: int = option(5, "epochs of the autoencoder")
    simclr_epochs: int = option(5, "epochs of SimCLR")
    code_dim: int = option(32, "autoencoder code size")
    bf16: str = bf16_option("auto")

    def check_options(self, crops: bool) -> None:
        """One line for a bad number or representation name."""
        check_at_least(self, 1, "train_size", "cnn_epochs", "ae_epochs", "simclr_epochs", "code_dim")
        check_at_least(self, 0, "pool_size")
        check_representations(self.representations, crops)


RUN_QUICK = {"train_size": 1000, "pool_size": 300, "cnn_epochs": 1, "ae_epochs": 1, "simclr_epochs": 1}
"""The --quick values of the shared options."""


def digit_views(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """SimCLR views of digits and clothes: brightness gain/offset and shifts of up to 3 px, no flips or turns
    (a flipped 2 or a turned 6 is another digit)."""
    return random_shift(CellAugment(flips=False, rot90=False, scale=0.2, offset=0.1)(x, generator), generator, pad=3)


def check_representations(names: list[str], crops: bool) -> list[str]:
    """The representations to learn, in :data:`REPRESENTATIONS` order (``cnn`` dropped for crops)."""
    unknown = [n for n in names if n not in REPRESENTATIONS]
    if unknown or not names:
        raise ReplearnError(f"--representations {','.join(names)}: choose from {','.join(REPRESENTATIONS)}")
    return [n for n in REPRESENTATIONS if n in names and not (crops and n == "cnn")]


def learn(cfg: Any, task: Any, names: list[str]) -> tuple[dict[str, Features], dict[str, float]]:
    """Train each representation in ``names`` on ``task``; return name -> ``f(images) -> (N, D)`` and seconds."""
    device = str(resolve_device(cfg.device))
    bf16 = bf16_enabled(cfg.bf16, device)
    crops = task.seen_x is None
    common = dict(seed=cfg.seed, device=device, progress=cfg.progress, bf16=bf16)
    out: dict[str, Features] = {}
    seconds: dict[str, float] = {}
    for name in names:
        start = time.perf_counter()
        if name == "pixels":
            out[name] = lambda images: to_tensor(images).flatten(1).numpy()
        elif name == "cnn":
            est = CNNClassifier(network="small_cnn", network_params={"depth": 3, "width": 16, "dense": 64},
                                epochs=cfg.cnn_epochs, batch_size=128, lr=3e-3, schedule="onecycle", **common)
            est.fit(task.seen_x, task.seen_y)
            body = est.model_.truncate("features")
            out[name] = lambda images, body=body: predict(body, to_tensor(images), 1024).numpy()
        elif name == "autoencoder":
            est = AutoEncoderEmbedding(code_dim=cfg.code_dim, epochs=cfg.ae_epochs, batch_size=128, lr=3e-3,
                                       **common).fit(task.learn)
            out[name] = est.transform
        else:
            est = ContrastiveEmbedding(epochs=cfg.simclr_epochs, batch_size=256, views=None if crops else digit_views,
                                       **common).fit(task.learn)
            out[name] = est.transform
        seconds[name] = round(time.perf_counter() - start, 1)
    return out, seconds
