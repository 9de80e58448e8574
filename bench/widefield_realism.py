"""Realism of the ``widefield`` preset: domain-classifier AUC against the real crops of the shared field.

The real crops are those ``replearn crops`` cuts from the shared widefield field
(``aureus-maicrobe``: segmented on phase, 244 cells, 40x40, each crop stretched to 0-255).
For each seed ``s`` it trains, on SYNTHETIC crops of the preset (seed ``s``), the models
whose codes ``replearn domain`` reads -- the assignment's default CNN (small_cnn d4 w16 p0.25
with its augmentation, the default ``[cnn] epochs`` (30 when the stored results were taken), on
300 labelled crops) and a 16-D autoencoder (the lecture's blocks, 10 epochs on 1,500 unlabelled
crops) -- and then measures, as ``replearn domain`` does
(:func:`replearn.evaluate.domain_shift.domain_classifier_score`, seed ``s``), how well a
logistic regression tells the real crops from 600 fresh SYNTHETIC crops (seed ``1000 + s``):
on the CNN's ``features`` codes, on the autoencoder's codes, on raw pixels (PCA-50) and on the 13 simple
statistics of each crop together (:func:`replearn.workflows._domain_stats.statistics_classifier`).
0.5 = cannot tell them apart. It also writes the per-statistic table of both sets
(:mod:`replearn.workflows._domain_stats`), and, with the stages of the real cells (``--labels``, default the
engineer's annotation in ``bench/labels/``), the synthetic-trained CNN's accuracy and per-stage recall on the real
cells: how well a model that never saw a real cell reads their stages.

    python bench/widefield_realism.py --seeds 0 1                    # the preset now
    python bench/widefield_realism.py --seeds 0 1 --before           # the preset before this fit
    python bench/widefield_realism.py --params '{"psf_sigma": 1.5}'  # a variant

Writes ``bench/results/widefield-realism-<stamp>.json`` (``--out`` to change). Takes about a
minute per seed on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.metrics import recall_score

from assignment_realistic import field_channels
from replearn.data import seeded_subset, synthetic_aureus, to_tensor
from replearn.data.cell_augment import CellAugment
from replearn.data.crops import process_field, read_stages
from replearn.encoders import AutoEncoderEmbedding, CNNClassifier
from replearn.evaluate.domain_shift import domain_classifier_score
from replearn.models import LECTURE_AE_BLOCKS
from replearn.utils.atomic import atomic_path
from replearn.workflows._assignment_grid import DEFAULTS
from replearn.workflows._domain_stats import (
    crop_statistics,
    per_crop_statistics,
    statistics_classifier,
    statistics_table,
)

ROOT = Path(__file__).resolve().parents[1]
BEFORE = {"diameter": [14.0, 21.0], "ellipticity": 0.25, "centre_jitter": 1.5, "centre_offset": 0.0, "ring_width": [1.3, 1.8],
          "ring_unevenness": 0.15, "interior": [0.7, 1.0], "flat_fraction": 0.3, "flat_brightness": [1.2, 1.8],
          "septum_progress": [0.08, 0.95], "septum_brightness": [[1.0, 2.5], [1.5, 3.0]], "neighbours": 2.0,
          "glow": 0.25, "glow_length": 5.0, "background": [0.06, 0.15], "gradient": 0.12, "brightness_sd": 0.25,
          "psf_sigma": 1.2, "photons": 1000.0, "gain": 95.0, "stretch": None}
"""Every parameter of the ``widefield`` preset before it was fitted with this script (commit e5c08c6)."""
N_TRAIN, N_AE, N_SOURCE, PIXEL_PCA = 300, 1500, 600, 50
STAGES = ROOT / "bench" / "labels" / "aureus-maicrobe-stages.csv"


def real_crops(cells: Path | None) -> np.ndarray:
    """The real crops (N, 40, 40) uint8: from ``cells`` (an npz of ``replearn crops``) or cut from the shared field."""
    if cells is not None:
        with np.load(cells, allow_pickle=False) as z:
            return np.concatenate([z[k] for k in ("labelled", "unlabelled") if k in z.files and z[k].size])
    channels = field_channels()
    return process_field(channels["membrane"], channels["phase"], channels["dna"]).crops


def real_stages(path: Path, n: int) -> np.ndarray:
    """The stage of each real crop (in cell-id order, ids 1..n) from a ``cell id, stage`` CSV covering every cell."""
    stages = read_stages(path)
    if sorted(stages) != list(range(1, n + 1)):
        raise SystemExit(f"{path}: names {len(stages)} cells; the real crops are cells 1..{n}")
    return np.array([stages[i] for i in range(1, n + 1)])


def params(arg: str | None, before: bool) -> dict:
    """Preset overrides (JSON lists become tuples)."""
    raw = dict(BEFORE) if before else {}
    raw.update(json.loads(arg) if arg else {})
    tup = lambda v: tuple(tup(x) for x in v) if isinstance(v, list) else v  # noqa: E731
    return {k: tup(v) for k, v in raw.items()}


def features(clf: CNNClassifier, images: np.ndarray) -> np.ndarray:
    """The CNN's ``features`` codes (N, D) of images (N, H, W), as ``replearn domain`` reads them."""
    model = clf.model_.to("cpu").eval()
    with torch.no_grad():
        return torch.cat([model.forward_features(b).reshape(len(b), -1)
                          for b in to_tensor(images).split(256)]).numpy()


