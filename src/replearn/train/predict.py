"""Inference helpers: batched ``predict`` and ``evaluate`` under ``torch.inference_mode``."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from replearn.train._device import autocast, model_device, resolve_bf16, to_device
from replearn.train.batching import iter_batches
from replearn.train.losses import make_loss


def _is_classification(y: torch.Tensor) -> bool:
    return y.dim() == 1 and not y.is_floating_point() and not y.is_complex()


@torch.inference_mode()
def predict(
    model: nn.Module,
    x: torch.Tensor,
    batch_size: int = 256,
    *,
    device: torch.device | None = None,
    channels_last: bool = False,
    bf16: bool = False,
) -> torch.Tensor:
    """Model outputs for ``x`` (N, C, H, W), computed in eval mode, as a float32 CPU tensor (N, ...).

    ``device`` defaults to the model's device; the model's train/eval mode is restored afterwards.
    """
    device = device or model_device(model)
    use_bf16 = resolve_bf16(bf16, device)
    was_training = model.training
    model.eval()
    try:
        outs = []
        for xb, _ in iter_batches(x, None, batch_size):
            with autocast(device, use_bf16):
                out = model(to_device(xb, device, channels_last))
            outs.append(out.float().cpu())
        if not outs:
            return torch.empty(0)
        return torch.cat(outs)
    finally:
        model.train(was_training)


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss: str | Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = "cross_entropy",
    batch_size: int = 256,
    *,
    device: torch.device | None = None,
    channels_last: bool = False,
    bf16: bool = False,
) -> dict[str, float]:
    """Mean loss (and accuracy for int64 class targets) of ``model`` on ``(x, y)`` in eval mode.

    Args:
        model: maps (B, C, H, W) to outputs matching ``y``.
        x: inputs (N, C, H, W) float32.
        y: int64 classes (N,) or float targets of the output's shape.
        loss: a loss name (see :func:`make_loss`) or a callable returning the batch-mean loss.
        batch_size: samples per forward pass (does not change the result).

    Returns:
        ``{"loss": float}`` plus ``"accuracy"`` (fraction in [0, 1]) for class targets.
    """
    device = device or model_device(model)
    use_bf16 = resolve_bf16(bf16, device)
    loss_fn = make_loss(loss) if isinstance(loss, str) else loss
    classification = _is_classification(y) and loss != "model"
    was_training = model.training
    model.eval()
    try:
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        for xb, yb in iter_batches(x, y, batch_size):
            xb = to_device(xb, device, channels_last)
            yb = to_device(yb, device)
            with autocast(device, use_bf16):
                out = model(xb)
            out = out.float()
            loss_sum += loss_fn(out, yb).double() * xb.shape[0]
            if classification:
                correct += (out.argmax(dim=1) == yb).sum()
        n = max(int(x.shape[0]), 1)
        result = {"loss": loss_sum.item() / n}
        if classification:
            result["accuracy"] = correct.item() / n
        return result
    finally:
        model.train(was_training)
