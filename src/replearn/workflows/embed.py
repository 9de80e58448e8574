"""Write the codes of images from a trained encoder, to reuse it elsewhere (assignment part c).

``--model`` is a run folder or ``.safetensors`` file saved by replearn: an
autoencoder (its encoder's ``features`` codes) or a classifier network with a
``features`` layer (its output there, flattened). The images are an ``.npz``
(every (N, H, W) array in it, or ``--key``), an IDX file, one PNG/TIFF image, or
a folder of PNG/TIFF crops; pixels are scaled as in training (uint8 / 255).
The output (``--out``, default ``codes.csv``) is CSV (``item,z0,z1,...``) or
``.npz`` (``items``, ``codes`` (N, D) float32), by ``--format`` or the suffix.
Codes of an ``.npz`` marked synthetic (as ``replearn synth`` writes) are labelled so:
the printed line says SYNTHETIC and an ``.npz`` output gets the ``synthetic`` marker.
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

import numpy as np

from replearn.errors import ReplearnError

COMMAND = "embed"
HELP = "write the codes of images from a trained autoencoder/encoder to CSV or npz"
OUT_HELP = "the codes file, .csv or .npz (default: codes.csv)"
EXAMPLES = """\
examples:
  replearn embed --model runs/autoencoder-20250101-120000 t10k-images-idx3-ubyte.gz --out codes.csv
  replearn embed --model runs/ae/model.safetensors data.npz --key labelled --out labelled_codes.npz
  replearn embed --model runs/ae crops_folder/ --format csv --out crops.csv
"""

FORMATS = ("csv", "npz")
DEFAULT_OUT = "codes.csv"
BATCH = 1024


# ----------------------------------------------------------------------------- Setup
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``replearn embed`` (``--out`` is the codes file)."""
    parser.add_argument("images", help="an .npz, an IDX file, a .png/.tif image or a folder of them")
    parser.add_argument("--model", required=True, metavar="RUN", help="run folder or .safetensors of a trained model")
    parser.add_argument("--key", help="npz: the one array to embed (default: every (N, H, W) array)")
    parser.add_argument("--format", choices=FORMATS, help="csv or npz (default: from the --out suffix, else csv)")
    parser.add_argument("--layer", default="features", help="classifier networks: the layer to read (default: features)")


def output_path(out: str | None, fmt: str | None) -> tuple[Path, str]:
    """The codes file and its format, from ``--out`` and ``--format``."""
    path = Path(out or (DEFAULT_OUT if fmt in (None, "csv") else "codes.npz"))
    if path.is_dir():
        path = path / f"codes.{fmt or 'csv'}"
    suffix = path.suffix.lower().lstrip(".")
    if fmt is None:
        fmt = suffix if suffix in FORMATS else "csv"
    elif suffix in FORMATS and suffix != fmt:
        raise ReplearnError(f"--out {path} has suffix .{suffix} but --format is {fmt}; make them agree")
    return path, fmt


# ----------------------------------------------------------------------------- Load the encoder
def load_encoder(path: str, layer: str = "features"):
    """(encoder module mapping (N, C, H, W) to codes, input shape (C, H, W), description) of a saved model."""
    from torch import nn

    from replearn.models import AutoEncoder, Network, load_model

    if not Path(path).exists():
        raise ReplearnError(f"--model {path}: no such run folder or weights file")
    model, meta = load_model(path)
    if isinstance(model, AutoEncoder):
        return model.encoder, tuple(model.input_shape), f"autoencoder encoder ({model.code_dim}-D codes)"
    if isinstance(model, Network):
        if layer not in model.layer_names:
            raise ReplearnError(
                f"--model {path}: the network has no layer {layer!r} to read codes from; "
                f"its layers are {', '.join(model.layer_names)} (choose one with --layer)"
            )
        features = nn.Sequential(model.truncate(layer), nn.Flatten())
        return features, tuple(model.input_shape), f"network layer {layer!r}"
    raise ReplearnError(f"--model {path}: holds a {type(model).__name__}; an autoencoder or a Network is needed")


# ----------------------------------------------------------------------------- Run
def run(args: argparse.Namespace) -> int:
    """Read the model and the images, check their size, write the codes."""
    from replearn.data import marked_synthetic, to_tensor
    from replearn.train import predict
    from replearn.utils.atomic import atomic_path, write_text
    from replearn.utils.runtime import resolve_device
    from replearn.workflows._images import read_images

    out, fmt = output_path(args.out, args.format)
    encoder, input_shape, kind = load_encoder(args.model, args.layer)
    images, items = read_images(args.images, args.key)
    c, h, w = input_shape
    if c != 1:
        raise ReplearnError(f"--model {args.model}: takes {c}-channel images; embed reads grayscale images only")
    if images.shape[1:] != (h, w):
        raise ReplearnError(
            f"images {args.images}: are {images.shape[1]}x{images.shape[2]} px but the model expects {h}x{w} px"
        )
    encoder.to(resolve_device(args.device))
    codes = predict(encoder, to_tensor(images), BATCH).numpy().astype(np.float32)
    codes = codes.reshape(len(codes), -1)
    synthetic = marked_synthetic(args.images)

    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["item"] + [f"z{i}" for i in range(codes.shape[1])])
        for item, row in zip(items, codes):
            writer.writerow([item] + [repr(float(v)) for v in row])
        write_text(out, buf.getvalue())
    else:
        with atomic_path(out) as tmp:
            with open(tmp, "wb") as fh:
                marker = {"synthetic": np.array(True)} if synthetic else {}
                np.savez(fh, items=np.asarray(items, dtype=str), codes=codes, **marker)
    note = "; the images are SYNTHETIC" if synthetic else ""
    print(f"wrote {out}: {len(codes)} images x {codes.shape[1]} codes ({kind} of {args.model}){note}")
    return 0
