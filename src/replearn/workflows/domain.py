"""Domain-shift view: where a model trained on SYNTHETIC crops places REAL cells in its code space.

Title: Synthetic training data vs real cells (the lecture's domain-adaptation picture)
Description: encodes labelled synthetic crops (the source domain: stages known) and
real cell crops (the target domain: no labels) with a saved encoder -- an
autoencoder's encoder, or a classifier network's ``features`` layer
(``Network.forward_features``) -- and shows and measures how far apart they are.

Inputs: ``--model``, a run folder (its ``model.safetensors``: the best CNN of
``replearn assignment``, or the autoencoder of ``replearn autoencoder``) or a
``.safetensors`` file (e.g. ``runs/a1/autoencoder-d16.safetensors``); ``--real``,
crops of real cells (an ``.npz`` such as ``replearn crops`` writes, labelled or
not, or a folder of PNG/TIFF crops); the synthetic crops are ``--synthetic
data.npz`` (its labelled crops) or, by default, fresh built-in SYNTHETIC crops
(:func:`replearn.data.synthetic_aureus`, seed ``--seed`` + 1000, so not the crops
an assignment run with the same seed trained on; preset = the model's training
preset when its metadata names one, else ``sim``; ``--preset`` overrides). Crops
must have the model's input size.

Outputs in the run folder: ``domain_embedding.png`` (joint 2-D view: synthetic by
stage, real cells as black crosses; right panel: real cells coloured by the
model's GUESSED stage), ``domain_neighbours.png`` (real crops next to their nearest
synthetic crops in code space), ``domain_stages.png`` (stage mix of the synthetic
crops vs the guesses for the real ones), ``domain_reconstructions.png``
(autoencoders), ``metrics.json``, ``codes.npz``, ``config.json``,
``report.md``/``report.html``.

The numbers (:mod:`replearn.evaluate.domain_shift`): a domain classifier's
cross-validated accuracy and AUC of telling real from synthetic codes (0.5 = no
shift), the same on raw pixels (PCA-50) for reference, the mean nearest-synthetic
distance of real codes over that of synthetic codes, and the stages a k-NN on the
synthetic codes (and the classifier itself, if the model is one) assigns to the
real cells -- a model's guess, not ground truth. See docs/real_cells.md.
"""

from __future__ import annotations

import argparse
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from replearn.errors import ReplearnError

COMMAND = "domain"
HELP = "domain-shift view: a trained encoder's codes of SYNTHETIC crops vs REAL cells; figures, metrics, report"
EXAMPLES = """\
examples:
  replearn crops --phase p.tif --membrane m.tif --dna d.tif --out cells.npz    # real cells, unlabelled
  replearn assignment --quick --out runs/a1                                     # a model trained on SYNTHETIC crops
  replearn domain --model runs/a1 --real cells.npz                              # its CNN's 'features' codes
  replearn domain --model runs/a1/autoencoder-d16.safetensors --real cells.npz --method pca
  replearn domain --model runs/a1 --real cells.npz --preset widefield           # compare with the other preset
  replearn domain --model runs/a1 --real cells.npz --synthetic data.npz         # your own labelled crops as source
"""

