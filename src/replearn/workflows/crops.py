"""Cut cell crops from a raw microscopy field into the assignment's data.npz format.

Segments the cells (on the phase-contrast image when given, else on the membrane
image), registers the fluorescence channels to the segmentation, cuts a crop of the
membrane channel around each cell and writes, beside ``--out cells.npz`` (default
``runs/crops-<stamp>/cells.npz``): ``cells_cells.csv`` (one row per cell),
``cells_montage.png`` (every crop with its id), ``cells_overlay.png`` (outlines on
the field) and ``cells_crops.json`` (settings, shifts, counts). See docs/crops.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from replearn.data.crops import DEFAULT_SIZE, MAX_SHIFT, check_crop_size
from replearn.data.segmentation import MAX_AREA, MIN_AREA, MIN_SOLIDITY
from replearn.errors import ReplearnError
from replearn.workflows._run import Result, option, progress_option

COMMAND = "crops"
HELP = "segment a microscopy field and cut cell crops into a data.npz"
DEFAULT_FILE = "cells.npz"
OUTPUT = ("file", DEFAULT_FILE)
OUT_HELP = (f"the .npz file to write (default: runs/crops-<stamp>/{DEFAULT_FILE}); CSV, montage and overlay go "
            "beside it")
EXAMPLES = """\
examples:
  replearn crops --phase test_phase.tif --membrane test_membrane.tif --dna test_dna.tif --out cells.npz
  replearn crops --membrane membrane.tif --out cells.npz          # segment on the membrane image
  replearn crops --phase p.tif --membrane m.tif --labels labels.csv --out data.npz

--labels CSV rows are "cell id, stage" (stage 0 before division, 1 septum forming,
2 septum formed); ids are those of a first run's _cells.csv and montage.
The run takes seconds and involves no randomness: there is no --quick or --seed.
"""


# ----------------------------------------------------------------------------- Setup
@dataclass
class Config:
    """The field's channels, the crop size and the segmentation settings."""

    membrane: str | None = option(None, "membrane-dye image; the crops come from it", metavar="TIF", required=True,
                                  in_file=False)
    phase: str | None = option(None, "phase-contrast image of the same field; segment on it (recommended)",
                               metavar="TIF", in_file=False)
    dna: str | None = option(None, "DNA-dye image; registered and measured per cell (dna_mean)", metavar="TIF",
                             in_file=False)
    size: int = option(DEFAULT_SIZE, "crop side in px")
    labels: str | None = option(None, "'cell id, stage' rows; those cells become the labelled set", metavar="CSV",
                                in_file=False)
    grow: int = option(0, "grow each cell mask by N px")
    min_area: int = option(MIN_AREA, "smallest cell area in px")
    max_area: int = option(MAX_AREA, "largest cell area in px")
    min_solidity: float = option(MIN_SOLIDITY, "smallest area / convex-hull area; rejects clumps")
    max_shift: float = option(MAX_SHIFT, "largest accepted channel offset in px")
    progress: bool = progress_option()

    def check(self) -> None:
        if not self.membrane:
            raise ReplearnError("crops: give --membrane, the membrane-dye image the crops are cut from")
        check_crop_size(self.size, (10**9, 10**9))  # the limit, before any image is read (the field's size later)


def output_path(out: Path) -> Path:
    """The ``.npz`` that ``--out`` names (its companions go beside it)."""
    path = Path(out)
    if path.suffix != ".npz":
        raise ReplearnError(f"--out {out}: must name a .npz file (e.g. cells.npz)")
    if path.is_dir():
        raise ReplearnError(f"--out {out}: is a folder; give a .npz file name")
    return path


# ----------------------------------------------------------------------------- Run
def run(cfg: Config, out: Path = Path(DEFAULT_FILE)) -> Result:
    """Read the channels, segment, register, crop; the npz with its companions to write, and what was done."""
    from replearn.data.crops import output_paths, process_field, read_stages
    from replearn.data.tiff import read_channel

    path = output_path(Path(out))
    files = {"membrane": cfg.membrane, "phase": cfg.phase, "dna": cfg.dna}
    images = {name: read_channel(p, name) if p else None for name, p in files.items()}
    stages = read_stages(cfg.labels) if cfg.labels else None
    names = {name: Path(p).name for name, p in files.items() if p}

    field = process_field(
        images["membrane"],
        images["phase"],
        images["dna"],
        cfg.size,
        stages=stages,
        min_area=cfg.min_area,
        max_area=cfg.max_area,
        min_solidity=cfg.min_solidity,
        grow=cfg.grow,
        max_shift=cfg.max_shift,
        source=" ".join(f"{k}={v}" for k, v in names.items()),
        names=names,
        stages_name=f"labels file {cfg.labels}",
        progress=cfg.progress,
    )

    # ------------------------------------------------------------------------- Report
    shifts = ", ".join(f"{k} {dy:+d} rows {dx:+d} cols" for k, (dy, dx) in field.shifts.items())
    lines = [
        f"segmented on {field.reference_kind}: {len(field.table['id'])} cells kept",
        f"registration shifts applied: {shifts}",
        f"labelled {len(field.data.labels)}, unlabelled {len(field.data.unlabelled)}, crops {cfg.size}x{cfg.size}",
        *(f"wrote {p}" for p in output_paths(path).values()),
    ]
    result = Result(synthetic=field.data.synthetic, summary="\n".join(lines))
    result.add(path, field.save)  # the npz, then its CSV, montage, overlay and JSON, each atomically
    return result
