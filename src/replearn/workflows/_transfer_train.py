"""Training and recording the variants of ``replearn transfer``; training its base with ``replearn fashion``.

:func:`classifier` is the lecture's training (SGD, momentum 0.9, constant
learning rate) as a :class:`~replearn.encoders.CNNClassifier` of a prebuilt
network (:mod:`replearn.workflows._transfer_units` trains every variant and seed
with it, each a unit of a parallel sweep); :func:`train_fashion_base` runs ``replearn
fashion`` through the harness into ``<run>/base/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from replearn.models import Network
from replearn.workflows import _run, fashion
from replearn.workflows._transfer_models import locate_base

if TYPE_CHECKING:
    from replearn.encoders import CNNClassifier


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


def file_key(name: str, seed: int) -> str:
    """``frozen (BN keras)``, 1 -> ``frozen_BN_keras_seed1``: the name of a variant's weights and checkpoint folder."""
    return f"{name}_seed{seed}".replace(" ", "_").replace("(", "").replace(")", "")