# ----------------------------------------------------------------------------- Setup
N_SYNTHETIC = 600  # built-in synthetic labelled crops encoded (the source domain)
SYNTHETIC_SEED_OFFSET = 1000  # built-in crops use seed --seed + 1000: not the crops the model was trained on
QUICK_SYNTHETIC, QUICK_REAL = 150, 120  # --quick: seeded subsets
K_NEIGHBOURS = 5  # k of the k-NN stage guess and of the neighbour figure
N_SHOW = 8  # real cells in the neighbour figure
PIXEL_PCA = 50  # raw-pixel reference: domain classifier on this many principal components
METHOD_TITLES = {"pca": "PCA", "tsne": "t-SNE", "isomap": "ISOMAP"}
PRESETS = ("sim", "widefield")
BATCH = 512


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``replearn domain`` (the CLI adds --out, --seed, --quick, ...)."""
    parser.add_argument("--model", required=True, metavar="RUN",
                        help="run folder (its model.safetensors) or a .safetensors file: autoencoder or classifier")
    parser.add_argument("--real", required=True, metavar="NPZ",
                        help="real crops: an .npz (e.g. from replearn crops; labels optional) or a folder of PNG/TIFF")
    parser.add_argument("--synthetic", metavar="NPZ",
                        help="labelled source crops (data.npz format); default: built-in SYNTHETIC crops")
    parser.add_argument("--preset", choices=PRESETS,
                        help="built-in synthetic preset (default: the model's training preset, else sim)")
    parser.add_argument("--n-synthetic", type=int, default=N_SYNTHETIC, metavar="N",
                        help=f"built-in synthetic crops to encode (default: {N_SYNTHETIC}; {QUICK_SYNTHETIC} with --quick)")
    parser.add_argument("--method", choices=tuple(METHOD_TITLES), default="tsne",
                        help="2-D view of the codes (default: tsne; pca/isomap are fitted on the synthetic codes)")
    parser.add_argument("--layer", default="features", help="classifier networks: the layer to read (default: features)")
    parser.add_argument("--k", type=int, default=K_NEIGHBOURS, metavar="K", help=f"neighbours of the k-NN guess (default: {K_NEIGHBOURS})")


# ----------------------------------------------------------------------------- Load the model
@dataclass
class Encoder:
    """A saved model and how to read codes from it.

    ``kind`` is ``"autoencoder"`` or ``"classifier"`` (a network with a 1-D output)
    or ``"network"``; ``input_shape`` (C, H, W); ``class_names`` of a classifier.
    """

    model: Any
    meta: dict[str, Any]
    kind: str
    input_shape: tuple[int, int, int]
    path: Path
    layer: str
    description: str
    class_names: list[str] | None

    def codes(self, images: np.ndarray, device: Any) -> np.ndarray:
        """Codes (N, D) float32 of images (N, H, W) (uint8 or float in [0, 1])."""
        import torch

        from replearn.data import to_tensor
        from replearn.train import predict

        x = to_tensor(images)
        if self.kind == "autoencoder":
            module = self.model.encoder
        else:
            net, layer = self.model, self.layer

            class _Features(torch.nn.Module):
                def forward(self, t: torch.Tensor) -> torch.Tensor:  # (N, C, H, W) -> (N, D)
                    return net.forward_features(t, layer).flatten(1)

            module = _Features()
            module.add_module("net", net)
        module.to(device)
        return predict(module, x, BATCH).numpy().astype(np.float32).reshape(len(x), -1)

    def probabilities(self, images: np.ndarray, device: Any) -> np.ndarray:
        """Softmax outputs (N, K) of a classifier."""
        import torch

        from replearn.data import to_tensor
        from replearn.train import predict

        self.model.to(device)
        return torch.softmax(predict(self.model, to_tensor(images), BATCH).double(), dim=1).numpy()

    def reconstruct(self, images: np.ndarray, device: Any) -> np.ndarray:
        """Reconstructions (N, H, W) in [0, 1] of an autoencoder."""
        from replearn.data import to_tensor
        from replearn.train import predict

        self.model.to(device)
        return predict(self.model, to_tensor(images), BATCH).numpy()[:, 0]


def load_encoder(path: str, layer: str = "features") -> Encoder:
    """The model at ``path`` (run folder or ``.safetensors``) as an :class:`Encoder`; one-line errors."""
    from replearn.models import AutoEncoder, Network, load_model

    p = Path(path)
    if not p.exists():
        raise ReplearnError(f"--model {path}: no such run folder or weights file")
    if p.is_dir() and not (p / "model.safetensors").is_file():
        found = sorted(f.name for f in p.glob("*.safetensors"))
        hint = f"; it holds {', '.join(found)}: name one of them" if found else "; it holds no .safetensors file"
        raise ReplearnError(f"--model {path}: folder has no model.safetensors{hint}")
    if p.is_file() and p.suffix != ".safetensors":
        raise ReplearnError(f"--model {path}: expected a run folder or a .safetensors file, got a {p.suffix or 'plain'} file")
    weights = p / "model.safetensors" if p.is_dir() else p
    model, meta = load_model(weights)
    if isinstance(model, AutoEncoder):
        shape = tuple(int(s) for s in model.input_shape)
        return Encoder(model, meta, "autoencoder", shape, weights, "features",
                       f"autoencoder encoder ({model.code_dim}-D codes)", None)
    if not isinstance(model, Network):
        raise ReplearnError(f"--model {path}: holds a {type(model).__name__}; an autoencoder or a Network is needed")
    if layer not in model.layer_names:
        raise ReplearnError(
            f"--model {path}: the network has no layer {layer!r} to read codes from; "
            f"its layers are {', '.join(model.layer_names)} (choose one with --layer)"
        )
    if len(model.input_shape) != 3:
        raise ReplearnError(f"--model {path}: takes inputs of shape {tuple(model.input_shape)}, not images (C, H, W)")
    dim = int(np.prod(model.layer_shapes[layer]))
    if len(model.output_shape) == 1 and model.output_shape[0] > 1:
        k = int(model.output_shape[0])
        names = [str(n) for n in meta.get("class_names", [])]
        names = names if len(names) == k else [str(i) for i in range(k)]
        return Encoder(model, meta, "classifier", tuple(model.input_shape), weights, layer,
                       f"classifier network, layer {layer!r} ({dim}-D codes)", names)
    return Encoder(model, meta, "network", tuple(model.input_shape), weights, layer,
                   f"network layer {layer!r} ({dim}-D codes)", None)


def model_preset(meta: dict[str, Any]) -> str | None:
    """The synthetic preset a model was trained on, from its metadata (None when unknown or real data)."""
    source = str(meta.get("data_source", meta.get("data", "")))
    for preset in PRESETS:
        if f"preset={preset}" in source:
            return preset
    return None


# ----------------------------------------------------------------------------- Prepare the data
@dataclass
class Crops:
    """Images (N, H, W), optional labels (N,) (-1 = none), where they came from, and whether synthetic."""

    images: np.ndarray
    labels: np.ndarray
    source: str
    synthetic: bool
    class_names: list[str]


def _subset(n: int, k: int, seed: int) -> np.ndarray:
    """Sorted seeded subset of ``k`` of ``range(n)`` (all when ``k >= n``)."""
    return np.arange(n) if k >= n else np.sort(np.random.default_rng(seed).choice(n, k, replace=False))


def load_real(path: str, quick: bool, seed: int) -> Crops:
    """Real crops from an ``.npz`` (labelled + unlabelled; labels kept when present) or PNG/TIFF files."""
    from replearn.data import load_assignment
    from replearn.workflows._images import read_images

    p = Path(path)
    if not p.exists():
        raise ReplearnError(f"--real {path}: no such file or folder (expected crops of real cells, e.g. from replearn crops)")
    if p.suffix.lower() == ".npz":
        data = load_assignment(p, require_labelled=False)
        images = np.concatenate([data.labelled, data.unlabelled.astype(data.labelled.dtype)])
        labels = np.concatenate([data.labels, np.full(len(data.unlabelled), -1, dtype=np.int64)])
        names, source, synthetic = list(data.class_names), data.source, data.synthetic
    else:
        images, _items = read_images(p)
        labels, names, source, synthetic = np.full(len(images), -1, dtype=np.int64), [], str(p), False
    if quick:
        keep = _subset(len(images), QUICK_REAL, seed)
        images, labels = images[keep], labels[keep]
    return Crops(images, labels, source, synthetic, names)


def load_source(args: argparse.Namespace, enc: Encoder) -> tuple[Crops, str | None]:
    """The labelled source crops: ``--synthetic`` npz, or built-in synthetic crops of the model's size."""
    from replearn.data import load_assignment, synthetic_aureus

    n = min(args.n_synthetic, QUICK_SYNTHETIC) if args.quick else args.n_synthetic
    if n < 6:
        raise ReplearnError(f"--n-synthetic {args.n_synthetic}: needs at least 6 crops (2 per stage)")
    if args.synthetic:
        if args.preset:
            raise ReplearnError("--preset applies to the built-in synthetic crops; it cannot be used with --synthetic")
        data = load_assignment(args.synthetic)
        keep = _subset(len(data.labels), n, args.seed) if args.quick else np.arange(len(data.labels))
        note = "SYNTHETIC" if data.synthetic else "labelled"
        return Crops(data.labelled[keep], data.labels[keep], f"{args.synthetic} ({note} crops)", True,
                     list(data.class_names)), None
    _, h, w = enc.input_shape
    if h != w or h < 16:
        raise ReplearnError(
            f"--model {args.model}: takes {h}x{w} px crops; the built-in synthetic crops are square and at least "
            "16 px: give --synthetic data.npz"
        )
    preset = args.preset or model_preset(enc.meta) or "sim"
    seed = args.seed + SYNTHETIC_SEED_OFFSET
    data = synthetic_aureus(n, 0, seed=seed, preset=preset, size=h)
    return Crops(data.labelled, data.labels, data.source, True, list(data.class_names)), preset


