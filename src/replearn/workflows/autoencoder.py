"""Lecture exercise 2: dimension reduction with a convolutional autoencoder.

Trains the lecture's autoencoder (conv 32 | 32, 16 | 16, 8 with pooling,
Dense(2) ``features``, Dense(8*7*7) and the convolutions in reverse with
upsampling, a 1-filter sigmoid output) to reconstruct MNIST, then measures how
good its 2-D codes are: the test-set scatter coloured by class, originals next
to reconstructions, test reconstruction error (MSE, BCE), 1-NN/5-NN accuracy of
the codes (train codes as reference, test codes as queries) and scikit-learn's
trustworthiness. ``--objective umap|tsne|recon+umap|recon+tsne`` trains the codes to keep the images' neighbourhoods
instead. ``--compare`` embeds the same images with PCA, t-SNE and ISOMAP and scores them the same way. Writes:
``model.safetensors`` (+ ``model.json``), ``metrics.json``, ``config.json``, ``report.md``/``report.html``,
``checkpoint.pt`` (``--resume``), ``autoencoder_codes.png``, ``autoencoder_reconstructions.png``, ``autoencoder_curves.png``,
``reconstructions/*_original.png``/``*_restored.png`` and, with ``--compare``,
``autoencoder_compare.png``. See docs/autoencoder.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from replearn.evaluate import reconstruction_errors
from replearn.utils.runtime import machine_summary
from replearn.workflows import autoencoder_report
from replearn.workflows._autoencoder_measure import TRUST_NOTE, compare_methods, embedding_metrics, row
from replearn.workflows._autoencoder_umap import OBJECTIVES, check_objective, method_name, objective_note
from replearn.workflows._autoencoder_setup import (QUICK_EVAL, QUICK_TRAIN, check_config, estimator,  # noqa: F401
                                                   parse_blocks, parse_widths, prepare_data, recipe)
from replearn.train import BF16_SETTINGS
from replearn.workflows._run import MnistRunOptions, Result, option

COMMAND = "autoencoder"
HELP = "lecture exercise 2: autoencoder to 2-D codes; scatter, reconstructions, k-NN, trustworthiness"
EXAMPLES = """\
examples:
  replearn autoencoder                          # MNIST, the default recipe, about 11 minutes on 2 cores
  replearn autoencoder --compare                # + PCA, t-SNE and ISOMAP on the same images
  replearn autoencoder --objective recon+tsne --compare  # 2-D codes that keep neighbourhoods, with a decoder
                                                # (5-NN 0.96, trustworthiness 0.95 on MNIST; about 7 minutes)
  replearn autoencoder --objective umap --compare   # Parametric UMAP
  replearn autoencoder --dataset fashion --epochs 20
  replearn autoencoder --dataset data.npz       # the assignment's crops: trained on 'unlabelled'
  replearn autoencoder --loss mse --blocks 32/64,32/32,16 --code-dim 2
  replearn autoencoder --noise 0.3              # denoising: Gaussian noise on the inputs, clean targets
  replearn autoencoder --layerwise 3            # greedy layer-wise pretraining, 3 epochs per encoder stage
  replearn autoencoder --config ae.toml         # any key of config.json, as TOML
  replearn autoencoder --quick                  # small subsets, 2 epochs: under a minute
  replearn autoencoder --out runs/ae --resume   # continue an interrupted run from its checkpoints
