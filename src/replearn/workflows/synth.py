"""Write a SYNTHETIC stand-in for the course's data.npz (S. aureus crops, stages 0/1/2).

The course's real crops are not public, so this draws crops from replearn's
image model (:func:`replearn.data.synthetic.synthetic_aureus`) and writes them
in the course format: ``labelled`` (N, 40, 40) uint8, ``labels`` (N,) int64 in
0..2, ``unlabelled`` (M, 40, 40) uint8. Here ``--out`` is the .npz file to
write (default ``runs/synth-<stamp>/synthetic_aureus.npz``; a folder gets that
name inside it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from replearn.data.synthetic import PRESETS, synthetic_aureus
from replearn.errors import ReplearnError
from replearn.workflows._run import Result, option, quick_option, seed_option

COMMAND = "synth"
HELP = "write a SYNTHETIC S. aureus data.npz (course format) to use without the real crops"
DEFAULT_FILE = "synthetic_aureus.npz"
OUTPUT = ("file", DEFAULT_FILE)
OUT_HELP = f"the .npz file to write, or a folder for {DEFAULT_FILE} (default: runs/synth-<stamp>/{DEFAULT_FILE})"
EXAMPLES = """\
examples:
  replearn synth --out data.npz                       # 400 labelled + 3,892 unlabelled, SIM-like
  replearn synth --out wf.npz --preset widefield      # cells ~20 px across, softer, like widefield
  replearn synth --quick --out small.npz              # 60 labelled + 200 unlabelled
"""


@dataclass
class Config:
    """Set sizes (the course's data.npz by default) and the image model."""

    n_labelled: int = option(400, "labelled crops", metavar="N")
    n_unlabelled: int = option(3892, "unlabelled crops", metavar="M")
    preset: str = option("sim", "image model: 'sim' (super-resolution) or a widefield one (docs/synthetic_data.md)",
                         choices=tuple(sorted(PRESETS)))
    seed: int = seed_option()
    quick: bool = quick_option()

    def check(self) -> None:
        if self.n_labelled < 3:
            raise ReplearnError(f"--n-labelled: expected at least 3 (every stage present, as loaders require), "
                                f"got {self.n_labelled}")
        if self.n_unlabelled < 0:
            raise ReplearnError(f"--n-unlabelled: expected a count >= 0, got {self.n_unlabelled}")


QUICK = {"n_labelled": 60, "n_unlabelled": 200}


def output_path(out: Path) -> Path:
    """The .npz path for ``--out``: a file inside an existing folder, or the path itself."""
    if out.is_dir():
        return out / DEFAULT_FILE
    if out.suffix.lower() != ".npz":
        raise ReplearnError(f"--out: expected a .npz file or an existing folder, got {str(out)!r}")
    return out


def run(cfg: Config, out: Path = Path(DEFAULT_FILE)) -> Result:
    """Generate the crops; the .npz to write and a line saying what it holds."""
    path = output_path(Path(out))
    data = synthetic_aureus(n_labelled=cfg.n_labelled, n_unlabelled=cfg.n_unlabelled, seed=cfg.seed,
                            preset=cfg.preset)
    per_stage = "/".join(str(c) for c in np.bincount(data.labels, minlength=3))
    size = "x".join(str(s) for s in data.labelled.shape[1:])
    result = Result(synthetic=True, summary=(
        f"wrote {path}: SYNTHETIC S. aureus crops (not real data; preset {cfg.preset}, seed {cfg.seed}): "
        f"{cfg.n_labelled} labelled (stage 0/1/2: {per_stage}) + {cfg.n_unlabelled} unlabelled, {size} uint8"))
    result.add(path, data.save_npz)
    return result
