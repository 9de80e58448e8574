"""Training and recording the variants of ``replearn transfer``; training its base with ``replearn fashion``.

:func:`classifier` is the lecture's training (SGD, momentum 0.9, constant
learning rate) as a :class:`~replearn.encoders.CNNClassifier` of a prebuilt
network; :class:`Trainer` trains one variant and seed with it, evaluates the
final weights in float32, records the numbers and adds the weights to the run's
outputs; :func:`train_fashion_base` runs ``replearn fashion`` through the harness into
``<run>/base/``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from replearn.data import CLASS_NAMES
from replearn.models import Network, count_params, summary
from replearn.train import bf16_enabled, continues, evaluate, stage_dir
from replearn.utils.runtime import resolve_device
from replearn.workflows import _run, fashion
from replearn.workflows._mnist_like import INPUT_SHAPE, NORMALISATION
from replearn.workflows._transfer_models import locate_base

if TYPE_CHECKING:
    from replearn.encoders import CNNClassifier

Split = tuple[torch.Tensor, torch.Tensor]


def classifier(cfg: Any, network: Network | None, lr: float, epochs: int, seed: int, device: str = "cpu",
               bf16: bool = False) -> CNNClassifier:
    """The lecture's training of ``network``: SGD with momentum 0.9, constant learning rate, channels-last."""
    from replearn.encoders import CNNClassifier

    return CNNClassifier(network=network, epochs=epochs, batch_size=cfg.batch_size, optimizer="sgd", lr=lr,
                         momentum=cfg.momentum, bf16=bf16, channels_last=True, seed=seed, classes=tuple(range(10)),
                         device=device, progress=cfg.progress)


def train_fashion_base(cfg: Any, out: Path | None, resume: bool = False) -> tuple[Path, dict[str, Any] | None]:
    """Train the base as ``replearn fashion`` does (its defaults; its quick ones with --quick) into ``<out>/base/``.

    ``resume``: a base run that had started (its ``config.json`` is there) continues from its checkpoint.
    """
    values = _run.defaults(fashion, cfg.quick)
    values.update(seed=cfg.seed, device=cfg.device, data_dir=cfg.data_dir, progress=cfg.progress)
    base_dir = _run.output_location(fashion, None if out is None else Path(out) / "base")
    print(f"training the base on Fashion-MNIST into {base_dir}")
    again = resume and (base_dir / "config.json").is_file()  # else a base there is the overwritten run's
    _run.execute(fashion, _run.build(fashion, values), base_dir, resume=again, overwrite=not again)
    return locate_base(str(base_dir))


@dataclass
class Trained:
    """One variant and seed after training: the model, its history per epoch and its training time."""

    model: Network
    history: dict[str, list[float]]
    seconds: float
    """Training time: the sum of the epochs' times (a resumed run counts the epochs before the interruption)."""


@dataclass
class Trainer:
    """Trains variants on MNIST (the test set evaluated every epoch) and records them in ``results``."""

    cfg: Any
    data: dict[str, Split]
    base: Path | None
    out: Path | None = None
    """The run folder: each variant and seed checkpoints into ``checkpoints/<variant>_seed<k>/`` there."""
    resume: bool = False
    """Continue each variant and seed from its checkpoint (finished ones only load their weights)."""
    result: _run.Result = field(default_factory=_run.Result)
    """The run's outputs: every variant's weights are added to it."""
    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Variant name -> one record per seed: seed, test accuracy and loss, trainable params, time, history."""
    device: str = field(init=False)
    """Where training runs (``cfg.device`` resolved)."""
    bf16: bool = field(init=False)
    """Whether training runs in bf16 autocast (``cfg.bf16`` on this device); the final evaluation is float32."""

    def __post_init__(self) -> None:
        device = resolve_device(self.cfg.device)
        self.device, self.bf16 = str(device), bf16_enabled(self.cfg.bf16, device.type)

    def train(self, variant: str, preset: str, seed: int, network: Network, lr: float, epochs: int, doing: str,
              after: Trained | None = None) -> Trained:
        """Train a copy of ``network`` (after the stage ``after``, whose epochs and time it adds); record it.

        The variant is named ``variant`` or, when both BatchNorm presets are trained, ``variant (BN preset)``.
        """
        name = f"{variant} (BN {preset})" if self.cfg.bn_momentum == "both" else variant
        if not self.results:
            print(summary(network, title="transfer"))
        print(f"[{name}, seed {seed}] {doing}")
        est = classifier(self.cfg, network, lr, epochs, seed, self.device, self.bf16)
        where = stage_dir(self.out, _file_key(name, seed))
        est.fit(*self.data["train"], eval_sets={"test": self.data["test"]}, checkpoint_dir=where,
                resume=continues(where, self.resume))
        run = Trained(est.model_, est.history_.history, float(sum(est.history_.history["time"])))  # resumed epochs too
        if after is not None:
            history = {k: list(after.history[k]) + list(run.history.get(k, [])) for k in after.history}
            run = Trained(run.model, history, after.seconds + run.seconds)
        self._record(name, seed, run)
        return run

    def _record(self, name: str, seed: int, run: Trained) -> None:
        """Evaluate the final weights in float32 (what a user of the saved model gets); keep them for the outputs."""
        final = evaluate(run.model, *self.data["test"], batch_size=512)
        self.results.setdefault(name, []).append({
            "seed": seed, "test_accuracy": final["accuracy"], "test_loss": final["loss"],
            "trainable_params": count_params(run.model)[1], "train_time_s": run.seconds, "history": run.history,
        })
        key = f"{name}_seed{seed}"
        self.result.weights(_file_key(name, seed) + ".safetensors", run.model, {
            "dataset": "mnist", "classes": list(CLASS_NAMES["mnist"]), "normalisation": NORMALISATION,
            "input_shape": list(INPUT_SHAPE), "variant": key, "base": str(self.base),
        })
        print(f"[{name}, seed {seed}] test accuracy {100 * final['accuracy']:.2f}% ({run.seconds:.0f} s)")


def _file_key(name: str, seed: int) -> str:
    """``frozen (BN keras)``, 1 -> ``frozen_BN_keras_seed1``: the name of a variant's weights and checkpoint folder."""
    return f"{name}_seed{seed}".replace(" ", "_").replace("(", "").replace(")", "")
