"""Lecture exercise 2: dimension reduction with a convolutional autoencoder.

Trains the lecture's autoencoder (conv 32 | 32, 16 | 16, 8 with pooling,
Dense(2) ``features``, Dense(8*7*7) and the convolutions in reverse with
upsampling, a 1-filter sigmoid output) to reconstruct MNIST, then measures how
good its 2-D codes are: the test-set scatter coloured by class, originals next
to reconstructions, test reconstruction error (MSE, BCE), 1-NN/5-NN accuracy of
the codes (train codes as reference, test codes as queries) and scikit-learn's
trustworthiness. ``--compare`` embeds the same images with PCA, t-SNE and
ISOMAP and scores them the same way. Writes into the run folder:
``model.safetensors`` (+ ``model.json``), ``metrics.json``, ``config.json``,
``report.md``/``report.html``, ``autoencoder_codes.png``,
``autoencoder_reconstructions.png``, ``autoencoder_curves.png``,
``reconstructions/*_original.png``/``*_restored.png`` and, with ``--compare``,
``autoencoder_compare.png``. See docs/autoencoder.md.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from replearn.errors import ReplearnError

COMMAND = "autoencoder"
HELP = "lecture exercise 2: autoencoder to 2-D codes; scatter, reconstructions, k-NN, trustworthiness"
EXAMPLES = """\
examples:
  replearn autoencoder                          # MNIST, the default recipe, about 11 minutes on 2 cores
  replearn autoencoder --compare                # + PCA, t-SNE and ISOMAP on the same images
  replearn autoencoder --dataset fashion --epochs 20
  replearn autoencoder --dataset data.npz       # the assignment's crops: trained on 'unlabelled'
  replearn autoencoder --loss mse --blocks 32/64,32/32,16 --code-dim 2
  replearn autoencoder --noise 0.3              # denoising: Gaussian noise on the inputs, clean targets
  replearn autoencoder --layerwise 3            # greedy layer-wise pretraining, 3 epochs per encoder stage
  replearn autoencoder --config ae.toml         # any key of the defaults below, as TOML
  replearn autoencoder --quick                  # small subsets, 2 epochs: under a minute

