"""Transfer learning, Fashion-MNIST -> MNIST: the lecture's exercise 1.

Following the lecture: rebuild last week's graph (MiniVGG), load the weights
trained on Fashion-MNIST (``replearn fashion``), freeze the convolutional part
up to the ``features`` layer (parameters *and* BatchNorm statistics, as Keras's
``trainable = False``), attach a new Dense 512 - ReLU - BatchNorm -
Dropout 0.5 - Dense 10 head and train it on MNIST for 5 epochs at batch 512
with SGD (lr 0.01, momentum 0.9). The test set is evaluated after every epoch,
as the lecture's ``validation_data``; nothing is chosen on it.

Variants: ``frozen`` (the above); ``--compare`` adds ``scratch``, the same
architecture from random initialisation with the same budget; ``--fine-tune``
adds ``fine-tuned``: the frozen model, then the whole network trained for 3
more epochs at lr 1e-3 with the base's BatchNorm statistics kept fixed (the
Keras transfer-learning guide's advice). ``--seeds N`` repeats every variant
with seeds seed..seed+N-1. Every variant and seed is a unit (``_transfer_units``):
``--jobs N`` trains them in N worker processes with ``--threads T`` threads each
(or on a Dask cluster, ``--scheduler``); the numbers do not depend on ``--jobs``.

BatchNorm momentum: PyTorch's ``momentum=0.1`` weighs each new batch by 0.1,
Keras's ``momentum=0.99`` by 0.01. With 118 steps per epoch the Keras moving
averages lag the weights, which is why the lecture's from-scratch model scores
12%, 20%, 47%, 92%, 98% on the test set over its 5 epochs. The default here is
``torch`` (0.1); ``--bn-momentum keras`` or ``both`` shows the difference.

Writes into the run directory: ``config.json``, ``base/`` (with
``--train-base``: a ``replearn fashion`` run), ``checkpoints/`` (finished trainings and
per-epoch checkpoints, for ``--resume``), ``<variant>_seed<k>.safetensors`` (+ ``.json``), then ``transfer_curves.png``, ``results.md``,
``report.md``/``report.html`` and, last, ``metrics.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from replearn.errors import ReplearnError
from replearn.train import bf16_enabled
from replearn.utils.parallel import with_threads
from replearn.utils.runtime import machine_info, resolve_device
from replearn.workflows import transfer_report
from replearn.workflows._mnist_like import BN_MOMENTA, check_subset, load_tensors
from replearn.workflows._run import (MnistRunOptions, ParallelOptions, Result, bf16_option, check_at_least,
                                    jobs_option, option, threads_option)
from replearn.workflows._transfer_models import (frozen_transfer, from_scratch, load_base, locate_base,  # noqa: F401
                                                 unfreeze_for_fine_tuning)
from replearn.workflows._transfer_train import classifier, train_fashion_base
from replearn.workflows._transfer_units import train_all

COMMAND = "transfer"
HELP = "transfer the Fashion-MNIST CNN to MNIST (frozen base, new head); compare with scratch and fine-tuning"
EXAMPLES = """\
examples:
  replearn fashion                                             # first, train the base (or use --train-base)
  replearn transfer --base runs/fashion-<stamp>/               # the lecture's exercise 1
  replearn transfer --base runs/fashion-<stamp>/ --compare --fine-tune --seeds 3
  replearn transfer --base runs/fashion-s0/ --compare --seeds 8 --jobs 4 --threads 2   # 16 trainings, 4 at once
  replearn transfer --base model.safetensors --bn-momentum both --compare
  replearn transfer --train-base --compare --quick             # everything on small subsets, in about a minute
  replearn transfer --out runs/transfer-a --resume              # continue an interrupted run
