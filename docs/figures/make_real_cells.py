"""Figures and numbers of docs/real_cells.md: the assignment's models on REAL cells (no labels).

Two parts:

1. **The assignment's autoencoder on real cells.** The real crops of the shared
   widefield field (``replearn crops`` -> ``cells.npz``, 244 cells, no labels) are
   split (seeded) into 200 training and 44 held-out crops. The assignment's
   autoencoder (lecture blocks, lr 0.003, BCE; code sizes 16 and 2) is trained on
   the 200 with :class:`replearn.evaluate.AutoEncoderEmbedding`, as ``replearn
   assignment`` trains it on unlabelled crops: once with the recipe as it is (its
   epochs of batch 128) and once with as many optimizer steps as the assignment
   makes on 3,892 crops (batches of 16). The held-out crops give the
   reconstruction error, beside PCA with as many components and the mean crop.
   Figures: ``real_reconstructions.png``, ``real_codes_2d.png``.
2. **Domain shift.** For each given assignment run (trained on SYNTHETIC crops),
   ``replearn domain`` places the real cells in the code space of its best CNN
   (``model.safetensors``) and of its 16-D autoencoder; the numbers of every run
   are printed as a Markdown table and selected figures are copied to
   ``domain_<preset>_<encoder>_<figure>.png``.

Usage (runs of a few minutes; wrap in ``flock /tmp/replearn-heavy.lock`` on a shared machine)::

    replearn crops --phase test_phase.tif --membrane test_membrane.tif --dna test_dna.tif --out /tmp/cells.npz
    replearn assignment --out /tmp/runs/sim
    replearn assignment --config widefield.toml --out /tmp/runs/widefield    # [data] preset = "widefield"
    python docs/figures/make_real_cells.py --cells /tmp/cells.npz --run sim=/tmp/runs/sim \
        --run widefield=/tmp/runs/widefield --work /tmp/real_cells_work
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.offsetbox import AnnotationBbox, OffsetImage  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402

from replearn.cli import main as replearn_main  # noqa: E402
from replearn.data import load_assignment, to_tensor  # noqa: E402
from replearn.encoders import AutoEncoderEmbedding  # noqa: E402
from replearn.evaluate import reconstruction_errors  # noqa: E402
from replearn.evaluate.figures import image_rows, save_figure  # noqa: E402
from replearn.workflows._assignment_grid import DEFAULTS  # noqa: E402

HERE = Path(__file__).resolve().parent
SEED = 0
N_HELD_OUT = 44
N_ASSIGNMENT_UNLABELLED = 3892  # the course's unlabelled crops (the assignment's autoencoder training set)
MATCHED_BATCH = 16
CODE_DIMS = (16, 2)
N_THUMBS = 28
COPIED = {  # run (preset, encoder) -> figures copied into docs/figures
    ("sim", "cnn"): ("embedding", "neighbours", "stages"),
    ("widefield", "cnn"): ("embedding", "neighbours"),
    ("sim", "ae16"): ("reconstructions",),
}


# ----------------------------------------------------------------------------- Part 1
def autoencoder_on_real(cells: Path, out_dir: Path) -> dict:
    """Train the assignment's autoencoder(s) on the real crops; figures and held-out numbers."""
    data = load_assignment(cells, require_labelled=False)
    crops = np.concatenate([data.labelled, data.unlabelled])
    rng = np.random.default_rng(SEED)
    order = rng.permutation(len(crops))
    held, train = np.sort(order[:N_HELD_OUT]), np.sort(order[N_HELD_OUT:])
    a = DEFAULTS["autoencoder"]
    x_held = to_tensor(crops[held])[:, 0].numpy()
    flat_train = to_tensor(crops[train]).numpy().reshape(len(train), -1)
    results: dict = {"cells": str(cells), "n_train": int(len(train)), "n_held_out": int(len(held)), "seed": SEED,
                     "recipe": {k: a[k] for k in ("blocks", "epochs", "batch_size", "lr", "loss")}, "models": {}}
    # The assignment takes ceil(3892 / batch) steps per epoch (31 at batch 128); on 200 crops the same recipe
    # makes only 2 steps per epoch. So each code size is trained twice: the recipe as it is,
    # and with batches of 16 for as many optimizer steps as in the assignment.
    steps = int(np.ceil(N_ASSIGNMENT_UNLABELLED / a["batch_size"])) * a["epochs"]
    per_epoch = int(np.ceil(len(train) / MATCHED_BATCH))
    recipes = {"as is": (a["batch_size"], a["epochs"]),
               "matched steps": (MATCHED_BATCH, int(np.ceil(steps / per_epoch)))}
    results["assignment_steps"] = steps
    recon_rows = {"REAL held-out": x_held}
    ests = {}
    for dim in CODE_DIMS:
        pca = PCA(n_components=dim, random_state=SEED).fit(flat_train)
        pca_rec = np.clip(pca.inverse_transform(pca.transform(x_held.reshape(len(held), -1))).reshape(x_held.shape), 0, 1)
        results["models"][f"PCA-{dim}"] = {"held_out": reconstruction_errors(x_held, pca_rec)}
        for recipe, (batch, epochs) in recipes.items():
            t = time.perf_counter()
            est = AutoEncoderEmbedding(code_dim=dim, blocks=[tuple(b) for b in a["blocks"]], epochs=epochs,
                                       batch_size=batch, lr=a["lr"], loss=a["loss"], seed=SEED, device="cpu",
                                       validation_data=crops[held]).fit(crops[train])
            rec = est.reconstruct(crops[held])
            results["models"][f"AE-{dim} ({recipe})"] = {
                "batch_size": batch, "epochs": epochs, "steps": int(np.ceil(len(train) / batch)) * epochs,
                "held_out": reconstruction_errors(x_held, rec),
                "train_loss_last": est.history_["loss"][-1], "val_loss_last": est.history_["val_loss"][-1],
                "seconds": round(time.perf_counter() - t, 1),
            }
            if recipe == "matched steps":
                recon_rows[f"AE-{dim} recon."] = rec
                ests[dim] = est
        recon_rows[f"PCA-{dim} recon."] = pca_rec
    mean_crop = np.broadcast_to(flat_train.mean(axis=0).reshape(x_held.shape[1:]), x_held.shape)
    results["mean_crop_held_out"] = reconstruction_errors(x_held, mean_crop)
    matched_steps = results["models"][f"AE-{CODE_DIMS[0]} (matched steps)"]["steps"]
    rows = {k: recon_rows[k] for k in ["REAL held-out", "AE-16 recon.", "PCA-16 recon.", "AE-2 recon.", "PCA-2 recon."]}
    title = (f"REAL cells (held out, no labels) and their reconstructions: the assignment's autoencoder "
             f"({matched_steps} steps) and PCA, fitted on {len(train)} real crops")
    save_figure(image_rows(rows, n=12, title=title),
                out_dir / "real_reconstructions.png", dpi=90)

    # The 2-D codes of every real cell, with some crops drawn at their code.
    codes = ests[2].transform(crops)
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    is_held = np.zeros(len(crops), bool)
    is_held[held] = True
    ax.scatter(codes[~is_held, 0], codes[~is_held, 1], s=12, color="tab:blue", label="REAL, training crops")
    ax.scatter(codes[is_held, 0], codes[is_held, 1], s=16, color="tab:orange", marker="^", label="REAL, held out")
    span = np.ptp(codes, axis=0).max()
    shown: list[np.ndarray] = []
    for i in rng.permutation(len(crops)):
        if len(shown) >= N_THUMBS:
            break
        if all(np.linalg.norm(codes[i] - c) > 0.09 * span for c in shown):
            shown.append(codes[i])
            box = AnnotationBbox(OffsetImage(crops[i], cmap="gray", zoom=0.75), codes[i], frameon=True, pad=0.1)
            ax.add_artist(box)
    ax.set_xlabel("code 0")
    ax.set_ylabel("code 1")
    ax.legend(fontsize=8, loc="best")
    ax.set_title(f"2-D autoencoder codes of the {len(crops)} REAL cells (no labels; trained on {len(train)} of them)",
                 fontsize=10)
    fig.tight_layout()
    save_figure(fig, out_dir / "real_codes_2d.png", dpi=90)
    return results


