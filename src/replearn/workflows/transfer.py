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
with seeds seed..seed+N-1.

BatchNorm momentum: PyTorch's ``momentum=0.1`` weighs each new batch by 0.1,
Keras's ``momentum=0.99`` by 0.01. With 118 steps per epoch the Keras moving
averages lag the weights, which is why the lecture's from-scratch model scores
12%, 20%, 47%, 92%, 98% on the test set over its 5 epochs. The default here is
``torch`` (0.1); ``--bn-momentum keras`` or ``both`` shows the difference.

Writes into the run directory: ``config.json``, ``base/`` (with
``--train-base``), ``<variant>_seed<k>.safetensors`` (+ ``.json``), then
``transfer_curves.png``, ``results.md`` and, last, ``metrics.json``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from replearn.config import resolve
from replearn.errors import ReplearnError
from replearn.evaluate.figures import learning_curves, save_figure
from replearn.models import (
    Network,
    attach_head,
    count_params,
    freeze,
    load_weights,
    minivgg,
    read_sidecar,
    save_model,
    summary,
    unfreeze,
)
from replearn.train import TrainConfig, evaluate, fit
from replearn.train._device import bf16_supported
from replearn.utils.atomic import save_json, write_text
from replearn.utils.rundir import make_run_dir
from replearn.utils.runtime import machine_info, resolve_device
from replearn.workflows import fashion
from replearn.workflows._mnist_like import (
    BN_MOMENTA,
    INPUT_SHAPE,
    MNIST_CLASSES,
    NORMALISATION,
    load_tensors,
    mean_std,
    results_table,
)

COMMAND = "transfer"
HELP = "transfer the Fashion-MNIST CNN to MNIST (frozen base, new head); compare with scratch and fine-tuning"
EXAMPLES = """\
examples:
  replearn fashion                                             # first, train the base (or use --train-base)
  replearn transfer --base runs/fashion-<stamp>/               # the lecture's exercise 1
  replearn transfer --base runs/fashion-<stamp>/ --compare --fine-tune --seeds 3
  replearn transfer --base model.safetensors --bn-momentum both --compare
  replearn transfer --train-base --compare --quick             # everything on small subsets, in about a minute
"""

# ----------------------------------------------------------------------------- Setup

DEFAULTS: dict[str, Any] = {
    "epochs": 5,
    "batch_size": 512,
    "lr": 0.01,
    "momentum": 0.9,
    "fine_tune_epochs": 3,
    "fine_tune_lr": 1e-3,
    "bn_momentum": "torch",
    "bf16": True,
    "train_size": 0,
    "test_size": 0,
    "seeds": 1,
    "compare": False,
    "fine_tune": False,
    "seed": 0,
}
"""The lecture's settings (5 epochs, batch 512, SGD lr 0.01 momentum 0.9) and the fine-tuning stage."""

QUICK: dict[str, Any] = {"epochs": 2, "fine_tune_epochs": 1, "batch_size": 128, "train_size": 2000, "test_size": 1000}
"""What ``--quick`` changes: small stratified subsets, fewer epochs, smaller batches (more steps)."""

_OPTION_KEYS = ("epochs", "batch_size", "lr", "fine_tune_epochs", "fine_tune_lr", "bn_momentum", "bf16",
                "train_size", "test_size", "seeds")
