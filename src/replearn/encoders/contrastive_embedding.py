"""``ContrastiveEmbedding``: a CNN encoder pretrained with SimCLR, as a scikit-learn transformer.

``fit(X)`` trains a small CNN (:func:`replearn.models.small_cnn` up to its
global-average-pooled ``features``) on unlabelled images with the SimCLR
objective (:mod:`replearn.train.contrastive`); ``transform(X)`` returns its
features (N, D) float32, ready for a simple classifier::

    pipe = Pipeline([("ssl", ContrastiveEmbedding(epochs=30)), ("clf", LogisticRegression())])

The default views suit cell crops (symmetries of the square, brightness, shifts
of a few pixels); pass ``views`` for other images.

Images are (N, H, W) or (N, 1, H, W) arrays or tensors; with ``image_shape``
also flattened (N, H*W) rows (see :mod:`replearn.encoders._inputs`).
"""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError

from replearn.encoders._inputs import ImageArray, as_images, image_tags, normalise_image_shape
from replearn.errors import ReplearnError
from replearn.models import small_cnn
from replearn.train import TrainConfig, continues, fit, predict
from replearn.train.contrastive import SimCLRObjective, cell_views
from replearn.utils.runtime import seed_everything


class ContrastiveEmbedding(TransformerMixin, BaseEstimator):
    """Self-supervised (SimCLR) CNN features of images.

    Args:
        depth: conv blocks of the encoder (conv-ReLU-BN, 2x2 pool), widths doubling from ``width``.
        width: filters of the first block; the features have ``width * 2**(depth - 1)`` dimensions.
        epochs: passes over ``X``.
        batch_size: images per step (each gives two views; the other 2N - 2 views are the negatives).
        lr: peak learning rate (Adam, one-cycle schedule).
        weight_decay: L2 penalty.
        temperature: NT-Xent temperature.
        proj_dim: size of the projection head's output (the head is dropped after training).
        hidden: hidden units of the projection head.
        shift: largest random shift of a view, in pixels.
        scale: brightness gain of a view, uniform in [1 - scale, 1 + scale].
        offset: brightness offset of a view, uniform in [-offset, offset].
        views: optional ``f(x, generator) -> view`` replacing the cell-crop views built from
            ``shift``, ``scale`` and ``offset``.
        bf16: bfloat16 autocast where the device supports it.
        channels_last: channels-last memory format while training.
        seed: seeds the weights, the shuffling and the views.
        device: ``"auto"``, ``"cpu"`` or ``"cuda[:N]"``.
        progress: tqdm bars during training.
        batch_size_predict: images per forward pass in ``transform``.
        image_shape: (H, W) or (C, H, W) of flattened input rows (N, C*H*W); None: ``X`` must be
            images (N, H, W) / (N, C, H, W).

    Attributes:
        encoder_: the trained encoder (a :class:`~replearn.models.Network` ending in ``features``).
        history_: per-epoch ``loss`` (NT-Xent), ``lr`` and ``time``.
        input_shape_: (C, H, W) the encoder takes.
        feature_dim_: size of the features ``transform`` returns.
        n_features_in_: pixel values per image, C*H*W (scikit-learn's feature count).
    """

    def __init__(
        self,
        depth: int = 3,
        width: int = 16,
        epochs: int = 30,
        batch_size: int = 256,
        lr: float = 3e-3,
        weight_decay: float = 1e-4,
        temperature: float = 0.5,
        proj_dim: int = 32,
        hidden: int = 128,
        shift: int = 3,
        scale: float = 0.2,
        offset: float = 0.1,
        views: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
        bf16: bool = False,
        channels_last: bool = False,
        seed: int = 0,
        device: str = "auto",
        progress: bool = False,
        batch_size_predict: int = 1024,
        image_shape: Sequence[int] | None = None,
    ) -> None:
        self.depth = depth
        self.width = width
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.temperature = temperature
        self.proj_dim = proj_dim
        self.hidden = hidden
        self.shift = shift
        self.scale = scale
        self.offset = offset
        self.views = views
        self.bf16 = bf16
        self.channels_last = channels_last
        self.seed = seed
        self.device = device
        self.progress = progress
        self.batch_size_predict = batch_size_predict
        self.image_shape = image_shape

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's tags: non-negative pixels, images or flattened rows, float32 out."""
        return image_tags(super().__sklearn_tags__(), float32_out=True)

    def fit(self, X: ImageArray, y: Any = None, checkpoint_dir: str | os.PathLike | None = None,
            resume: bool = False) -> "ContrastiveEmbedding":
        """Train the encoder on images ``X`` (N, H, W), (N, 1, H, W) or rows (N, H*W), no labels; ``y`` is ignored.

        ``checkpoint_dir``: a checkpoint after every epoch (``checkpoint.pt`` there, with the views'
        generator); ``resume``: continue from it (the same result as an uninterrupted fit; without a
        checkpoint the fit starts afresh). A workflow with several SimCLR fits gives each its own
        folder (:func:`replearn.train.stage_dir`).
        """
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, (int, np.integer)) or self.epochs < 1:
            raise ReplearnError(f"ContrastiveEmbedding: epochs must be an integer >= 1, got {self.epochs!r}")
        shape = normalise_image_shape(self.image_shape, "ContrastiveEmbedding")
        reason = "contrastive training needs at least 2: each image's negatives are the other images"
        x, _ = as_images(self, X, reset=True, shape=shape, min_samples=2, min_reason=reason)
        seed_everything(int(self.seed))
        net = small_cnn(tuple(x.shape[1:]), n_classes=1, depth=int(self.depth), width=int(self.width), dropout=0.0)
        encoder = net.truncate("features")
        views = self.views if self.views is not None else cell_views(int(self.shift), float(self.scale),
                                                                      float(self.offset))
        objective = SimCLRObjective(encoder, int(encoder.output_shape[0]), views, proj_dim=int(self.proj_dim),
                                    hidden=int(self.hidden), temperature=float(self.temperature), seed=int(self.seed))
        config = TrainConfig(epochs=int(self.epochs), batch_size=int(self.batch_size), optimizer="adam",
                             lr=float(self.lr), weight_decay=float(self.weight_decay), loss="model",
                             schedule="onecycle", bf16=bool(self.bf16), channels_last=bool(self.channels_last),
                             seed=int(self.seed), device=self.device)
        history = fit(objective, (x, x), None, config, progress=bool(self.progress), checkpoint_dir=checkpoint_dir,
                      resume=continues(checkpoint_dir, resume))
        self.encoder_ = encoder.to(memory_format=torch.contiguous_format).eval()
        self.history_ = {k: list(v) for k, v in history.history.items()}
        self.input_shape_ = tuple(int(d) for d in x.shape[1:])
        self.feature_dim_ = int(encoder.output_shape[0])
        return self

    def transform(self, X: ImageArray) -> np.ndarray:
        """Encoder features of images ``X`` (N, H, W), (N, 1, H, W) or rows (N, H*W): float32 (N, feature_dim)."""
        if not hasattr(self, "encoder_"):
            raise NotFittedError("This ContrastiveEmbedding is not fitted yet; call fit(X) first")
        x, _ = as_images(self, X, shape=self.input_shape_, fitted=True, takes="encoder")
        return predict(self.encoder_, x, int(self.batch_size_predict)).numpy().astype(np.float32, copy=False)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of the feature columns: ``f0``, ``f1``, ..."""
        if not hasattr(self, "encoder_"):
            raise NotFittedError("This ContrastiveEmbedding is not fitted yet; call fit(X) first")
        return np.asarray([f"f{i}" for i in range(self.feature_dim_)], dtype=object)