def check_size(crops: Crops, enc: Encoder, option: str, path: str) -> None:
    """Crops must have the model's input size (one line naming both sizes)."""
    c, h, w = enc.input_shape
    if c != 1:
        raise ReplearnError(f"--model {enc.path}: takes {c}-channel images; domain reads grayscale crops only")
    got = tuple(int(s) for s in crops.images.shape[1:])
    if got != (h, w):
        raise ReplearnError(
            f"{option} {path}: crops are {got[0]}x{got[1]} px but the model ({enc.path}) takes {h}x{w} px; "
            f"cut crops of that size (e.g. replearn crops --size {h})"
        )


# ----------------------------------------------------------------------------- Evaluate
def pixels(images: np.ndarray) -> np.ndarray:
    """Images (N, H, W) -> float32 (N, H*W) in [0, 1]."""
    from replearn.data import to_tensor

    return to_tensor(images).numpy().reshape(len(images), -1)


def measure(
    enc: Encoder, source: Crops, real: Crops, s_codes: np.ndarray, r_codes: np.ndarray, k: int, seed: int, device: Any,
) -> dict[str, Any]:
    """Every number of the report (JSON-ready), plus arrays the figures need under ``_arrays``."""
    from sklearn.decomposition import PCA

    from replearn.evaluate.domain_shift import (
        domain_classifier_score,
        knn_stage_guess,
        nearest_neighbour_ratio,
        prediction_summary,
        shift_sentence,
    )

    n_classes = len(source.class_names)
    out: dict[str, Any] = {"_arrays": {}}
    codes_clf = domain_classifier_score(s_codes, r_codes, seed=seed)
    ratio = nearest_neighbour_ratio(s_codes, r_codes)
    n = min(len(s_codes), len(r_codes))
    sp, rp = pixels(source.images), pixels(real.images)
    pooled = np.concatenate([sp[_subset(len(sp), n, seed)], rp[_subset(len(rp), n, seed + 1)]])
    pca = PCA(n_components=min(PIXEL_PCA, len(pooled) - 1, sp.shape[1]), random_state=seed).fit(pooled)
    pix_clf = domain_classifier_score(pca.transform(sp), pca.transform(rp), seed=seed)
    out["domain_classifier"] = {
        "codes": {k_: v for k_, v in codes_clf.items()},
        "raw_pixels_pca": {**pix_clf, "n_components": int(pca.n_components_)},
        "method": "StandardScaler + LogisticRegression(C=1), stratified 5-fold CV, balanced seeded subsample "
                  "(n per domain = the smaller set); raw pixels: PCA fitted on the pooled balanced subsample",
    }
    out["nearest_neighbour"] = {**ratio, "space": f"the model's {s_codes.shape[1]}-D codes, Euclidean"}
    out["sentence"] = shift_sentence(codes_clf["auc"], ratio["ratio"])

    guess = knn_stage_guess(s_codes, source.labels, r_codes, n_classes, k=k, seed=seed)
    out["_arrays"]["knn_guess"] = guess.pop("predicted")
    out["knn_guess"] = {**guess, "note": "GUESS of a k-NN fitted on the synthetic codes; the real cells have no labels"}
    labelled = real.labels >= 0
    if labelled.any():
        out["knn_guess"]["real_labelled_accuracy"] = float(np.mean(out["_arrays"]["knn_guess"][labelled] ==
                                                                   real.labels[labelled]))
        out["knn_guess"]["real_labelled_n"] = int(labelled.sum())

    if enc.kind == "classifier":
        ps, pr = enc.probabilities(source.images, device), enc.probabilities(real.images, device)
        on_s, on_r = prediction_summary(ps, ps.shape[1]), prediction_summary(pr, pr.shape[1])
        out["_arrays"]["cnn_guess"] = on_r.pop("predicted")
        pred_s = on_s.pop("predicted")
        out["classifier"] = {
            "synthetic": {**on_s, "accuracy": float(np.mean(pred_s == source.labels)),
                          "note": "fresh synthetic crops with known stages (held out from the model's training "
                                  "when they are the built-in crops)"},
            "real": {**on_r, "note": "GUESS of the classifier; the real cells have no labels"},
        }
        if labelled.any():
            out["classifier"]["real"]["labelled_accuracy"] = float(
                np.mean(out["_arrays"]["cnn_guess"][labelled] == real.labels[labelled]))
    if enc.kind == "autoencoder":
        rs, rr = enc.reconstruct(source.images, device), enc.reconstruct(real.images, device)
        es = np.mean((rs - sp.reshape(rs.shape)) ** 2, axis=(1, 2))
        er = np.mean((rr - rp.reshape(rr.shape)) ** 2, axis=(1, 2))
        out["_arrays"].update(recon_synthetic=rs, recon_real=rr)
        out["reconstruction"] = {
            "synthetic_mse": float(es.mean()), "real_mse": float(er.mean()),
            "ratio": float(er.mean() / es.mean()) if es.mean() > 0 else float("inf"),
            "real_above_synthetic_p95": float(np.mean(er > np.percentile(es, 95))),
        }
    return out


