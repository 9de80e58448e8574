"""``DigitAugment``: geometric and intensity changes that keep a digit (or a garment) what it is.

The strong view of FixMatch-style semi-supervised training on MNIST-like images:
a random affine map (rotation, scale, shear, shift), a smooth elastic
deformation (Simard et al. 2003, "Best practices for convolutional neural
networks applied to visual document analysis"), a random gain and gamma of the
intensities and a cut-out square (DeVries & Taylor 2017), all in one
``grid_sample`` plus two cheap element-wise steps. No mirror flips: a mirrored
digit can be another digit.

``strength`` in [0, 1] scales every magnitude at once (0: identity); 1 gives
rotations up to 30 degrees, scale 0.8..1.2, shear 0.3, shifts of 3 px,
elastic displacements of about 2 px, gain 0.6..1.4, gamma 0.6..1.6 and a
cut-out square of up to half the side. Random numbers come from the CPU
generator that :func:`replearn.train.fit` passes, so a run is reproducible.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from replearn.errors import ReplearnError

#: Magnitudes at ``strength=1``.
MAX_ROTATION_DEG = 30.0
MAX_SCALE = 0.2
MAX_SHEAR = 0.3
MAX_SHIFT_PX = 3.0
MAX_ELASTIC_PX = 2.0
MAX_GAIN = 0.4
MAX_LOG_GAMMA = 0.5
MAX_CUTOUT = 0.5
ELASTIC_GRID = 5  # the displacement field is drawn on a 5x5 grid and upsampled (smooth)


def _uniform(n: int, half: float, generator: torch.Generator | None) -> torch.Tensor:
    """(n,) uniform in [-half, half] from ``generator``."""
    return half * (2.0 * torch.rand(n, generator=generator) - 1.0)


class DigitAugment:
    """Random affine + elastic warps, intensity changes and cut-out of images (B, C, H, W) in [0, 1].

    Args:
        strength: 0..1, scales every magnitude (see the module docstring).
        elastic: add the smooth elastic displacement.
        cutout: erase one random square per image.
    """

    def __init__(self, strength: float = 1.0, elastic: bool = True, cutout: bool = True) -> None:
        self.strength = strength
        self.elastic = elastic
        self.cutout = cutout
        if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0.0 <= strength <= 1.0:
            raise ReplearnError(f"DigitAugment: strength must be a number in [0, 1], got {strength!r}")

    def __repr__(self) -> str:
        return f"DigitAugment(strength={self.strength}, elastic={self.elastic}, cutout={self.cutout})"

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment ``x`` (B, C, H, W) in [0, 1]; a new tensor of the same shape on ``x``'s device."""
        if x.dim() != 4:
            raise ReplearnError(f"DigitAugment: expected a batch (B, C, H, W), got shape {tuple(x.shape)}")
        s = float(self.strength)
        if s == 0.0 or x.shape[0] == 0:
            return x
        b, _, h, w = x.shape
        angle = _uniform(b, math.radians(MAX_ROTATION_DEG) * s, generator)
        scale = 1.0 + _uniform(b, MAX_SCALE * s, generator)
        shear = _uniform(b, MAX_SHEAR * s, generator)
        shift = _uniform(2 * b, 2.0 * MAX_SHIFT_PX * s, generator).view(2, b) / torch.tensor([[w], [h]])
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack([torch.stack([cos, -sin + shear * cos, shift[0]], 1),
                             torch.stack([sin, cos + shear * sin, shift[1]], 1)], 1)  # (B, 2, 3)
        grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)  # (B, H, W, 2)
        if self.elastic:
            coarse = torch.randn(b, 2, ELASTIC_GRID, ELASTIC_GRID, generator=generator)
            field = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=True)
            field = field * (MAX_ELASTIC_PX * s) * torch.tensor([2.0 / w, 2.0 / h]).view(1, 2, 1, 1)
            grid = grid + field.permute(0, 2, 3, 1).to(x.device, x.dtype)
        out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False).clamp_(0.0, 1.0)
        view = (b, 1, 1, 1)
        gamma = torch.exp(_uniform(b, MAX_LOG_GAMMA * s, generator)).to(x.device, x.dtype).view(view)
        gain = (1.0 + _uniform(b, MAX_GAIN * s, generator)).to(x.device, x.dtype).view(view)
        out = (out.clamp_min(1e-6).pow(gamma) * gain).clamp_(0.0, 1.0)
        if self.cutout:
            side = (torch.rand(b, generator=generator) * MAX_CUTOUT * s * min(h, w)).round().long()
            top = (torch.rand(b, generator=generator) * h).long()
            left = (torch.rand(b, generator=generator) * w).long()
            rows, cols = torch.arange(h).view(1, h, 1), torch.arange(w).view(1, 1, w)
            half = (side // 2).view(b, 1, 1)
            box = ((rows - top.view(b, 1, 1)).abs() <= half) & ((cols - left.view(b, 1, 1)).abs() <= half)
            box &= (side > 0).view(b, 1, 1)
            out = out.masked_fill(box.unsqueeze(1).to(x.device), 0.0)
        return out