"""
CONFIG_FILE = DDP = RESUMABLE = True
RESULT_FILES = ("results.md",)


# ----------------------------------------------------------------------------- Setup
@dataclass
class Config(MnistRunOptions, ParallelOptions):
    """The lecture's settings (5 epochs, batch 512, SGD lr 0.01 momentum 0.9) and the fine-tuning stage.

    Unlike the sweeps of small models, one training after another on all cores is the default (``--jobs 1
    --threads 0``): a MiniVGG training uses the cores well by itself (docs/performance.md).
    """

    epochs: int = option(5, "epochs of each variant")
    batch_size: int = option(512, "images per step")
    lr: float = option(0.01, "SGD learning rate, momentum 0.9")
    momentum: float = option(0.9, "SGD momentum", cli=False)
    fine_tune_epochs: int = option(3, "epochs of the fine-tuning stage")
    fine_tune_lr: float = option(1e-3, "SGD learning rate of the fine-tuning stage")
    bn_momentum: str = option("torch", "BatchNorm momentum of the trained layers: 'torch' (0.1), 'keras' (0.99 = "
                                       "torch 0.01) or 'both' (every variant twice)", choices=(*BN_MOMENTA, "both"))
    bf16: str = bf16_option("on")
    train_size: int = option(0, "stratified subset of N MNIST training images (0: all)", metavar="N")
    test_size: int = option(0, "stratified subset of N MNIST test images (0: all)", metavar="N")
    seeds: int = option(1, "repeat each variant with N seeds; every variant and seed is a unit: --jobs J trains J "
                           "at a time (same numbers for any J at a fixed --threads T)", metavar="N")
    compare: bool = option(False, "also train the same network from random initialisation")
    fine_tune: bool = option(False, "also unfreeze the transferred model and train all of it at a lower rate")
    base: str | None = option(None, "the Fashion-MNIST model: a `replearn fashion` run directory or its "
                                    ".safetensors file", metavar="RUN_OR_WEIGHTS", in_file=False)
    train_base: bool = option(False, "train the base first (fashion's defaults, or quick ones with --quick) "
                                     "into <run>/base/", in_file=False)
    jobs: int = jobs_option(1)
    threads: int = threads_option()

    def check(self) -> None:
        check_at_least(self, 1, "seeds", "epochs", "fine_tune_epochs")
        check_at_least(self, 0, "train_size", "test_size")
        check_subset("train", self.train_size)
        check_subset("test", self.test_size)
        for lr, epochs in ((self.lr, self.epochs), (self.fine_tune_lr, self.fine_tune_epochs)):
            classifier(self, None, lr, epochs, self.seed).train_config()  # a bad training setting fails here
        # The base model: checked before anything is written.
        if self.base and self.train_base:
            raise ReplearnError("give either --base or --train-base, not both")
        if not self.base and not self.train_base:
            raise ReplearnError("no base model: train one with `replearn fashion` and pass --base "
                                "runs/fashion-<stamp>/, or add --train-base")
        if self.base:
            load_base(*locate_base(self.base), BN_MOMENTA["torch" if self.bn_momentum == "both" else self.bn_momentum])


QUICK = {"epochs": 2, "fine_tune_epochs": 1, "batch_size": 128, "train_size": 2000, "test_size": 1000}
"""What ``--quick`` changes: small stratified subsets, fewer epochs, smaller batches (more steps)."""


# ----------------------------------------------------------------------------- Run
@with_threads  # --threads: in this process (the base with --train-base) and in each worker
def run(cfg: Config, out: Path | None = None, resume: bool = False) -> Result:
    """Check the base, train every variant and seed on MNIST (``resume``: from ``out``'s checkpoints); the outputs."""
    cfg.check()  # the command line checked already; a Config made in Python is checked here, before any work
    weights, side = locate_base(cfg.base) if cfg.base else (None, None)
    if weights is not None and side is None:
        print(f"note: {weights} has no .json sidecar; assuming the lecture's MiniVGG graph")

    # Prepare the data: MNIST scaled x/255 as in the lecture.
    data = {"train": load_tensors("mnist", "train", cfg.data_dir, cfg.train_size or None, cfg.seed, cfg.progress),
            "test": load_tensors("mnist", "test", cfg.data_dir, cfg.test_size or None, cfg.seed, cfg.progress)}
    print(f"MNIST: train {tuple(data['train'][0].shape)}, test {tuple(data['test'][0].shape)}")
    if cfg.train_base:
        weights, side = train_fashion_base(cfg, out, resume)

    # Train every variant and seed, each a unit (--jobs worker processes, or --scheduler); the test set is
    # evaluated every epoch, as the lecture's validation_data.
    device = resolve_device(cfg.device)
    bf16 = bf16_enabled(cfg.bf16, device.type)  # bf16 autocast where cfg.bf16 turns it on; final evaluation float32
    result = Result()
    results = train_all(cfg, data, weights, side, out, resume, str(device), bf16, result)

    result.metrics = {
        "workflow": COMMAND, "base": {"weights": str(weights), "meta": (side or {}).get("meta", {})},
        "variants": transfer_report.variants(results), "bf16": bf16, "machine": machine_info(),
        "config": {k: v for k, v in vars(cfg).items() if k not in ("progress", "jobs", "scheduler")},
    }
    transfer_report.add_outputs(result, cfg, results, out)
    return result