def one_seed(real: np.ndarray, kw: dict, seed: int, labels: np.ndarray | None = None) -> dict:
    """Train both models on the preset with ``seed``; the three AUCs against ``real``."""
    t = time.perf_counter()
    train = synthetic_aureus(N_TRAIN, N_AE, seed=seed, preset="widefield", **kw)
    source = synthetic_aureus(N_SOURCE, 0, seed=1000 + seed, preset="widefield", **kw).labelled
    c = DEFAULTS["cnn"]
    cnn = CNNClassifier(network_params={"depth": 4, "width": 16, "dropout": 0.25, "dense": c["dense"]},
                        epochs=c["epochs"], batch_size=c["batch_size"], lr=c["lr"], weight_decay=c["weight_decay"],
                        schedule=c["schedule"], channels_last=True, augment=CellAugment(**DEFAULTS["augment"]),
                        seed=seed, device="cpu").fit(train.labelled, train.labels)
    ae = AutoEncoderEmbedding(code_dim=16, blocks=[tuple(b) for b in LECTURE_AE_BLOCKS], epochs=10, batch_size=128,
                              lr=0.003, loss="bce", seed=seed, device="cpu").fit(train.unlabelled)
    sp, rp = source.reshape(len(source), -1) / 255.0, real.reshape(len(real), -1) / 255.0
    n = min(len(sp), len(rp))
    pooled = np.concatenate([sp[seeded_subset(len(sp), n, seed)], rp[seeded_subset(len(rp), n, seed + 1)]])
    pca = PCA(n_components=PIXEL_PCA, random_state=seed).fit(pooled)
    auc = {"cnn_features": domain_classifier_score(features(cnn, source), features(cnn, real), seed=seed),
           "autoencoder_codes": domain_classifier_score(ae.transform(source), ae.transform(real), seed=seed),
           "raw_pixels_pca50": domain_classifier_score(pca.transform(sp), pca.transform(rp), seed=seed),
           "image_statistics": statistics_classifier(per_crop_statistics(source), per_crop_statistics(real), seed=seed)}
    out = {k: {"auc": round(v["auc"], 4), "auc_std": round(v["auc_std"], 4)} for k, v in auc.items()}
    acc = float(np.mean(cnn.predict(source) == synthetic_aureus(N_SOURCE, 0, seed=1000 + seed, preset="widefield",
                                                                **kw).labels))
    predicted = cnn.predict(real)
    guess = np.bincount(predicted, minlength=3) / len(real)
    on_real = {}
    if labels is not None:
        on_real = {"cnn_real_accuracy": round(float(np.mean(predicted == labels)), 4),
                   "cnn_real_recall": np.round(recall_score(labels, predicted, average=None, labels=[0, 1, 2],
                                                            zero_division=0), 4).tolist()}
    print(f"seed {seed}: AUC " + ", ".join(f"{k} {v['auc']:.3f}" for k, v in out.items())
          + f"; CNN on fresh synthetic {acc:.3f}; guesses on real {np.round(guess, 2).tolist()}"
          + (f"; on the annotated real cells {on_real['cnn_real_accuracy']:.3f}, recall {on_real['cnn_real_recall']}"
             if on_real else "") + f" ({time.perf_counter() - t:.0f} s)", flush=True)
    return {"seed": seed, "auc": out, "cnn_synthetic_accuracy": round(acc, 4),
            "cnn_real_guess_fractions": np.round(guess, 4).tolist(), **on_real,
            "seconds": round(time.perf_counter() - t, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cells", type=Path, help="crops from replearn crops (.npz); default: cut from the shared field")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--before", action="store_true", help="the preset as it was before this fit")
    ap.add_argument("--params", help="JSON overrides of the preset's parameters")
    ap.add_argument("--labels", type=Path, default=STAGES,
                    help="'cell id, stage' CSV of every real cell (default: the engineer's annotation); 'none' skips it")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    real = real_crops(args.cells)
    kw = params(args.params, args.before)
    labels = None if str(args.labels) == "none" else real_stages(args.labels, len(real))
    print(f"{len(real)} real crops; widefield preset overrides: {kw or 'none'}", flush=True)
    stats_real = crop_statistics(real)
    stats_syn = crop_statistics(synthetic_aureus(N_SOURCE, 0, seed=1000, preset="widefield", **kw).labelled)
    print(statistics_table(stats_syn, stats_real, ("SYNTHETIC widefield", "REAL")))
    runs = [one_seed(real, kw, s, labels) for s in args.seeds]
    mean = {k: round(float(np.mean([r["auc"][k]["auc"] for r in runs])), 4) for k in runs[0]["auc"]}
    print("mean AUC over seeds: " + ", ".join(f"{k} {v:.3f}" for k, v in mean.items()))
    if labels is not None:
        mean["cnn_real_accuracy"] = round(float(np.mean([r["cnn_real_accuracy"] for r in runs])), 4)
        print(f"mean accuracy on the annotated real cells: {mean['cnn_real_accuracy']:.3f}")
    result = {"what": "domain-classifier AUC, SYNTHETIC widefield crops vs REAL crops of the shared field",
              "overrides": {k: v for k, v in kw.items()}, "n_real": int(len(real)), "n_synthetic": N_SOURCE,
              "real_labels": None if labels is None else str(args.labels),
              "seeds": args.seeds, "runs": runs, "mean_auc": mean,
              "statistics": {"synthetic": stats_syn, "real": stats_real},
              "machine": f"{platform.machine()} {platform.processor()}, torch {torch.__version__}, 1 thread",
              "note": "taken under load (2 cores shared)"}
    out = args.out or ROOT / "bench" / "results" / f"widefield-realism-{time.strftime('%Y%m%d-%H%M%S')}.json"
    with atomic_path(out) as tmp:
        Path(tmp).write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
