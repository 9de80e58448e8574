"""``FineTunedClassifier``: a pretrained encoder with a new head, fine-tuned end to end.

A self-supervised encoder (SimCLR's ``ContrastiveEmbedding.encoder_``, an
autoencoder's ``model_.encoder``, or a CNN trained on another data set up to
its features) gets a fresh classification head; the whole network is then
trained on the labelled images, the encoder at ``encoder_lr_scale`` times the
head's learning rate (discriminative rates, as in the Keras and fastai
fine-tuning guides: the pretrained features should move less than the new
head). The rates are separate optimiser parameter groups of the one engine
:func:`replearn.train.fit`. With ``unlabelled`` images it is semi-supervised on
top (FixMatch-style, see :class:`~replearn.encoders.SemiSupervisedClassifier`)::

    ssl = ContrastiveEmbedding(epochs=30).fit(unlabelled)
    clf = FineTunedClassifier(encoder=pretrained_encoder(ssl), encoder_lr_scale=0.1, epochs=20)
    clf.fit(labelled, labels).predict(test)

``encoder`` is an ``nn.Module`` (copied on ``fit``, never changed), so the
estimator clones and pickles like any other.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping, Sequence

import torch
from torch import nn

from replearn.encoders.cnn_classifier import Augment
from replearn.encoders.semi_supervised_classifier import _CNN_PARAMS, SemiSupervisedClassifier
from replearn.encoders._inputs import ImageArray, ImageInputError
from replearn.errors import ReplearnError
from replearn.models import init_glorot
from replearn.utils.runtime import seed_everything


def pretrained_encoder(estimator: Any) -> nn.Module:
    """The encoder of a fitted ``ContrastiveEmbedding`` (``encoder_``) or ``AutoEncoderEmbedding`` (``model_.encoder``)."""
    if hasattr(estimator, "encoder_"):
        return estimator.encoder_
    model = getattr(estimator, "model_", None)
    if isinstance(getattr(model, "encoder", None), nn.Module):
        return model.encoder
    raise ReplearnError(f"pretrained_encoder: {type(estimator).__name__} is not a fitted encoder estimator "
                        "(ContrastiveEmbedding or AutoEncoderEmbedding, after fit)")


class EncoderHead(nn.Module):
    """``head(encoder(x))``: images (N, C, H, W) -> features (N, D) -> logits (N, K).

    Its parameters are named ``encoder.*`` and ``head.*`` (what discriminative rates select).
    """

    def __init__(self, encoder: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x).flatten(1))


class FineTunedClassifier(SemiSupervisedClassifier):
    """A pretrained encoder plus a new head, trained end to end with a lower rate for the encoder.

    Args:
        encoder: ``nn.Module`` mapping images (N, C, H, W) to features (N, D) (see :func:`pretrained_encoder`).
        encoder_lr_scale: the encoder's learning rate as a fraction of ``lr`` (0 freezes it in effect).
        head_hidden: hidden units of the head (Dense-ReLU-Dropout-Dense); 0: one linear layer.
        head_dropout: dropout of the hidden layer.
        unlabelled: optional images for FixMatch-style training on top (None: supervised fine-tuning).
        The other parameters are :class:`~replearn.encoders.SemiSupervisedClassifier`'s; ``network`` and
        ``network_params`` are not used.

    Attributes: those of :class:`~replearn.encoders.CNNClassifier`; ``model_`` is an :class:`EncoderHead`.
    """

    def __init__(self, network: str | nn.Module | None = None, network_params: Mapping[str, Any] | None = None,
                 epochs: int = 10, batch_size: int = 32, optimizer: str = "adam", lr: float = 1e-3,
                 momentum: float = 0.9, nesterov: bool = False, weight_decay: float = 0.0,
                 label_smoothing: float = 0.0, schedule: str | None = None, bf16: bool = False,
                 channels_last: bool = False, augment: Augment | None = None, seed: int = 0, seeding: str = "all",
                 classes: Sequence[Any] | None = None, device: str = "auto", progress: bool = False,
                 batch_size_predict: int = 256, image_shape: Sequence[int] | None = None,
                 unlabelled: ImageArray | None = None, threshold: float = 0.95, ratio: int = 7,
                 unlabelled_weight: float = 1.0, strength: float = 1.0, views: str | tuple = "digits",
                 steps_per_epoch: int | None = None, ema: float = 0.0, align: bool = False, neighbours: int = 0,
                 encoder: nn.Module | None = None,
                 encoder_lr_scale: float = 0.1, head_hidden: int = 0, head_dropout: float = 0.0) -> None:
        kw = dict(locals())
        semi = ("unlabelled", "threshold", "ratio", "unlabelled_weight", "strength", "views", "steps_per_epoch", "ema",
                "align", "neighbours")
        super().__init__(**{k: kw[k] for k in _CNN_PARAMS + semi})
        self.encoder = encoder
        self.encoder_lr_scale = encoder_lr_scale
        self.head_hidden = head_hidden
        self.head_dropout = head_dropout

    def _needs_unlabelled(self) -> bool:
        return False

    def _lr_scales(self) -> dict[str, float]:
        return {"encoder.": float(self.encoder_lr_scale)}

    def _check_settings(self) -> None:
        if not isinstance(self.encoder, nn.Module):
            raise ReplearnError(f"FineTunedClassifier: encoder must be a pretrained nn.Module, got "
                                f"{type(self.encoder).__name__} (see replearn.encoders.pretrained_encoder)")
        scale = self.encoder_lr_scale
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0.0 <= scale <= 10.0:
            raise ReplearnError(f"FineTunedClassifier: encoder_lr_scale must be a number in [0, 10], got {scale!r}")
        if isinstance(self.head_hidden, bool) or int(self.head_hidden) != self.head_hidden or self.head_hidden < 0:
            raise ReplearnError(f"FineTunedClassifier: head_hidden must be an integer >= 0, got {self.head_hidden!r}")
        if not 0.0 <= float(self.head_dropout) < 1.0:
            raise ReplearnError(f"FineTunedClassifier: head_dropout must be in [0, 1), got {self.head_dropout!r}")
        self.train_config()

    def _build(self, input_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
        encoder = copy.deepcopy(self.encoder).to("cpu", memory_format=torch.contiguous_format).train()
        for p in encoder.parameters():
            p.requires_grad_(True)
        try:
            with torch.no_grad():
                was = encoder.training
                encoder.eval()
                dim = int(encoder(torch.zeros((2, *input_shape))).flatten(1).shape[1])
                encoder.train(was)
        except RuntimeError as exc:
            raise ImageInputError(f"FineTunedClassifier: the encoder cannot take images of shape {input_shape}: "
                                  f"{str(exc).splitlines()[0]}") from None
        seed_everything(int(self.seed)) if self.seeding == "all" else torch.manual_seed(int(self.seed))
        hidden = int(self.head_hidden)
        if hidden:
            head: nn.Module = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Dropout(float(self.head_dropout)),
                                            nn.Linear(hidden, n_classes))
        else:
            head = nn.Linear(dim, n_classes)
        init_glorot(head)
        return EncoderHead(encoder, head)
