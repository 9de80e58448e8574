"""The lecture's networks, and the small parametric families used by the assignment grid.

All classifiers return logits (the lecture's final softmax lives in the loss);
autoencoders end in a sigmoid, as in the lecture.
"""

from __future__ import annotations

from typing import Sequence

from replearn.errors import ReplearnError
from replearn.models._registry import register_model
from replearn.models.autoencoder import AutoEncoder
from replearn.models.network import Network

MINIVGG_SPEC = [
    "conv 32", "relu", "bn", "conv 32", "relu", "bn", "maxpool", "dropout 0.25",
    "conv 64", "relu", "bn", "conv 64", "relu", "bn", "maxpool", "dropout 0.25",
    "flatten as features",
    "dense 512", "relu", "bn", "dropout 0.5", "dense 10",
]
"""The lecture's CNN (exercise 1, "last week's model"); ``features`` is the flattened conv output."""

TRANSFER_HEAD_SPEC = ["dense 512", "relu", "bn", "dropout 0.5", "dense 10"]
"""The new dense head the lecture attaches to ``features`` for MNIST."""

LECTURE_AE_BLOCKS = ((32,), (32, 16), (16, 8))
"""Encoder conv widths per block (each block ends in 2x2 pooling): the lecture's suggestion."""


@register_model
def minivgg(
    input_shape: Sequence[int] = (1, 28, 28),
    n_classes: int = 10,
    bn_momentum: float = 0.1,
    bn_eps: float = 1e-5,
    init: str = "glorot",
) -> Network:
    """The lecture's MiniVGG CNN: (N, 1, 28, 28) -> (N, n_classes) logits."""
    spec = MINIVGG_SPEC[:-1] + [f"dense {n_classes}"]
    return Network(spec, input_shape, bn_momentum=bn_momentum, bn_eps=bn_eps, init=init)


def attach_head(base: Network, layer: str = "features", head: Sequence[str] = TRANSFER_HEAD_SPEC) -> Network:
    """Keep ``base`` up to ``layer`` (modules shared) and add a new, freshly initialised ``head``."""
    return base.truncate(layer).extend(head)


def _conv_block(widths: Sequence[int]) -> list[str]:
    out: list[str] = []
    for w in widths:
        out += [f"conv {int(w)}", "relu", "bn"]
    return out


def _dense_blocks(widths: Sequence[int]) -> list[str]:
    return [e for n in widths for e in (f"dense {int(n)}", "relu", "bn")]


@register_model
def conv_autoencoder(
    input_shape: Sequence[int] = (1, 28, 28),
    code_dim: int = 2,
    blocks: Sequence[Sequence[int]] = LECTURE_AE_BLOCKS,
    hidden: Sequence[int] = (),
    bn_momentum: float = 0.1,
    bn_eps: float = 1e-5,
    init: str = "glorot",
) -> AutoEncoder:
    """The lecture's convolutional autoencoder, generalised.

    Encoder: each block of convolutions (ReLU, BatchNorm) ends in 2x2 pooling,
    then a linear Dense(``code_dim``) named ``features``. Decoder: Dense to
    (last width, H/2^(k-1), W/2^(k-1)) with ReLU, the convolutions in reverse
    with upsampling between blocks, and a final 1-filter sigmoid convolution.
    With the defaults on 28x28 this is exactly the lecture's suggestion
    (32 | 32, 16 | 16, 8 -> 2 -> 8*7*7 -> 8, 16 | 16, 32 | 32 -> 1).
    ``hidden`` adds dense layers (ReLU, BatchNorm) between the flattened convolutions
    and the code, mirrored in the decoder (the lecture's network has none).
    """
    c, h, w = (int(d) for d in input_shape)
    k = len(blocks)
    if k < 1 or any(len(b) == 0 for b in blocks):
        raise ReplearnError("autoencoder blocks must be a non-empty list of non-empty width lists")
    step = 2 ** (k - 1)
    if h % step or w % step:
        raise ReplearnError(f"autoencoder with {k} pooling blocks needs image sizes divisible by {step}, got {h}x{w}")
    encoder_spec: list[str] = []
    for block in blocks:
        encoder_spec += _conv_block(block) + ["maxpool"]
    if any(int(n) < 1 for n in hidden):
        raise ReplearnError(f"autoencoder hidden dense widths must be positive, got {list(hidden)}")
    encoder_spec += ["flatten"] + _dense_blocks(hidden) + [f"dense {int(code_dim)} as features"]
    last = int(blocks[-1][-1])
    hs, ws = h // step, w // step
    decoder_spec = _dense_blocks(list(reversed(hidden)))
    decoder_spec += [f"dense {last * hs * ws}", "relu", f"reshape {last} {hs} {ws}"]
    reversed_blocks = [list(reversed(b)) for b in reversed(blocks)]
    for i, block in enumerate(reversed_blocks):
        decoder_spec += _conv_block(block)
        if i < k - 1:
            decoder_spec.append("upsample")
    decoder_spec += [f"conv {c}", "sigmoid"]
    kw = dict(bn_momentum=bn_momentum, bn_eps=bn_eps, init=init)
    encoder = Network(encoder_spec, (c, h, w), **kw)
    decoder = Network(decoder_spec, (int(code_dim),), **kw)
    return AutoEncoder(encoder, decoder)


@register_model
def small_cnn(
    input_shape: Sequence[int] = (1, 40, 40),
    n_classes: int = 3,
    depth: int = 3,
    width: int = 16,
    dropout: float = 0.25,
    dense: int = 64,
    bn_momentum: float = 0.1,
    bn_eps: float = 1e-5,
    init: str = "glorot",
) -> Network:
    """A small CNN for few-label crops: ``depth`` blocks (conv-ReLU-BN, 2x2 pool),
    widths doubling from ``width``, global average pooling as ``features``,
    then Dense(``dense``)-ReLU-Dropout-Dense(``n_classes``). (N, C, H, W) -> (N, n_classes) logits."""
    if depth < 1 or width < 1 or dense < 1:
        raise ReplearnError(f"small_cnn: depth, width and dense must be positive, got {depth}, {width}, {dense}")
    spec: list[str] = []
    for i in range(depth):
        spec += _conv_block([width * 2**i]) + ["maxpool"]
    spec += ["gap as features"]
    if dropout > 0:
        spec.append(f"dropout {dropout}")
    spec += [f"dense {dense}", "relu"]
    if dropout > 0:
        spec.append(f"dropout {dropout}")
    spec.append(f"dense {n_classes}")
    return Network(spec, input_shape, bn_momentum=bn_momentum, bn_eps=bn_eps, init=init)
