"""Dropout whose mask costs one random byte per element.

PyTorch's CPU dropout draws one Bernoulli sample per element in a serial
scalar loop (``aten::bernoulli_``): about 18% of a bf16 MiniVGG training step
on a 2-core CPU (docs/performance.md). Here one 64-bit random draw gives eight
mask bytes, and an element is kept when its byte is at least ``round(p * 256)``.
So the rate is ``p`` rounded to a multiple of 1/256 (exact for the lecture's
0.25 and 0.5; 0.3 becomes 77/256 = 0.3008), and kept values are scaled by the
exact inverse of the quantised keep rate, so the expected output equals the
input as with ``nn.Dropout``. Seeded by ``torch.manual_seed``; the masks differ
from ``nn.Dropout``'s for the same seed.
"""

from __future__ import annotations

import torch
from torch import nn

LEVELS = 256


def quantised_rate(p: float) -> float:
    """The drop rate actually used for a requested rate ``p``: ``round(p * 256) / 256``."""
    return min(max(round(p * LEVELS), 0), LEVELS - 1) / LEVELS


def byte_keep_mask(x: torch.Tensor, p: float) -> tuple[torch.Tensor, float]:
    """A bool keep-mask with the shape and memory layout of ``x``, and the scale ``1 / keep_rate``."""
    threshold = round(quantised_rate(p) * LEVELS)
    n = x.numel()
    words = torch.randint(-(2**63), 2**63 - 1, ((n + 7) // 8,), dtype=torch.int64, device=x.device)
    flat = words.view(torch.uint8)[:n]
    if x.is_contiguous():
        mask = flat.view(x.shape) >= threshold
    else:  # channels-last: the same strides keep the elementwise ops dense
        mask = flat.as_strided(x.shape, x.stride()) >= threshold
    return mask, LEVELS / (LEVELS - threshold)


class Dropout(nn.Dropout):
    """``nn.Dropout`` with byte-quantised masks (see the module doc); (N, ...) -> (N, ...), identity in eval mode."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        dense = x.is_contiguous() or (x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last))
        if not dense:  # an unusual layout: fall back to PyTorch's own
            return super().forward(x)
        mask, scale = byte_keep_mask(x, self.p)
        return torch.where(mask, x * scale, torch.zeros((), dtype=x.dtype, device=x.device))
