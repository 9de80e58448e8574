"""Write the codes of images from a trained encoder, to reuse it elsewhere (assignment part c).

``--model`` is a run folder or ``.safetensors`` file saved by replearn: an
autoencoder (its encoder's ``features`` codes) or a classifier network with a
``features`` layer (its output there, flattened). The images are an ``.npz``
(every (N, H, W) array in it, or ``--key``), an IDX file, one PNG/TIFF image, or
a folder of PNG/TIFF crops; pixels are scaled as in training (uint8 / 255).
The output (``--out``, default ``runs/embed-<stamp>/codes.csv``; a folder gets
``codes.csv`` or ``codes.npz``) is CSV (``item,z0,z1,...``) or ``.npz``
(``items``, ``codes`` (N, D) float32), by ``--format`` or the suffix.
Codes of an ``.npz`` marked synthetic (as ``replearn synth`` writes) are labelled so:
the printed line says SYNTHETIC and an ``.npz`` output gets the ``synthetic`` marker.

A run folder of ``replearn assignment`` holds several models: ``--model RUN``
reads its ``model.safetensors`` (the best CNN); the first printed line names
the model used and the other ``.safetensors`` files of the folder
(``--model RUN/autoencoder-d16.safetensors`` picks one). The closing line says
whether the images look like the model's training crops (the domain-shift
check of ``replearn predict``: AUC against the threshold 0.8, WARNING above
it); an ``.npz`` output also holds ``shift_ratio`` (N,) per image.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from replearn.errors import ReplearnError
from replearn.workflows._run import Result, device_option, option

COMMAND = "embed"
HELP = "write the codes of images from a trained autoencoder/encoder to CSV or npz"
DEFAULT_FILE = "codes.csv"
OUTPUT = ("file", DEFAULT_FILE)
OUT_HELP = ("the codes file, .csv or .npz, or a folder for codes.csv/.npz "
            f"(default: runs/embed-<stamp>/{DEFAULT_FILE}, or codes.npz with --format npz)")
EXAMPLES = """\
examples:
  replearn embed --model runs/autoencoder-20250101-120000 t10k-images-idx3-ubyte.gz --out codes.csv
  replearn embed --model runs/ae/model.safetensors data.npz --key labelled --out labelled_codes.npz
  replearn embed --model runs/ae crops_folder/ --format csv --out crops.csv
"""

FORMATS = ("csv", "npz")
BATCH = 1024


# ----------------------------------------------------------------------------- Setup
@dataclass
class Config:
    """The model, the images and how to write their codes."""

    images: str | None = option(None, "an .npz, an IDX file, a .png/.tif image or a folder of them",
                                positional=True, in_file=False)
    model: str | None = option(None, "run folder or .safetensors of a trained model", metavar="RUN", required=True,
                               in_file=False)
    key: str | None = option(None, "npz: the one array to embed (default: every (N, H, W) array)")
    format: str | None = option(None, "csv or npz (default: from the --out suffix, else csv)", choices=FORMATS)
    layer: str = option("features", "classifier networks: the layer to read")
    device: str = device_option()

    def check(self) -> None:
        if not self.images or not self.model:
            raise ReplearnError("embed: give the images and --model (the trained encoder)")


def output_path(out: Path, fmt: str | None) -> tuple[Path, str]:
    """The codes file and its format, from ``--out`` and ``--format``."""
    path = Path(out)
    if path.is_dir():
        path = path / f"codes.{fmt or 'csv'}"
    elif fmt == "npz" and path.name == DEFAULT_FILE and not path.parent.exists() \
            and path.parent.name.startswith(f"{COMMAND}-"):
        path = path.with_suffix(".npz")  # the default runs/embed-<stamp>/codes.csv follows --format npz
    suffix = path.suffix.lower().lstrip(".")
    if fmt is None:
        fmt = suffix if suffix in FORMATS else "csv"
    elif suffix in FORMATS and suffix != fmt:
        raise ReplearnError(f"--out {path} has suffix .{suffix} but --format is {fmt}; make them agree")
    return path, fmt


def codes_csv(items: list[str], codes: np.ndarray) -> str:
    """CSV text: ``item,z0,z1,...``, one row per image, every code as Python's shortest exact repr."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["item"] + [f"z{i}" for i in range(codes.shape[1])])
    for item, row in zip(items, codes):
        writer.writerow([item] + [repr(float(v)) for v in row])
    return buf.getvalue()


def save_codes_npz(path: Path, items: list[str], codes: np.ndarray, synthetic: bool,
                   shift_ratio: np.ndarray | None = None) -> None:
    """``items`` and ``codes`` (and the ``synthetic`` marker when the images are, and the per-image
    ``shift_ratio`` (N,) of the domain-shift check) as an ``.npz``, atomically."""
    from replearn.utils.atomic import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            extra = {"synthetic": np.array(True)} if synthetic else {}
            if shift_ratio is not None:
                extra["shift_ratio"] = np.asarray(shift_ratio, dtype=np.float32)
            np.savez(fh, items=np.asarray(items, dtype=str), codes=codes, **extra)


# ----------------------------------------------------------------------------- Run
def run(cfg: Config, out: Path = Path(DEFAULT_FILE)) -> Result:
    """Read the model and the images, check their size; the codes file to write and a line saying what it holds."""
    from replearn.data import marked_synthetic
    from replearn.encoders import load_encoder
    from replearn.encoders.loading import domain_check, model_choice
    from replearn.workflows._domain_check import shift_line
    from replearn.utils.runtime import resolve_device
    from replearn.workflows._images import read_images

    path, fmt = output_path(Path(out), cfg.format)
    encoder = load_encoder(cfg.model, cfg.layer)
    images, items = read_images(cfg.images, cfg.key)
    c, h, w = encoder.input_shape
    if c != 1:
        raise ReplearnError(f"--model {cfg.model}: takes {c}-channel images; embed reads grayscale images only")
    if images.shape[1:] != (h, w):
        raise ReplearnError(
            f"images {cfg.images}: are {images.shape[1]}x{images.shape[2]} px but the model expects {h}x{w} px"
        )
    print(model_choice(encoder))
    device = resolve_device(cfg.device)
    codes = encoder.codes(images, device, BATCH)
    check = domain_check(encoder, images, codes, device)
    synthetic = marked_synthetic(cfg.images)

    note = "; the images are SYNTHETIC" if synthetic else ""
    result = Result(synthetic=synthetic, summary=f"wrote {path}: {len(codes)} images x {codes.shape[1]} codes "
                                                 f"({encoder.description} of {cfg.model}){note}; "
                                                 f"{shift_line(check)}")
    if fmt == "csv":
        result.text(path, codes_csv(items, codes))
    else:
        ratio = None if check is None else check["crop_ratio"]
        result.add(path, lambda p: save_codes_npz(p, items, codes, synthetic, ratio))
    return result
