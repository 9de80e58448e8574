"""Realism of the ``widefield`` preset: a side-by-side montage and the raw-pixel domain AUC against real crops.

The real crops are those ``replearn crops`` cuts from the shared widefield field
(an ``.npz``, unlabelled). The montage shows, side by side, real crops and
SYNTHETIC ``widefield`` crops (the preset now, and the preset before its second
fit, ``BEFORE``, from ``bench/widefield_realism.py``). The AUC is the raw-pixel reference of ``replearn domain``
(PCA-50 on a pooled balanced subsample, then a cross-validated logistic
regression, :func:`replearn.evaluate.domain_shift.domain_classifier_score`):
0.5 = a linear classifier cannot tell the two sets apart, 1.0 = it always can.
``bench/widefield_realism.py`` measures the same in the codes of trained models.

Usage::

    replearn crops --phase P.tif --membrane M.tif --dna D.tif --out /tmp/cells.npz
    python docs/figures/make_widefield_realism.py --cells /tmp/cells.npz [--out FILE.png] [--seeds 1000 1001]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402

from replearn.data import load_assignment, seeded_subset, synthetic_aureus  # noqa: E402
from replearn.evaluate.domain_shift import domain_classifier_score  # noqa: E402
from replearn.utils.atomic import atomic_path  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "widefield_vs_real.png"
sys.path.insert(0, str(HERE.parents[1] / "bench"))
from widefield_realism import BEFORE as _BEFORE  # noqa: E402

BEFORE = {k: tuple(tuple(x) if isinstance(x, list) else x for x in v) if isinstance(v, list) else v
          for k, v in _BEFORE.items()}
"""The ``widefield`` preset's values before its second fit (commit e5c08c6)."""
N_SYNTHETIC = 600
PIXEL_PCA = 50
COLUMNS = 12


def pixel_auc(synthetic: np.ndarray, real: np.ndarray, seed: int) -> float:
    """Raw-pixel domain-classifier AUC of synthetic (N, H, W) vs real (M, H, W) crops, as ``replearn domain``."""
    sp = synthetic.reshape(len(synthetic), -1) / 255.0
    rp = real.reshape(len(real), -1) / 255.0
    n = min(len(sp), len(rp))
    pooled = np.concatenate([sp[seeded_subset(len(sp), n, seed)], rp[seeded_subset(len(rp), n, seed + 1)]])
    pca = PCA(n_components=min(PIXEL_PCA, len(pooled) - 1), random_state=seed).fit(pooled)
    return float(domain_classifier_score(pca.transform(sp), pca.transform(rp), seed=seed)["auc"])


def make_figure(real: np.ndarray, out: Path, seed: int) -> Path:
    """Two rows each: REAL crops, SYNTHETIC widefield now, SYNTHETIC widefield before; PNG written atomically."""
    n = 2 * COLUMNS
    pick = np.sort(seeded_subset(len(real), n, seed))
    rows = [("REAL crops (replearn crops, shared widefield field; no labels)", real[pick]),
            ("SYNTHETIC 'widefield' preset (now)", synthetic_aureus(n, 0, seed=seed, preset="widefield").labelled),
            ("SYNTHETIC 'widefield' preset (before the second fit)",
             synthetic_aureus(n, 0, seed=seed, preset="widefield", **BEFORE).labelled)]
    fig, axes = plt.subplots(6, COLUMNS, figsize=(COLUMNS * 0.9, 6 * 0.9 + 0.9))
    for r, (title, crops) in enumerate(rows):
        for i in range(n):
            ax = axes[2 * r + i // COLUMNS, i % COLUMNS]
            ax.imshow(crops[i], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[2 * r, 0].set_title(title, fontsize=10, loc="left")
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.95, wspace=0.05, hspace=0.25)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; prints the AUCs and writes the montage; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=Path, required=True, help="real crops from replearn crops (.npz)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1000, 1001])
    args = parser.parse_args(argv)
    data = load_assignment(args.cells, require_labelled=False)
    real = np.concatenate([data.labelled, data.unlabelled])
    for name, extra in (("before", BEFORE), ("now", {})):
        aucs = [pixel_auc(synthetic_aureus(N_SYNTHETIC, 0, seed=s, preset="widefield", **extra).labelled, real,
                          s - args.seeds[0]) for s in args.seeds]
        print(f"widefield {name}: raw-pixel domain AUC vs {len(real)} real crops, {N_SYNTHETIC} SYNTHETIC crops per "
              f"seed {args.seeds}: {', '.join(f'{a:.3f}' for a in aucs)} (mean {np.mean(aucs):.3f})")
    path = make_figure(real, args.out, args.seeds[0])
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
