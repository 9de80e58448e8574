"""Train the lecture's CNN ("last week's model") on Fashion-MNIST and save it for transfer learning.

The network is the lecture's MiniVGG (two conv-conv-pool blocks of 32 and 64
filters with ReLU, BatchNorm and dropout, ``Flatten`` named ``features``, then
Dense 512 - ReLU - BatchNorm - Dropout 0.5 - Dense 10). The default recipe
trains it for 20 epochs at batch 256 with SGD (Nesterov momentum 0.9, weight
decay 5e-4) under a one-cycle learning-rate schedule, with random shifts of up
to 2 px and left-right flips, in bfloat16 autocast wherever the CPU/GPU
supports it (``--bf16 auto``: only where it is native). As in the lecture, the test set is evaluated after every epoch
(Keras's ``validation_data``) but never used to choose anything; ``--val-size``
holds out part of the training set instead, for tuning.

Writes into the run directory: ``model.safetensors`` + ``model.json`` (the
graph and meta: data set, classes, normalisation ``x/255``, test accuracy,
BatchNorm momentum), ``checkpoint.pt`` (after every epoch; ``--resume``
continues from it), ``config.json``, ``fashion_curves.png``, ``results.md``,
``report.md``/``report.html`` and, last, ``metrics.json``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from replearn.data import CLASS_NAMES, stratified_split
from replearn.data.augment import make_augment
from replearn.encoders import CNNClassifier
from replearn.errors import ReplearnError
from replearn.models import count_params, minivgg, summary
from replearn.train import bf16_enabled, continues, evaluate
from replearn.utils.runtime import machine_info, resolve_device
from replearn.workflows import fashion_report
from replearn.workflows._mnist_like import INPUT_SHAPE, NORMALISATION, bn_momentum, check_subset, load_tensors
from replearn.workflows._run import MnistRunOptions, Result, bf16_option, check_at_least, option

COMMAND = "fashion"
HELP = "train the lecture's CNN on Fashion-MNIST and save it (the base for `replearn transfer`)"
EXAMPLES = """\
examples:
  replearn fashion                                   # the default recipe (>= 93.5% test accuracy)
  replearn fashion --quick                           # 2,000 / 1,000 images, 2 epochs: a smoke test
  replearn fashion --out runs/fashion-a --resume     # continue an interrupted run from its checkpoint
  replearn fashion --val-size 5000                   # hold out 5,000 training images for tuning
  replearn fashion --epochs 10 --batch-size 128 --schedule none --lr 0.01 --shift 0 --no-flip  # ~ the lecture's