Config keys (TOML file or flags): dataset, model, code_dim, blocks, hidden, epochs,
batch_size, lr, optimizer, schedule, weight_decay, loss, noise, noise_kind, layerwise_epochs, bf16, channels_last,
include_labelled, compare_ref, compare_queries. The resolved config is saved
as config.json in the run folder.
"""

# ----------------------------------------------------------------------------- Setup
# The default recipe. The architecture is the lecture's (conv_autoencoder's
# defaults); the training recipe (epochs, peak learning rate) was chosen from a
# sweep on full MNIST; 40 epochs is the lecture's suggestion (about 13 minutes on
# 2 CPU cores, inside the course's 30-minute budget); the sweep is in docs/autoencoder.md.
DEFAULTS: dict[str, Any] = {
    "dataset": "mnist",
    "model": "conv_autoencoder",
    "code_dim": 2,
    "blocks": [[32], [32, 16], [16, 8]],
    "hidden": [],  # dense widths between the convolutions and the code (the lecture's network has none)
    "epochs": 40,
    "batch_size": 128,
    "lr": 0.01,
    "optimizer": "adam",
    "schedule": "onecycle",
    "weight_decay": 0.0,
    "loss": "bce",
    "noise": 0.0,  # > 0: a denoising autoencoder (inputs corrupted while training, clean targets)
    "noise_kind": "gaussian",
    "layerwise_epochs": 0,  # > 0: greedy layer-wise pretraining of the encoder, epochs per stage
    "bf16": True,
    "channels_last": True,
    "include_labelled": False,
    # ISOMAP keeps an N x N float64 geodesic distance matrix: 10,000 reference points
    # cost about 1.1 GB on top of the run, 5,000 about 0.3 GB (the 1.5 GB budget).
    "compare_ref": 5000,
    "compare_queries": 5000,
}
# --quick: the same code path on small subsets.
QUICK: dict[str, Any] = {"epochs": 2, "compare_ref": 600, "compare_queries": 300}
QUICK_TRAIN, QUICK_EVAL = 2000, 500

N_PAIRS = 10  # the lecture's per-image original/restored pairs
TRUST_NEIGHBOURS = 5
TRUST_MAX_POINTS = 5000
VAL_FRACTION = 0.25  # npz data: labelled codes split 300/100 into reference/queries, as the lecture's 300/100
MNIST_NAMES = [str(i) for i in range(10)]
FASHION_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def _bool_flag(parser: argparse.ArgumentParser, name: str, help: str) -> None:
    dest = name.replace("-", "_")
    parser.add_argument(f"--{name}", dest=dest, action="store_true", default=None, help=help)
    parser.add_argument(f"--no-{name}", dest=dest, action="store_false", help=argparse.SUPPRESS)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``replearn autoencoder`` (the CLI adds --out, --seed, --quick, ...)."""
    parser.add_argument("--dataset", help="'mnist' (default), 'fashion' or a data.npz (labelled, labels, unlabelled)")
    parser.add_argument("--config", metavar="TOML", help="settings file; flags override it")
    parser.add_argument("--compare", action="store_true", help="also embed with PCA, t-SNE and ISOMAP and compare")
    parser.add_argument("--epochs", type=int, help=f"training epochs (default: {DEFAULTS['epochs']}; 2 with --quick)")
    parser.add_argument("--code-dim", type=int, help=f"size of the code (default: {DEFAULTS['code_dim']})")
    parser.add_argument("--blocks", metavar="W/W,W/...", help="encoder conv widths: blocks split by '/', widths by ',' "
                        "(default: 32/32,16/16,8, the lecture's); the decoder mirrors them")
    parser.add_argument("--hidden", metavar="W,W", help="dense layers (ReLU, BatchNorm) between the convolutions and "
                        "the code, e.g. 128; the decoder mirrors them (default: none, the lecture's network)")
    parser.add_argument("--model", help="registered autoencoder builder (default: conv_autoencoder)")
    parser.add_argument("--batch-size", type=int, help=f"images per step (default: {DEFAULTS['batch_size']})")
    parser.add_argument("--lr", type=float, help=f"peak learning rate (default: {DEFAULTS['lr']})")
    parser.add_argument("--optimizer", choices=["adam", "adamw", "sgd"], help="default: adam")
    parser.add_argument("--schedule", choices=["onecycle", "cosine", "none"], help="learning-rate schedule (default: onecycle)")
    parser.add_argument("--loss", choices=["bce", "mse"], help="reconstruction loss (default: bce)")
    parser.add_argument("--noise", type=float, metavar="LEVEL",
                        help="denoising autoencoder: corrupt the training inputs (targets stay clean); the noise's "
                             "standard deviation, or the fraction of pixels dropped with --noise-kind dropout "
                             "(default: 0, a plain autoencoder)")
    parser.add_argument("--noise-kind", choices=["gaussian", "dropout"],
                        help="input corruption for --noise: Gaussian noise clipped to [0, 1], or pixels set to 0 "
                             "(default: gaussian)")
    parser.add_argument("--layerwise", type=int, metavar="EPOCHS",
                        help="greedy layer-wise pretraining: train the encoder one stage (pooling block) at a time, "
                             "each as a shallow autoencoder on the frozen output of the stages below, EPOCHS per "
                             "stage, then the whole autoencoder end to end (default: 0, off)")
    _bool_flag(parser, "bf16", "bfloat16 autocast while training (default: on; --no-bf16 for float32)")
    _bool_flag(parser, "channels-last", "channels-last memory format while training (default: on; --no-channels-last)")
    _bool_flag(parser, "include-labelled", "npz data: also train on the labelled images (default: off, the lecture "
               "trains on 'unlabelled' and keeps the labelled ones for validation)")
    parser.add_argument("--compare-ref", type=int, metavar="N",
                        help=f"t-SNE/ISOMAP reference points, a seeded subset (default: {DEFAULTS['compare_ref']})")
    parser.add_argument("--compare-queries", type=int, metavar="M",
                        help=f"t-SNE/ISOMAP query points, a seeded subset (default: {DEFAULTS['compare_queries']})")


def parse_blocks(text: str) -> list[list[int]]:
    """``"32/32,16/16,8"`` -> ``[[32], [32, 16], [16, 8]]``."""
    try:
        blocks = [[int(w) for w in block.split(",")] for block in text.split("/")]
    except ValueError:
        raise ReplearnError(f"--blocks {text!r}: expected widths like 32/32,16/16,8 (blocks by '/', widths by ',')") from None
    if not blocks or any(w < 1 for b in blocks for w in b):
        raise ReplearnError(f"--blocks {text!r}: widths must be positive integers")
    return blocks


