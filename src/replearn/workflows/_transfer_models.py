"""The networks of ``replearn transfer``: the Fashion-MNIST base, the frozen transfer, scratch and fine-tuning.

:func:`locate_base` finds the weights that ``--base`` names, :func:`load_base`
rebuilds last week's graph (the lecture's MiniVGG) and loads them (one line for
a base of another architecture); :func:`frozen_transfer`, :func:`from_scratch`
and :func:`unfreeze_for_fine_tuning` build the three variants, :func:`variant_network`
any of them by name (in a worker process: the base is read there, from its safetensors file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from replearn.errors import ReplearnError
from replearn.models import Network, attach_head, freeze, load_weights, minivgg, read_sidecar, unfreeze
from replearn.workflows._mnist_like import INPUT_SHAPE, NORMALISATION

FEATURES = "features"
"""The layer the base is cut at (the lecture's ``Flatten``); the new head starts after it."""


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


def variant_network(variant: str, weights: Path, side: dict[str, Any] | None, momentum: float, seed: int) -> Network:
    """The network ``variant`` (``frozen``, ``fine-tuned`` or ``scratch``) starts from, initialised with ``seed``.

    ``fine-tuned`` is the frozen model made trainable: load the trained frozen weights into it.
    """
    if variant == "scratch":
        return from_scratch(momentum, seed)
    model = frozen_transfer(weights, side, momentum, seed)
    return unfreeze_for_fine_tuning(model) if variant == "fine-tuned" else model
