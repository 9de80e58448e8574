"""``AutoEncoderEmbedding``: a convolutional autoencoder as a scikit-learn transformer.

``fit(X)`` trains an autoencoder on images (reconstruction targets) with
:func:`replearn.train.fit`; ``transform(X)`` returns the codes of the encoder
(N, code_dim) float32, so the encoder can sit in a ``Pipeline`` in front of a
classifier::

    pipe = Pipeline([("ae", AutoEncoderEmbedding(epochs=10)), ("clf", LogisticRegression())])
    pipe.fit(images, labels)

Which model is trained is the ``model`` parameter: a registered builder name
(default ``"conv_autoencoder"``, the lecture's network, built for the image
size with ``code_dim`` and ``blocks``) or a prebuilt
:class:`~replearn.models.AutoEncoder`. ``fit`` never changes that parameter: it
trains a copy, stored as ``model_``.

Images are (N, H, W) or (N, 1, H, W) arrays or tensors; with ``image_shape``
also flattened (N, H*W) rows, so the estimator can follow other transformers
(see :mod:`replearn.encoders._inputs` for the pixel convention and the errors).

Pretrained encoders (no refit): :meth:`AutoEncoderEmbedding.from_pretrained`
loads a saved autoencoder run and returns an estimator that is already fitted
and has ``epochs=0``. ``fit`` with ``epochs=0`` and a prebuilt ``model`` only
adopts (a copy of) that model: it does not train, so such an estimator can be
put in a ``Pipeline`` and fitted, or cloned, without refitting the encoder.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from typing import Any, Sequence

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.exceptions import NotFittedError


from replearn.data.augment import make_corruption
from replearn.encoders._inputs import (ImageArray, ImageInputError, as_images, image_layout, image_tags,
                                       normalise_image_shape)
from replearn.errors import ReplearnError
from replearn.models import LECTURE_AE_BLOCKS, AutoEncoder, create_model, load_model
from replearn.train import TrainConfig, continues, fit, predict
from replearn.train.layerwise import pretrain_layerwise
from replearn.utils.runtime import resolve_device, seed_everything

MIN_IMAGES = 2
"""Fewest training images: one image teaches an autoencoder nothing (and BatchNorm cannot train on it)."""


class AutoEncoderEmbedding(TransformerMixin, BaseEstimator):
    """Train an image autoencoder and use its encoder as a transformer.

    Args:
        model: a registered autoencoder builder name (called with ``input_shape``,
            ``code_dim`` and ``blocks``) or a prebuilt :class:`AutoEncoder` (trained
            further as a copy; adopted as is when ``epochs=0``).
        code_dim: size of the code (the ``features`` layer); ignored for a prebuilt model.
        blocks: encoder convolution widths per pooling block; ignored for a prebuilt model.
        hidden: dense widths between the convolutions and the code, mirrored in the decoder
            (default none, the lecture's network); ignored for a prebuilt model.
        epochs: passes over ``X``; 0 only with a prebuilt ``model`` (no training).
        batch_size: images per step.
        lr: peak learning rate.
        optimizer: ``"adam"``, ``"adamw"`` or ``"sgd"``.
        schedule: ``None``, ``"onecycle"`` or ``"cosine"`` (stepped per batch).
        weight_decay: L2 penalty (decoupled for AdamW).
        loss: reconstruction loss, ``"bce"`` (the model ends in a sigmoid) or ``"mse"``.
        noise: input corruption while training, making a denoising autoencoder: the
            standard deviation of Gaussian noise (clipped to [0, 1]) or the fraction of
            pixels set to 0, by ``noise_kind``; the target is always the clean image. 0: none.
        noise_kind: ``"gaussian"`` or ``"dropout"`` (see :func:`replearn.data.augment.make_corruption`).
        layerwise_epochs: > 0: greedy layer-wise pretraining of the encoder first, this many
            epochs per stage on clean images (see :mod:`replearn.train.layerwise`), then the
            ``epochs`` of end-to-end training fine-tune the whole autoencoder. 0: none.
        bf16: bfloat16 autocast for forward passes where the device supports it.
        channels_last: channels-last memory format while training (faster convolutions on many CPUs).
        seed: seeds the initial weights and the shuffling.
        device: ``"auto"``, ``"cpu"`` or ``"cuda[:N]"``.
        progress: tqdm bars during training.
        validation_data: optional images (N, H, W) monitored each epoch (``val_loss`` in ``history_``).
        batch_size_predict: images per forward pass in ``transform``/``reconstruct``.
        image_shape: (H, W) or (C, H, W) of flattened input rows (N, C*H*W); None: ``X`` must be
            images (N, H, W) / (N, C, H, W) (flattened rows are then taken in a prebuilt model's size).

    Attributes:
        model_: the trained :class:`AutoEncoder` (on the training device).
        history_: per-epoch metrics (``loss``, ``val_loss``, ``lr``, ``time``); empty with ``epochs=0``.
        pretraining_: one record per layer-wise pretraining stage (empty without it).
        input_shape_: (C, H, W) the model takes.
        code_dim_: size of the codes ``transform`` returns.
        n_features_in_: pixel values per image, C*H*W (scikit-learn's feature count).
        flat_input_: whether ``fit`` got flattened rows (``inverse_transform`` then returns rows too).
    """

    def __init__(
        self,
        model: str | AutoEncoder = "conv_autoencoder",
        code_dim: int = 2,
        blocks: Sequence[Sequence[int]] = LECTURE_AE_BLOCKS,
        hidden: Sequence[int] = (),
        epochs: int = 10,
        batch_size: int = 256,
        lr: float = 3e-3,
        optimizer: str = "adam",
        schedule: str | None = "onecycle",
        weight_decay: float = 0.0,
        loss: str = "bce",
        noise: float = 0.0,
        noise_kind: str = "gaussian",
        layerwise_epochs: int = 0,
        bf16: bool = False,
        channels_last: bool = False,
        seed: int = 0,
        device: str = "auto",
        progress: bool = False,
        validation_data: ImageArray | None = None,
        batch_size_predict: int = 1024,
        image_shape: Sequence[int] | None = None,
    ) -> None:
        self.model = model
        self.code_dim = code_dim
        self.blocks = blocks
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.optimizer = optimizer
        self.schedule = schedule
        self.weight_decay = weight_decay
        self.loss = loss
        self.noise = noise
        self.noise_kind = noise_kind
        self.layerwise_epochs = layerwise_epochs
        self.bf16 = bf16
        self.channels_last = channels_last
        self.seed = seed
        self.device = device
        self.progress = progress
        self.validation_data = validation_data
        self.batch_size_predict = batch_size_predict
        self.image_shape = image_shape

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's tags: non-negative pixels, images or flattened rows, float32 out."""
        return image_tags(super().__sklearn_tags__(), float32_out=True)

    # ------------------------------------------------------------------ building
    def _images(self, X: ImageArray, name: str = "X", *, reset: bool = False,
                shape: tuple[int, ...] | None = None, source: str | None = None) -> tuple[torch.Tensor, bool]:
        """Images (N, H, W), (N, C, H, W) or rows (N, C*H*W) -> (float32 tensor (N, C, H, W) in [0, 1], were rows?).

        Before fit the size comes from ``shape`` (fit: ``image_shape`` or a prebuilt model's input);
        after fit it must be ``input_shape_``.
        """
        fitted = shape is None and hasattr(self, "input_shape_")
        expected = tuple(self.input_shape_) if fitted else shape
        return as_images(self, X, name=name, reset=reset, shape=expected, fitted=fitted, source=source,
                         min_samples=MIN_IMAGES if reset else 1,
                         min_reason="an autoencoder cannot learn from one image")

    def _check_size(self, x: torch.Tensor, name: str) -> None:
        expected = tuple(self.input_shape_)
        if tuple(x.shape[1:]) != expected:
            raise ImageInputError(
                f"AutoEncoderEmbedding: {name} images are {x.shape[2]}x{x.shape[3]} with {x.shape[1]} channel(s); "
                f"the model takes {expected[1]}x{expected[2]} with {expected[0]} channel(s)"
            )

    def _build(self, input_shape: tuple[int, ...]) -> AutoEncoder:
        if isinstance(self.model, AutoEncoder):
            return copy.deepcopy(self.model)
        if not isinstance(self.model, str):
            raise ReplearnError(
                f"AutoEncoderEmbedding: model must be a registered model name or an AutoEncoder, "
                f"got {type(self.model).__name__}"
            )
        seed_everything(self.seed)
        blocks = tuple(tuple(int(w) for w in b) for b in self.blocks)
        extra = {"hidden": tuple(int(n) for n in self.hidden)} if len(self.hidden) else {}
        built = create_model(self.model, input_shape=input_shape, code_dim=int(self.code_dim), blocks=blocks, **extra)
        if not isinstance(built, AutoEncoder):
            raise ReplearnError(
                f"AutoEncoderEmbedding: model {self.model!r} builds a {type(built).__name__}, not an AutoEncoder"
            )
        return built

    def _config(self) -> TrainConfig:
        return TrainConfig(
            epochs=int(self.epochs), batch_size=int(self.batch_size), optimizer=self.optimizer, lr=float(self.lr),
            weight_decay=float(self.weight_decay), loss=self.loss, schedule=self.schedule, bf16=bool(self.bf16),
            channels_last=bool(self.channels_last), seed=int(self.seed), device=self.device,
        )

    # ------------------------------------------------------------------ sklearn API
    def fit(self, X: ImageArray, y: Any = None, checkpoint_dir: str | os.PathLike | None = None,
            resume: bool = False) -> "AutoEncoderEmbedding":
        """Train the autoencoder to reconstruct ``X`` (N, H, W), (N, 1, H, W) or rows (N, H*W); ``y`` is ignored.

        With a prebuilt ``model`` and ``epochs=0`` the model is adopted without training.
        ``checkpoint_dir``: checkpoints after every epoch (``checkpoint.pt`` there, layer-wise stages in
        ``checkpoints/layerwise-<k>/``); ``resume``: continue from them (the same result as an
        uninterrupted fit; a stage without a checkpoint starts afresh).
        """
        if self.loss not in ("bce", "mse"):
            raise ReplearnError(f"AutoEncoderEmbedding: loss {self.loss!r} is not allowed; use 'bce' or 'mse'")
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, (int, np.integer)) or self.epochs < 0:
            raise ReplearnError(f"AutoEncoderEmbedding: epochs must be an integer >= 0, got {self.epochs!r}")
        if self.epochs == 0 and not isinstance(self.model, AutoEncoder):
            raise ReplearnError(
                "AutoEncoderEmbedding: epochs=0 (no training) needs a prebuilt AutoEncoder as model "
                f"(e.g. from_pretrained(path)), got model={self.model!r}"
            )
        layerwise = self.layerwise_epochs
        if isinstance(layerwise, bool) or not isinstance(layerwise, (int, np.integer)) or layerwise < 0:
            raise ReplearnError(f"AutoEncoderEmbedding: layerwise_epochs must be an integer >= 0, got {layerwise!r}")
        if layerwise and self.epochs == 0:
            raise ReplearnError("AutoEncoderEmbedding: layerwise_epochs > 0 needs epochs > 0 (pretraining is "
                                "followed by end-to-end training)")
        try:
            corrupt = make_corruption(self.noise_kind, float(self.noise))
        except (ReplearnError, TypeError, ValueError) as exc:
            raise ReplearnError(f"AutoEncoderEmbedding: noise={self.noise!r}, noise_kind={self.noise_kind!r}: {exc}") from None
        shape, source = normalise_image_shape(self.image_shape, "AutoEncoderEmbedding"), None
        if shape is None and isinstance(self.model, AutoEncoder):
            shape, source = tuple(int(d) for d in self.model.input_shape), "the prebuilt model"
        for attr in ("input_shape_", "model_"):  # a refit starts from scratch
            self.__dict__.pop(attr, None)
        x, flat = self._images(X, reset=True, shape=shape, source=source)
        model = self._build(tuple(x.shape[1:]))
        self.input_shape_ = tuple(int(d) for d in model.input_shape)
        self._check_size(x, "X")
        self.flat_input_ = flat
        self.code_dim_ = int(model.code_dim)
        self.model_ = model
        self.history_: dict[str, list[float]] = {}
        self.pretraining_: list[dict[str, Any]] = []
        if self.epochs == 0:
            self.model_.to(resolve_device(self.device)).eval()
            return self
        val = None
        if self.validation_data is not None:
            xv, _ = self._images(self.validation_data, "validation_data")
            val = (xv, xv)
        config = self._config()
        if layerwise:
            self.pretraining_ = pretrain_layerwise(
                self.model_.encoder, x, dataclasses.replace(config, epochs=int(layerwise)), image_loss=self.loss,
                progress=bool(self.progress), checkpoint_dir=checkpoint_dir, resume=resume)
        history = fit(self.model_, (x, x), val, config, augment=corrupt, progress=bool(self.progress),
                      checkpoint_dir=checkpoint_dir, resume=continues(checkpoint_dir, resume))
        self.model_.to(memory_format=torch.contiguous_format).eval()
        self.history_ = {k: list(v) for k, v in history.history.items()}
        return self

    def _fitted(self) -> AutoEncoder:
        if not hasattr(self, "model_"):
            raise NotFittedError(
                "This AutoEncoderEmbedding is not fitted yet; call fit(X) or use AutoEncoderEmbedding.from_pretrained(path)"
            )
        return self.model_

    def transform(self, X: ImageArray) -> np.ndarray:
        """Codes of images ``X`` (N, H, W), (N, 1, H, W) or rows (N, H*W): float32 (N, code_dim)."""
        model = self._fitted()
        x, _ = self._images(X)
        return predict(model.encoder, x, int(self.batch_size_predict)).numpy().astype(np.float32, copy=False)

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        """Decode codes ``X`` (N, code_dim) into images: float32 (N, H, W) in [0, 1] ((N, C, H, W) for C > 1).

        Fitted on flattened rows, it returns rows (N, C*H*W) instead, as ``transform`` took them.
        """
        model = self._fitted()
        codes = np.asarray(X, dtype=np.float32)
        if codes.ndim != 2 or codes.shape[1] != self.code_dim_:
            raise ImageInputError(
                f"AutoEncoderEmbedding: codes have shape {codes.shape}; expected (N, {self.code_dim_})"
            )
        out = predict(model.decoder, torch.from_numpy(np.ascontiguousarray(codes)), int(self.batch_size_predict))
        return image_layout(out.numpy().astype(np.float32, copy=False), bool(getattr(self, "flat_input_", False)))

    def reconstruct(self, X: ImageArray) -> np.ndarray:
        """Reconstructions of images ``X``: float32 (N, H, W) in [0, 1] ((N, C, H, W) for C > 1; rows for rows)."""
        model = self._fitted()
        x, flat = self._images(X)
        return image_layout(predict(model, x, int(self.batch_size_predict)).numpy().astype(np.float32, copy=False),
                            flat)

    def score(self, X: ImageArray, y: Any = None) -> float:
        """Negative mean squared reconstruction error of ``X`` (greater is better, as scikit-learn expects)."""
        self._fitted()
        x = self._images(X)[0].numpy()
        rec = self.reconstruct(X).reshape(x.shape)
        return -float(np.mean((x.astype(np.float64) - rec) ** 2))

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of the code columns: ``z0``, ``z1``, ..."""
        self._fitted()
        return np.asarray([f"z{i}" for i in range(self.code_dim_)], dtype=object)

    # ------------------------------------------------------------------ pretrained
    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, **params: Any) -> "AutoEncoderEmbedding":
        """A fitted estimator around the autoencoder saved at ``path`` (run folder or ``.safetensors``).

        The result has ``model`` = the loaded :class:`AutoEncoder` and ``epochs=0``,
        so ``fit`` (e.g. inside a ``Pipeline``) keeps the weights. ``params`` set
        other parameters (``device``, ``batch_size_predict``, ...; ``epochs > 0``
        fine-tunes a copy on the next ``fit``).
        """
        model, _meta = load_model(path)
        if not isinstance(model, AutoEncoder):
            raise ReplearnError(f"{path}: holds a {type(model).__name__}, not an autoencoder")
        params.setdefault("epochs", 0)
        est = cls(model=model, **params)
        est.model_ = copy.deepcopy(model).to(resolve_device(est.device)).eval()
        est.input_shape_ = tuple(int(d) for d in model.input_shape)
        est.code_dim_ = int(model.code_dim)
        est.n_features_in_ = int(np.prod(est.input_shape_))
        est.flat_input_ = est.image_shape is not None
        est.history_ = {}
        est.pretraining_ = []
        return est
