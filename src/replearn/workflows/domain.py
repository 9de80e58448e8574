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

import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import replearn
from replearn.errors import ReplearnError
from replearn.evaluate import embed_2d
from replearn.utils.runtime import machine_summary, resolve_device
from replearn.workflows import domain_report
from replearn.workflows._domain_data import (K_NEIGHBOURS, N_SYNTHETIC, PRESETS, QUICK_SYNTHETIC, describe,
                                             load_inputs, trained_on)
from replearn.workflows._domain_measure import measure
from replearn.workflows._run import Result, RunOptions, option

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
METHOD_TITLES = {"pca": "PCA", "tsne": "t-SNE", "isomap": "ISOMAP"}


# ----------------------------------------------------------------------------- Setup
@dataclass
class Config(RunOptions):
    """The saved model, the two domains' crops, and how to view and measure them."""

    model: str = option(None, "run folder (its model.safetensors) or a .safetensors file: autoencoder or classifier",
                        metavar="RUN", required=True)
    real: str = option(None, "real crops: an .npz (e.g. from replearn crops; labels optional) or a folder of PNG/TIFF",
                       metavar="NPZ", required=True)
    synthetic: str | None = option(None, "labelled source crops (data.npz format); default: built-in SYNTHETIC crops",
                                   metavar="NPZ")
    preset: str | None = option(None, "built-in synthetic preset (default: the model's training preset, else sim)",
                                choices=PRESETS)
    n_synthetic: int = option(N_SYNTHETIC, "built-in synthetic crops to encode", metavar="N")
    method: str = option("tsne", "2-D view of the codes (default: tsne; pca/isomap are fitted on the synthetic codes)",
                         choices=tuple(METHOD_TITLES))
    layer: str = option("features", "classifier networks: the layer to read")
    k: int = option(K_NEIGHBOURS, "neighbours of the k-NN guess", metavar="K")

    def check(self) -> None:
        """Everything a user can get wrong, before the run folder is made (the recipe reads the inputs again)."""
        if not self.model or not self.real:
            raise ReplearnError("--model and --real are required: the saved model and the real crops")
        if self.k < 1:
            raise ReplearnError(f"--k {self.k}: expected a positive number of neighbours")
        resolve_device(self.device)
        load_inputs(self)


QUICK = {"n_synthetic": QUICK_SYNTHETIC}
"""What ``--quick`` changes: 150 synthetic crops (at most) and a seeded subset of 120 real crops."""


# ----------------------------------------------------------------------------- Run
def run(cfg: Config, out: Path | None = None) -> Result:
    """Load, encode, measure and view both domains; the codes, figures, report and headline numbers."""
    started = time.perf_counter()
    device = resolve_device(cfg.device)
    inputs = load_inputs(cfg)
    enc, real, source = inputs.encoder, inputs.real, inputs.source
    print(f"model: {enc.path}: {enc.description}; trained on {trained_on(enc.meta)}")
    print(f"source: {len(source.images)} SYNTHETIC crops with stages from {source.source}")
    target = "SYNTHETIC (so marked in the file)" if real.synthetic else "REAL"
    print(f"target: {len(real.images)} {target} crops from {real.source} ({int((real.labels >= 0).sum())} labelled), "
          f"{real.images.shape[1]}x{real.images.shape[2]} px")

    # Encode both domains with the model, then measure how far apart they are.
    s_codes, r_codes = enc.codes(source.images, device), enc.codes(real.images, device)
    metrics, arrays = measure(enc, source, real, s_codes, r_codes, cfg.k, cfg.seed, device)

    # One joint 2-D view of the codes (the codes themselves when they are 2-D).
    if s_codes.shape[1] == 2:
        s2, r2, how = s_codes, r_codes, "the 2-D codes themselves"
    else:
        s2, r2 = embed_2d(cfg.method, s_codes, r_codes, seed=cfg.seed)
        how = f"{METHOD_TITLES[cfg.method]} of the {s_codes.shape[1]}-D codes"
    metrics["embedding"] = {"method": cfg.method if s_codes.shape[1] != 2 else "codes", "how": how}

    metrics.update({
        "synthetic_vs_real": "source = SYNTHETIC crops with known stages; target = REAL cells without labels; "
                             "stages for real cells are a model's guess",
        **describe(inputs),  # "data" (both domains) and "model"
        "code_dim": int(s_codes.shape[1]), "class_names": list(source.class_names), "seed": int(cfg.seed),
        "quick": bool(cfg.quick), "k": int(cfg.k),
        "environment": {"replearn": replearn.__version__, "machine": machine_summary(), "device": str(device),
                        "python": platform.python_version()},
        "seconds": round(time.perf_counter() - started, 1),
    })

    # The codes (to recompute any number), the figures and the report.
    result = Result(metrics=metrics, summary=domain_report.summary(metrics, out / "report.html" if out else None))
    result.add("codes.npz", lambda path: domain_report.save_codes(path, {
        "synthetic_codes": s_codes, "synthetic_labels": source.labels, "real_codes": r_codes,
        "real_knn_guess": arrays["knn_guess"],
        "real_classifier_guess": arrays.get("cnn_guess", np.zeros(0, np.int64))}))
    domain_report.add_outputs(result, cfg, enc.description, source, real, s_codes, r_codes, s2, r2, arrays)
    return result
