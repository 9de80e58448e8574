"""A quick screen of one-change variants of the assignment's supervised CNN rows on the stand-ins.

Each variant changes one setting of the default grid's ``cnn d4 w16 p0.25 +aug`` row (``--row plain``) or of its
``+sim2real widefield`` twin (``--row sim2real``), or of the opt-in semi-supervised row (``--row semisup``, on the
unlabelled crops plus generated ones, as the grid gives it): a ``[cnn]`` key, a ``CNNClassifier`` parameter such as label
smoothing, or ``_members`` networks of different seeds averaged. It trains on the outer folds of the protocol only
(no inner splits, no other rows), predicting with test-time augmentation: a few seconds per fit instead of the whole
``replearn assignment``. Cases and seeds as in ``assignment_realistic.py``. The variants worth keeping then go
through the whole protocol with ``assignment_realistic.py --config``.

    python bench/cnn_screen.py --row plain --variants base bs16 ep150 --cases widefield-169 fashion-169 --seeds 0 1

Writes ``{variant: {"<case>-s<seed>": [accuracy of each fold]}}`` to ``--out`` after every variant.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from assignment_realistic import CASES, ROOT, case_data
from replearn.data.augment import random_hflip, random_shift
from replearn.data.cell_augment import CellAugment
from replearn.data.synthetic import PRESETS
from replearn.data.tensors import to_tensor
from replearn.encoders import cnn_classifier
from replearn.evaluate.tta import tta_average
from replearn.models import small_cnn
from replearn.utils.atomic import write_text
from replearn.workflows import _assignment_grid as grid
from replearn.workflows import _assignment_models as models

# name -> changes: a [cnn] key of the grid, or "_<param>" for a CNNClassifier parameter outside the grid
VARIANTS = {
    "base": {},
    "w32": {"width": [32]},
    "wd1e-3": {"weight_decay": 1e-3},
    "ls0.1": {"_label_smoothing": 0.1},
    "p0.5": {"dropout": [0.5]},
    "ep150": {"epochs": 150},
    "ep180": {"epochs": 180},
    "lr1e-3": {"lr": 1e-3},
    "bs16": {"batch_size": 16},
    "bs32": {"batch_size": 32},
    "adamw1e-2": {"optimizer": "adamw", "weight_decay": 1e-2},
    "cosine": {"schedule": "cosine"},
    "pn4000e5": {"pretrain_n": 4000, "pretrain_epochs": 5},  # only changes the sim2real row
    "pn8000e5": {"pretrain_n": 8000, "pretrain_epochs": 5},
    "ens2": {"_members": 2},  # average the TTA probabilities of 2 networks trained with different seeds
    "ens3": {"_members": 3},
    "shift2": {"_shift": 2},  # then shift every crop by up to 2 px (zero fill) after the cell augmentation
    "shift4": {"_shift": 4},
    "dconv": {"_convs": 2},  # two conv-ReLU-BN layers per block instead of one (a layer spec)
    "dconv34": {"_convs": 2, "_convs_from": 2},  # two in the blocks after the second (10x10 and 5x5 maps) only
    "dconv12": {"_convs": 2, "_convs_until": 2},  # two in the first two blocks (40x40 and 20x20 maps) only
    "dconv-ep60": {"_convs": 2, "epochs": 60},  # two per block, two thirds of the epochs (about the base's time)
    "rot45": {"_warp": (45.0, 0.0)},  # then rotate by an angle in [-45, 45] degrees (bilinear, mirrored border)
    "zoom10": {"_warp": (0.0, 0.1)},  # then scale by a factor in [0.9, 1.1] about the centre (bilinear)
    "rot45zoom10": {"_warp": (45.0, 0.1)},
    "upright": {"_upright": True},  # left-right mirrors only, in training and in TTA (images with an up and a down)
    "mixup1": {"_mixup": 1.0},  # train on mixup pairs (Zhang et al. 2018), mixing weight ~ Beta(1, 1)
    "mixup0.4": {"_mixup": 0.4},  # ... ~ Beta(0.4, 0.4): mostly near one of the two images
    # the sim-to-real row pretrained on a changed widefield preset (the data of a widefield case stays the preset's):
    # more stage-0 cells with a bright flattened side, brighter septa
    # (session 21's lead on the annotated real cells; since session 22 the preset "widefield-septa")
    "wf-walls-septa": {"_preset": {k: getattr(PRESETS["widefield-septa"], k)
                                   for k in ("flat_fraction", "flat_brightness", "septum_brightness")}},
}
# row -> (pretrain preset, method): the grid's two supervised rows, the plain CNN and the sim-to-real one (pretrained
# on generated widefield crops), and the opt-in semi-supervised row (the unlabelled crops plus generated ones)
ROWS = {"plain": ("none", "cnn"), "sim2real": ("widefield", "cnn"), "semisup": ("none", "semisup")}


def row_point(config: dict, row: str) -> grid.CnnPoint:
    """The grid point of ``row`` (a key of ``ROWS``) in a completed grid ``config``."""
    pretrain, method = ROWS[row]
    config["cnn"]["pretrain"], config["cnn"]["method"] = [pretrain], [method]
    return next(p for p in grid.cnn_points(config) if p.pretrain == pretrain and p.method == method)


def _spec(point: grid.CnnPoint, config: dict, n_classes: int, convs: int, convs_from: int = 0,
          convs_until: int = 99) -> list[str]:
    """The grid point's small_cnn as a layer spec with each conv-ReLU-BN layer repeated ``convs`` times in the blocks
    ``convs_from`` to ``convs_until`` - 1 (0-based)."""
    net = small_cnn(n_classes=n_classes, depth=point.depth, width=point.width, dropout=point.dropout,
                    dense=config["cnn"]["dense"])
    spec, block = [], 0
    for i, layer in enumerate(net.spec):
        if layer.startswith("conv "):
            spec += net.spec[i:i + 3] * (convs - 1 if convs_from <= block < convs_until else 0)
        elif layer == "maxpool":
            block += 1
        spec.append(layer)
    return spec


def case_protocol(case: str, seed: int, config: dict | None = None) -> tuple:
    """The data of ``case`` (seed ``seed``) and its protocol's splits under the grid ``config`` (default grid)."""
    data = case_data(case, seed)
    return data, models.make_protocol(data, config or grid.complete({}, None, False), seed)