def parse_widths(text: str) -> list[int]:
    """``"128,32"`` -> ``[128, 32]``; ``""`` -> ``[]``."""
    try:
        widths = [int(w) for w in text.split(",")] if text.strip() else []
    except ValueError:
        raise ReplearnError(f"--hidden {text!r}: expected dense widths like 128 or 256,64") from None
    if any(w < 1 for w in widths):
        raise ReplearnError(f"--hidden {text!r}: widths must be positive integers")
    return widths


def _width_lists(value: Any, allow_empty: bool = False) -> bool:
    """True when ``value`` is a non-empty list of lists of positive integers (inner lists non-empty unless allowed)."""
    def width(w: Any) -> bool:
        return isinstance(w, int) and not isinstance(w, bool) and w > 0
    return (isinstance(value, list) and len(value) > 0
            and all(isinstance(b, list) and (allow_empty or b) and all(width(w) for w in b) for b in value))


def resolve_config(args: argparse.Namespace) -> dict[str, Any]:
    """Defaults (with --quick's), then the TOML file, then the flags; checked once."""
    from replearn.config import resolve
    from replearn.data.augment import make_corruption

    defaults = {**DEFAULTS, **(QUICK if args.quick else {})}
    overrides = {
        "dataset": args.dataset, "epochs": args.epochs, "code_dim": args.code_dim, "model": args.model,
        "blocks": parse_blocks(args.blocks) if args.blocks else None,
        "hidden": parse_widths(args.hidden) if args.hidden is not None else None, "batch_size": args.batch_size, "lr": args.lr,
        "optimizer": args.optimizer, "schedule": args.schedule, "loss": args.loss, "noise": args.noise,
        "noise_kind": args.noise_kind, "layerwise_epochs": args.layerwise, "bf16": args.bf16,
        "channels_last": args.channels_last, "include_labelled": args.include_labelled,
        "compare_ref": args.compare_ref, "compare_queries": args.compare_queries,
    }
    cfg = resolve(defaults, args.config, overrides)
    if cfg["schedule"] == "none":
        cfg["schedule"] = None
    for key in ("epochs", "code_dim", "batch_size", "compare_ref", "compare_queries"):
        if cfg[key] < 1:
            raise ReplearnError(f"{key.replace('_', '-')}: expected a positive integer, got {cfg[key]}")
    if not _width_lists(cfg["blocks"]):
        raise ReplearnError(f"blocks: expected a non-empty list of non-empty lists of positive integers, "
                            f"e.g. [[32], [32, 16], [16, 8]]; got {cfg['blocks']!r}")
    if not _width_lists([cfg["hidden"]], allow_empty=True):
        raise ReplearnError(f"hidden: expected a list of positive integers, e.g. [128] (or [] for none); got {cfg['hidden']!r}")
    if cfg["layerwise_epochs"] < 0:
        raise ReplearnError(f"layerwise: expected an integer >= 0 (epochs per stage; 0 is off), got {cfg['layerwise_epochs']}")
    if cfg["loss"] not in ("bce", "mse"):
        raise ReplearnError(f"loss: got {cfg['loss']!r}; allowed 'bce', 'mse'")
    make_corruption(cfg["noise_kind"], cfg["noise"])  # a bad noise level or kind fails here, before any work
    return cfg


def denoising_note(cfg: dict[str, Any]) -> str:
    """``"; denoising: ..."`` describing the input corruption, or ``""`` for a plain autoencoder."""
    if not cfg["noise"]:
        return ""
    what = (f"Gaussian noise sigma {cfg['noise']:g}" if cfg["noise_kind"] == "gaussian"
            else f"{cfg['noise']:.0%} of the pixels set to 0")
    return f"; denoising: inputs corrupted by {what}, clean targets"


def layerwise_note(cfg: dict[str, Any]) -> str:
    """``"; after greedy layer-wise pretraining ..."``, or ``""`` without pretraining."""
    if not cfg["layerwise_epochs"]:
        return ""
    return f"; after greedy layer-wise pretraining of the encoder, {cfg['layerwise_epochs']} epoch{'s' if cfg['layerwise_epochs'] != 1 else ''} per stage"


