"""Which strong view suits Fashion-MNIST with few labels? Chosen on a validation split, never the test set.

The last 10,000 of the 60,000 Fashion-MNIST training images are held out as a validation set; each draw takes
``--labels`` images per class from the first 50,000 (the rest of those are the unlabelled pool). Every view of
``VIEWS`` trains the supervised CNN of ``fewlabels``' ``cnn_aug`` method on the same draws (``--method cnn_aug``)
or the semi-supervised method with that view as its strong view (``--method semisup``), and is scored on the
validation images. Writes ``bench/results/fewlabels-views-<method>-<stamp>.json`` (every draw, seconds, machine).

    python bench/fewlabels_views.py                                   # cnn_aug, 10 per class, 3 draws
    python bench/fewlabels_views.py --method semisup --views current,noelastic --draws 2 --steps 1200
    python bench/fewlabels_views.py --method semisup --views current --draws 5 --steps 1200 --neighbours 5
    python bench/fewlabels_views.py --views shift,squeeze --steps 2400                # session 23
    python bench/fewlabels_views.py --method semisup --network cnn13 --device cuda --views current --draws 2 \
        --steps 1200 --neighbours 5                                   # the published method's network size (a GPU)
    python bench/fewlabels_views.py --network cnn13 --bf16 --views squeeze --draws 2 --steps 2400   # session 24
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import accuracy_score

from replearn.data.augment import random_hflip
from replearn.data.digit_augment import DigitAugment
from replearn.encoders import CNNClassifier, SemiSupervisedClassifier
from replearn.evaluate.tta import d4_view
from replearn.train.semisup import fixmatch_views
from replearn.utils.atomic import write_text
from replearn.utils.runtime import machine_info
from replearn.workflows._fewlabels_data import FewLabelData, load
from replearn.workflows._fewlabels_methods import _network, cnn_epochs, repeated_epochs

HERE = Path(__file__).resolve().parent
N_VALIDATION = 10_000

# About the 13-layer CNN of the semi-supervised literature that Parametric UMAP trains (3 x 128, 3 x 256 filters,
# 512, 256, 128), in the project's layer spec: ReLU for leaky ReLU, "same" padding throughout, no weight
# normalisation; 3.1 M weights. For a lent GPU: on the 2-core VM one semi-supervised step takes about 10 s.
CNN13 = ["conv 128", "bn", "relu", "conv 128", "bn", "relu", "conv 128", "bn", "relu", "maxpool", "dropout 0.5",
         "conv 256", "bn", "relu", "conv 256", "bn", "relu", "conv 256", "bn", "relu", "maxpool", "dropout 0.5",
         "conv 512", "bn", "relu", "conv 256 k1", "bn", "relu", "conv 128 k1", "bn", "relu", "gap as features",
         "dense 10"]


def cnn13(divide: int = 1) -> list[str]:
    """CNN13 with every convolution's filters divided by ``divide`` (2: half, 4: a quarter of the width)."""
    def scaled(entry: str) -> str:
        kind, _, rest = entry.partition(" ")
        filters, _, options = rest.partition(" ")
        return " ".join(filter(None, (kind, str(int(filters) // divide), options))) if kind == "conv" else entry
    return [scaled(e) for e in CNN13]


def squeeze(strength: float = 1.0, p: float = 0.5):
    """A view after the description of Parametric UMAP's Fashion-MNIST augmentation (session 23's screen).

    Each part with probability ``p``: a zoom-out that changes the aspect ratio (the image stretched by 0-14 px
    per axis, then fitted back into its size), a rotation of up to 0.25 rad, a brightness (+-0.5) and contrast
    (0.5-1.75) change, a grey 8x8 cut-out; always a shift of up to 1.5 px and a left-right flip of half the images.
    ``strength`` scales the stretch, the rotation and the intensity change.
    """
    def view(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        b, _, h, w = x.shape

        def coin() -> torch.Tensor:
            return torch.rand(b, generator=g) < p

        grow_w = torch.randint(0, 8, (b,), generator=g).float() * 2 * strength
        grow_h = torch.randint(0, 8, (b,), generator=g).float() * 2 * strength
        fit = h / torch.maximum(h + grow_h, w + grow_w)
        zoom = coin()
        sy = torch.where(zoom, (h + grow_h) * fit / h, torch.ones(b))
        sx = torch.where(zoom, (w + grow_w) * fit / w, torch.ones(b))
        angle = (2 * torch.rand(b, generator=g) - 1) * 0.25 * strength
        angle = torch.where(coin(), angle, torch.zeros(b))
        mirror = torch.where(torch.rand(b, generator=g) < 0.5, -1.0, 1.0)
        shift = (2 * torch.rand(2, b, generator=g) - 1) * 1.5 * 2 / torch.tensor([[w], [h]])
        cos, sin = torch.cos(angle), torch.sin(angle)
        theta = torch.stack([torch.stack([cos / sx * mirror, -sin / sx, shift[0]], 1),
                             torch.stack([sin / sy * mirror, cos / sy, shift[1]], 1)], 1)
        grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
        out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        shape = (b, 1, 1, 1)
        jitter = coin().to(x.device).view(shape)
        delta = ((2 * torch.rand(b, generator=g) - 1) * 0.5 * strength).to(x.device, x.dtype).view(shape)
        contrast = (1 + (torch.rand(b, generator=g) * 1.25 - 0.5) * strength).to(x.device, x.dtype).view(shape)
        mean = out.mean((1, 2, 3), keepdim=True)
        changed = (out + delta - mean) * contrast + mean
        out = torch.where(jitter, changed - changed.amin((1, 2, 3), keepdim=True), out).clamp(0, 1)
        erase = coin().view(b, 1, 1)
        top, left = torch.randint(0, h, (b,), generator=g), torch.randint(0, w, (b,), generator=g)
        rows, cols = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
        box = ((rows - top.view(b, 1, 1)).abs() < 4) & ((cols - left.view(b, 1, 1)).abs() < 4) & erase
        return out.masked_fill(box.unsqueeze(1).to(x.device), 0.5)

    return view


def then(first, second):
    """``first``, then ``second`` on its output."""
    return lambda x, g: second(first(x, g), g)


def flipped(augment):
    """``augment`` then a left-right flip of half the images (clothes may be mirrored)."""
    return then(augment, random_hflip)


VIEWS = {  # name -> strong view at a strength; "current" is what fewlabels uses for Fashion-MNIST
    "current": lambda s: fixmatch_views("fashion", s)[1],
    "noelastic": lambda s: flipped(DigitAugment(s, elastic=False)),
    "nocutout": lambda s: flipped(DigitAugment(s, cutout=False)),
    "affine": lambda s: flipped(DigitAugment(s, elastic=False, cutout=False)),
    "shift": lambda s: fixmatch_views("fashion", s)[0],  # the weak view: shifts of 2 px and flips
    "squeeze": lambda s: squeeze(1.0),  # session 23: these three ignore --strength
    "squeeze-half": lambda s: squeeze(0.5),
    "squeeze-p1": lambda s: squeeze(1.0, p=1.0),
    "squeeze+current": lambda s: then(squeeze(1.0), fixmatch_views("fashion", s)[1]),
}


def labelled_view(args: argparse.Namespace, strong):
    """semisup's view of the labelled images: none (the weak view), the strong one, or a named one."""
    if args.labelled_view:
        return VIEWS[args.labelled_view](args.strength)
    return strong if args.strong_labelled else None


def split(data: FewLabelData) -> FewLabelData:
    """The training set's first images as the training pool, its last N_VALIDATION as the scored set."""
    keep, val = slice(0, len(data.y) - N_VALIDATION), slice(len(data.y) - N_VALIDATION, None)
    return FewLabelData(data.name, data.x[keep], data.y[keep], data.extra, data.x[val], data.y[val], data.n_classes,
                        f"{data.source} (validation: the last {N_VALIDATION} training images)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", choices=("cnn_aug", "semisup"), default="cnn_aug")
    parser.add_argument("--views", default=",".join(VIEWS), help=f"comma-separated, from {', '.join(VIEWS)}")
    parser.add_argument("--labels", type=int, default=10)
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--first-draw", type=int, default=0, help="draws first-draw .. first-draw + draws - 1")
    parser.add_argument("--strength", type=float, default=0.5)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=32, help="labelled images per step")
    parser.add_argument("--network", choices=("fewlabels", "cnn13", "cnn13/2", "cnn13/4"), default="fewlabels",
                        help="fewlabels' CNN at --width, or the 13-layer CNN (CNN13; /2, /4: that fraction of its "
                             "filters; --width unused)")
    parser.add_argument("--bf16", action="store_true", help="train in bfloat16 autocast (1.6-1.9x on the 2-core VM)")
    parser.add_argument("--neighbours", type=int, default=0, help="semisup: strong views from one of K nearest images")
    parser.add_argument("--threshold", type=float, default=0.9, help="semisup: pseudo-label confidence threshold")
    parser.add_argument("--weight", type=float, default=1.0, help="semisup: weight of the unlabelled loss")
    parser.add_argument("--ratio", type=int, default=7, help="semisup: unlabelled images per labelled one in a batch")
    parser.add_argument("--no-align", action="store_true", help="semisup: no distribution alignment")
    parser.add_argument("--ema", type=float, default=0.0, help="semisup: decay of a moving average of the weights")
    parser.add_argument("--strong-labelled", action="store_true", help="semisup: the strong view on labelled images")
    parser.add_argument("--labelled-view", choices=tuple(VIEWS), help="semisup: this view on the labelled images")
    parser.add_argument("--flip-tta", action="store_true", help="also score the average over the image and its mirror")
    parser.add_argument("--optimizer", default="adam", choices=("adam", "adamw", "sgd"),
                        help="sgd: with Nesterov momentum 0.9, as FixMatch trains")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    data = split(load("fashion", None, None, 0, 0, 0, False))
    network = (_network(args) if args.network == "fewlabels"  # fewlabels' CNN at --width
               else {"spec": cnn13(int(args.network.partition("/")[2] or 1))})
    common = dict(batch_size=args.batch_size, lr=args.lr, schedule="cosine", classes=list(range(10)),
                  device=args.device, optimizer=args.optimizer, weight_decay=args.weight_decay,
                  nesterov=args.optimizer == "sgd", bf16=args.bf16, progress=False)
    runs = []
    for draw in range(args.first_draw, args.first_draw + args.draws):
        labelled, unlabelled = data.draw(args.labels, draw)
        x, y = data.x[torch.from_numpy(labelled)], data.y[torch.from_numpy(labelled)]
        for name in args.views.split(","):
            strong = VIEWS[name](args.strength)
            start = time.perf_counter()
            if args.method == "cnn_aug":
                clf = CNNClassifier(network_params=network, epochs=cnn_epochs(len(y), args.steps, args.batch_size),
                                    augment=strong, seed=draw, **common)
            else:
                weak = fixmatch_views("fashion", args.strength)[0]
                epochs, per_epoch = repeated_epochs(len(y), args.steps, args.batch_size)
                clf = SemiSupervisedClassifier(network_params=network, epochs=epochs, steps_per_epoch=per_epoch,
                                               unlabelled=unlabelled, threshold=args.threshold, ratio=args.ratio,
                                               unlabelled_weight=args.weight, views=(weak, strong),
                                               align=not args.no_align, neighbours=args.neighbours, ema=args.ema,
                                               augment=labelled_view(args, strong), seed=draw, **common)
            proba = clf.fit(x, y).predict_proba(data.x_test)
            accuracy = float(accuracy_score(data.y_test.numpy(), proba.argmax(1)))
            runs.append({"view": name, "draw": draw, "accuracy": accuracy, "seconds": time.perf_counter() - start})
            if args.flip_tta:  # clothes may be mirrored: average the image's and its mirror's probabilities
                both = proba + clf.predict_proba(d4_view(data.x_test, 0, True))
                runs[-1]["accuracy_flip_tta"] = float(accuracy_score(data.y_test.numpy(), both.argmax(1)))
            print(f"draw {draw} {name:10s} {accuracy:.4f} ({runs[-1]['seconds']:.0f} s)"
                  + (f" flip-TTA {runs[-1]['accuracy_flip_tta']:.4f}" if args.flip_tta else ""), flush=True)
    summary = {name: float(np.mean([r["accuracy"] for r in runs if r["view"] == name]))
               for name in args.views.split(",")}
    print(json.dumps(summary, indent=1))
    out = HERE / "results" / f"fewlabels-views-{args.method}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    write_text(out, json.dumps({"args": vars(args), "data": data.source, "runs": runs, "mean": summary,
                                "machine": machine_info()}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