# ----------------------------------------------------------------------------- Figures
def figure_embedding(
    s2: np.ndarray, r2: np.ndarray, s_labels: np.ndarray, guess: np.ndarray, names: list[str], title: str,
    guess_name: str,
):
    """Left: synthetic crops by stage, real cells as black crosses. Right: real cells by the guessed stage."""
    from replearn.evaluate import figures as figs  # noqa: F401  (selects the Agg backend)
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("tab10")
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.2))
    ax = axes[0]
    for c, name in enumerate(names):
        m = s_labels == c
        ax.scatter(s2[m, 0], s2[m, 1], s=9, color=cmap(c), alpha=0.55, linewidths=0, label=f"SYNTHETIC: {name}")
    ax.scatter(r2[:, 0], r2[:, 1], s=22, marker="x", color="black", linewidths=0.9, label="REAL cells (no labels)")
    ax.set_title("synthetic crops by stage, real cells as crosses", fontsize=10)
    ax.legend(fontsize=7, loc="best", framealpha=0.8)
    ax = axes[1]
    ax.scatter(s2[:, 0], s2[:, 1], s=7, color="0.82", linewidths=0, label="SYNTHETIC crops")
    for c, name in enumerate(names):
        m = guess == c
        ax.scatter(r2[m, 0], r2[m, 1], s=26, marker="X", color=cmap(c), edgecolors="black", linewidths=0.3,
                   label=f"REAL, guessed {name} ({int(m.sum())})")
    ax.set_title(f"real cells coloured by the GUESS of the {guess_name} (not ground truth)", fontsize=10)
    ax.legend(fontsize=7, loc="best", framealpha=0.8)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def figure_neighbours(
    real_imgs: np.ndarray, real_idx: np.ndarray, syn_imgs: np.ndarray, syn_labels: np.ndarray, nn_idx: np.ndarray,
    nn_dist: np.ndarray, typical: float, names: list[str], title: str,
):
    """One row per real cell: the REAL crop, then its nearest SYNTHETIC crops (stage, distance / typical)."""
    from replearn.evaluate import figures as figs  # noqa: F401
    import matplotlib.pyplot as plt

    rows, k = len(real_idx), nn_idx.shape[1]
    height = 1.6 * rows + 0.7
    fig, axes = plt.subplots(rows, k + 1, figsize=(1.35 * (k + 1), height), squeeze=False)
    for r, i in enumerate(real_idx):
        ax = axes[r][0]
        ax.imshow(real_imgs[i], cmap="gray")
        ax.set_title(f"REAL crop {int(i)}", fontsize=7, color="darkred", pad=2)
        for j in range(k):
            ax = axes[r][j + 1]
            s = nn_idx[r, j]
            ax.imshow(syn_imgs[s], cmap="gray")
            stage = names[int(syn_labels[s])].split()[0]
            ax.set_title(f"syn. stage {stage}, d={nn_dist[r, j] / typical:.1f}", fontsize=6, pad=2)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=9)
    fig.tight_layout(pad=0.3, h_pad=0.8, rect=(0, 0, 1, 1 - 0.5 / height))
    return fig


