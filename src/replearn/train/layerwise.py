"""Greedy layer-wise unsupervised pretraining of an encoder (the lecture's "Unsupervised Pretraining").

The encoder is cut into stages at its pooling layers, plus a last stage for
what follows the last pool (flatten and the code layer). Stage by stage, in
order, a shallow autoencoder is trained: the stage itself followed by a small
throw-away decoder that maps the stage's output back to the stage's input.
Every earlier stage is frozen (weights and BatchNorm statistics), so each
stage learns to encode the output of the stages below it ("train an
autoencoder, discard the decoder, use the encoding as input for the next
layer"). Afterwards the encoder is unfrozen and is meant to be fine-tuned, for
example by training the whole autoencoder end to end, or a classifier on top.

Stage losses: the first stage reconstructs the images with the autoencoder's
own loss (``"bce"`` through a sigmoid, or ``"mse"``); later stages reconstruct
feature maps and use the mean squared error. Every stage trains through
:func:`replearn.train.fit` with loss ``"model"`` (the stage objective computes
its per-sample losses), so schedules, bf16, seeding and progress bars work as
for any other run. With ``checkpoint_dir`` each stage keeps its checkpoint in
``<checkpoint_dir>/checkpoints/layerwise-<k>/``, and ``resume=True`` replays the
stages from them (see :mod:`replearn.train.checkpoint`): finished stages are
loaded, not retrained, and the result equals an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from replearn.errors import ReplearnError
from replearn.models.freeze import freeze, unfreeze
from replearn.models.network import Network, init_glorot
from replearn.train.checkpoint import continues, stage_dir
from replearn.train.config import TrainConfig
from replearn.train.engine import fit

POOLS = ("maxpool", "avgpool")
STAGE_LOSSES = ("bce", "mse")


@dataclasses.dataclass(frozen=True)
class Stage:
    """One pretraining stage: layers ``[start, stop)`` of the encoder."""

    start: int
    stop: int
    layers: tuple[str, ...]
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]


def encoder_stages(encoder: Network, cut_after: tuple[str, ...] = POOLS) -> list[Stage]:
    """Cut ``encoder`` after each layer whose op is in ``cut_after`` (pooling layers by default; for a
    dense stack e.g. ``("sigmoid",)``, one stage per hidden layer); what follows the last cut is the last stage."""
    if not isinstance(encoder, Network):
        raise ReplearnError(
            f"layer-wise pretraining needs a replearn Network encoder (built from a spec), got {type(encoder).__name__}"
        )
    names = encoder.layer_names
    ops = [text.split()[0].lower() for text in encoder.spec]
    cuts = [i + 1 for i, op in enumerate(ops) if op in cut_after]
    if not cuts or cuts[-1] != len(names):
        cuts.append(len(names))
    stages, start, shape = [], 0, tuple(encoder.input_shape)
    for stop in cuts:
        out_shape = tuple(encoder.layer_shapes[names[stop - 1]])
        stages.append(Stage(start, stop, tuple(names[start:stop]), shape, out_shape))
        start, shape = stop, out_shape
    return stages


def _stage_decoder(stage: Stage, sigmoid: bool) -> nn.Module:
    """A shallow decoder from the stage's output back to its input shape (a 3x3 conv or a dense layer)."""
    out, target = stage.output_shape, stage.input_shape
    if len(out) == 3 and len(target) == 3:
        layers: list[nn.Module] = [nn.Upsample(size=tuple(target[1:]), mode="nearest"),
                                   nn.Conv2d(out[0], target[0], 3, padding=1)]
    else:
        layers = [nn.Flatten(), nn.Linear(math.prod(out), math.prod(target)), nn.Unflatten(1, tuple(target))]
    if sigmoid:
        layers.append(nn.Sigmoid())
    decoder = nn.Sequential(*layers)
    init_glorot(decoder)
    return decoder


