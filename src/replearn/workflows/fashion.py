"""Train the lecture's CNN ("last week's model") on Fashion-MNIST and save it for transfer learning.

The network is the lecture's MiniVGG (two conv-conv-pool blocks of 32 and 64
filters with ReLU, BatchNorm and dropout, ``Flatten`` named ``features``, then
Dense 512 - ReLU - BatchNorm - Dropout 0.5 - Dense 10). The default recipe
trains it for 20 epochs at batch 256 with SGD (Nesterov momentum 0.9, weight
decay 5e-4) under a one-cycle learning-rate schedule, with random shifts of up
to 2 px and left-right flips, in bfloat16 autocast where the CPU/GPU supports
it. As in the lecture, the test set is evaluated after every epoch (Keras's
``validation_data``) but never used to choose anything; ``--val-size`` holds
out part of the training set instead, for tuning.

Writes into the run directory: ``model.safetensors`` + ``model.json`` (the
graph and meta: data set, classes, normalisation ``x/255``, test accuracy,
BatchNorm momentum), ``checkpoint.pt`` (after every epoch; ``--resume``
continues from it), ``config.json``, ``fashion_curves.png``, ``results.md``
and, last, ``metrics.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from replearn.config import merge, resolve
from replearn.data import stratified_split
from replearn.data.augment import make_augment
from replearn.errors import ReplearnError
from replearn.evaluate.figures import learning_curves, save_figure
from replearn.models import count_params, minivgg, save_model, summary
from replearn.train import CHECKPOINT_NAME, TrainConfig, evaluate, fit
from replearn.train._device import bf16_supported
from replearn.utils.atomic import save_json, write_text
from replearn.utils.rundir import make_run_dir
from replearn.utils.runtime import machine_info, resolve_device
from replearn.workflows._mnist_like import (
    FASHION_CLASSES,
    INPUT_SHAPE,
    NORMALISATION,
    bn_momentum,
    load_tensors,
    results_table,
)

COMMAND = "fashion"
HELP = "train the lecture's CNN on Fashion-MNIST and save it (the base for `replearn transfer`)"
EXAMPLES = """\
examples:
  replearn fashion                                   # the default recipe (>= 93.5% test accuracy)
  replearn fashion --quick                           # 2,000 / 1,000 images, 2 epochs: a smoke test
  replearn fashion --out runs/fashion-a --resume     # continue an interrupted run from its checkpoint
  replearn fashion --val-size 5000                   # hold out 5,000 training images for tuning
  replearn fashion --epochs 10 --batch-size 128 --schedule none --lr 0.01 --shift 0 --no-flip
                                                     # close to the lecture's plain recipe
then: replearn transfer --base runs/fashion-<stamp>/
"""

# ----------------------------------------------------------------------------- Setup

DEFAULTS: dict[str, Any] = {
    "epochs": 20,
    "batch_size": 256,
    "optimizer": "sgd",
    "lr": 0.1,
    "momentum": 0.9,
    "nesterov": True,
    "weight_decay": 5e-4,
    "label_smoothing": 0.0,
    "schedule": "onecycle",
    "shift": 2,
    "flip": True,
    "bn_momentum": "torch",
    "bf16": True,
    "train_size": 0,
    "test_size": 0,
    "val_size": 0,
    "seed": 0,
}
"""The default recipe (``train_size``/``test_size`` 0: the full sets; ``schedule`` "none": constant)."""

QUICK: dict[str, Any] = {"epochs": 2, "batch_size": 128, "train_size": 2000, "test_size": 1000}
"""What ``--quick`` changes: small stratified subsets and two epochs."""

RESULT_FILES = ("metrics.json", "results.md")
"""Written last; their presence means the run finished."""

# Options of this workflow that map one-to-one onto config keys.
_OPTION_KEYS = (
    "epochs", "batch_size", "optimizer", "lr", "momentum", "weight_decay", "label_smoothing", "schedule",
    "shift", "flip", "bn_momentum", "bf16", "train_size", "test_size", "val_size",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``replearn fashion`` (the CLI adds --out, --seed, --quick, ...)."""
    d = DEFAULTS
    parser.add_argument("--config", metavar="TOML", help="settings file (keys as in config.json); options override it")
    parser.add_argument("--epochs", type=int, help=f"passes over the training set (default: {d['epochs']})")
    parser.add_argument("--batch-size", type=int, help=f"images per step (default: {d['batch_size']})")
    parser.add_argument("--optimizer", choices=("sgd", "adam", "adamw"), help=f"default: {d['optimizer']}")
    parser.add_argument("--lr", type=float, help=f"(peak) learning rate (default: {d['lr']})")
    parser.add_argument("--momentum", type=float, help=f"SGD momentum (default: {d['momentum']}, Nesterov)")
    parser.add_argument("--weight-decay", type=float, help=f"L2 penalty (default: {d['weight_decay']})")
    parser.add_argument("--label-smoothing", type=float, help=f"default: {d['label_smoothing']}")
    parser.add_argument(
        "--schedule", choices=("onecycle", "cosine", "none"), help=f"learning-rate schedule (default: {d['schedule']})"
    )
    parser.add_argument("--shift", type=int, help=f"random shifts of up to N px, 0 for none (default: {d['shift']})")
    parser.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                        help="random left-right flips (default: on)")
    parser.add_argument("--bn-momentum", choices=("torch", "keras"),
                        help="BatchNorm moving averages: 'torch' (momentum 0.1, default) or 'keras' (0.99 = torch 0.01)")
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                        help="bfloat16 autocast where supported (default: on; float32 where not)")
    parser.add_argument("--train-size", type=int, metavar="N", help="use a stratified subset of N training images")
    parser.add_argument("--test-size", type=int, metavar="N", help="use a stratified subset of N test images")
    parser.add_argument("--val-size", type=int, metavar="N",
                        help="hold out N training images as a validation set (default: 0, none)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its checkpoint, with its saved settings")


