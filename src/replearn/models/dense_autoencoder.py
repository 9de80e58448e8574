"""A dense (fully connected) autoencoder: Parametric UMAP's default kind of encoder, fast on a CPU."""

from __future__ import annotations

from typing import Sequence

from replearn.errors import ReplearnError
from replearn.models._registry import register_model
from replearn.models.autoencoder import AutoEncoder
from replearn.models.network import Network

DENSE_AE_HIDDEN = (256, 256)
"""Hidden widths of the encoder (mirrored in the decoder)."""


@register_model
def dense_autoencoder(
    input_shape: Sequence[int] = (1, 28, 28),
    code_dim: int = 2,
    hidden: Sequence[int] = DENSE_AE_HIDDEN,
    blocks: Sequence[Sequence[int]] | None = None,
    bn_momentum: float = 0.1,
    bn_eps: float = 1e-5,
    init: str = "glorot",
) -> AutoEncoder:
    """Flatten -> Dense(w), ReLU, BatchNorm per ``hidden`` width -> linear Dense(``code_dim``) ``features``; the
    decoder mirrors it and ends in a sigmoid Dense(C*H*W) reshaped to (C, H, W).

    (N, C, H, W) images -> (N, C, H, W) reconstructions. ``blocks`` (convolution widths) is accepted so that
    it is built like :func:`~replearn.models.conv_autoencoder`, and ignored: the network has no convolutions.
    """
    c, h, w = (int(d) for d in input_shape)
    if not hidden or any(int(n) < 1 for n in hidden):
        raise ReplearnError(f"dense_autoencoder: hidden widths must be a non-empty list of positive integers, "
                            f"got {list(hidden)}")
    dense = [e for n in hidden for e in (f"dense {int(n)}", "relu", "bn")]
    back = [e for n in reversed(hidden) for e in (f"dense {int(n)}", "relu", "bn")]
    kw = dict(bn_momentum=bn_momentum, bn_eps=bn_eps, init=init)
    encoder = Network(["flatten", *dense, f"dense {int(code_dim)} as features"], (c, h, w), **kw)
    decoder = Network([*back, f"dense {c * h * w}", "sigmoid", f"reshape {c} {h} {w}"], (int(code_dim),), **kw)
    return AutoEncoder(encoder, decoder)


UMAP_HIDDEN = (100, 100, 100)
"""Parametric UMAP's MNIST encoder (Sainburg, McInnes & Gentner 2021): three Dense(100) ReLU layers."""
UMAP_PCA = 100
"""Width of :func:`umap_autoencoder`'s linear ``pca`` input layer."""


@register_model
def umap_autoencoder(
    input_shape: Sequence[int] = (1, 28, 28),
    code_dim: int = 2,
    hidden: Sequence[int] = UMAP_HIDDEN,
    pca: int = UMAP_PCA,
    blocks: Sequence[Sequence[int]] | None = None,
    init: str = "glorot",
) -> AutoEncoder:
    """Parametric UMAP's network: Flatten -> linear Dense(``pca``) named ``pca`` -> Dense(w), ReLU per ``hidden``
    width -> linear Dense(``code_dim``) ``features``; the decoder mirrors the hidden layers and ends in a sigmoid
    Dense(C*H*W) reshaped to (C, H, W).

    (N, C, H, W) images -> (N, C, H, W) reconstructions. :class:`~replearn.encoders.UMAPEmbedding` sets the
    ``pca`` layer to the training images' principal components and freezes it (well-conditioned inputs train
    much faster, and that layer's outputs are computed once). ``blocks`` is accepted and ignored.
    """
    c, h, w = (int(d) for d in input_shape)
    if not hidden or any(int(n) < 1 for n in hidden) or int(pca) < 1:
        raise ReplearnError(f"umap_autoencoder: hidden widths must be a non-empty list of positive integers and pca "
                            f"positive, got {list(hidden)} and {pca}")
    dense = [e for n in hidden for e in (f"dense {int(n)}", "relu")]
    back = [e for n in reversed(hidden) for e in (f"dense {int(n)}", "relu")]
    encoder = Network(["flatten", f"dense {int(pca)} as pca", *dense, f"dense {int(code_dim)} as features"],
                      (c, h, w), init=init)
    decoder = Network([*back, f"dense {c * h * w}", "sigmoid", f"reshape {c} {h} {w}"], (int(code_dim),), init=init)
    return AutoEncoder(encoder, decoder)