# ----------------------------------------------------------------------------- Part 2
def domain_runs(cells: Path, runs: dict[str, Path], work: Path, out_dir: Path, method: str) -> list[dict]:
    """``replearn domain`` for each run's CNN and 16-D autoencoder; rows of the summary table."""
    rows = []
    for preset, run in runs.items():
        for enc, model in (("cnn", run), ("ae16", run / "autoencoder-d16.safetensors")):
            out = work / f"domain-{preset}-{enc}"
            rc = replearn_main(["domain", "--model", str(model), "--real", str(cells), "--out", str(out),
                                "--method", method, "--seed", str(SEED), "--no-progress"])
            if rc != 0:
                raise SystemExit(f"replearn domain failed for {model} (exit {rc})")
            m = json.loads((out / "metrics.json").read_text())
            rows.append({"preset": preset, "encoder": enc, "metrics": m})
            for fig in COPIED.get((preset, enc), ()):
                shutil.copyfile(out / f"domain_{fig}.png", out_dir / f"domain_{preset}_{enc}_{fig}.png")
            if (preset, enc) == ("sim", "cnn") and method != "pca":  # the same codes, PCA fitted on the synthetic ones
                out = work / f"domain-{preset}-{enc}-pca"
                rc = replearn_main(["domain", "--model", str(model), "--real", str(cells), "--out", str(out),
                                    "--method", "pca", "--seed", str(SEED), "--no-progress"])
                if rc != 0:
                    raise SystemExit(f"replearn domain failed for {model} (exit {rc})")
                shutil.copyfile(out / "domain_embedding.png", out_dir / f"domain_{preset}_{enc}_embedding_pca.png")
    return rows


