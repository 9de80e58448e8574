"""``replearn autoencoder``'s setup: the ``--blocks``/``--hidden`` parsers, the config checks, the estimator, the data.

Every check here runs in ``Config.check()``, before the run folder is made:
bad numbers and widths, a bad noise setting, a data set that cannot be read
and a network that cannot take its images each fail in one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from replearn.data import CLASS_NAMES, load_assignment, load_dataset, seeded_subset, stratified_split
from replearn.errors import ReplearnError

QUICK_TRAIN, QUICK_EVAL = 2000, 500
"""--quick: seeded subsets of this many training (or unlabelled) and test images."""

VAL_FRACTION = 0.25  # npz data: labelled codes split 300/100 into reference/queries, as the lecture's 300/100
MNIST_LIKE = ("mnist", "fashion", "fashion-mnist", "fashion_mnist")
MNIST_SHAPE = (28, 28)


# ----------------------------------------------------------------------------- Parsing the flags
def parse_blocks(text: str) -> list[list[int]]:
    """``"32/32,16/16,8"`` -> ``[[32], [32, 16], [16, 8]]``."""
    try:
        blocks = [[int(w) for w in block.split(",")] for block in text.split("/")]
    except ValueError:
        raise ReplearnError(f"--blocks {text!r}: expected widths like 32/32,16/16,8 (blocks by '/', widths by ',')") from None
    if not blocks or any(w < 1 for b in blocks for w in b):
        raise ReplearnError(f"--blocks {text!r}: widths must be positive integers")
    return blocks


def parse_widths(text: str) -> list[int]:
    """``"128,32"`` -> ``[128, 32]``; ``""`` -> ``[]``."""
    try:
        widths = [int(w) for w in text.split(",")] if text.strip() else []
    except ValueError:
        raise ReplearnError(f"--hidden {text!r}: expected dense widths like 128 or 256,64") from None
    if any(w < 1 for w in widths):
        raise ReplearnError(f"--hidden {text!r}: widths must be positive integers")
    return widths


def _width_lists(value: Any, allow_empty: bool = False) -> bool:
    """True when ``value`` is a non-empty list of lists of positive integers (inner lists non-empty unless allowed)."""
    def width(w: Any) -> bool:
        return isinstance(w, int) and not isinstance(w, bool) and w > 0
    return (isinstance(value, list) and len(value) > 0
            and all(isinstance(b, list) and (allow_empty or b) and all(width(w) for w in b) for b in value))


# ----------------------------------------------------------------------------- Checking the config
def check_config(cfg: Any) -> None:
    """Raise one line for a bad value, unreadable data or a network that cannot take the images."""
    from replearn.data.augment import make_corruption

    for key in ("epochs", "code_dim", "batch_size", "compare_ref", "compare_queries"):
        if getattr(cfg, key) < 1:
            raise ReplearnError(f"{key.replace('_', '-')}: expected a positive integer, got {getattr(cfg, key)}")
    if not _width_lists(cfg.blocks):
        raise ReplearnError(f"blocks: expected a non-empty list of non-empty lists of positive integers, "
                            f"e.g. [[32], [32, 16], [16, 8]]; got {cfg.blocks!r}")
    if not _width_lists([cfg.hidden], allow_empty=True):
        raise ReplearnError(f"hidden: expected a list of positive integers, e.g. [128] (or [] for none); got {cfg.hidden!r}")
    if cfg.layerwise_epochs < 0:
        raise ReplearnError(f"layerwise: expected an integer >= 0 (epochs per stage; 0 is off), got {cfg.layerwise_epochs}")
    make_corruption(cfg.noise_kind, cfg.noise)  # a bad noise level or kind fails here, before any work
    check_network(cfg, image_shape(cfg.dataset))


def check_network(cfg: Any, image_shape: tuple[int, ...]) -> None:
    """Build the configured network for images of ``image_shape`` (H, W); raise its one-line error if it cannot be."""
    from replearn.models import create_model

    extra = {"hidden": tuple(cfg.hidden)} if cfg.hidden else {}
    create_model(cfg.model, input_shape=(1, *image_shape), code_dim=cfg.code_dim,
                 blocks=tuple(tuple(b) for b in cfg.blocks), **extra)


def image_shape(dataset: str) -> tuple[int, ...]:
    """(H, W) of the training images of ``dataset``; an npz is read (and validated) for it."""
    if str(dataset).lower() in MNIST_LIKE:
        return MNIST_SHAPE
    return _training_images(_npz(dataset))[0].shape[1:]


def _npz(dataset: str) -> Any:
    path = Path(dataset)
    if path.suffix.lower() != ".npz":
        raise ReplearnError(f"--dataset {dataset!r}: expected 'mnist', 'fashion' or a .npz file")
    return load_assignment(path)


def _training_images(data: Any, include_labelled: bool = False, limit: int | None = None,
                     seed: int = 0) -> tuple[np.ndarray, str]:
    """What the autoencoder trains on from an npz: the unlabelled crops (``limit`` of them, seeded), or with the
    labelled ones too; and a note saying which."""
    labelled, unlabelled = data.labelled, data.unlabelled
    if limit is not None:
        unlabelled = unlabelled[seeded_subset(len(unlabelled), limit, seed)]
    if include_labelled or len(unlabelled) == 0:
        train = np.concatenate([unlabelled, labelled.astype(unlabelled.dtype)]) if len(unlabelled) else labelled
        return train, f"{len(unlabelled)} unlabelled + {len(labelled)} labelled crops (labels not used)"
    return unlabelled, f"{len(unlabelled)} unlabelled crops (the {len(labelled)} labelled ones held out)"


# ----------------------------------------------------------------------------- The recipe
def recipe(cfg: Any) -> dict[str, Any]:
    """The training recipe as ``metrics.json`` and the model's meta hold it (``schedule`` 'none' is None)."""
    from replearn.workflows._run import saved_config

    values = {k: v for k, v in saved_config(cfg).items() if k not in ("compare", "seed", "device", "data_dir", "quick")}
    return {**values, "schedule": None if cfg.schedule == "none" else cfg.schedule}