FEATURES = "features"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``replearn transfer`` (the CLI adds --out, --seed, --quick, ...)."""
    d = DEFAULTS
    parser.add_argument("--base", metavar="RUN_OR_WEIGHTS",
                        help="the Fashion-MNIST model: a `replearn fashion` run directory or its .safetensors file")
    parser.add_argument("--train-base", action="store_true",
                        help="train the base first (fashion's defaults, or quick ones with --quick) into <run>/base/")
    parser.add_argument("--compare", action="store_true", help="also train the same network from random initialisation")
    parser.add_argument("--fine-tune", action="store_true",
                        help="also unfreeze the transferred model and train everything at a lower learning rate")
    parser.add_argument("--seeds", type=int, metavar="N", help="repeat each variant with N seeds (default: 1)")
    parser.add_argument("--bn-momentum", choices=(*BN_MOMENTA, "both"),
                        help="BatchNorm momentum of the trained layers: 'torch' (0.1, default), "
                             "'keras' (0.99 = torch 0.01) or 'both' (every variant twice)")
    parser.add_argument("--config", metavar="TOML", help="settings file (keys as in config.json); options override it")
    parser.add_argument("--epochs", type=int, help=f"epochs of each variant (default: {d['epochs']})")
    parser.add_argument("--batch-size", type=int, help=f"images per step (default: {d['batch_size']})")
    parser.add_argument("--lr", type=float, help=f"SGD learning rate, momentum 0.9 (default: {d['lr']})")
    parser.add_argument("--fine-tune-epochs", type=int, help=f"default: {d['fine_tune_epochs']}")
    parser.add_argument("--fine-tune-lr", type=float, help=f"default: {d['fine_tune_lr']}")
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                        help="bfloat16 autocast where supported (default: on)")
    parser.add_argument("--train-size", type=int, metavar="N", help="stratified subset of N MNIST training images")
    parser.add_argument("--test-size", type=int, metavar="N", help="stratified subset of N MNIST test images")


def resolve_config(args: argparse.Namespace) -> dict[str, Any]:
    """Defaults, then ``--quick``, then ``--config``, then command-line options; checked."""
    defaults = dict(DEFAULTS)
    if args.quick:
        defaults.update(QUICK)
    overrides = {k: getattr(args, k, None) for k in _OPTION_KEYS}
    overrides.update(seed=args.seed, compare=args.compare or None, fine_tune=args.fine_tune or None)
    config = resolve(defaults, args.config, overrides)
    for key in ("seeds", "epochs", "fine_tune_epochs"):
        if config[key] < 1:
            raise ReplearnError(f"--{key.replace('_', '-')}: must be at least 1, got {config[key]}")
    for key in ("train_size", "test_size"):
        if config[key] < 0:
            raise ReplearnError(f"--{key.replace('_', '-')}: must be >= 0, got {config[key]}")
    if config["bn_momentum"] not in (*BN_MOMENTA, "both"):
        raise ReplearnError(f"bn_momentum: got {config['bn_momentum']!r}; allowed: 'torch', 'keras', 'both'")
    _train_config(config, config["lr"], config["epochs"], config["seed"], "cpu")  # raises on bad values
    _train_config(config, config["fine_tune_lr"], config["fine_tune_epochs"], config["seed"], "cpu")
    return config


def _train_config(config: dict[str, Any], lr: float, epochs: int, seed: int, device: str) -> TrainConfig:
    """The lecture's optimiser: SGD with momentum 0.9, constant learning rate."""
    return TrainConfig(epochs=epochs, batch_size=config["batch_size"], optimizer="sgd", lr=lr,
                       momentum=config["momentum"], bf16=config["bf16"], channels_last=True, seed=seed, device=device)


# ----------------------------------------------------------------------------- The base model


def locate_base(base: str) -> tuple[Path, dict[str, Any] | None]:
    """The weights file named by ``--base`` (a run directory or ``.safetensors``) and its sidecar, if any."""
    path = Path(base)
    if not path.exists():
        raise ReplearnError(f"--base {base}: no such file or directory (make one with `replearn fashion`)")
    weights = path / "model.safetensors" if path.is_dir() else path
    if not weights.is_file():
        raise ReplearnError(f"--base {base}: {weights} does not exist (a `replearn fashion` run directory holds it)")
    side = read_sidecar(weights) if weights.with_suffix(".json").is_file() else None
    return weights, side


