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

The CSV (``--out``, default ``runs/predict-<stamp>/predictions.csv``; a folder
gets ``predictions.csv``) has one row per crop:
``item``, ``predicted_index``, ``predicted_stage`` (the class name), then one
softmax probability per class, ``p(<class name>)``; the predicted stage is the
most probable one; ``shift_ratio`` (how far the crop's code lies from the
nearest of the model's training crops, over the typical distance between
training crops) and ``unlike_training (shift_ratio > 2)`` (1 when above).
The closing line and the sidecar say whether the crops as a set look like the
model's training crops: the domain-shift AUC of
:func:`replearn.encoders.loading.domain_check` (a linear classifier telling the
model's codes of the crops from those of a stored sample of its training crops;
0.5 = alike) against the threshold 0.8, and WARN above it. Models saved
without that sample (older runs) get a line saying the check was not possible.
When the model was trained on SYNTHETIC data, or the crops
are an ``.npz`` marked synthetic (as ``replearn synth`` writes), the printed
summary says so and a sidecar ``<out>.json`` records it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from replearn.errors import ReplearnError
from replearn.evaluate.domain_shift import REFERENCE_KEY
from replearn.workflows._domain_check import shift_json, shift_line
from replearn.workflows._run import Result, device_option, option

COMMAND = "predict"
HELP = "predict the stage of cell crops (npz, PNG/TIFF folder) with a saved classifier; writes CSV"
DEFAULT_FILE = "predictions.csv"
OUTPUT = ("file", DEFAULT_FILE)
OUT_HELP = f"the CSV file to write, or a folder for {DEFAULT_FILE} (default: runs/predict-<stamp>/{DEFAULT_FILE})"
EXAMPLES = """\
examples:
  replearn predict --model runs/assignment-20250101-120000 new_crops/
  replearn predict --model runs/a1/model.safetensors data.npz --key unlabelled --out unlabelled.csv
"""

BATCH = 1024


# ----------------------------------------------------------------------------- Setup
@dataclass
class Config:
    """The classifier and the crops."""

    images: str | None = option(None, "an .npz, a .png/.tif crop, or a folder of .png/.tif crops",
                                positional=True, in_file=False)
    model: str | None = option(None, "run folder of `replearn assignment`, or a classifier .safetensors",
                               metavar="RUN", required=True, in_file=False)
    key: str | None = option(None, "npz: the one array to predict (default: every (N, H, W) array)")
    device: str = device_option()

    def check(self) -> None:
        if not self.images or not self.model:
            raise ReplearnError("predict: give the crops and --model (the trained classifier)")


def output_path(out: Path) -> Path:
    """The CSV path: ``--out`` itself, or ``predictions.csv`` inside a folder (existing, or a name without suffix)."""
    path = Path(out)
    if path.is_dir() or not path.suffix:
        return path / DEFAULT_FILE
    if path.suffix.lower() != ".csv":
        raise ReplearnError(f"--out {path}: expected a .csv file or a folder")
    return path


def to_csv(items: list[str], probs: np.ndarray, names: list[str], check: dict | None = None) -> str:
    """CSV text: item, predicted_index, predicted_stage, p(<class>) per class; with a domain ``check``, the
    crop's ``shift_ratio`` and ``unlike_training (shift_ratio > T)`` (1 or 0)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    shift = [] if check is None else ["shift_ratio", f"unlike_training (shift_ratio > {check['crop_threshold']:g})"]
    writer.writerow(["item", "predicted_index", "predicted_stage"] + [f"p({n})" for n in names] + shift)
    for i, (item, row) in enumerate(zip(items, probs)):
        top = int(np.argmax(row))
        extra = [] if check is None else [f"{check['crop_ratio'][i]:.3f}",
                                          int(check["crop_ratio"][i] > check["crop_threshold"])]
        writer.writerow([item, top, names[top]] + [f"{float(v):.6f}" for v in row] + extra)
    return buf.getvalue()


# ----------------------------------------------------------------------------- Run
def run(cfg: Config, out: Path = Path(DEFAULT_FILE)) -> Result:
    """Load the classifier and the crops, check the size; the CSV and its sidecar to write, and a summary line."""
    from replearn.data import marked_synthetic
    from replearn.encoders import load_classifier
    from replearn.encoders.loading import domain_check
    from replearn.utils.runtime import resolve_device
    from replearn.workflows._images import read_images
    from replearn.workflows._predict_accuracy import accuracy_against_labels, accuracy_line

    path = output_path(Path(out))
    classifier = load_classifier(cfg.model)
    device = resolve_device(cfg.device)
    images, items = read_images(cfg.images, cfg.key)
    c, h, w = classifier.input_shape
    if c != 1:
        raise ReplearnError(f"--model {cfg.model}: takes {c}-channel images; predict reads grayscale crops only")
    if images.shape[1:] != (h, w):
        raise ReplearnError(
            f"images {cfg.images}: crops are {images.shape[1]}x{images.shape[2]} px but the model was trained on "
            f"{h}x{w} px crops; crop or pad them to {h}x{w}"
        )
    probs = classifier.probabilities(images, device, BATCH)
    acc = accuracy_against_labels(cfg.images, cfg.key, items, probs)
    check = domain_check(classifier, images, device=device)
    names, meta = classifier.class_names, classifier.meta
    synthetic = bool(meta.get("synthetic", False))
    images_synthetic = marked_synthetic(cfg.images)
    counts = np.bincount(probs.argmax(axis=1), minlength=len(names))

    summary = ", ".join(f"{n}: {int(k)}" for n, k in zip(names, counts))
    note = " (the model was trained on SYNTHETIC data)" if synthetic else ""
    note += " (the crops are SYNTHETIC)" if images_synthetic else ""
    result = Result(synthetic=synthetic or images_synthetic,
                    summary=f"wrote {path}: {len(items)} crops; predicted {summary}{note}{accuracy_line(acc)}; "
                            f"{shift_line(check)}")
    result.text(path, to_csv(items, probs, names, check))
    result.json(path.with_suffix(".json"), {
        "model": str(cfg.model), "images": str(cfg.images), "n_items": len(items),
        "class_names": names, "predicted_counts": counts.tolist(), "model_trained_on_synthetic_data": synthetic,
        "images_synthetic": images_synthetic, "domain_shift": shift_json(check), "accuracy_against_labels": acc,
        "model_meta": {k: v for k, v in meta.items() if k != REFERENCE_KEY},
    })
    return result
