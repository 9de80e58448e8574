"""The lecture's claim as a curve: accuracy against the number of labels per class, with and without the
unlabelled images.

For each label count k (1, 4, 10, 25, 100 per class and all) and each of ``--draws`` draws, k training
images per class are drawn (stratified, deterministic per draw: the same labelled images for every method
of the draw); the rest of the training set is the unlabelled pool; the test set is never trained on. Each
method trains on the draw and is scored on the test set; the figure shows the mean with a 95% Student-t
confidence band over the draws, the table every draw. Methods (``--methods``): a CNN from random
initialisation, with augmentation, greedy layer-wise autoencoder pretraining then fine-tuning, autoencoder
codes + logistic regression, SimCLR features + logistic regression, SimCLR fine-tuned (discriminative learning
rates), semi-supervised FixMatch-style training, and transfer from the other MNIST-like data set. Writes
``fewlabels.png``, ``fewlabels.md`` (tables) and the report. See docs/fewlabels.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from replearn.errors import ReplearnError
from replearn.train.ema import check_decay
from replearn.utils.parallel import with_threads
from replearn.utils.runtime import machine_info, resolve_device
from replearn.workflows import fewlabels_report
from replearn.workflows._fewlabels_data import DATASETS, load, parse_labels
from replearn.workflows._fewlabels_methods import METHODS, OTHER, Pretrained, uses_bf16
from replearn.workflows._fewlabels_units import run_all
from replearn.workflows._run import (AUTO_ON_OFF, MnistRunOptions, ParallelOptions, Result, bf16_option,
                                     check_at_least, option)

COMMAND = "fewlabels"
HELP = "accuracy vs labels per class (1..all) with confidence bands: supervised, self-supervised, semi-supervised"
EXAMPLES = """\
examples:
  replearn fewlabels                                  # MNIST, the default methods, 5 draws (see docs/fewlabels.md)
  replearn fewlabels --quick                          # small subsets, few steps: under 2 minutes
  replearn fewlabels --dataset fashion --labels 10 --methods semisup
  replearn fewlabels --dataset crops                  # the built-in SYNTHETIC S. aureus crops
  replearn fewlabels --dataset crops --data data.npz  # the course's crops
  replearn fewlabels --methods cnn,cnn_aug,layerwise,ae_lr,simclr_lr,simclr_ft,simclr_semi,semisup,transfer