def figure_stages(names: list[str], bars: dict[str, list[float]], title: str):
    """Grouped bars: fraction of crops per stage, one group per source of stages."""
    from replearn.evaluate import figures as figs  # noqa: F401
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.2, 3.6))
    width = 0.8 / max(1, len(bars))
    x = np.arange(len(names))
    for i, (label, values) in enumerate(bars.items()):
        ax.bar(x + (i - (len(bars) - 1) / 2) * width, values, width, label=label)
    ax.set_xticks(x, names, fontsize=8)
    ax.set_ylabel("fraction of crops")
    ax.set_ylim(0, 1)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def draw_figures(
    run_dir: Path, enc: Encoder, source: Crops, real: Crops, s_codes: np.ndarray, r_codes: np.ndarray,
    metrics: dict[str, Any], method: str, k: int, seed: int,
) -> dict[str, Path]:
    """The report's figures, written atomically."""
    from sklearn.neighbors import NearestNeighbors

    from replearn.evaluate import embed_2d
    from replearn.evaluate import figures as figs

    arrays = metrics["_arrays"]
    names = source.class_names
    paths: dict[str, Path] = {}
    if s_codes.shape[1] == 2:
        s2, r2, how = s_codes, r_codes, "the 2-D codes themselves"
    else:
        s2, r2 = embed_2d(method, s_codes, r_codes, seed=seed)
        how = f"{METHOD_TITLES[method]} of the {s_codes.shape[1]}-D codes"
    guess_name = "classifier" if "cnn_guess" in arrays else f"{k}-NN on synthetic codes"
    guess = arrays.get("cnn_guess", arrays["knn_guess"])
    title = f"{enc.description}: {len(s_codes)} SYNTHETIC crops and {len(r_codes)} REAL cells ({how})"
    paths["embedding"] = figs.save_figure(
        figure_embedding(s2, r2, source.labels, guess, names, title, guess_name), run_dir / "domain_embedding.png")

    nn = NearestNeighbors(n_neighbors=min(k, len(s_codes))).fit(s_codes)
    show = _subset(len(r_codes), N_SHOW, seed)
    dist, idx = nn.kneighbors(r_codes[show])
    typical = metrics["nearest_neighbour"]["source_to_source"] or 1.0
    paths["neighbours"] = figs.save_figure(
        figure_neighbours(real.images, show, source.images, source.labels, idx, dist, typical, names,
                          f"REAL cells (left, no labels) and their {idx.shape[1]} nearest SYNTHETIC crops in the "
                          f"model's code space\nd = distance / typical synthetic-to-synthetic nearest-neighbour "
                          f"distance ({typical:.3g})"),
        run_dir / "domain_neighbours.png")

    bars = {"SYNTHETIC crops: true stages": metrics["knn_guess"]["source_fractions"],
            f"REAL cells: {k}-NN guess": metrics["knn_guess"]["fractions"]}
    if "classifier" in metrics:
        bars["REAL cells: classifier guess"] = metrics["classifier"]["real"]["fractions"]
    paths["stages"] = figs.save_figure(
        figure_stages(names, bars, "Stage mix: known for the synthetic crops, GUESSED for the real cells"),
        run_dir / "domain_stages.png")

    if "recon_real" in arrays:
        n = 10
        rs, rr = _subset(len(source.images), n, seed), _subset(len(real.images), n, seed + 1)
        rows = {"REAL": pixels(real.images[rr]).reshape(-1, *real.images.shape[1:]),
                "REAL recon.": arrays["recon_real"][rr],
                "SYNTHETIC": pixels(source.images[rs]).reshape(-1, *source.images.shape[1:]),
                "SYNTH. recon.": arrays["recon_synthetic"][rs]}
        rec = metrics["reconstruction"]
        paths["reconstructions"] = figs.save_figure(
            figs.image_rows(rows, n=n, title=f"Autoencoder reconstructions: MSE real {rec['real_mse']:.4f}, "
                                             f"synthetic {rec['synthetic_mse']:.4f} ({rec['ratio']:.1f}x)"),
            run_dir / "domain_reconstructions.png")
    metrics["embedding"] = {"method": method if s_codes.shape[1] != 2 else "codes", "how": how}
    return paths


