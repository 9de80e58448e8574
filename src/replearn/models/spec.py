"""A short declarative language for layer stacks.

A spec is a list of strings, one layer each, read almost as the lecture's
"suggestions" slides::

    ["conv 32", "relu", "bn", "maxpool", "dropout 0.25", "flatten as features", "dense 10"]

Each entry is ``<op> [args...] [as <name>]``:

============  =====================================  ==============================
op            arguments                              layer
============  =====================================  ==============================
conv F        ``k3`` kernel, ``s1`` stride            Conv2d, "same" padding
dense N                                              Linear
bn                                                   BatchNorm1d/2d (by input rank)
relu, gelu,                                          activation
sigmoid, tanh
maxpool [P]   pool size (default 2)                  MaxPool2d (floor, as Keras "valid")
avgpool [P]                                          AvgPool2d
gap                                                  global average pool + flatten
upsample [S]  scale (default 2)                      nearest-neighbour Upsample
dropout P                                            Dropout, byte masks (models.dropout)
flatten                                              Flatten
reshape C H W                                        Unflatten to (C, H, W)
============  =====================================  ==============================

Layers are named ``<op>_<k>`` (``conv_1``, ``bn_3`` ...) unless ``as <name>``
gives a name, so a layer such as ``features`` can be found again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

from torch import nn

from replearn.errors import ReplearnError
from replearn.models.dropout import Dropout

OPS = ("conv", "dense", "bn", "relu", "gelu", "sigmoid", "tanh", "maxpool", "avgpool", "gap", "upsample", "dropout", "flatten", "reshape")


@dataclass(frozen=True)
class LayerSpec:
    """One parsed spec entry."""

    op: str
    args: tuple[str, ...]
    name: str | None
    text: str


def parse_entry(text: str) -> LayerSpec:
    """Parse one spec string such as ``"conv 32 k5 as stem"``."""
    if not isinstance(text, str) or not text.strip():
        raise ReplearnError(f"model spec: each layer must be a non-empty string, got {text!r}")
    words = text.split()
    name = None
    if "as" in words:
        i = words.index("as")
        if i != len(words) - 2:
            raise ReplearnError(f"model spec {text!r}: 'as' must be followed by exactly one name at the end")
        name = words[-1]
        words = words[:i]
    op, args = words[0].lower(), tuple(words[1:])
    if op not in OPS:
        raise ReplearnError(f"model spec {text!r}: unknown layer {op!r}; known: {', '.join(OPS)}")
    return LayerSpec(op=op, args=args, name=name, text=text)


def _int(entry: LayerSpec, value: str, what: str) -> int:
    try:
        out = int(value)
    except ValueError:
        raise ReplearnError(f"model spec {entry.text!r}: {what} must be an integer, got {value!r}") from None
    if out <= 0:
        raise ReplearnError(f"model spec {entry.text!r}: {what} must be positive, got {out}")
    return out


def _options(entry: LayerSpec, positional: int, allowed: dict[str, int]) -> tuple[list[str], dict[str, int]]:
    """Split args into ``positional`` leading values and ``k3``/``s2`` style options."""
    pos, opts = list(entry.args[:positional]), dict(allowed)
    if len(pos) < positional:
        raise ReplearnError(f"model spec {entry.text!r}: {entry.op} needs {positional} argument(s)")
    for word in entry.args[positional:]:
        key, value = word[:1], word[1:]
        if key not in allowed or not value:
            raise ReplearnError(f"model spec {entry.text!r}: unknown option {word!r} for {entry.op}")
        opts[key] = _int(entry, value, word)
    return pos, opts


def build_layer(entry: LayerSpec, shape: tuple[int, ...], bn_momentum: float, bn_eps: float) -> tuple[nn.Module, tuple[int, ...]]:
    """Build the module for ``entry`` given the input ``shape`` (without batch); return it and the output shape."""
    make, out_shape, _ = _plan(entry, shape, bn_momentum, bn_eps)
    return make(), out_shape


def layer_size(entry: LayerSpec, shape: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
    """The number of values the layer for ``entry`` would hold, and its output shape, without building it.

    The count is :func:`replearn.models.summary.count_params`'s total: weights and biases, plus
    BatchNorm's scale, shift, moving mean and moving variance. The spec is checked exactly as
    :func:`build_layer` checks it.
    """
    _, out_shape, n_values = _plan(entry, shape, 0.1, 1e-5)
    return n_values, out_shape


def spec_size(spec: Sequence[str], input_shape: Sequence[int]) -> int:
    """The number of values a network built from ``spec`` on ``input_shape`` would hold (nothing is allocated)."""
    shape = tuple(int(d) for d in input_shape)
    total = 0
    for text in spec:
        n_values, shape = layer_size(parse_entry(text), shape)
        total += n_values
    return total


def _plan(entry: LayerSpec, shape: tuple[int, ...], bn_momentum: float,
          bn_eps: float) -> tuple[Callable[[], nn.Module], tuple[int, ...], int]:
    """Check ``entry`` on the input ``shape``; return (a maker of its module, the output shape, its value count)."""
    op = entry.op
    rank = len(shape)

    def need_rank(r: int) -> None:
        if rank != r:
            kind = "(C, H, W) images" if r == 3 else "flat (N,) vectors"
            raise ReplearnError(f"model spec {entry.text!r}: {op} needs {kind}, but its input has shape {shape}")

    if op == "conv":
        need_rank(3)
        (filters,), opts = _options(entry, 1, {"k": 3, "s": 1})
        filters = _int(entry, filters, "filters")
        k, s = opts["k"], opts["s"]
        size = [(n + 2 * (k // 2) - k) // s + 1 for n in shape[1:]]
        return (lambda: nn.Conv2d(shape[0], filters, k, stride=s, padding=k // 2),
                (filters, size[0], size[1]), shape[0] * filters * k * k + filters)
    if op == "dense":
        need_rank(1)
        (units,), _ = _options(entry, 1, {})
        units = _int(entry, units, "units")
        return lambda: nn.Linear(shape[0], units), (units,), shape[0] * units + units
    if op == "bn":
        _options(entry, 0, {})
        if rank == 3:
            return lambda: nn.BatchNorm2d(shape[0], eps=bn_eps, momentum=bn_momentum), shape, 4 * shape[0]
        need_rank(1)
        return lambda: nn.BatchNorm1d(shape[0], eps=bn_eps, momentum=bn_momentum), shape, 4 * shape[0]
    if op in ("relu", "gelu", "sigmoid", "tanh"):
        _options(entry, 0, {})
        return {"relu": nn.ReLU, "gelu": nn.GELU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}[op], shape, 0
    if op in ("maxpool", "avgpool"):
        need_rank(3)
        size = _int(entry, entry.args[0], "pool size") if entry.args else 2
        if shape[1] < size or shape[2] < size:
            raise ReplearnError(f"model spec {entry.text!r}: input {shape} is too small to pool by {size}")
        pool = nn.MaxPool2d if op == "maxpool" else nn.AvgPool2d
        return lambda: pool(size), (shape[0], shape[1] // size, shape[2] // size), 0
    if op == "gap":
        need_rank(3)
        return lambda: nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()), (shape[0],), 0
    if op == "upsample":
        need_rank(3)
        scale = _int(entry, entry.args[0], "scale") if entry.args else 2
        return (lambda: nn.Upsample(scale_factor=scale, mode="nearest"),
                (shape[0], shape[1] * scale, shape[2] * scale), 0)
    if op == "dropout":
        if len(entry.args) != 1:
            raise ReplearnError(f"model spec {entry.text!r}: dropout needs one rate, e.g. 'dropout 0.25'")
        try:
            rate = float(entry.args[0])
        except ValueError:
            rate = -1.0
        if not 0.0 <= rate < 1.0:
            raise ReplearnError(f"model spec {entry.text!r}: dropout rate must be in [0, 1), got {entry.args[0]!r}")
        return lambda: Dropout(rate), shape, 0
    if op == "flatten":
        _options(entry, 0, {})
        return nn.Flatten, (math.prod(shape),), 0
    if op == "reshape":
        need_rank(1)
        dims = tuple(_int(entry, a, "reshape size") for a in entry.args)
        if len(dims) != 3 or math.prod(dims) != shape[0]:
            raise ReplearnError(f"model spec {entry.text!r}: cannot reshape {shape[0]} values to {dims}")
        return lambda: nn.Unflatten(1, dims), dims, 0
    raise AssertionError(op)  # pragma: no cover - OPS and this function agree
