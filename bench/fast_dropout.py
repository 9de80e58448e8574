"""A drop-in ``nn.Dropout`` whose mask costs one random byte per element (a bench prototype).

PyTorch's CPU dropout draws one Bernoulli sample per element through a serial
scalar loop (``aten::bernoulli_``: about 18% of a bf16 MiniVGG training step on
the bench machine). Here one 64-bit draw gives eight mask bytes; an element is
kept when its byte is >= ``round(p * 256)``, so the rate is ``p`` rounded to
1/256 (exact for the lecture's 0.25 and 0.5) and kept values are scaled by the
exact inverse of the quantised keep rate. Seeded by ``torch.manual_seed`` like
``nn.Dropout``; the masks differ from ``nn.Dropout``'s for the same seed.

Used by ``bench/replearn_side.py --variant ...,fastdrop`` to measure the lever;
it belongs in :mod:`replearn.models` (layer ``dropout``) if adopted.
"""

from __future__ import annotations

import torch
from torch import nn


def byte_mask(x: torch.Tensor, p: float) -> tuple[torch.Tensor, float]:
    """A bool keep-mask laid out like ``x`` (any dense layout) and the scale ``1 / keep_rate``."""
    threshold = min(max(round(p * 256), 0), 255)
    n = x.numel()
    words = torch.randint(-(2**63), 2**63 - 1, ((n + 7) // 8,), dtype=torch.int64, device=x.device)
    flat = words.view(torch.uint8)[:n]
    if x.is_contiguous():
        mask = flat.view(x.shape) >= threshold
    else:  # e.g. channels-last: use the same strides so the elementwise ops stay dense
        mask = flat.as_strided(x.shape, x.stride()) >= threshold
    return mask, 256.0 / (256 - threshold)


class FastDropout(nn.Dropout):
    """``nn.Dropout`` with byte-quantised masks; (N, ...) -> (N, ...), identity in eval mode."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        dense = x.is_contiguous() or (x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last))
        if not dense:
            return super().forward(x)
        mask, scale = byte_mask(x, self.p)
        return torch.where(mask, x * scale, torch.zeros((), dtype=x.dtype, device=x.device))


def swap_dropout(model: nn.Module) -> int:
    """Replace every ``nn.Dropout`` in ``model`` by :class:`FastDropout` (same rate); return how many."""
    count = 0
    for parent in model.modules():
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout:
                setattr(parent, name, FastDropout(child.p))
                count += 1
    return count
