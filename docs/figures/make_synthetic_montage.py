"""Montage: synthetic *S. aureus* crops (both presets, per stage) beside real widefield crops.

The real crops are cut from the public napari-mAIcrobe membrane image
(``aureus-maicrobe/test_membrane.tif``, widefield, Nile Red, cells about 20 px
across). They carry no labels. Cells are found by matching a ring template
(a bright annulus about 19 px across around a dimmer disc) and keeping
well-separated peaks inside the thresholded (Otsu) smoothed image; each 40x40
crop is scaled to 0..255 on its own, as a course data set would be.

Usage::

    python docs/figures/make_synthetic_montage.py [--data-dir ../shared/datasets] [--out FILE.png]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import tifffile  # noqa: E402
from skimage import feature, filters  # noqa: E402

from replearn.data.synthetic import synthetic_aureus  # noqa: E402
from replearn.errors import ReplearnError  # noqa: E402
from replearn.utils.atomic import atomic_path  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[1].parent / "shared" / "datasets"
DEFAULT_OUT = HERE / "synthetic_vs_real.png"
CROP = 40
PER_STAGE = 5
N_REAL = 15
CELL_INCHES = 1.0
SEED = 0


def real_crops(tif: Path, n: int, seed: int = SEED, crop: int = CROP) -> np.ndarray:
    """Up to ``n`` cell-centred (n, crop, crop) uint8 crops from a membrane-stain field, each scaled to 0..255."""
    image = tifffile.imread(tif).astype(np.float32)
    if image.ndim != 2:
        raise ReplearnError(f"{tif}: expected one 2-D image, got shape {image.shape}")
    yy, xx = np.mgrid[-14:15, -14:15]
    r = np.hypot(yy, xx)
    template = np.exp(-0.5 * ((r - 9.0) / 2.0) ** 2) - 0.4 * (r < 7.5)
    score = feature.match_template(image, template, pad_input=True)
    smooth = filters.gaussian(image, sigma=2, preserve_range=True)
    cells = smooth > filters.threshold_otsu(smooth)
    peaks = feature.peak_local_max(
        score, min_distance=9, threshold_abs=0.3, exclude_border=crop // 2, labels=cells.astype(int)
    )
    if len(peaks) == 0:
        raise ReplearnError(f"{tif}: found no ring-shaped cells")
    pick = np.random.default_rng(seed).permutation(len(peaks))[:n]
    half = crop // 2
    out = []
    for row, col in peaks[np.sort(pick)]:
        c = image[row - half : row + half, col - half : col + half]
        c = (c - c.min()) / max(float(c.max() - c.min()), 1e-6)
        out.append(np.rint(255 * c).astype(np.uint8))
    return np.stack(out)


def synthetic_examples(preset: str, per_stage: int, seed: int = SEED) -> np.ndarray:
    """(3, per_stage, 40, 40) uint8 synthetic crops, one row per stage."""
    data = synthetic_aureus(n_labelled=60, n_unlabelled=0, seed=seed, preset=preset)
    return np.stack([data.labelled[data.labels == s][:per_stage] for s in range(3)])


def make_figure(data_dir: Path, out: Path) -> Path:
    """Draw the montage and write it to ``out`` (PNG, atomically)."""
    tif = data_dir / "aureus-maicrobe" / "test_membrane.tif"
    if not tif.is_file():
        raise ReplearnError(f"--data-dir: {tif} not found; point --data-dir at the folder holding aureus-maicrobe/")
    real = real_crops(tif, N_REAL)
    panels = [("SYNTHETIC, preset 'sim'", synthetic_examples("sim", PER_STAGE)),
              ("SYNTHETIC, preset 'widefield'", synthetic_examples("widefield", PER_STAGE))]

    cols = PER_STAGE
    width = 3 * cols * CELL_INCHES * 1.1 + 0.5
    height = 3 * CELL_INCHES * 1.05 + 0.7
    fig = plt.figure(figsize=(width, height))
    outer = fig.add_gridspec(1, 3, wspace=0.05, left=0.02, right=0.995, top=1 - 0.65 / height, bottom=0.02)
    stage_names = ["stage 0", "stage 1", "stage 2"]
    for g, (title, crops) in enumerate(panels):
        inner = outer[g].subgridspec(3, cols, wspace=0.04, hspace=0.04)
        for s in range(3):
            for j in range(cols):
                ax = fig.add_subplot(inner[s, j])
                ax.imshow(crops[s, j], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                if j == 0:
                    ax.set_ylabel(stage_names[s], fontsize=8)
                if s == 0 and j == 0:
                    ax.set_title(title, fontsize=9, loc="left")
    inner = outer[2].subgridspec(3, cols, wspace=0.04, hspace=0.04)
    for i in range(3 * cols):
        ax = fig.add_subplot(inner[i // cols, i % cols])
        if i < len(real):
            ax.imshow(real[i], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        if i == 0:
            ax.set_title("REAL widefield crops, unlabelled", fontsize=9, loc="left")
    fig.suptitle(
        "Synthetic S. aureus crops (rows: stages 0/1/2) vs real membrane-stain crops "
        "(napari-mAIcrobe test_membrane.tif, unlabelled, no stages)",
        fontsize=10,
    )
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("REPLEARN_DATA", DEFAULT_DATA)))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    path = make_figure(args.data_dir, args.out)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