def table(rows: list[dict]) -> str:
    """Markdown table of the domain-shift numbers."""
    head = ("| trained on (SYNTHETIC preset) | encoder | codes | domain clf. acc. (codes) | AUC (codes) | "
            "AUC (raw pixels, PCA-50) | NN ratio | k-NN guess 0/1/2 (REAL) | CNN guess 0/1/2 (REAL) | "
            "CNN confidence synth. / REAL | CNN acc. on fresh synth. |")
    out = [head, "|" + "---|" * 11]
    for r in rows:
        m = r["metrics"]
        dc, pix = m["domain_classifier"]["codes"], m["domain_classifier"]["raw_pixels_pca"]
        knn = "/".join(f"{v:.2f}" for v in m["knn_guess"]["fractions"])
        c = m.get("classifier")
        cnn = "/".join(f"{v:.2f}" for v in c["real"]["fractions"]) if c else "-"
        conf = f"{c['synthetic']['mean_confidence']:.2f} / {c['real']['mean_confidence']:.2f}" if c else "-"
        acc = f"{c['synthetic']['accuracy']:.3f}" if c else "-"
        out.append(f"| {r['preset']} | {m['model']['description']} | {m['code_dim']} | "
                   f"{dc['accuracy']:.3f} +- {dc['accuracy_std']:.3f} | {dc['auc']:.3f} | {pix['auc']:.3f} | "
                   f"{m['nearest_neighbour']['ratio']:.2f} | {knn} | {cnn} | {conf} | {acc} |")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=Path, required=True, help="cells.npz from replearn crops (real, unlabelled)")
    parser.add_argument("--run", action="append", default=[], metavar="PRESET=DIR",
                        help="an assignment run folder, e.g. sim=/tmp/runs/sim (repeatable)")
    parser.add_argument("--work", type=Path, required=True, help="folder for the domain runs (not in the repo)")
    parser.add_argument("--out-dir", type=Path, default=HERE, help="where the figures go (default: docs/figures)")
    parser.add_argument("--method", default="tsne", choices=["pca", "tsne", "isomap"])
    parser.add_argument("--skip-autoencoder", action="store_true", help="only the domain runs")
    args = parser.parse_args()
    runs = dict(r.split("=", 1) for r in args.run)
    results = {}
    if not args.skip_autoencoder:
        results["autoencoder_on_real"] = autoencoder_on_real(args.cells, args.out_dir)
        print(json.dumps(results["autoencoder_on_real"], indent=1))
    if runs:
        rows = domain_runs(args.cells, {k: Path(v) for k, v in runs.items()}, args.work, args.out_dir, args.method)
        print(table(rows))
        for r in rows:
            print(f"{r['preset']} {r['encoder']}: {r['metrics']['sentence']}")
        results["domain"] = [{"preset": r["preset"], "encoder": r["encoder"], **{
            k: r["metrics"][k] for k in ("domain_classifier", "nearest_neighbour", "knn_guess", "data", "model",
                                         "code_dim", "seconds", "environment")},
            **({"classifier": r["metrics"]["classifier"]} if "classifier" in r["metrics"] else {}),
            **({"reconstruction": r["metrics"]["reconstruction"]} if "reconstruction" in r["metrics"] else {})}
            for r in rows]
    args.work.mkdir(parents=True, exist_ok=True)
    (args.work / "real_cells_numbers.json").write_text(json.dumps(results, indent=1))
    print(f"numbers: {args.work / 'real_cells_numbers.json'}")


if __name__ == "__main__":
    main()