def check_network(cfg: dict[str, Any], image_shape: tuple[int, ...]) -> None:
    """Build the configured network for images of ``image_shape`` (H, W); raise its one-line error if it cannot be."""
    from replearn.models import create_model

    extra = {"hidden": tuple(cfg["hidden"])} if cfg["hidden"] else {}
    create_model(cfg["model"], input_shape=(1, *image_shape), code_dim=cfg["code_dim"],
                 blocks=tuple(tuple(b) for b in cfg["blocks"]), **extra)


# ----------------------------------------------------------------------------- Prepare the data
@dataclass
class Data:
    """Images for training and evaluation (uint8 (N, H, W), or float in [0, 1]).

    ``train``: what the autoencoder reconstructs; ``held_out``: images for the
    reconstruction error, the scatter and the pairs (the MNIST test set, or the
    npz's labelled crops); ``ref``/``query``: labelled images whose codes are
    the k-NN reference and queries.
    """

    title: str
    source: str
    train: np.ndarray
    train_note: str
    held_out: np.ndarray
    held_out_labels: np.ndarray
    held_out_name: str
    ref: np.ndarray
    ref_labels: np.ndarray
    ref_name: str
    query: np.ndarray
    query_labels: np.ndarray
    query_name: str
    class_names: list[str]
    synthetic: bool = False  # an npz marked synthetic (replearn synth): every output says so


def _subset(n: int, k: int, seed: int) -> np.ndarray:
    """Sorted seeded random subset of ``k`` of ``range(n)`` (all when ``k >= n``)."""
    if k >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, k, replace=False))


def prepare_data(cfg: dict[str, Any], args: argparse.Namespace) -> Data:
    """Load MNIST/Fashion-MNIST (train, test) or an assignment npz."""
    from replearn.data import load_assignment, load_dataset, stratified_split

    name = str(cfg["dataset"])
    if name.lower() in ("mnist", "fashion", "fashion-mnist", "fashion_mnist"):
        progress = not args.no_progress
        x_tr, y_tr = load_dataset(name, "train", args.data_dir, progress=progress)
        x_te, y_te = load_dataset(name, "test", args.data_dir, progress=progress)
        if args.quick:
            i, j = _subset(len(x_tr), QUICK_TRAIN, args.seed), _subset(len(x_te), QUICK_EVAL, args.seed)
            x_tr, y_tr, x_te, y_te = x_tr[i], y_tr[i], x_te[j], y_te[j]
        title = "MNIST" if name.lower() == "mnist" else "Fashion-MNIST"
        return Data(
            title=title, source=f"{title} train/test", train=x_tr, held_out=x_te, held_out_labels=y_te,
            held_out_name="test", ref=x_tr, ref_labels=y_tr, query=x_te, query_labels=y_te,
            ref_name="train", query_name="test",
            class_names=MNIST_NAMES if title == "MNIST" else FASHION_NAMES,
            train_note=f"{len(x_tr)} {title} training images",
        )
    path = Path(name)
    if path.suffix.lower() != ".npz":
        raise ReplearnError(f"--dataset {name!r}: expected 'mnist', 'fashion' or a .npz file")
    data = load_assignment(path)
    labelled, labels, unlabelled = data.labelled, data.labels, data.unlabelled
    if args.quick:
        unlabelled = unlabelled[_subset(len(unlabelled), QUICK_TRAIN, args.seed)]
    if cfg["include_labelled"] or len(unlabelled) == 0:
        train = np.concatenate([unlabelled, labelled.astype(unlabelled.dtype)]) if len(unlabelled) else labelled
        note = f"{len(unlabelled)} unlabelled + {len(labelled)} labelled crops (labels not used)"
    else:
        train, note = unlabelled, f"{len(unlabelled)} unlabelled crops (the {len(labelled)} labelled ones held out)"
    ref_idx, q_idx = stratified_split(labels, VAL_FRACTION, args.seed)
    return Data(
        title=path.name, source=str(path), train=train, held_out=labelled, held_out_labels=labels,
        held_out_name="labelled", ref=labelled[ref_idx], ref_labels=labels[ref_idx], query=labelled[q_idx],
        query_labels=labels[q_idx], ref_name="labelled (75%)", query_name="labelled (25%)",
        class_names=list(data.class_names), train_note=note, synthetic=data.synthetic,
    )


