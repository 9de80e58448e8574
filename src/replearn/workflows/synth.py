"""Write a SYNTHETIC stand-in for the course's data.npz (S. aureus crops, stages 0/1/2).

The course's real crops are not public, so this draws crops from replearn's
image model (:func:`replearn.data.synthetic.synthetic_aureus`) and writes them
in the course format: ``labelled`` (N, 40, 40) uint8, ``labels`` (N,) int64 in
0..2, ``unlabelled`` (M, 40, 40) uint8. Here ``--out`` is the .npz file to
write (default ``synthetic_aureus.npz``; a folder gets that name inside it).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from replearn.data.synthetic import PRESETS, synthetic_aureus
from replearn.errors import ReplearnError

COMMAND = "synth"
HELP = "write a SYNTHETIC S. aureus data.npz (course format) to use without the real crops"
OUT_HELP = "the .npz file to write (default: synthetic_aureus.npz)"
EXAMPLES = """\
examples:
  replearn synth --out data.npz                       # 400 labelled + 3,892 unlabelled, SIM-like
  replearn synth --out wf.npz --preset widefield      # cells ~20 px across, softer, like widefield
  replearn synth --quick --out small.npz              # 60 labelled + 200 unlabelled
"""

# Set sizes: the course's data.npz, and a small one for --quick.
FULL = (400, 3892)
QUICK = (60, 200)
DEFAULT_FILE = "synthetic_aureus.npz"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``replearn synth`` (``--out`` and ``--seed`` are common options)."""
    parser.add_argument(
        "--n-labelled", type=int, metavar="N", help=f"labelled crops (default: {FULL[0]}; {QUICK[0]} with --quick)"
    )
    parser.add_argument(
        "--n-unlabelled", type=int, metavar="M", help=f"unlabelled crops (default: {FULL[1]}; {QUICK[1]} with --quick)"
    )
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="sim",
        help="image model: 'sim' (super-resolution, default) or 'widefield'",
    )


def output_path(out: str | None) -> Path:
    """The .npz path for ``--out``: the default name, a file inside an existing folder, or the path itself."""
    if not out:
        return Path(DEFAULT_FILE)
    path = Path(out)
    if path.is_dir():
        return path / DEFAULT_FILE
    if path.suffix.lower() != ".npz":
        raise ReplearnError(f"--out: expected a .npz file or an existing folder, got {out!r}")
    return path


def run(args: argparse.Namespace) -> int:
    """Generate the crops and write them; print one line saying what was written."""
    n_l, n_u = QUICK if args.quick else FULL
    n_l = n_l if args.n_labelled is None else args.n_labelled
    n_u = n_u if args.n_unlabelled is None else args.n_unlabelled
    if n_l < 3:
        raise ReplearnError(f"--n-labelled: expected at least 3 (every stage present, as loaders require), got {n_l}")
    if n_u < 0:
        raise ReplearnError(f"--n-unlabelled: expected a count >= 0, got {n_u}")
    path = output_path(args.out)

    data = synthetic_aureus(n_labelled=n_l, n_unlabelled=n_u, seed=args.seed, preset=args.preset)
    data.save_npz(path)

    per_stage = "/".join(str(c) for c in np.bincount(data.labels, minlength=3))
    size = "x".join(str(s) for s in data.labelled.shape[1:])
    print(
        f"wrote {path}: SYNTHETIC S. aureus crops (not real data; preset {args.preset}, seed {args.seed}): "
        f"{n_l} labelled (stage 0/1/2: {per_stage}) + {n_u} unlabelled, {size} uint8"
    )
    return 0
