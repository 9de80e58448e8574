"""Predict the division stage of cell crops with a saved classifier, to CSV.

``--model`` is a run folder of ``replearn assignment`` (its best CNN,
``model.safetensors``) or any classifier ``.safetensors`` saved by replearn
with its ``.json`` sidecar. The crops are an ``.npz`` (every (N, H, W) array in
it, e.g. the course's ``labelled`` and ``unlabelled``, or one ``--key``), one
PNG/TIFF image, or a folder of PNG/TIFF crops (read in name order by
:func:`replearn.workflows._images.read_images`). Pixels are scaled as in
training (uint8 / 255; float in [0, 1] kept). Crops must have the size the
model was trained on (the sidecar's ``input_size``); others are refused with
one line.

The CSV (``--out``, default ``predictions.csv``) has one row per crop:
``item``, ``predicted_index``, ``predicted_stage`` (the class name), then one
softmax probability per class, ``p(<class name>)``; the predicted stage is the
most probable one. When the model was trained on SYNTHETIC data, or the crops
are an ``.npz`` marked synthetic (as ``replearn synth`` writes), the printed
summary says so and a sidecar ``<out>.json`` records it.
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from replearn.errors import ReplearnError

COMMAND = "predict"
HELP = "predict the stage of cell crops (npz, PNG/TIFF folder) with a saved classifier; writes CSV"
OUT_HELP = "the CSV file to write, or a folder for predictions.csv (default: predictions.csv)"
EXAMPLES = """\
examples:
  replearn predict --model runs/assignment-20250101-120000 new_crops/
  replearn predict --model runs/a1/model.safetensors data.npz --key unlabelled --out unlabelled.csv
"""

DEFAULT_OUT = "predictions.csv"
BATCH = 1024


# ----------------------------------------------------------------------------- Setup
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``replearn predict`` (``--out`` is the CSV file, or a folder for ``predictions.csv``)."""
    parser.add_argument("images", help="an .npz, a .png/.tif crop, or a folder of .png/.tif crops")
    parser.add_argument("--model", required=True, metavar="RUN",
                        help="run folder of `replearn assignment`, or a classifier .safetensors")
    parser.add_argument("--key", help="npz: the one array to predict (default: every (N, H, W) array)")


def output_path(out: str | None) -> Path:
    """The CSV path: ``--out`` itself, ``predictions.csv`` inside a folder, or the default."""
    path = Path(out or DEFAULT_OUT)
    if path.is_dir() or (out and not path.suffix):
        return path / DEFAULT_OUT
    if path.suffix.lower() != ".csv":
        raise ReplearnError(f"--out {path}: expected a .csv file or a folder")
    return path


# ----------------------------------------------------------------------------- Load the classifier
def load_classifier(path: str) -> tuple[torch.nn.Module, dict[str, Any], list[str]]:
    """(network mapping (N, 1, H, W) to logits (N, K), its metadata, the K class names) of a saved model."""
    from replearn.models import Network, load_model

    if not Path(path).exists():
        raise ReplearnError(f"--model {path}: no such run folder or weights file")
    model, meta = load_model(path)
    if not isinstance(model, Network) or len(model.output_shape) != 1:
        kind = "an autoencoder" if meta.get("task") == "autoencoder" or not isinstance(model, Network) else \
            f"a network with outputs {tuple(model.output_shape)}"
        raise ReplearnError(f"--model {path}: holds {kind}, not a classifier (use `replearn embed` for codes)")
    k = int(model.output_shape[0])
    names = [str(n) for n in meta.get("class_names", [])]
    if len(names) != k:
        names = [str(i) for i in range(k)]
    return model, meta, names


# ----------------------------------------------------------------------------- Predict
def probabilities(model: torch.nn.Module, images: np.ndarray, device: torch.device) -> np.ndarray:
    """Softmax class probabilities (N, K) float64 of images (N, H, W)."""
    from replearn.data import to_tensor
    from replearn.train import predict

    model.to(device)
    logits = predict(model, to_tensor(images), BATCH)
    return torch.softmax(logits.double(), dim=1).numpy()


def to_csv(items: list[str], probs: np.ndarray, names: list[str]) -> str:
    """CSV text: item, predicted_index, predicted_stage, p(<class>) per class."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["item", "predicted_index", "predicted_stage"] + [f"p({n})" for n in names])
    for item, row in zip(items, probs):
        top = int(np.argmax(row))
        writer.writerow([item, top, names[top]] + [f"{float(v):.6f}" for v in row])
    return buf.getvalue()


def run(args: argparse.Namespace) -> int:
    """Load the classifier and the crops, check the size, write the CSV and print a summary."""
    from replearn.data import marked_synthetic
    from replearn.utils.atomic import save_json, write_text
    from replearn.utils.runtime import resolve_device
    from replearn.workflows._images import read_images

    out = output_path(args.out)
    model, meta, names = load_classifier(args.model)
    device = resolve_device(args.device)
    images, items = read_images(args.images, args.key)
    c, h, w = (int(s) for s in model.input_shape)
    if c != 1:
        raise ReplearnError(f"--model {args.model}: takes {c}-channel images; predict reads grayscale crops only")
    if images.shape[1:] != (h, w):
        raise ReplearnError(
            f"images {args.images}: crops are {images.shape[1]}x{images.shape[2]} px but the model was trained on "
            f"{h}x{w} px crops; crop or pad them to {h}x{w}"
        )
    probs = probabilities(model, images, device)
    write_text(out, to_csv(items, probs, names))
    synthetic = bool(meta.get("synthetic", False))
    images_synthetic = marked_synthetic(args.images)
    counts = np.bincount(probs.argmax(axis=1), minlength=len(names))
    save_json(out.with_suffix(".json"), {
        "model": str(args.model), "images": str(args.images), "n_items": len(items),
        "class_names": names, "predicted_counts": counts.tolist(), "model_trained_on_synthetic_data": synthetic,
        "images_synthetic": images_synthetic,
        "model_meta": meta,
    })
    summary = ", ".join(f"{n}: {int(k)}" for n, k in zip(names, counts))
    note = " (the model was trained on SYNTHETIC data)" if synthetic else ""
    note += " (the crops are SYNTHETIC)" if images_synthetic else ""
    print(f"wrote {out}: {len(items)} crops; predicted {summary}{note}")
    return 0