def resolve_config(args: argparse.Namespace) -> dict[str, Any]:
    """Defaults, then ``--quick``, then ``--config``, then command-line options; checked."""
    defaults = dict(DEFAULTS)
    if args.quick:
        defaults.update(QUICK)
    overrides = {k: getattr(args, k, None) for k in _OPTION_KEYS}
    overrides["seed"] = args.seed
    config = resolve(defaults, args.config, overrides)
    return check_config(config)


def check_config(config: dict[str, Any]) -> dict[str, Any]:
    """Validate the workflow's own keys (the training keys are checked by :class:`TrainConfig`)."""
    bn_momentum(config["bn_momentum"])
    for key in ("shift", "train_size", "test_size", "val_size"):
        if config[key] < 0:
            raise ReplearnError(f"--{key.replace('_', '-')}: must be >= 0, got {config[key]}")
    if config["schedule"] not in ("onecycle", "cosine", "none", None):
        raise ReplearnError(f"schedule: got {config['schedule']!r}; allowed: 'onecycle', 'cosine', 'none'")
    train_config(config, "cpu")  # raises on a bad training setting
    return config


def train_config(config: dict[str, Any], device: str) -> TrainConfig:
    """The :class:`TrainConfig` of a resolved workflow config."""
    return TrainConfig(
        epochs=config["epochs"], batch_size=config["batch_size"], optimizer=config["optimizer"], lr=config["lr"],
        momentum=config["momentum"], nesterov=config["nesterov"] and config["optimizer"] == "sgd"
        and config["momentum"] > 0, weight_decay=config["weight_decay"], label_smoothing=config["label_smoothing"],
        schedule=None if config["schedule"] in (None, "none") else config["schedule"], bf16=config["bf16"],
        channels_last=True, seed=config["seed"], device=device,
    )


# ----------------------------------------------------------------------------- Train