def mixup(alpha: float):
    """A training objective on mixup pairs: each batch mixed with a shuffled copy of itself, weight ~ Beta(alpha,
    alpha) per batch, the loss mixed the same way (Zhang et al. 2018, "mixup: Beyond Empirical Risk Minimization")."""

    def objective(model, x, y, generator):
        lam = float(np.random.default_rng(int(torch.randint(0, 2**31, (1,), generator=generator))).beta(alpha, alpha))
        perm = torch.randperm(len(x), generator=generator).to(x.device)
        logits = model(lam * x + (1.0 - lam) * x[perm]).float()
        loss = lam * F.cross_entropy(logits, y) + (1.0 - lam) * F.cross_entropy(logits, y[perm])
        return loss, logits

    return objective


def warp(degrees: float, zoom: float):
    """Rotate each image by an angle in [-degrees, degrees] and scale it by a factor in [1 - zoom, 1 + zoom] about
    its centre (one bilinear resampling, the border mirrored): with the 8 symmetries before it, every angle."""

    def apply(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n = len(x)
        angle = torch.deg2rad((2 * torch.rand(n, generator=generator) - 1) * degrees)
        scale = 1 + (2 * torch.rand(n, generator=generator) - 1) * zoom
        cos, sin, zero = torch.cos(angle) / scale, torch.sin(angle) / scale, torch.zeros(n)
        theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
        grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    return apply


def screen(variant: str, case: str, seed: int, row: str = "plain") -> tuple[list[float], list[np.ndarray]]:
    """Outer-fold accuracies of CNN row ``row`` with ``variant`` on ``case`` (data and folds of ``seed``), and each
    fold's predicted probabilities (TTA, averaged over the members)."""
    config = grid.complete({}, None, False)
    extra = {}
    for key, value in VARIANTS[variant].items():
        if key.startswith("_"):
            extra[key[1:]] = value
        else:
            config["cnn"][key] = value
    data, protocol = case_protocol(case, seed, config)
    point = row_point(config, row)
    x, y = to_tensor(data.labelled), data.labels
    augment = CellAugment(**config["augment"])
    unlabelled = to_tensor(models.pretraining_crops(data, config, seed)[0]) if point.method == "semisup" else None
    members, shift, convs = extra.pop("members", 1), extra.pop("shift", 0), extra.pop("convs", 1)
    convs_from, convs_until = extra.pop("convs_from", 0), extra.pop("convs_until", 99)
    engine_fit = cnn_classifier.fit
    widefield = PRESETS["widefield"]
    PRESETS["widefield"] = dataclasses.replace(widefield, **extra.pop("preset", {}))
    if extra.get("mixup"):  # every fit of CNNClassifier (the sim-to-real pretraining too) trains on mixup pairs
        objective = mixup(extra.pop("mixup"))
        cnn_classifier.fit = lambda *a, **kw: engine_fit(*a, objective=objective, **kw)
    if shift:
        cell_augment = augment

        def augment(x, generator):
            return random_shift(cell_augment(x, generator), generator, shift)
    if "warp" in extra:
        cell_augment, resample = augment, warp(*extra.pop("warp"))

        def augment(x, generator):
            return resample(cell_augment(x, generator), generator)
    tta = tta_average
    if extra.pop("upright", False):  # no turns, no up-down mirror: the intensity changes and a left-right mirror
        intensity = CellAugment(**{**config["augment"], "flips": False, "rot90": False})

        def augment(x, generator):
            return random_hflip(intensity(x, generator), generator)

        def tta(score, images):
            return (np.asarray(score(images), np.float64) + np.asarray(score(torch.flip(images, dims=(-1,))))) / 2
    if convs > 1:
        spec = _spec(point, config, data.n_classes, convs, convs_from, convs_until)
        point = dataclasses.replace(point, spec=tuple(spec))
    out, probas = [], []
    try:
        for r, (tr, va) in enumerate(protocol.splits):
            proba = 0.0
            for m in range(members):
                clf = models.grid_estimator(point, config, data.n_classes, seed + r + 1000 * m, "cpu", augment,
                                            unlabelled)
                clf.set_params(progress=False, **extra)
                clf.fit(x[tr], torch.from_numpy(y[tr]))
                proba = proba + tta(clf.predict_proba, x[va])
            out.append(float((proba.argmax(1) == y[va]).mean()))
            probas.append(proba / members)
    finally:  # the next variant trains with the engine's own loss and preset again, even after an error
        cnn_classifier.fit = engine_fit
        PRESETS["widefield"] = widefield
    return out, probas


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variants", nargs="+", default=["base", "bs32"], choices=sorted(VARIANTS))
    ap.add_argument("--cases", nargs="+", default=[c for c in CASES if c.endswith("-169")], choices=CASES)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--row", default="plain", choices=sorted(ROWS), help="which CNN row of the grid to screen")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--proba", action="store_true",
                    help="also write each fold's probabilities to <out>.proba.json (to score ensembles of rows)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / f"cnn-screen-{time.strftime('%Y%m%d-%H%M%S')}.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    results: dict[str, dict[str, list[float]]] = {}
    probas: dict[str, dict[str, list]] = {}
    for variant in args.variants:
        for case in args.cases:
            for seed in args.seeds:
                t = time.perf_counter()
                acc, proba = screen(variant, case, seed, args.row)
                results.setdefault(variant, {})[f"{case}-s{seed}"] = acc
                probas.setdefault(variant, {})[f"{case}-s{seed}"] = [np.round(p, 5).tolist() for p in proba]
                print(f"{variant} {case} seed {seed}: {np.mean(acc):.3f} {[round(a, 3) for a in acc]} "
                      f"{time.perf_counter() - t:.0f} s", flush=True)
        write_text(args.out, json.dumps(results, indent=1))
        if args.proba:
            write_text(args.out.removesuffix(".json") + ".proba.json", json.dumps(probas))
        print(f"== {variant}: mean over cases {np.mean([np.mean(a) for a in results[variant].values()]):.4f}",
              flush=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