# ----------------------------------------------------------------------------- Evaluate
def embedding_metrics(
    ref_codes: np.ndarray, ref_labels: np.ndarray, query_codes: np.ndarray, query_labels: np.ndarray,
    query_images: np.ndarray, seed: int,
) -> dict[str, float]:
    """1-NN / 5-NN accuracy (reference -> queries) and trustworthiness of the query codes (N, d)."""
    from replearn.evaluate import knn_accuracy, trustworthiness
    from replearn.data import to_tensor

    k_max = len(ref_codes)
    high = to_tensor(query_images).numpy().reshape(len(query_images), -1)
    return {
        "knn1": knn_accuracy(ref_codes, ref_labels, query_codes, query_labels, k=min(1, k_max)),
        "knn5": knn_accuracy(ref_codes, ref_labels, query_codes, query_labels, k=min(5, k_max)),
        "trustworthiness": trustworthiness(high, query_codes, TRUST_NEIGHBOURS, TRUST_MAX_POINTS, seed),
    }


def compare_methods(data: Data, est: Any, cfg: dict[str, Any], seed: int, progress: bool) -> tuple[list[dict], dict]:
    """PCA, t-SNE and ISOMAP beside the autoencoder: metric rows and the figure's panels.

    PCA is fitted on every reference point. t-SNE and ISOMAP use seeded
    subsets (``compare_ref`` reference, ``compare_queries`` queries); the
    autoencoder is scored on that same subset too, so their rows compare alike.
    """
    from tqdm import tqdm

    from replearn.data import to_tensor
    from replearn.evaluate import EMBEDDING_NOTES, embed_2d

    def flat(x: np.ndarray) -> np.ndarray:
        return to_tensor(x).numpy().reshape(len(x), -1)

    ri = _subset(len(data.ref), int(cfg["compare_ref"]), seed)
    qi = _subset(len(data.query), int(cfg["compare_queries"]), seed + 1)
    ref_s, ref_ys, q_s, q_ys = data.ref[ri], data.ref_labels[ri], data.query[qi], data.query_labels[qi]
    rows, panels = [], {}
    start = time.perf_counter()
    ae_ref, ae_q = est.transform(ref_s), est.transform(q_s)
    rows.append(_row("autoencoder (subset)", len(ri), len(qi), embedding_metrics(ae_ref, ref_ys, ae_q, q_ys, q_s, seed),
                     time.perf_counter() - start, "encoder trained above; codes of the same subset as t-SNE/ISOMAP"))
    panels["autoencoder"] = (ae_q, q_ys)
    bar = tqdm(["pca", "tsne", "isomap"], desc="compare", unit="method", disable=not progress)
    for method in bar:
        bar.set_postfix_str(method)
        full = method == "pca"
        r_img, r_y = (data.ref, data.ref_labels) if full else (ref_s, ref_ys)
        start = time.perf_counter()
        r2, q2 = embed_2d(method, flat(r_img), flat(q_s), seed=seed)
        seconds = time.perf_counter() - start
        name = {"pca": "PCA", "tsne": "t-SNE", "isomap": "ISOMAP"}[method]
        rows.append(_row(name, len(r_img), len(qi), embedding_metrics(r2, r_y, q2, q_ys, q_s, seed), seconds,
                         EMBEDDING_NOTES[method]))
        panels[name] = (q2, q_ys)
    return rows, panels


def _row(method: str, n_ref: int, n_query: int, metrics: dict[str, float], seconds: float, note: str) -> dict:
    return {"method": method, "n_reference": int(n_ref), "n_queries": int(n_query), **metrics,
            "seconds": round(float(seconds), 1), "note": note}