def train_base(
    config: dict[str, Any],
    run_dir: Path,
    data_dir: str | None = None,
    device: str = "auto",
    progress: bool = True,
    resume: bool = False,
) -> dict[str, Any]:
    """Train MiniVGG on Fashion-MNIST with ``config`` into ``run_dir``; return the metrics written.

    ``run_dir`` receives the model (safetensors + sidecar), the checkpoint,
    the figure, ``results.md`` and, last, ``metrics.json``.
    """
    seed = config["seed"]
    # Prepare the data: x/255 as in the lecture; optional stratified subsets.
    x_train, y_train = load_tensors("fashion", "train", data_dir, config["train_size"] or None, seed, progress)
    x_test, y_test = load_tensors("fashion", "test", data_dir, config["test_size"] or None, seed, progress)
    val = None
    if config["val_size"]:
        train_idx, val_idx = stratified_split(y_train.numpy(), n_val=config["val_size"], seed=seed)
        val = (x_train[val_idx], y_train[val_idx])
        x_train, y_train = x_train[train_idx], y_train[train_idx]
    print(f"Fashion-MNIST: train {tuple(x_train.shape)}, test {tuple(x_test.shape)}"
          + (f", validation {tuple(val[0].shape)} (held out of train)" if val else ""))

    # Build the model: the lecture's graph; initialisation seeded.
    torch.manual_seed(seed)
    momentum = bn_momentum(config["bn_momentum"])
    model = minivgg(INPUT_SHAPE, n_classes=10, bn_momentum=momentum)
    tc = train_config(config, device)
    use_bf16 = config["bf16"] and bf16_supported(resolve_device(device).type)
    print(summary(model, title="fashion_minivgg"))
    print(f"recipe: {tc.epochs} epochs, batch {tc.batch_size}, {tc.optimizer} lr {tc.lr} ({tc.schedule or 'constant'}), "
          f"augmentation shift {config['shift']} px{' + flips' if config['flip'] else ''}, "
          f"BatchNorm momentum {config['bn_momentum']} ({momentum}), {'bf16 autocast' if use_bf16 else 'float32'}")

    # Train: the test set is evaluated every epoch, as the lecture's validation_data, never used for choices.
    start = time.perf_counter()
    history = fit(
        model, (x_train, y_train), val=val, config=tc, augment=make_augment(config["shift"], config["flip"]),
        checkpoint_dir=run_dir, resume=resume, progress=progress, eval_sets={"test": (x_test, y_test)},
    )
    wall = time.perf_counter() - start

    # Evaluate the final weights in float32 (what a user of the saved model gets).
    final = evaluate(model, x_test, y_test, batch_size=512)
    meta = {
        "dataset": "fashion-mnist",
        "classes": list(FASHION_CLASSES),
        "normalisation": NORMALISATION,
        "input_shape": list(INPUT_SHAPE),
        "test_accuracy": final["accuracy"],
        "test_loss": final["loss"],
        "test_images": int(x_test.shape[0]),
        "train_images": int(x_train.shape[0]),
        "bn_momentum": momentum,
        "bn_momentum_preset": config["bn_momentum"],
        "epochs": len(history),
        "seed": seed,
    }
    save_model(model, run_dir / "model.safetensors", meta)

    metrics_hist = ["accuracy", "test_accuracy"] + (["val_accuracy"] if val else [])
    save_figure(
        learning_curves({"MiniVGG on Fashion-MNIST": history.history}, metrics=metrics_hist,
                        title="accuracy per epoch (test evaluated each epoch, as the lecture's validation_data)"),
        run_dir / "fashion_curves.png",
    )
    train_time = float(sum(history["time"]))
    rows = {"MiniVGG, Fashion-MNIST": {"test_accuracy": [final["accuracy"]],
                                        "trainable_params": count_params(model)[1],
                                        "train_time_s": [train_time]}}
    write_text(run_dir / "results.md", "# replearn fashion\n\n" + results_table(rows)
               + f"\nSeed {seed}; {len(history)} epochs; {'bf16 autocast' if use_bf16 else 'float32'} training, "
               f"float32 test evaluation on {x_test.shape[0]:,} images; time includes the per-epoch test evaluation.\n")
    metrics = {
        "workflow": COMMAND,
        "test_accuracy": final["accuracy"],
        "test_loss": final["loss"],
        "history": history.to_dict(),
        "train_time_s": train_time,
        "wall_time_s_this_session": wall,
        "bf16": use_bf16,
        "trainable_params": count_params(model)[1],
        "machine": machine_info(),
        "config": config,
    }
    save_json(run_dir / "metrics.json", metrics)
    print(f"Fashion-MNIST test accuracy {100 * final['accuracy']:.2f}% after {len(history)} epochs "
          f"({train_time:.0f} s); saved {run_dir / 'model.safetensors'}")
    return metrics


def _resume_config(args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    """The run directory and saved settings for ``--resume``."""
    if not args.out:
        raise ReplearnError("--resume needs --out DIR: the run directory to continue (it holds checkpoint.pt)")
    run_dir = Path(args.out)
    if not (run_dir / CHECKPOINT_NAME).is_file():
        raise ReplearnError(f"--resume: {run_dir / CHECKPOINT_NAME} does not exist; nothing to continue")
    given = [k for k in _OPTION_KEYS if getattr(args, k, None) is not None] + (["config"] if args.config else [])
    given += ["quick"] if args.quick else []
    if given:
        raise ReplearnError(
            f"--resume continues with the settings saved in {run_dir / 'config.json'}; drop --{given[0].replace('_', '-')}"
        )
    try:
        saved = json.loads((run_dir / "config.json").read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ReplearnError(f"--resume: cannot read {run_dir / 'config.json'} ({exc})") from None
    config = check_config(merge(DEFAULTS, saved, str(run_dir / "config.json")))
    if args.seed not in (0, config["seed"]):
        raise ReplearnError(f"--resume: {run_dir} was trained with seed {config['seed']}; drop --seed {args.seed}")
    return run_dir, config


# ----------------------------------------------------------------------------- Run


def clear_results(run_dir: Path) -> None:
    """Remove an earlier run's finished-result files so a failing run cannot look finished."""
    for name in RESULT_FILES:
        (run_dir / name).unlink(missing_ok=True)


def run(args: argparse.Namespace) -> int:
    """Resolve the settings, train, save; print the test accuracy."""
    if args.resume:
        run_dir, config = _resume_config(args)
    else:
        config = resolve_config(args)
        run_dir = make_run_dir(args.out, COMMAND)
        save_json(run_dir / "config.json", config)
    clear_results(run_dir)
    print(f"run directory: {run_dir}")
    train_base(config, run_dir, args.data_dir, args.device, not args.no_progress, resume=args.resume)
    print(f"next: replearn transfer --base {run_dir}")
    return 0
