"""``Network``: an ``nn.Sequential`` built from a spec, with named layers."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Sequence

import torch
from torch import nn

from replearn.errors import ReplearnError
from replearn.models.spec import build_layer, parse_entry

KERAS_BN_MOMENTUM = 0.01
"""Keras's BatchNorm momentum 0.99 in PyTorch's convention (PyTorch weighs the new batch by ``momentum``)."""


def init_glorot(module: nn.Module) -> None:
    """Keras's default initialisation: Glorot-uniform weights and zero biases for conv and dense layers."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class Network(nn.Sequential):
    """A layer stack built from a spec (see :mod:`replearn.models.spec`).

    Args:
        spec: layer strings, e.g. ``["conv 32", "relu", "flatten as features", "dense 10"]``.
        input_shape: (C, H, W) of one image, or (D,) for vectors.
        bn_momentum: PyTorch-convention BatchNorm momentum (0.1 is PyTorch's default,
            :data:`KERAS_BN_MOMENTUM` = 0.01 matches Keras's 0.99).
        bn_eps: BatchNorm epsilon (Keras uses 1e-3, PyTorch 1e-5).
        init: ``"glorot"`` (Keras's default) or ``"torch"`` (PyTorch's default).

    Input (N, *input_shape) -> output (N, *output_shape).
    """

    def __init__(
        self,
        spec: Sequence[str],
        input_shape: Sequence[int],
        bn_momentum: float = 0.1,
        bn_eps: float = 1e-5,
        init: str = "glorot",
        names: Sequence[str] | None = None,
        _reuse: Sequence[nn.Module] = (),
    ) -> None:
        if init not in ("glorot", "torch"):
            raise ReplearnError(f"model init {init!r} is not known; use 'glorot' or 'torch'")
        entries = [parse_entry(s) for s in spec]
        if not entries:
            raise ReplearnError("model spec is empty: give at least one layer")
        given = list(names or [])
        shape = tuple(int(d) for d in input_shape)
        layer_names: list[str] = []
        shapes, modules = [], []
        counts: dict[str, int] = {}
        for i, entry in enumerate(entries):
            module, shape = build_layer(entry, shape, bn_momentum, bn_eps)
            if i < len(_reuse):
                module = _reuse[i]
            if i < len(given):
                name = given[i]
            elif entry.name:
                name = entry.name
            else:
                name = ""
                while not name or name in layer_names or name in given:
                    counts[entry.op] = counts.get(entry.op, 0) + 1
                    name = f"{entry.op}_{counts[entry.op]}"
            if name in layer_names:
                raise ReplearnError(f"model spec: layer name {name!r} is used twice")
            layer_names.append(name)
            shapes.append(shape)
            modules.append(module)
        super().__init__(OrderedDict(zip(layer_names, modules)))
        if init == "glorot":
            for module in modules[len(_reuse):]:
                init_glorot(module)
        self.spec = [e.text for e in entries]
        self.input_shape = tuple(int(d) for d in input_shape)
        self.output_shape = shape
        self.layer_shapes = dict(zip(layer_names, shapes))
        self.bn_momentum = bn_momentum
        self.bn_eps = bn_eps
        self.init = init

    # -- finding layers -------------------------------------------------
    @property
    def layer_names(self) -> list[str]:
        """Names of the layers, in order."""
        return list(self._modules)

    def _index(self, name: str) -> int:
        names = self.layer_names
        if name not in names:
            raise ReplearnError(f"model has no layer {name!r}; its layers are: {', '.join(names)}")
        return names.index(name)

    def get_layer(self, name: str) -> nn.Module:
        """The layer called ``name`` (as Keras's ``model.get_layer``)."""
        return self[self._index(name)]

    def truncate(self, name: str) -> "Network":
        """A network made of the layers up to and including ``name``, sharing their modules."""
        i = self._index(name)
        return Network(
            self.spec[: i + 1], self.input_shape, self.bn_momentum, self.bn_eps, self.init,
            names=self.layer_names[: i + 1], _reuse=list(self)[: i + 1],
        )

    def extend(self, spec: Sequence[str]) -> "Network":
        """A network made of these layers (shared) followed by new layers built from ``spec``."""
        return Network(
            list(self.spec) + list(spec), self.input_shape, self.bn_momentum, self.bn_eps, self.init,
            names=self.layer_names, _reuse=list(self),
        )

    # -- timm-style interface -------------------------------------------
    def forward_features(self, x: torch.Tensor, layer: str = "features") -> torch.Tensor:
        """Run the layers up to and including ``layer``: (N, *input_shape) -> (N, *layer_shape)."""
        stop = self._index(layer)
        for i, module in enumerate(self):
            x = module(x)
            if i == stop:
                break
        return x

    def config(self) -> dict[str, Any]:
        """A JSON-able description from which :func:`replearn.models.model_from_config` rebuilds the network."""
        return {
            "type": "network",
            "spec": list(self.spec),
            "input_shape": list(self.input_shape),
            "bn_momentum": self.bn_momentum,
            "bn_eps": self.bn_eps,
            "init": self.init,
            "names": self.layer_names,
        }