"""
CONFIG_FILE = DDP = RESUMABLE = True


# ----------------------------------------------------------------------------- Setup
@dataclass
class Config(MnistRunOptions):
    """The default recipe: the lecture's architecture (conv_autoencoder's defaults); epochs and peak learning rate
    from a sweep on full MNIST (docs/autoencoder.md); 40 epochs, the lecture's suggestion, fit the course's budget."""

    dataset: str = option("mnist", "'mnist', 'fashion' or a data.npz (labelled, labels, unlabelled)")
    objective: str = option("recon", "what trains the codes: reconstruction, Parametric UMAP's neighbourhood loss (decoder "
                            "fitted after), both, a contrastive t-SNE loss, or it and reconstruction",
                            choices=OBJECTIVES)
    model: str = option(None, "registered autoencoder (default: conv_autoencoder; umap_autoencoder, Parametric UMAP's MLP, "
                        "for the neighbourhood objectives)", parse=str)
    code_dim: int = option(2, "size of the code")
    blocks: list = option([[32], [32, 16], [16, 8]], "encoder conv widths: blocks split by '/', widths by ',' "
                          "(default: 32/32,16/16,8, the lecture's); the decoder mirrors them",
                          metavar="W/W,W/...", parse=parse_blocks)
    hidden: list = option([], "dense layers (ReLU, BatchNorm) between the convolutions and the code, e.g. 128; the "
                          "decoder mirrors them (default: none, the lecture's network)", metavar="W,W", parse=parse_widths)
    epochs: int = option(None, "training epochs (default: 40; UMAP epochs for the neighbourhood objectives)", parse=int)
    batch_size: int = option(None, "images per step (default: 128; 1000 graph edges, neighbourhood objectives)", parse=int)
    lr: float = option(None, "peak learning rate (default: 0.01)", parse=float)
    optimizer: str = option("adam", "optimiser", choices=("adam", "adamw", "sgd"))
    schedule: str = option("onecycle", "learning-rate schedule", choices=("onecycle", "cosine", "none"))
    weight_decay: float = option(0.0, "L2 penalty (decoupled for AdamW)")
    loss: str = option("bce", "reconstruction loss", choices=("bce", "mse"))
    noise: float = option(0.0, "denoising autoencoder: corrupt the training inputs (targets stay clean); the noise's "
                          "standard deviation, or the fraction of pixels dropped with --noise-kind dropout "
                          "(default: 0, a plain autoencoder)", metavar="LEVEL")
    noise_kind: str = option("gaussian", "input corruption for --noise: Gaussian noise clipped to [0, 1], or pixels "
                             "set to 0", choices=("gaussian", "dropout"))
    layerwise_epochs: int = option(0, "greedy layer-wise pretraining: train the encoder one stage (pooling block) at a "
                                   "time, each as a shallow autoencoder on the frozen output of the stages below, "
                                   "EPOCHS per stage, then the whole autoencoder end to end (default: 0, off)",
                                   flag="--layerwise", metavar="EPOCHS")
    bf16: str = option(None, "bfloat16 autocast while training: 'auto', 'on' or 'off' (default: on; off for the "
                       "neighbourhood objectives: 2-D codes need float32's resolution)", choices=BF16_SETTINGS)
    channels_last: bool = option(True, "channels-last memory format while training")
    include_labelled: bool = option(False, "npz data: also train on the labelled images (off: trained on 'unlabelled', "
                                    "the labelled ones kept for validation, as the lecture does)")
    # ISOMAP's N x N float64 geodesic distances: 10,000 reference points ~1.1 GB more, 5,000 ~0.3 GB (budget 1.5 GB)
    compare_ref: int = option(5000, "t-SNE/ISOMAP reference points, a seeded subset", metavar="N")
    compare_queries: int = option(5000, "t-SNE/ISOMAP query points, a seeded subset", metavar="M")
    compare: bool = option(False, "also embed with PCA, t-SNE and ISOMAP and compare")

    def check(self) -> None:
        check_objective(self)  # and fills the objective's defaults
        check_config(self)  # numbers, widths, noise, the data set and the network, before any folder is made


QUICK: dict[str, Any] = {"epochs": 2, "compare_ref": 600, "compare_queries": 300}
"""--quick: the same code path on small subsets (QUICK_TRAIN / QUICK_EVAL images)."""


# ----------------------------------------------------------------------------- Run
def run(cfg: Config, out: Path | None = None, resume: bool = False) -> Result:
    """Train (checkpoints in ``out``; ``resume`` continues from them), evaluate, compare (``cfg.compare``)."""
    # Prepare the data: MNIST train/test, or an npz's unlabelled crops with the labelled ones held out.
    data = prepare_data(cfg)
    print(data.line())

    # Build and train the model.
    est = estimator(cfg, validation_data=data.held_out)
    start = time.perf_counter()
    est.fit(data.train, checkpoint_dir=out, resume=resume)
    train_seconds = time.perf_counter() - start

    # Evaluate: reconstruction error of the held-out images, k-NN and trustworthiness of the codes.
    start = time.perf_counter()
    held_codes = est.transform(data.held_out)
    restored = est.reconstruct(data.held_out)
    originals = data.held_out.astype(np.float32) / (255.0 if data.held_out.dtype == np.uint8 else 1.0)
    recon = reconstruction_errors(originals, restored)
    ref_codes = est.transform(data.ref)
    query_codes = held_codes if data.query is data.held_out else est.transform(data.query)
    ae_metrics = embedding_metrics(ref_codes, data.ref_labels, query_codes, data.query_labels, data.query, cfg.seed)
    rows = [row(method_name(cfg), len(data.ref), len(data.query), ae_metrics, train_seconds,
                autoencoder_report.training_note(cfg, data.train_note) + objective_note(cfg, est))]
    panels = None
    if cfg.compare:
        more, panels = compare_methods(data, est, cfg)
        rows += more
    eval_seconds = time.perf_counter() - start

    # Save the weights; the metrics; the figures, pairs and report.
    result = Result(synthetic=data.synthetic, metrics={
        **data.describe(), "reconstruction": recon, "methods": rows, "trustworthiness": TRUST_NOTE,
        "history": est.history_, "layerwise": est.pretraining_, "train_seconds": round(train_seconds, 1),
        "eval_seconds": round(eval_seconds, 1), "config": recipe(cfg), "seed": cfg.seed, "quick": cfg.quick,
        "device": str(cfg.device), "machine": machine_summary()})
    result.weights("model.safetensors", est.model_, {
        "workflow": COMMAND, "data": data.source, "input_shape": list(est.input_shape_), "code_dim": est.code_dim_,
        "pixels": "uint8 / 255 (float images in [0, 1] kept)", "class_names": data.class_names,
        "config": recipe(cfg), "seed": cfg.seed, "reconstruction": recon, "knn5": ae_metrics["knn5"],
        "synthetic": data.synthetic})
    autoencoder_report.add_outputs(result, cfg, data, est, held_codes, originals, restored, panels, out)
    return result