def load_base(weights: Path, side: dict[str, Any] | None, momentum: float) -> Network:
    """Rebuild last week's graph (the lecture's MiniVGG) and load the Fashion-MNIST weights into it.

    Weights of another architecture raise one line naming the first layer that
    does not fit and both shapes. ``momentum`` is the BatchNorm momentum of
    every layer that will be trained (frozen layers do not update statistics).
    """
    model_cfg = (side or {}).get("model", {})
    bn_eps = model_cfg.get("bn_eps", 1e-5) if isinstance(model_cfg, dict) else 1e-5
    base = minivgg(INPUT_SHAPE, n_classes=10, bn_momentum=momentum, bn_eps=bn_eps)
    load_weights(base, weights)
    spec = model_cfg.get("spec") if isinstance(model_cfg, dict) else None
    if spec is not None and list(spec) != list(base.spec):
        first = next(i for i, (a, b) in enumerate(zip([*spec, None], [*base.spec, None])) if a != b)
        found = spec[first] if first < len(spec) else "(end)"
        raise ReplearnError(
            f"--base {weights}: not the lecture's MiniVGG: layer {first + 1} is {found!r} in its sidecar, "
            f"expected {base.spec[first] if first < len(base.spec) else '(end)'!r}"
        )
    meta = (side or {}).get("meta", {})
    if isinstance(meta, dict) and meta.get("normalisation", NORMALISATION) != NORMALISATION:
        raise ReplearnError(
            f"--base {weights}: trained on inputs scaled {meta['normalisation']!r}; transfer feeds {NORMALISATION!r}"
        )
    return base


def frozen_transfer(weights: Path, side: dict[str, Any] | None, momentum: float, seed: int) -> Network:
    """The lecture's transfer model: frozen base up to ``features`` + a new head initialised with ``seed``."""
    base = load_base(weights, side, momentum)
    freeze(base.truncate(FEATURES))
    torch.manual_seed(seed)
    return attach_head(base, FEATURES)


def from_scratch(momentum: float, seed: int) -> Network:
    """The same architecture, every layer randomly initialised with ``seed`` and trainable."""
    torch.manual_seed(seed)
    return attach_head(minivgg(INPUT_SHAPE, n_classes=10, bn_momentum=momentum), FEATURES)


def unfreeze_for_fine_tuning(model: Network) -> Network:
    """Make every weight trainable but keep the base's BatchNorm statistics fixed (inference mode)."""
    base = model.truncate(FEATURES)
    unfreeze(base)
    for m in base.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.frozen = True
    return model


# ----------------------------------------------------------------------------- Train and evaluate


def _train(model: Network, data: dict[str, tuple[torch.Tensor, torch.Tensor]], tc: TrainConfig,
           progress: bool) -> tuple[dict[str, list[float]], float]:
    """Fit on MNIST train, test evaluated every epoch; return (history dict, seconds)."""
    start = time.perf_counter()
    history = fit(model, data["train"], config=tc, progress=progress, eval_sets={"test": data["test"]})
    return history.history, time.perf_counter() - start


def _record(model: Network, history: dict[str, list[float]], seconds: float, seed: int,
            test: tuple[torch.Tensor, torch.Tensor]) -> dict[str, Any]:
    """Final float32 test evaluation and the run's numbers."""
    final = evaluate(model, *test, batch_size=512)
    return {
        "seed": seed,
        "test_accuracy": final["accuracy"],
        "test_loss": final["loss"],
        "trainable_params": count_params(model)[1],
        "train_time_s": seconds,
        "history": history,
    }


def _concat(a: dict[str, list[float]], b: dict[str, list[float]]) -> dict[str, list[float]]:
    return {k: list(a[k]) + list(b.get(k, [])) for k in a}