def estimator(cfg: Any, validation_data: Any = None) -> Any:
    """The autoencoder estimator of ``cfg``'s recipe (``validation_data``: images monitored each epoch)."""
    from replearn.encoders import AutoEncoderEmbedding
    from replearn.train import bf16_enabled
    from replearn.utils.runtime import resolve_device
    from replearn.workflows._autoencoder_umap import umap_estimator

    if getattr(cfg, "objective", "recon") != "recon":
        return umap_estimator(cfg)

    return AutoEncoderEmbedding(
        model=cfg.model, code_dim=cfg.code_dim, blocks=tuple(tuple(b) for b in cfg.blocks),
        hidden=tuple(cfg.hidden), epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
        optimizer=cfg.optimizer, schedule=None if cfg.schedule == "none" else cfg.schedule,
        weight_decay=cfg.weight_decay, loss=cfg.loss, noise=cfg.noise, noise_kind=cfg.noise_kind,
        layerwise_epochs=cfg.layerwise_epochs, bf16=bf16_enabled(cfg.bf16, resolve_device(cfg.device).type),
        channels_last=cfg.channels_last, seed=cfg.seed, device=cfg.device, progress=cfg.progress,
        validation_data=validation_data,
    )


# ----------------------------------------------------------------------------- Preparing the data
@dataclass
class Data:
    """Images for training and evaluation (uint8 (N, H, W), or float in [0, 1]).

    ``train``: what the autoencoder reconstructs; ``held_out``: images for the
    reconstruction error, the scatter and the pairs (the MNIST test set, or the
    npz's labelled crops); ``ref``/``query``: labelled images whose codes are
    the k-NN reference and queries.
    """

    title: str
    source: str
    train: np.ndarray
    train_note: str
    held_out: np.ndarray
    held_out_labels: np.ndarray
    held_out_name: str
    ref: np.ndarray
    ref_labels: np.ndarray
    ref_name: str
    query: np.ndarray
    query_labels: np.ndarray
    query_name: str
    class_names: list[str]
    synthetic: bool = False  # an npz marked synthetic (replearn synth): every output says so

    def line(self) -> str:
        """One line saying what the autoencoder trains on and what is held out."""
        kind = "SYNTHETIC " if self.synthetic else ""
        return (f"data: {kind}{self.source}; training on {self.train_note}, {self.train.shape[1]}x"
                f"{self.train.shape[2]} px; {len(self.held_out)} {self.held_out_name} images held out")

    def describe(self) -> dict[str, Any]:
        """What ``metrics.json`` says about the data."""
        return {"data": self.source, "synthetic": self.synthetic, "train": self.train_note,
                "held_out": f"{len(self.held_out)} {self.held_out_name} images",
                "reference": f"{len(self.ref)} {self.ref_name} codes",
                "queries": f"{len(self.query)} {self.query_name} codes"}


def prepare_data(cfg: Any) -> Data:
    """Load MNIST/Fashion-MNIST (train, test) or an assignment npz (--quick: seeded subsets)."""
    name = str(cfg.dataset)
    if name.lower() in MNIST_LIKE:
        x_tr, y_tr = load_dataset(name, "train", cfg.data_dir, progress=cfg.progress)
        x_te, y_te = load_dataset(name, "test", cfg.data_dir, progress=cfg.progress)
        if cfg.quick:
            i, j = seeded_subset(len(x_tr), QUICK_TRAIN, cfg.seed), seeded_subset(len(x_te), QUICK_EVAL, cfg.seed)
            x_tr, y_tr, x_te, y_te = x_tr[i], y_tr[i], x_te[j], y_te[j]
        title = "MNIST" if name.lower() == "mnist" else "Fashion-MNIST"
        return Data(
            title=title, source=f"{title} train/test", train=x_tr, held_out=x_te, held_out_labels=y_te,
            held_out_name="test", ref=x_tr, ref_labels=y_tr, query=x_te, query_labels=y_te,
            ref_name="train", query_name="test",
            class_names=list(CLASS_NAMES["mnist" if title == "MNIST" else "fashion"]),
            train_note=f"{len(x_tr)} {title} training images",
        )
    data = _npz(name)
    labelled, labels = data.labelled, data.labels
    train, note = _training_images(data, cfg.include_labelled, QUICK_TRAIN if cfg.quick else None, cfg.seed)
    ref_idx, q_idx = stratified_split(labels, VAL_FRACTION, cfg.seed)
    return Data(
        title=Path(name).name, source=str(Path(name)), train=train, held_out=labelled, held_out_labels=labels,
        held_out_name="labelled", ref=labelled[ref_idx], ref_labels=labels[ref_idx], query=labelled[q_idx],
        query_labels=labels[q_idx], ref_name="labelled (75%)", query_name="labelled (25%)",
        class_names=list(data.class_names), train_note=note, synthetic=data.synthetic,
    )