"""
CONFIG_FILE = True
DEFAULT_METHODS = "cnn,cnn_aug,semisup"  # what fits the 60-minute budget on 2 cores (docs/fewlabels.md)
#: --neighbours by data set when not given: Fashion-MNIST 10 per class 71.94% -> 75.07% (5 draws, session 18)
DEFAULT_NEIGHBOURS = {"fashion": 5}


# ----------------------------------------------------------------------------- Setup
@dataclass
class Config(MnistRunOptions, ParallelOptions):
    """The default run: MNIST, the label counts of the issue, 5 draws, the methods of DEFAULT_METHODS."""

    dataset: str = option("mnist", "data set", choices=DATASETS)
    data_file: str | None = option(None, "the course's data.npz for --dataset crops (default: built-in SYNTHETIC "
                                   "crops)", flag="--data", metavar="NPZ", in_file=False)
    labels: str = option("1,4,10,25,100,all", "labels per class, comma-separated ('all': every training label)")
    draws: int = option(5, "draws of the labelled set per label count (different images and training seeds)")
    methods: str = option(DEFAULT_METHODS, f"comma-separated, from: {', '.join(METHODS)}")
    steps: int = option(600, "training steps of each supervised / fine-tuning run")
    semisup_steps: int = option(800, "training steps of each semi-supervised run (2400 reached 98.1%% on MNIST with 4 "
                                "labels per class, 3.6 min a run; docs/fewlabels.md)")
    batch_size: int = option(32, "labelled images per step")
    lr: float = option(3e-3, "peak learning rate (Adam, cosine schedule)")
    weight_decay: float = option(0.0, "decoupled weight decay of every CNN (AdamW when > 0)")
    width: int = option(16, "filters of the first conv block of every CNN (doubling over 3 blocks)")
    threshold: float = option(0.9, "semi-supervised: confidence a pseudo-label needs")
    ratio: int = option(7, "semi-supervised: unlabelled images per labelled image in a step")
    strength: float = option(0.5, "strength of the strong augmentation, 0..1 (0.5 beat 1.0 and 0.3 on MNIST)")
    ema: float = option(0.0, "semi-supervised: decay of the weights' moving average used for testing (0: off)")
    align: str = option("auto", "semi-supervised: distribution alignment of the pseudo-labels towards the labelled "
                        "images' class shares (balanced with k per class); auto: on for MNIST and Fashion-MNIST (it "
                        "stopped a collapsed MNIST draw), off for the crops, whose stages are unbalanced (on cost 6.5 "
                        "points over 5 draws; docs/fewlabels.md)",
                        choices=AUTO_ON_OFF)
    labelled_view: str = option("weak", "semi-supervised: the view of the labelled images ('strong': the "
                                "augmentation of cnn_aug, as the unlabelled images' strong view; +3 points on "
                                "generated crops, -9 on real digits: docs/fewlabels.md)", choices=("weak", "strong"))
    neighbours: int | None = option(None, "semi-supervised: make each unlabelled image's strong view from one of its K "
                                    "nearest unlabelled images (pixels, 50 principal components) instead of itself; "
                                    "0: off (default: 5 for Fashion-MNIST, +3.1 points at 10 labels per class; 0 for "
                                    "MNIST, where it was level, and the crops; docs/fewlabels.md)",
                                    parse=int, metavar="K")
    bf16: str = bf16_option("off", "training every network", "off is how docs/fewlabels.md measured its curves; native "
                            "bf16 trained the semi-supervised row 1.6-1.8x faster at the same accuracy")
    encoder_lr_scale: float = option(0.1, "fine-tuning: the encoder's learning rate as a fraction of --lr")
    pretrain_epochs: int = option(10, "epochs of SimCLR / autoencoder pretraining (once per run, no labels)")
    train_size: int = option(0, "use a stratified subset of N training images (0: all)", metavar="N")
    test_size: int = option(0, "use a stratified subset of N test images (0: all)", metavar="N")

    def check(self) -> None:
        check_at_least(self, 1, "draws", "steps", "semisup_steps", "batch_size", "width", "ratio", "pretrain_epochs")
        check_at_least(self, 0, "train_size", "test_size", "weight_decay")
        k = self.neighbours
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 0):
            raise ReplearnError(f"--neighbours: must be an integer of at least 0, got {k!r}")
        self.label_counts(), self.method_list()
        check_decay(self.ema, "--ema")
        if not 0.0 <= self.threshold <= 1.0 or not 0.0 <= self.strength <= 1.0:
            raise ReplearnError(f"--threshold and --strength must be in [0, 1], got {self.threshold}, {self.strength}")
        if self.data_file is not None and self.dataset != "crops":
            raise ReplearnError(f"--data is the crops' data.npz; it needs --dataset crops, "
                                f"got --dataset {self.dataset}")
        if "transfer" in self.method_list() and self.dataset not in OTHER:
            raise ReplearnError("--methods transfer: the crops have no other data set to transfer from; drop it")

    def aligns(self) -> bool:
        """Whether semi-supervised runs align their pseudo-labels: as ``--align`` says, else (auto) not for crops."""
        return self.align == "on" or (self.align == "auto" and self.dataset != "crops")

    def neighbour_count(self) -> int:
        """Nearest unlabelled images a strong view is drawn from: ``--neighbours``, else 5 for Fashion-MNIST, 0 (off)
        for MNIST and the crops (where they did not help; docs/fewlabels.md)."""
        if self.neighbours is not None:
            return self.neighbours
        return DEFAULT_NEIGHBOURS.get(self.dataset, 0)

    def label_counts(self) -> list:
        return parse_labels(self.labels)

    def method_list(self) -> list[str]:
        names = [m.strip() for m in self.methods.split(",") if m.strip()]
        unknown = [m for m in names if m not in METHODS]
        if unknown or not names:
            raise ReplearnError(f"--methods: {unknown[0] if unknown else 'none given'!r} is not a method; "
                                f"choose from: {', '.join(METHODS)}")
        return names


QUICK = {"train_size": 1000, "test_size": 500, "labels": "1,4,all", "draws": 2, "methods": "cnn,semisup",
         "steps": 30, "semisup_steps": 30, "width": 8, "ratio": 2, "pretrain_epochs": 1}


# ----------------------------------------------------------------------------- Run
@with_threads  # --threads: in this process and in each worker
def run(cfg: Config, out: Path | None = None) -> Result:
    """Every method on every draw of every label count; the curve, the tables and the report."""
    # Prepare the data: the test set is never trained on; the draws are fixed by (seed, draw).
    device = str(resolve_device(cfg.device))
    data = load(cfg.dataset, cfg.data_dir, cfg.data_file, cfg.train_size, cfg.test_size, cfg.seed, cfg.progress,
                cfg.quick)
    counts = [k for k in cfg.label_counts() if k is None or k <= data.smallest_class()]
    if not counts:
        raise ReplearnError(f"--labels {cfg.labels}: every count exceeds the smallest class "
                            f"({data.smallest_class()} images)")
    print(f"Data: {data.title} from {data.source}: train {tuple(data.x.shape)} (+ {len(data.extra)} unlabelled), "
          f"test {tuple(data.x_test.shape)}; labels per class {['all' if k is None else k for k in counts]}")

    # Train and evaluate: one record per (method, label count, draw).
    pre = Pretrained(data, cfg, device)
    records = run_all(cfg, data, counts, pre, device, cfg.workers())  # --jobs worker processes (or --scheduler)

    # Evaluate: means, 95% CIs, the figure, the tables.
    result = Result(synthetic=data.synthetic)
    result.metrics = {"workflow": COMMAND, "dataset": data.name, "title": data.title, "source": data.source,
                      "synthetic": data.synthetic, "n_train": int(len(data.y)),
                      "n_extra_unlabelled": int(len(data.extra)),
                      "n_test": int(len(data.y_test)), "records": records, "pretraining_seconds": pre.seconds,
                      "bf16": uses_bf16(cfg, device),
                      "summary": fewlabels_report.summarise(records), "machine": machine_info()}
    fewlabels_report.add_outputs(result, cfg, data)
    return result
