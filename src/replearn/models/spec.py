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
        layer = nn.Conv2d(shape[0], filters, k, stride=s, padding=k // 2)
        size = [(n + 2 * (k // 2) - k) // s + 1 for n in shape[1:]]
        return layer, (filters, size[0], size[1])
    if op == "dense":
        need_rank(1)
        (units,), _ = _options(entry, 1, {})
        units = _int(entry, units, "units")
        return nn.Linear(shape[0], units), (units,)
    if op == "bn":
        _options(entry, 0, {})
        if rank == 3:
            return nn.BatchNorm2d(shape[0], eps=bn_eps, momentum=bn_momentum), shape
        need_rank(1)
        return nn.BatchNorm1d(shape[0], eps=bn_eps, momentum=bn_momentum), shape
    if op in ("relu", "gelu", "sigmoid", "tanh"):
        _options(entry, 0, {})
        return {"relu": nn.ReLU, "gelu": nn.GELU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh}[op](), shape
    if op in ("maxpool", "avgpool"):
        need_rank(3)
        size = _int(entry, entry.args[0], "pool size") if entry.args else 2
        if shape[1] < size or shape[2] < size:
            raise ReplearnError(f"model spec {entry.text!r}: input {shape} is too small to pool by {size}")
        layer = nn.MaxPool2d(size) if op == "maxpool" else nn.AvgPool2d(size)
        return layer, (shape[0], shape[1] // size, shape[2] // size)
    if op == "gap":
        need_rank(3)
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()), (shape[0],)
    if op == "upsample":
        need_rank(3)
        scale = _int(entry, entry.args[0], "scale") if entry.args else 2
        return nn.Upsample(scale_factor=scale, mode="nearest"), (shape[0], shape[1] * scale, shape[2] * scale)
    if op == "dropout":
        if len(entry.args) != 1:
            raise ReplearnError(f"model spec {entry.text!r}: dropout needs one rate, e.g. 'dropout 0.25'")
        try:
            rate = float(entry.args[0])
        except ValueError:
            rate = -1.0
        if not 0.0 <= rate < 1.0:
            raise ReplearnError(f"model spec {entry.text!r}: dropout rate must be in [0, 1), got {entry.args[0]!r}")
        return Dropout(rate), shape
    if op == "flatten":
        _options(entry, 0, {})
        return nn.Flatten(), (math.prod(shape),)
    if op == "reshape":
        need_rank(1)
        dims = tuple(_int(entry, a, "reshape size") for a in entry.args)
        if len(dims) != 3 or math.prod(dims) != shape[0]:
            raise ReplearnError(f"model spec {entry.text!r}: cannot reshape {shape[0]} values to {dims}")
        return nn.Unflatten(1, dims), dims
    raise AssertionError(op)  # pragma: no cover - OPS and this function agree
