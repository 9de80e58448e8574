"""Cut cell crops from a raw microscopy field into the assignment's data.npz format.

Segments the cells (on the phase-contrast image when given, else on the membrane
image), registers the fluorescence channels to the segmentation, cuts a crop of the
membrane channel around each cell and writes, beside ``--out cells.npz``:
``cells_cells.csv`` (one row per cell), ``cells_montage.png`` (every crop with its
id), ``cells_overlay.png`` (outlines on the field) and ``cells_crops.json``
(settings, shifts, counts). See docs/crops.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from replearn.errors import ReplearnError

COMMAND = "crops"
HELP = "segment a microscopy field and cut cell crops into a data.npz"
OUT_HELP = "the .npz file to write (required); CSV, montage and overlay go beside it"
EXAMPLES = """\
examples:
  replearn crops --phase test_phase.tif --membrane test_membrane.tif --dna test_dna.tif --out cells.npz
  replearn crops --membrane membrane.tif --out cells.npz          # segment on the membrane image
  replearn crops --phase p.tif --membrane m.tif --labels labels.csv --out data.npz

--labels CSV rows are "cell id, stage" (stage 0 before division, 1 septum forming,
2 septum formed); ids are those of a first run's _cells.csv and montage.
--out is required and names the .npz. --quick, --seed, --device and --data-dir are
accepted and ignored: the run takes seconds and involves no randomness.
"""

# ----------------------------------------------------------------------------- Setup


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The crops options (the CLI adds --out, --quick, ...)."""
    from replearn.data import crops, segmentation

    parser.add_argument("--membrane", required=True, metavar="TIF", help="membrane-dye image; the crops come from it")
    parser.add_argument(
        "--phase", metavar="TIF", help="phase-contrast image of the same field; segment on it (recommended)"
    )
    parser.add_argument("--dna", metavar="TIF", help="DNA-dye image; registered and measured per cell (dna_mean)")
    parser.add_argument("--size", type=int, default=crops.DEFAULT_SIZE, help="crop side in px (default: %(default)s)")
    parser.add_argument("--labels", metavar="CSV", help="'cell id, stage' rows; those cells become the labelled set")
    parser.add_argument("--grow", type=int, default=0, help="grow each cell mask by N px (default: %(default)s)")
    parser.add_argument(
        "--min-area", type=int, default=segmentation.MIN_AREA, help="smallest cell area in px (default: %(default)s)"
    )
    parser.add_argument(
        "--max-area", type=int, default=segmentation.MAX_AREA, help="largest cell area in px (default: %(default)s)"
    )
    parser.add_argument(
        "--min-solidity",
        type=float,
        default=segmentation.MIN_SOLIDITY,
        help="smallest area / convex-hull area; rejects clumps (default: %(default)s)",
    )
    parser.add_argument(
        "--max-shift",
        type=float,
        default=crops.MAX_SHIFT,
        help="largest accepted channel offset in px (default: %(default)s)",
    )


def _check_out(out: str | None) -> Path:
    if not out:
        raise ReplearnError("--out is required: the .npz file to write, e.g. --out cells.npz")
    path = Path(out)
    if path.suffix != ".npz":
        raise ReplearnError(f"--out {out}: must name a .npz file (e.g. cells.npz)")
    if path.is_dir():
        raise ReplearnError(f"--out {out}: is a folder; give a .npz file name")
    return path


# ----------------------------------------------------------------------------- Run


def run(args: argparse.Namespace) -> int:
    """Read the channels, segment, register, crop, and write the npz with its companions."""
    from replearn.data.crops import process_field, read_stages
    from replearn.data.tiff import read_channel

    out = _check_out(args.out)
    files = {"membrane": args.membrane, "phase": args.phase, "dna": args.dna}
    images = {name: read_channel(path, name) if path else None for name, path in files.items()}
    stages = read_stages(args.labels) if args.labels else None
    names = {name: Path(path).name for name, path in files.items() if path}

    result = process_field(
        images["membrane"],
        images["phase"],
        images["dna"],
        args.size,
        stages=stages,
        min_area=args.min_area,
        max_area=args.max_area,
        min_solidity=args.min_solidity,
        grow=args.grow,
        max_shift=args.max_shift,
        source=" ".join(f"{k}={v}" for k, v in names.items()),
        names=names,
        stages_name=f"labels file {args.labels}",
        progress=not args.no_progress,
    )
    paths = result.save(out)

    # ------------------------------------------------------------------------- Report
    shifts = ", ".join(f"{k} {dy:+d} rows {dx:+d} cols" for k, (dy, dx) in result.shifts.items())
    print(f"segmented on {result.reference_kind}: {len(result.table['id'])} cells kept")
    print(f"registration shifts applied: {shifts}")
    print(
        f"labelled {len(result.data.labels)}, unlabelled {len(result.data.unlabelled)}, crops {args.size}x{args.size}"
    )
    for path in paths.values():
        print(f"wrote {path}")
    return 0
