"""The inputs of ``replearn domain``: the saved encoder, the real crops and the labelled source crops, checked.

Everything a user can get wrong is checked here (:func:`load_inputs`), in one
order, with one-line errors; ``Config.check`` calls it before the run folder is
made and the recipe calls it again for the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from replearn.data import load_assignment, seeded_subset, synthetic_aureus
from replearn.data.synthetic import PRESETS as SYNTHETIC_PRESETS, source_preset
from replearn.encoders.loading import LoadedEncoder, load_encoder
from replearn.errors import ReplearnError

PRESETS = tuple(sorted(SYNTHETIC_PRESETS))
N_SYNTHETIC = 600  # built-in synthetic labelled crops encoded (the source domain)
K_NEIGHBOURS = 5  # k of the k-NN stage guess and of the neighbour figure
SYNTHETIC_SEED_OFFSET = 1000  # built-in crops use seed --seed + 1000: not the crops the model was trained on
QUICK_SYNTHETIC, QUICK_REAL = 150, 120  # --quick: seeded subsets


@dataclass
class Crops:
    """Images (N, H, W), optional labels (N,) (-1 = none), where they came from, and whether synthetic."""

    images: np.ndarray
    labels: np.ndarray
    source: str
    synthetic: bool
    class_names: list[str]


class Inputs(NamedTuple):
    """A run's checked inputs: the encoder, the real (target) crops, the labelled source crops, the preset drawn."""

    encoder: LoadedEncoder
    real: Crops
    source: Crops
    preset: str | None


def model_preset(meta: dict[str, Any]) -> str | None:
    """The synthetic preset a model was trained on, from its metadata (None when unknown or real data)."""
    return source_preset(str(meta.get("data_source", meta.get("data", ""))))


def trained_on(meta: dict[str, Any]) -> str:
    """What the model was trained on, from its metadata; SYNTHETIC data say so."""
    if meta.get("synthetic") or model_preset(meta):
        return "SYNTHETIC crops (" + str(meta.get("data_source", meta.get("data", "?"))) + ")"
    return str(meta.get("data_source", meta.get("data", "unknown (no metadata)")))


def load_real(path: str, quick: bool, seed: int) -> Crops:
    """Real crops from an ``.npz`` (labelled + unlabelled; labels kept when present) or PNG/TIFF files."""
    from replearn.workflows._images import read_images

    p = Path(path)
    if not p.exists():
        raise ReplearnError(
            f"--real {path}: no such file or folder (expected crops of real cells, e.g. from replearn crops)")
    if p.suffix.lower() == ".npz":
        data = load_assignment(p, require_labelled=False)
        images = np.concatenate([data.labelled, data.unlabelled.astype(data.labelled.dtype)])
        labels = np.concatenate([data.labels, np.full(len(data.unlabelled), -1, dtype=np.int64)])
        names, source, synthetic = list(data.class_names), data.source, data.synthetic
    else:
        images, _items = read_images(p)
        labels, names, source, synthetic = np.full(len(images), -1, dtype=np.int64), [], str(p), False
    if quick:
        keep = seeded_subset(len(images), QUICK_REAL, seed)
        images, labels = images[keep], labels[keep]
    return Crops(images, labels, source, synthetic, names)


def load_source(cfg: Any, enc: LoadedEncoder) -> tuple[Crops, str | None]:
    """The labelled source crops: ``--synthetic`` npz, or built-in synthetic crops of the model's size."""
    n = min(cfg.n_synthetic, QUICK_SYNTHETIC) if cfg.quick else cfg.n_synthetic
    if n < 6:
        raise ReplearnError(f"--n-synthetic {cfg.n_synthetic}: needs at least 6 crops (2 per stage)")
    if cfg.synthetic:
        if cfg.preset:
            raise ReplearnError("--preset applies to the built-in synthetic crops; it cannot be used with --synthetic")
        data = load_assignment(cfg.synthetic)
        keep = seeded_subset(len(data.labels), n, cfg.seed) if cfg.quick else np.arange(len(data.labels))
        note = "SYNTHETIC" if data.synthetic else "labelled"
        return Crops(data.labelled[keep], data.labels[keep], f"{cfg.synthetic} ({note} crops)", True,
                     list(data.class_names)), None
    _, h, w = enc.input_shape
    if h != w or h < 16:
        raise ReplearnError(
            f"--model {cfg.model}: takes {h}x{w} px crops; the built-in synthetic crops are square and at least "
            "16 px: give --synthetic data.npz"
        )
    preset = cfg.preset or model_preset(enc.meta) or "sim"
    data = synthetic_aureus(n, 0, seed=cfg.seed + SYNTHETIC_SEED_OFFSET, preset=preset, size=h)
    return Crops(data.labelled, data.labels, data.source, True, list(data.class_names)), preset


def check_size(crops: Crops, enc: LoadedEncoder, option: str, path: str) -> None:
    """Crops must have the model's input size (one line naming both sizes)."""
    c, h, w = enc.input_shape
    if c != 1:
        raise ReplearnError(f"--model {enc.path}: takes {c}-channel images; domain reads grayscale crops only")
    got = tuple(int(s) for s in crops.images.shape[1:])
    if got != (h, w):
        raise ReplearnError(
            f"{option} {path}: crops are {got[0]}x{got[1]} px but the model ({enc.path}) takes {h}x{w} px; "
            f"cut crops of that size (e.g. replearn crops --size {h})"
        )


def load_inputs(cfg: Any) -> Inputs:
    """The encoder (``--model``, ``--layer``), the real crops and the source crops; one-line errors."""
    enc = load_encoder(cfg.model, cfg.layer)
    real = load_real(cfg.real, cfg.quick, cfg.seed)
    check_size(real, enc, "--real", cfg.real)
    if len(real.images) < 2:
        raise ReplearnError(f"--real {cfg.real}: holds {len(real.images)} crop(s); at least 2 are needed")
    source, preset = load_source(cfg, enc)
    check_size(source, enc, "--synthetic", cfg.synthetic or "(built-in)")
    if enc.class_names and len(enc.class_names) != len(source.class_names):
        raise ReplearnError(
            f"--model {cfg.model}: a {len(enc.class_names)}-class classifier, but the source crops have "
            f"{len(source.class_names)} stages"
        )
    return Inputs(enc, real, source, preset)


def describe(inputs: Inputs) -> dict[str, Any]:
    """``metrics.json``'s ``data`` (both domains) and ``model`` sections."""
    enc, real, source = inputs.encoder, inputs.real, inputs.source
    return {
        "data": {
            "synthetic": {"source": source.source, "n": int(len(source.images)), "synthetic": source.synthetic,
                          "preset": inputs.preset,
                          "class_counts": np.bincount(source.labels, minlength=len(source.class_names)).tolist()},
            "real": {"source": real.source, "n": int(len(real.images)), "synthetic": real.synthetic,
                     "n_labelled": int((real.labels >= 0).sum())},
            "size": f"{real.images.shape[1]}x{real.images.shape[2]}",
        },
        "model": {"path": str(enc.path), "kind": enc.kind, "description": enc.description,
                  "trained_on": trained_on(enc.meta), "layer": enc.layer if enc.kind != "autoencoder" else "encoder"},
    }