then: replearn transfer --base runs/fashion-<stamp>/
"""
CONFIG_FILE = RESUMABLE = DDP = True
RESULT_FILES = ("results.md",)


# ----------------------------------------------------------------------------- Setup
@dataclass
class Config(MnistRunOptions):
    """The default recipe (``train_size``/``test_size`` 0: the full sets)."""
    epochs: int = option(20, "passes over the training set")
    batch_size: int = option(256, "images per step")
    optimizer: str = option("sgd", "optimiser", choices=("sgd", "adam", "adamw"))
    lr: float = option(0.1, "(peak) learning rate")
    momentum: float = option(0.9, "SGD momentum (Nesterov)")
    nesterov: bool = option(True, "Nesterov momentum (SGD only)", cli=False)
    weight_decay: float = option(5e-4, "L2 penalty")
    label_smoothing: float = option(0.0, "label smoothing of the cross-entropy")
    schedule: str = option("onecycle", "learning-rate schedule", choices=("onecycle", "cosine", "none"))
    shift: int = option(2, "random shifts of up to N px, 0 for none")
    flip: bool = option(True, "random left-right flips")
    bn_momentum: str = option("torch", "BatchNorm moving averages: 'torch' (momentum 0.1) or 'keras' "
                                       "(0.99 = torch 0.01)", choices=("torch", "keras"))
    bf16: str = bf16_option("on")  # today's default: bf16 wherever autocast works
    train_size: int = option(0, "use a stratified subset of N training images (0: all)", metavar="N")
    test_size: int = option(0, "use a stratified subset of N test images (0: all)", metavar="N")
    val_size: int = option(0, "hold out N training images as a validation set (0: none)", metavar="N")

    def check(self) -> None:
        check_at_least(self, 0, "shift", "train_size", "test_size", "val_size")
        check_subset("train", self.train_size or None), check_subset("test", self.test_size or None)
        bn_momentum(self.bn_momentum)
        self.estimator().train_config()  # a bad training setting fails here, before any work

    def estimator(self, device: str = "cpu") -> CNNClassifier:
        """The classifier estimator of this recipe (MiniVGG, seeded with ``torch.manual_seed``)."""
        return CNNClassifier(
            network="minivgg", network_params={"input_shape": INPUT_SHAPE, "n_classes": 10,
                                             "bn_momentum": bn_momentum(self.bn_momentum)},
            epochs=self.epochs, batch_size=self.batch_size, optimizer=self.optimizer, lr=self.lr,
            momentum=self.momentum, nesterov=self.nesterov and self.optimizer == "sgd" and self.momentum > 0,
            weight_decay=self.weight_decay, label_smoothing=self.label_smoothing,
            schedule=None if self.schedule == "none" else self.schedule, bf16=bf16_enabled(self.bf16, device),
            channels_last=True, augment=make_augment(self.shift, self.flip), seed=self.seed, seeding="torch",
            device=device, progress=self.progress,
        )


QUICK = {"epochs": 2, "batch_size": 128, "train_size": 2000, "test_size": 1000}  # small subsets, two epochs


# ----------------------------------------------------------------------------- Run
def run(cfg: Config, out: Path | None = None, resume: bool = False) -> Result:
    """Train MiniVGG on Fashion-MNIST with ``cfg`` (checkpoints in ``out``); the model, figure, tables."""
    # Prepare the data: x/255 as in the lecture; optional stratified subsets.
    x_train, y_train = load_tensors("fashion", "train", cfg.data_dir, cfg.train_size or None, cfg.seed, cfg.progress)
    x_test, y_test = load_tensors("fashion", "test", cfg.data_dir, cfg.test_size or None, cfg.seed, cfg.progress)
    val = None
    if cfg.val_size:
        if cfg.val_size >= len(y_train):
            raise ReplearnError(f"--val-size {cfg.val_size}: must be smaller than the {len(y_train)} training images")
        train_idx, val_idx = stratified_split(y_train.numpy(), n_val=cfg.val_size, seed=cfg.seed)
        val = (x_train[val_idx], y_train[val_idx])
        x_train, y_train = x_train[train_idx], y_train[train_idx]
    print(f"Fashion-MNIST: train {tuple(x_train.shape)}, test {tuple(x_test.shape)}"
          + (f", validation {tuple(val[0].shape)} (held out of train)" if val else ""))

    # Build the model: the lecture's graph; initialisation seeded.
    device = str(resolve_device(cfg.device))
    est = cfg.estimator(device)
    print(summary(minivgg(INPUT_SHAPE, n_classes=10), title="fashion_minivgg"))
    print(fashion_report.recipe_line(cfg, est.bf16))

    # Train: the test set is evaluated every epoch, as the lecture's validation_data, never used for choices.
    start = time.perf_counter()
    est.fit(x_train, y_train, validation_data=val, eval_sets={"test": (x_test, y_test)},
            checkpoint_dir=out, resume=continues(out, resume))
    wall, model, history = time.perf_counter() - start, est.model_, est.history_

    # Evaluate the final weights in float32 (what a user of the saved model gets).
    final, train_time, result = evaluate(model, x_test, y_test, batch_size=512), float(sum(history["time"])), Result()
    result.weights("model.safetensors", model, {
        "dataset": "fashion-mnist", "classes": list(CLASS_NAMES["fashion"]), "normalisation": NORMALISATION,
        "input_shape": list(INPUT_SHAPE), "test_accuracy": final["accuracy"], "test_loss": final["loss"],
        "test_images": int(x_test.shape[0]), "train_images": int(x_train.shape[0]),
        "bn_momentum": bn_momentum(cfg.bn_momentum), "bn_momentum_preset": cfg.bn_momentum,
        "epochs": len(history), "seed": cfg.seed,
    })
    result.metrics = {
        "workflow": COMMAND, "test_accuracy": final["accuracy"], "test_loss": final["loss"],
        "history": history.to_dict(), "train_time_s": train_time, "wall_time_s_this_session": wall,
        "bf16": est.bf16, "trainable_params": count_params(model)[1], "machine": machine_info(),
        "config": {k: v for k, v in vars(cfg).items() if k not in ("progress",)},
    }
    fashion_report.add_outputs(result, cfg, history, val is not None, len(y_test), out)
    return result