# ----------------------------------------------------------------------------- Report
def build_report(metrics: dict[str, Any], figures: dict[str, Path], command: str):
    """A Markdown + HTML report from ``metrics`` (JSON-ready) and the figure paths."""
    from replearn.evaluate import Report

    d, dc = metrics["data"], metrics["domain_classifier"]
    rep = Report("Domain shift: SYNTHETIC training data vs REAL cells",
                 banner=("QUICK RUN on small subsets. " if metrics["quick"] else "")
                 + "Synthetic crops: generated by replearn (stages known). Real crops: microscope cells (no labels); "
                 "every stage shown for a real cell is a model's GUESS."
                 + (" The --real crops are marked SYNTHETIC in their file: this compares synthetic with synthetic."
                    if d["real"]["synthetic"] else ""))
    rep.heading("Data and model")
    rep.table(["set", "source", "crops", "size", "synthetic?"], [
        ["source (stages known)", d["synthetic"]["source"], d["synthetic"]["n"], d["size"], "yes" if d["synthetic"]["synthetic"] else "no"],
        ["target (real cells)", d["real"]["source"], d["real"]["n"], d["size"], "YES" if d["real"]["synthetic"] else "no"],
    ])
    m = metrics["model"]
    rep.bullets([f"model: {m['path']} -- {m['description']}",
                 f"trained on: {m['trained_on']}",
                 f"seed {metrics['seed']}; {metrics['environment']['machine']}"])
    rep.heading("How far apart are the two domains?")
    rep.text(metrics["sentence"])
    codes, pix = dc["codes"], dc["raw_pixels_pca"]
    nn = metrics["nearest_neighbour"]
    rep.table(["representation", "domain classifier accuracy", "AUC", "n per domain"], [
        [f"model codes ({metrics['code_dim']}-D)", f"{codes['accuracy']:.3f} +- {codes['accuracy_std']:.3f}",
         f"{codes['auc']:.3f} +- {codes['auc_std']:.3f}", codes["n_per_domain"]],
        [f"raw pixels (PCA-{pix['n_components']})", f"{pix['accuracy']:.3f} +- {pix['accuracy_std']:.3f}",
         f"{pix['auc']:.3f} +- {pix['auc_std']:.3f}", pix["n_per_domain"]],
    ])
    rep.bullets([
        f"domain classifier: {dc['method']}; +- is the standard deviation over the {codes['n_splits']} folds; "
        "0.5 = the domains cannot be told apart",
        f"nearest-neighbour distance (codes): real -> nearest synthetic {nn['target_to_source']:.3g}, synthetic -> "
        f"nearest other synthetic {nn['source_to_source']:.3g}, ratio {nn['ratio']:.2f}",
    ] + ([f"autoencoder reconstruction MSE: real {metrics['reconstruction']['real_mse']:.4f}, synthetic "
          f"{metrics['reconstruction']['synthetic_mse']:.4f} ({metrics['reconstruction']['ratio']:.1f}x); "
          f"{100 * metrics['reconstruction']['real_above_synthetic_p95']:.0f}% of real cells are reconstructed worse "
          "than 95% of synthetic crops"] if "reconstruction" in metrics else []))
    rep.heading("Which stage would the model say? (a GUESS for real cells)")
    names = metrics["class_names"]
    kg = metrics["knn_guess"]
    rows = [["SYNTHETIC crops: true stages"] + [f"{v:.2f}" for v in kg["source_fractions"]],
            [f"REAL cells: {kg['k']}-NN guess"] + [f"{v:.2f}" for v in kg["fractions"]]]
    if "classifier" in metrics:
        rows.append(["REAL cells: classifier guess"] + [f"{v:.2f}" for v in metrics["classifier"]["real"]["fractions"]])
    rep.table(["stages of"] + names, rows)
    notes = [f"the {kg['k']}-NN's cross-validated accuracy on the synthetic codes is "
             f"{kg['source_cv_accuracy']:.3f}: how well the codes separate stages where labels exist, "
             "not how right the guesses for real cells are" if kg["source_cv_accuracy"] is not None else
             "too few synthetic crops per stage for a cross-validated k-NN accuracy"]
    if "classifier" in metrics:
        c = metrics["classifier"]
        notes.append(f"classifier: accuracy {c['synthetic']['accuracy']:.3f} on the synthetic crops, mean confidence "
                     f"{c['synthetic']['mean_confidence']:.3f} there and {c['real']['mean_confidence']:.3f} on the "
                     "real cells (confidence is not correctness)")
        if "labelled_accuracy" in c["real"]:
            notes.append(f"classifier accuracy on the {kg['real_labelled_n']} labelled real crops: "
                         f"{c['real']['labelled_accuracy']:.3f}")
    if "real_labelled_accuracy" in kg:
        notes.append(f"k-NN accuracy on the {kg['real_labelled_n']} labelled real crops: {kg['real_labelled_accuracy']:.3f}")
    rep.bullets(notes)
    rep.heading("Figures")
    captions = {
        "embedding": f"Joint 2-D view ({metrics['embedding']['how']}): SYNTHETIC crops by stage and REAL cells",
        "neighbours": "REAL cells and their nearest SYNTHETIC crops in code space",
        "stages": "Stage mix: true for the synthetic crops, guessed for the real cells",
        "reconstructions": "Autoencoder reconstructions of REAL and SYNTHETIC crops",
    }
    for key, path in figures.items():
        rep.figure(path, captions[key])
    rep.heading("Reading it")
    rep.text("When the domain classifier is near 0.5 and the nearest-neighbour ratio near 1, the real cells fall where "
             "synthetic cells of some stage lie, and the model's stage regions may carry over (still unverified without "
             "labels). When it is near 1.0, the model has never seen anything like the real cells: its guesses are "
             "extrapolations, however confident. Label some real cells (replearn crops --labels) to measure.")
    rep.code(command)
    return rep