def metrics_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Headers and formatted rows of the per-method table."""
    headers = ["method", "reference", "queries", "1-NN", "5-NN", "trustworthiness", "time (s)"]
    body = [[r["method"], f"{r['n_reference']:,}", f"{r['n_queries']:,}", f"{r['knn1']:.3f}", f"{r['knn5']:.3f}",
             f"{r['trustworthiness']:.3f}", f"{r['seconds']:.0f}"] for r in rows]
    return headers, body


def markdown_table(headers: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in body])


# ----------------------------------------------------------------------------- Run
def run(args: argparse.Namespace) -> int:
    """Train, evaluate, compare (optional), write everything; print the table."""
    from replearn.evaluate import AutoEncoderEmbedding, Report, reconstruction_errors
    from replearn.evaluate import figures
    from replearn.models import save_model
    from replearn.utils.atomic import save_json
    from replearn.utils.rundir import make_run_dir
    from replearn.utils.runtime import machine_summary
    from replearn.workflows._images import write_png

    cfg = resolve_config(args)
    data = prepare_data(cfg, args)
    check_network(cfg, data.train.shape[1:])  # a network that cannot take these images fails before any file is written
    run_dir = make_run_dir(args.out, COMMAND)
    save_json(run_dir / "config.json", {**cfg, "seed": args.seed, "quick": args.quick, "device": args.device})
    kind = "SYNTHETIC " if data.synthetic else ""
    print(f"data: {kind}{data.source}; training on {data.train_note}, {data.train.shape[1]}x{data.train.shape[2]} px; "
          f"{len(data.held_out)} {data.held_out_name} images held out")

    # ------------------------------------------------------------------------- Build and train the model
    est = AutoEncoderEmbedding(
        model=cfg["model"], code_dim=cfg["code_dim"], blocks=tuple(tuple(b) for b in cfg["blocks"]),
        hidden=tuple(cfg["hidden"]),
        epochs=cfg["epochs"], batch_size=cfg["batch_size"], lr=cfg["lr"], optimizer=cfg["optimizer"],
        schedule=cfg["schedule"], weight_decay=cfg["weight_decay"], loss=cfg["loss"], noise=cfg["noise"],
        noise_kind=cfg["noise_kind"], layerwise_epochs=cfg["layerwise_epochs"], bf16=cfg["bf16"],
        channels_last=cfg["channels_last"], seed=args.seed, device=args.device, progress=not args.no_progress,
        validation_data=data.held_out,
    )
    start = time.perf_counter()
    est.fit(data.train)
    train_seconds = time.perf_counter() - start
    history = est.history_

    # ------------------------------------------------------------------------- Evaluate
    start = time.perf_counter()
    held_codes = est.transform(data.held_out)
    restored = est.reconstruct(data.held_out)
    originals = data.held_out.astype(np.float32) / (255.0 if data.held_out.dtype == np.uint8 else 1.0)
    recon = reconstruction_errors(originals, restored)
    ref_codes = est.transform(data.ref)
    query_codes = held_codes if data.query is data.held_out else est.transform(data.query)
    ae_metrics = embedding_metrics(ref_codes, data.ref_labels, query_codes, data.query_labels, data.query, args.seed)
    rows = [_row("autoencoder", len(data.ref), len(data.query), ae_metrics, train_seconds,
                 f"trained {cfg['epochs']} epochs on {data.train_note}{denoising_note(cfg)}{layerwise_note(cfg)}; "
                 f"time is training time{' (pretraining included)' if cfg['layerwise_epochs'] else ''}")]
    panels = None
    if args.compare:
        more, panels = compare_methods(data, est, cfg, args.seed, not args.no_progress)
        rows += more
    eval_seconds = time.perf_counter() - start

    # ------------------------------------------------------------------------- Save the weights and the figures
    meta = {
        "workflow": COMMAND, "data": data.source, "input_shape": list(est.input_shape_), "code_dim": est.code_dim_,
        "pixels": "uint8 / 255 (float images in [0, 1] kept)", "class_names": data.class_names,
        "config": cfg, "seed": args.seed, "reconstruction": recon, "knn5": ae_metrics["knn5"],
        "synthetic": data.synthetic,
    }
    weights = save_model(est.model_, run_dir / "model.safetensors", meta=meta)
    fig_codes = figures.save_figure(
        figures.embeddings_figure({f"autoencoder codes of the {data.held_out_name} images": (held_codes, data.held_out_labels)},
                                  data.class_names, title=f"{data.title}: 2-D autoencoder codes"),
        run_dir / "autoencoder_codes.png")
    n = min(N_PAIRS, len(originals))
    fig_rec = figures.save_figure(
        figures.image_rows({"original": originals[:n], "restored": restored[:n]}, n=n,
                           title=f"{data.title}: first {n} {data.held_out_name} images and their reconstructions"),
        run_dir / "autoencoder_reconstructions.png")
    curve_keys = [k for k in ("loss", "val_loss") if k in history]
    fig_curves = figures.save_figure(
        figures.learning_curves({"autoencoder": history}, metrics=curve_keys,
                                title=f"{cfg['loss'].upper()} reconstruction loss (val = {data.held_out_name} images)"),
        run_dir / "autoencoder_curves.png")
    for i in range(n):
        write_png(run_dir / "reconstructions" / f"{data.held_out_name}_{i}_original.png", originals[i])
        write_png(run_dir / "reconstructions" / f"{data.held_out_name}_{i}_restored.png", restored[i])
    fig_compare = None
    if panels is not None:
        fig_compare = figures.save_figure(
            figures.embeddings_figure(panels, data.class_names,
                                      title=f"{data.title}: 2-D embeddings of the same {data.query_name} images"),
            run_dir / "autoencoder_compare.png")

    # ------------------------------------------------------------------------- Report
    headers, body = metrics_table(rows)
    table = markdown_table(headers, body)
    machine = machine_summary()
    results = {
        "data": data.source, "synthetic": data.synthetic, "train": data.train_note,
        "held_out": f"{len(data.held_out)} {data.held_out_name} images",
        "reference": f"{len(data.ref)} {data.ref_name} codes", "queries": f"{len(data.query)} {data.query_name} codes",
        "reconstruction": recon, "methods": rows,
        "trustworthiness": f"scikit-learn, {TRUST_NEIGHBOURS} neighbours (fewer under {2 * TRUST_NEIGHBOURS + 1} "
                           f"points), on at most {TRUST_MAX_POINTS} query points (seeded subset), pixels vs 2-D codes",
        "history": history, "layerwise": est.pretraining_, "train_seconds": round(train_seconds, 1), "eval_seconds": round(eval_seconds, 1),
        "config": cfg, "seed": args.seed, "quick": args.quick, "device": str(args.device), "machine": machine,
    }
    save_json(run_dir / "metrics.json", results)
    banners = (["SYNTHETIC DATA: the images were generated by replearn, not taken with a microscope"] if data.synthetic
               else []) + (["QUICK RUN on small subsets: numbers are not representative"] if args.quick else [])
    denoising = f"{denoising_note(cfg).lstrip('; ')}, " if cfg["noise"] else ""
    report = Report(f"Autoencoder to {est.code_dim_}-D: {data.title}", banner=". ".join(banners))
    report.text(f"Data: {data.source}. Training: {data.train_note}, {cfg['epochs']} epochs, batch {cfg['batch_size']}, "
                f"{cfg['optimizer']} lr {cfg['lr']} ({cfg['schedule'] or 'constant'}), loss {cfg['loss']}, {denoising}"
                f"bf16 {cfg['bf16']}, seed {args.seed}; {train_seconds:.0f} s on {machine}.")
    report.bullets([f"{data.held_out_name} reconstruction MSE {recon['mse']:.4f}, BCE {recon['bce']:.4f}",
                    f"k-NN: {data.ref_name} codes as reference, {data.query_name} codes as queries",
                    results["trustworthiness"]])
    if est.pretraining_:
        report.text(f"Greedy layer-wise pretraining before the {cfg['epochs']} end-to-end epochs, "
                    f"{cfg['layerwise_epochs']} epoch(s) per stage (each stage a shallow autoencoder on the frozen "
                    "output of the stages below):")
        report.bullets([f"stage {r['stage']}: {', '.join(r['layers'])} "
                        f"({'x'.join(map(str, r['input_shape']))} -> {'x'.join(map(str, r['output_shape']))}), "
                        f"{r['loss']} {r['epoch_losses'][0]:.4f} -> {r['epoch_losses'][-1]:.4f}, {r['seconds']:.0f} s"
                        for r in est.pretraining_])
    report.table(headers, body)
    report.bullets([f"{r['method']}: {r['note']}" for r in rows])
    for path, caption in [(fig_codes, "2-D codes by class"), (fig_rec, "originals (top) and reconstructions"),
                          (fig_curves, "reconstruction loss per epoch"), (fig_compare, "the same images, four 2-D embeddings")]:
        if path is not None:
            report.figure(path, caption)
    report.code(f"replearn autoencoder config: {cfg}")
    report.write(run_dir)

    print(table)
    print(f"{data.held_out_name} reconstruction: MSE {recon['mse']:.4f}, BCE {recon['bce']:.4f}; "
          f"training {train_seconds:.0f} s ({cfg['epochs']} epochs)")
    for r in rows[1:]:
        print(f"  {r['method']}: {r['note']}")
    print(f"wrote {weights} and {run_dir / 'report.html'}")
    return 0