class StageObjective(nn.Module):
    """Per-sample reconstruction loss of one stage on the (frozen) output of the stages below it.

    ``forward(x)`` -> (N,) losses: ``prefix`` (no gradient) maps images to the stage's input
    ``t``; ``decoder(stage(t))`` is compared with ``t`` by ``loss``.
    """

    def __init__(self, prefix: nn.Module, stage: nn.Module, decoder: nn.Module, loss: str) -> None:
        super().__init__()
        if loss not in STAGE_LOSSES:
            raise ReplearnError(f"layer-wise pretraining: stage loss {loss!r} is unknown; use 'bce' or 'mse'")
        self.prefix, self.stage, self.decoder, self.loss = prefix, stage, decoder, loss

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self.prefix(x)
        recon = self.decoder(self.stage(target))
        with torch.autocast(x.device.type, enabled=False):
            recon, target = recon.float(), target.float()
            if self.loss == "bce":
                per = F.binary_cross_entropy(recon, target, reduction="none")
            else:
                per = (recon - target).square()
        return per.flatten(1).mean(dim=1)


def pretrain_layerwise(
    encoder: Network,
    x: torch.Tensor,
    config: TrainConfig,
    *,
    image_loss: str = "bce",
    progress: bool = True,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    cut_after: tuple[str, ...] = POOLS,
) -> list[dict[str, Any]]:
    """Greedy layer-wise pretraining of ``encoder`` in place on images ``x`` (N, C, H, W) float32.

    Args:
        encoder: a :class:`Network` with pooling layers (e.g. ``conv_autoencoder(...).encoder``).
        x: the (unlabelled) training images.
        config: training settings of every stage (``epochs`` is per stage; ``loss`` is replaced
            by ``"model"``).
        image_loss: loss of the first stage, which reconstructs the images: ``"bce"`` (images
            in [0, 1], sigmoid output) or ``"mse"``. Later stages use ``"mse"`` on feature maps.
        progress: tqdm bars per epoch.
        checkpoint_dir: the run folder; stage ``k`` checkpoints into ``checkpoints/layerwise-<k>/`` there.
        resume: continue each stage from its checkpoint where it has one (finished stages only load).
        cut_after: ops after which a stage ends (see :func:`encoder_stages`).

    Returns:
        One record per stage: its layers, input and output shapes, loss and per-epoch losses.
        On return every encoder parameter is trainable again (ready for fine-tuning).
    """
    if image_loss not in STAGE_LOSSES:
        raise ReplearnError(f"layer-wise pretraining: image_loss {image_loss!r} is unknown; use 'bce' or 'mse'")
    if config.epochs < 1:
        raise ReplearnError(f"layer-wise pretraining needs at least 1 epoch per stage, got {config.epochs}")
    stages = encoder_stages(encoder, cut_after)
    modules = list(encoder)
    stage_config = dataclasses.replace(config, loss="model", monitor="loss", early_stopping_patience=None,
                                       restore_best=False)
    records: list[dict[str, Any]] = []
    was_training = encoder.training
    try:
        for k, stage in enumerate(stages):
            prefix = nn.Sequential(*modules[: stage.start]) if stage.start else nn.Identity()
            freeze(prefix)
            body = nn.Sequential(*modules[stage.start: stage.stop])
            unfreeze(body)
            loss = image_loss if k == 0 else "mse"
            with torch.random.fork_rng(devices=[]):  # seeded, and leaves the caller's random stream alone
                torch.manual_seed(config.seed + k)
                decoder = _stage_decoder(stage, sigmoid=(k == 0 and loss == "bce"))
            objective = StageObjective(prefix, body, decoder, loss)
            if progress:
                print(f"layer-wise pretraining, stage {k + 1}/{len(stages)}: {', '.join(stage.layers)} "
                      f"({'x'.join(map(str, stage.input_shape))} -> {'x'.join(map(str, stage.output_shape))}, "
                      f"{loss})", flush=True)
            where = stage_dir(checkpoint_dir, f"layerwise-{k + 1}")
            history = fit(objective, (x, x), None, dataclasses.replace(stage_config, seed=config.seed + k),
                          progress=progress, checkpoint_dir=where, resume=continues(where, resume))
            records.append({
                "stage": k + 1, "layers": list(stage.layers), "input_shape": list(stage.input_shape),
                "output_shape": list(stage.output_shape), "loss": loss,
                "epoch_losses": [float(v) for v in history.history["loss"]],
                "seconds": round(float(sum(history.history["time"])), 1),
            })
    finally:
        unfreeze(encoder)
        encoder.train(was_training)
    return records