# ----------------------------------------------------------------------------- Run
def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run (for the report)."""
    parts = ["replearn domain", f"--model {args.model}", f"--real {args.real}"]
    if args.synthetic:
        parts.append(f"--synthetic {args.synthetic}")
    if args.preset:
        parts.append(f"--preset {args.preset}")
    if args.n_synthetic != N_SYNTHETIC:
        parts.append(f"--n-synthetic {args.n_synthetic}")
    parts += [f"--method {args.method}", f"--seed {args.seed}"]
    if args.layer != "features":
        parts.append(f"--layer {args.layer}")
    if args.k != K_NEIGHBOURS:
        parts.append(f"--k {args.k}")
    if args.quick:
        parts.append("--quick")
    return " ".join(parts)


def run(args: argparse.Namespace) -> int:
    """Load, encode, measure, draw, write; print the headline numbers."""
    import replearn
    from replearn.utils.atomic import atomic_path, save_json
    from replearn.utils.rundir import make_run_dir
    from replearn.utils.runtime import machine_summary, resolve_device, seed_everything

    started = time.perf_counter()
    if args.k < 1:
        raise ReplearnError(f"--k {args.k}: expected a positive number of neighbours")
    # Everything a user can get wrong is checked before the run folder is made.
    device = resolve_device(args.device)
    enc = load_encoder(args.model, args.layer)
    real = load_real(args.real, args.quick, args.seed)
    check_size(real, enc, "--real", args.real)
    if len(real.images) < 2:
        raise ReplearnError(f"--real {args.real}: holds {len(real.images)} crop(s); at least 2 are needed")
    source, preset = load_source(args, enc)
    check_size(source, enc, "--synthetic", args.synthetic or "(built-in)")
    if enc.class_names and len(enc.class_names) != len(source.class_names):
        raise ReplearnError(
            f"--model {args.model}: a {len(enc.class_names)}-class classifier, but the source crops have "
            f"{len(source.class_names)} stages"
        )
    run_dir = make_run_dir(args.out, COMMAND)
    seed_everything(args.seed)
    trained_on = ("SYNTHETIC crops (" + str(enc.meta.get("data_source", enc.meta.get("data", "?"))) + ")"
                  if enc.meta.get("synthetic") or model_preset(enc.meta) else
                  str(enc.meta.get("data_source", enc.meta.get("data", "unknown (no metadata)"))))
    print(f"model: {enc.path}: {enc.description}; trained on {trained_on}")
    print(f"source: {len(source.images)} SYNTHETIC crops with stages from {source.source}")
    target = "SYNTHETIC (so marked in the file)" if real.synthetic else "REAL"
    print(f"target: {len(real.images)} {target} crops from {real.source} ({int((real.labels >= 0).sum())} labelled), "
          f"{real.images.shape[1]}x{real.images.shape[2]} px")
    print(f"run folder: {run_dir}")

    # ------------------------------------------------------------------------- Encode and measure
    enc.model.eval()
    s_codes, r_codes = enc.codes(source.images, device), enc.codes(real.images, device)
    metrics = measure(enc, source, real, s_codes, r_codes, args.k, args.seed, device)
    figures = draw_figures(run_dir, enc, source, real, s_codes, r_codes, metrics, args.method, args.k, args.seed)

    # ------------------------------------------------------------------------- Write
    arrays = metrics.pop("_arrays")
    with atomic_path(run_dir / "codes.npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, synthetic_codes=s_codes, synthetic_labels=source.labels, real_codes=r_codes,
                                real_knn_guess=arrays["knn_guess"],
                                real_classifier_guess=arrays.get("cnn_guess", np.zeros(0, np.int64)))
    machine = machine_summary()
    command = command_line(args)
    metrics.update({
        "synthetic_vs_real": "source = SYNTHETIC crops with known stages; target = REAL cells without labels; "
                             "stages for real cells are a model's guess",
        "data": {
            "synthetic": {"source": source.source, "n": int(len(source.images)), "synthetic": source.synthetic,
                          "preset": preset, "class_counts": np.bincount(source.labels, minlength=len(source.class_names)).tolist()},
            "real": {"source": real.source, "n": int(len(real.images)), "synthetic": real.synthetic,
                     "n_labelled": int((real.labels >= 0).sum())},
            "size": f"{real.images.shape[1]}x{real.images.shape[2]}",
        },
        "model": {"path": str(enc.path), "kind": enc.kind, "description": enc.description, "trained_on": trained_on,
                  "layer": enc.layer if enc.kind != "autoencoder" else "encoder"},
        "code_dim": int(s_codes.shape[1]), "class_names": list(source.class_names), "seed": int(args.seed),
        "quick": bool(args.quick), "k": int(args.k),
        "environment": {"replearn": replearn.__version__, "machine": machine, "device": str(device),
                        "python": platform.python_version()},
        "seconds": round(time.perf_counter() - started, 1),
    })
    save_json(run_dir / "config.json", {
        "model": args.model, "real": args.real, "synthetic": args.synthetic, "preset": preset,
        "n_synthetic": int(len(source.images)), "method": args.method, "layer": args.layer, "k": args.k,
        "seed": args.seed, "quick": bool(args.quick), "device": str(device),
    })
    save_json(run_dir / "metrics.json", metrics)
    _md, page = build_report(metrics, figures, command).write(run_dir)

    codes, pix = metrics["domain_classifier"]["codes"], metrics["domain_classifier"]["raw_pixels_pca"]
    print(f"domain classifier (real vs SYNTHETIC, 0.5 = no shift): codes accuracy {codes['accuracy']:.3f} "
          f"AUC {codes['auc']:.3f}; raw pixels accuracy {pix['accuracy']:.3f} AUC {pix['auc']:.3f}")
    print(f"nearest-synthetic distance ratio (real / synthetic): {metrics['nearest_neighbour']['ratio']:.2f}")
    guess = ", ".join(f"{n.split()[0]}: {v:.2f}" for n, v in zip(metrics["class_names"], metrics["knn_guess"]["fractions"]))
    print(f"stage GUESS for the real cells ({args.k}-NN on synthetic codes, not ground truth): {guess}")
    if "classifier" in metrics:
        guess = ", ".join(f"{n.split()[0]}: {v:.2f}" for n, v in
                          zip(metrics["class_names"], metrics["classifier"]["real"]["fractions"]))
        print(f"stage GUESS of the classifier for the real cells: {guess}")
    print(metrics["sentence"])
    print(f"report: {page}")
    return 0