def _mean_history(runs: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Per-epoch mean of each metric over seeds (for the figure)."""
    keys = runs[0]["history"].keys()
    return {k: [sum(v) / len(v) for v in zip(*(r["history"][k] for r in runs))] for k in keys}


def _variant_name(variant: str, preset: str, both: bool) -> str:
    return f"{variant} (BN {preset})" if both else variant


def run(args: argparse.Namespace) -> int:
    """Check the base, train every variant and seed, write the comparison."""
    config = resolve_config(args)
    progress = not args.no_progress

    # The base model: checked before anything is written.
    if args.base and args.train_base:
        raise ReplearnError("give either --base or --train-base, not both")
    if not args.base and not args.train_base:
        raise ReplearnError("no base model: train one with `replearn fashion` and pass --base runs/fashion-<stamp>/, "
                            "or add --train-base")
    weights, side = locate_base(args.base) if args.base else (None, None)
    presets = list(BN_MOMENTA) if config["bn_momentum"] == "both" else [config["bn_momentum"]]
    if weights is not None:
        load_base(weights, side, BN_MOMENTA[presets[0]])
        if side is None:
            print(f"note: {weights} has no .json sidecar; assuming the lecture's MiniVGG graph")

    # Prepare the data: MNIST scaled x/255 as in the lecture.
    limit_train, limit_test = config["train_size"] or None, config["test_size"] or None
    data = {"train": load_tensors("mnist", "train", args.data_dir, limit_train, config["seed"], progress),
            "test": load_tensors("mnist", "test", args.data_dir, limit_test, config["seed"], progress)}
    print(f"MNIST: train {tuple(data['train'][0].shape)}, test {tuple(data['test'][0].shape)}")

    run_dir = make_run_dir(args.out, COMMAND)
    fashion.clear_results(run_dir)
    save_json(run_dir / "config.json", config)
    print(f"run directory: {run_dir}")
    if args.train_base:
        base_config = dict(fashion.DEFAULTS, **(fashion.QUICK if args.quick else {}), seed=config["seed"])
        base_dir = make_run_dir(run_dir / "base", "fashion")
        fashion.clear_results(base_dir)
        save_json(base_dir / "config.json", base_config)
        print(f"training the base on Fashion-MNIST into {base_dir}")
        fashion.train_base(base_config, base_dir, args.data_dir, args.device, progress)
        weights, side = locate_base(str(base_dir))

    use_bf16 = config["bf16"] and bf16_supported(resolve_device(args.device).type)
    seeds = [config["seed"] + i for i in range(config["seeds"])]
    both = len(presets) > 1
    results: dict[str, list[dict[str, Any]]] = {}
    states: dict[str, dict[str, torch.Tensor]] = {}
    models: dict[str, Network] = {}
    printed = False

    for preset in presets:
        momentum = BN_MOMENTA[preset]
        for seed in seeds:
            # Frozen base + new head: the lecture's exercise.
            name = _variant_name("frozen", preset, both)
            model = frozen_transfer(weights, side, momentum, seed)
            if not printed:
                print(summary(model, title="transfer"))
                printed = True
            print(f"[{name}, seed {seed}] training the new head, base frozen")
            tc = _train_config(config, config["lr"], config["epochs"], seed, args.device)
            hist, secs = _train(model, data, tc, progress)
            rec = _record(model, hist, secs, seed, data["test"])
            results.setdefault(name, []).append(rec)
            states[f"{name}_seed{seed}"], models[f"{name}_seed{seed}"] = _snapshot(model), model
            print(f"[{name}, seed {seed}] test accuracy {100 * rec['test_accuracy']:.2f}% ({secs:.0f} s)")

            if config["fine_tune"]:
                # Then everything, at a lower learning rate.
                ft_name = _variant_name("fine-tuned", preset, both)
                unfreeze_for_fine_tuning(model)
                print(f"[{ft_name}, seed {seed}] fine-tuning all weights at lr {config['fine_tune_lr']}")
                tc = _train_config(config, config["fine_tune_lr"], config["fine_tune_epochs"], seed, args.device)
                ft_hist, ft_secs = _train(model, data, tc, progress)
                ft = _record(model, _concat(hist, ft_hist), secs + ft_secs, seed, data["test"])
                results.setdefault(ft_name, []).append(ft)
                states[f"{ft_name}_seed{seed}"], models[f"{ft_name}_seed{seed}"] = _snapshot(model), model
                print(f"[{ft_name}, seed {seed}] test accuracy {100 * ft['test_accuracy']:.2f}% ({secs + ft_secs:.0f} s)")

            if config["compare"]:
                # The same network from random initialisation, same budget.
                sc_name = _variant_name("scratch", preset, both)
                model = from_scratch(momentum, seed)
                print(f"[{sc_name}, seed {seed}] training every layer from random initialisation")
                tc = _train_config(config, config["lr"], config["epochs"], seed, args.device)
                sc_hist, sc_secs = _train(model, data, tc, progress)
                sc = _record(model, sc_hist, sc_secs, seed, data["test"])
                results.setdefault(sc_name, []).append(sc)
                states[f"{sc_name}_seed{seed}"], models[f"{sc_name}_seed{seed}"] = _snapshot(model), model
                print(f"[{sc_name}, seed {seed}] test accuracy {100 * sc['test_accuracy']:.2f}% ({sc_secs:.0f} s)")

    # Outputs: weights, figure, table, then metrics.json last.
    for key, model in models.items():
        model.load_state_dict(states[key])
        save_model(model, run_dir / f"{key.replace(' ', '_').replace('(', '').replace(')', '')}.safetensors", {
            "dataset": "mnist", "classes": list(MNIST_CLASSES), "normalisation": NORMALISATION,
            "input_shape": list(INPUT_SHAPE), "variant": key, "base": str(weights),
        })
    _write_outputs(run_dir, config, results, weights, side, use_bf16)
    return 0


def _snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").clone() for k, v in model.state_dict().items()}


def _write_outputs(run_dir: Path, config: dict[str, Any], results: dict[str, list[dict[str, Any]]],
                   weights: Path | None, side: dict[str, Any] | None, use_bf16: bool) -> None:
    """The figure, ``results.md`` and ``metrics.json`` (last)."""
    n_seeds = config["seeds"]
    curves = {name: _mean_history(runs) for name, runs in results.items()}
    suffix = f" (mean of {n_seeds} seeds)" if n_seeds > 1 else ""
    save_figure(learning_curves(curves, metrics=("accuracy", "test_accuracy"),
                                title=f"MNIST accuracy per epoch{suffix}; test evaluated each epoch"),
                run_dir / "transfer_curves.png")
    rows = {name: {"test_accuracy": [r["test_accuracy"] for r in runs],
                   "trainable_params": runs[0]["trainable_params"],
                   "train_time_s": [r["train_time_s"] for r in runs]} for name, runs in results.items()}
    table = results_table(rows)
    note = (f"\nMNIST {'subset' if config['train_size'] else 'full'} training set, "
            f"{config['epochs']} epochs at batch {config['batch_size']}, SGD lr {config['lr']} momentum "
            f"{config['momentum']}; fine-tuned: +{config['fine_tune_epochs']} epochs at lr {config['fine_tune_lr']} "
            f"(its time includes the frozen stage). Seeds {config['seed']}..{config['seed'] + n_seeds - 1}. "
            f"{'bf16 autocast' if use_bf16 else 'float32'} training, float32 final test evaluation; "
            "times include the per-epoch test evaluation.\n")
    write_text(run_dir / "results.md", "# replearn transfer\n\n" + table + note)
    summary_rows = {}
    for name, runs in results.items():
        acc_mean, acc_std = mean_std([r["test_accuracy"] for r in runs])
        t_mean, t_std = mean_std([r["train_time_s"] for r in runs])
        summary_rows[name] = {"test_accuracy_mean": acc_mean, "test_accuracy_std": acc_std,
                              "train_time_s_mean": t_mean, "train_time_s_std": t_std,
                              "trainable_params": runs[0]["trainable_params"], "runs": runs}
    save_json(run_dir / "metrics.json", {
        "workflow": COMMAND,
        "base": {"weights": str(weights), "meta": (side or {}).get("meta", {})},
        "variants": summary_rows,
        "bf16": use_bf16,
        "machine": machine_info(),
        "config": config,
    })
    print(table, end="")
    print(f"wrote {run_dir / 'metrics.json'}, {run_dir / 'results.md'}, {run_dir / 'transfer_curves.png'}")
