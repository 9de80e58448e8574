"""``CellAugment``: augmentation that suits cell crops (flips, 90-degree rotations, small intensity changes).

A cell seen under the microscope has no preferred orientation, so every
element of the square's symmetry group (4 rotations by 90 degrees, each with
or without a mirror flip) gives an equally plausible crop of the same stage;
none of them interpolates pixels, so the thin membrane ring stays sharp.
Brightness varies from cell to cell and field to field, so a small random
gain and offset are plausible too. Larger changes (arbitrary-angle rotations,
crops, blur) are left out on purpose: they change what a septum looks like.

The transform is a callable ``augment(x, generator)`` as
:func:`replearn.train.fit` expects: ``x`` is a batch (B, C, H, W) in [0, 1],
``generator`` the CPU ``torch.Generator`` that ``fit`` seeds per epoch, so an
augmented run is reproducible.
"""

from __future__ import annotations

import torch

from replearn.errors import ReplearnError


def _dihedral(x: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    """Rotate (B, C, H, W) by ``k`` quarter turns, then mirror left-right when ``flip``."""
    out = torch.rot90(x, k, dims=(2, 3)) if k else x
    return torch.flip(out, dims=(3,)) if flip else out


class CellAugment:
    """Random symmetries and intensity changes of cell crops, per image.

    Args:
        flips: mirror each image left-right and/or up-down at random.
        rot90: rotate each image by a random multiple of 90 degrees (square images
            only; on non-square images only the 180-degree turn is used, which flips give too).
        scale: multiply each image by a gain drawn uniformly from [1 - scale, 1 + scale].
        offset: add a brightness offset drawn uniformly from [-offset, offset].

    With both ``flips`` and ``rot90`` every one of the 8 symmetries of the square
    is equally likely. Results are clipped to [0, 1].
    """

    def __init__(self, flips: bool = True, rot90: bool = True, scale: float = 0.1, offset: float = 0.05) -> None:
        self.flips = flips
        self.rot90 = rot90
        self.scale = scale
        self.offset = offset
        self._check()

    def _check(self) -> None:
        for name in ("flips", "rot90"):
            if not isinstance(getattr(self, name), bool):
                raise ReplearnError(f"CellAugment: {name} must be true or false, got {getattr(self, name)!r}")
        for name in ("scale", "offset"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ReplearnError(f"CellAugment: {name} must be a number in [0, 1), got {value!r}")

    @property
    def identity(self) -> bool:
        """True when the transform changes nothing."""
        return not (self.flips or self.rot90 or self.scale or self.offset)

    def __repr__(self) -> str:
        return f"CellAugment(flips={self.flips}, rot90={self.rot90}, scale={self.scale}, offset={self.offset})"

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Augment a batch ``x`` (B, C, H, W) in [0, 1]; returns a new tensor of the same shape and device."""
        if x.dim() != 4:
            raise ReplearnError(f"CellAugment: expected a batch (B, C, H, W), got shape {tuple(x.shape)}")
        if self.identity or x.shape[0] == 0:
            return x
        b = x.shape[0]
        square = x.shape[2] == x.shape[3]
        # All random numbers come from the CPU generator, whatever the data's device.
        if self.rot90 and square:
            turns = torch.randint(0, 4, (b,), generator=generator)
        elif self.rot90 or self.flips:
            turns = 2 * torch.randint(0, 2, (b,), generator=generator)
        else:
            turns = torch.zeros(b, dtype=torch.int64)
        mirror = torch.randint(0, 2, (b,), generator=generator).bool() if self.flips else torch.zeros(b, dtype=torch.bool)
        gain = 1.0 + self.scale * (2.0 * torch.rand(b, generator=generator) - 1.0)
        shift = self.offset * (2.0 * torch.rand(b, generator=generator) - 1.0)

        out = x.clone()
        for k in (0, 1, 2, 3):
            for flip in (False, True):
                if k == 0 and not flip:
                    continue
                sel = ((turns == k) & (mirror == flip)).nonzero().flatten()
                if sel.numel():
                    idx = sel.to(x.device)
                    out[idx] = _dihedral(x.index_select(0, idx), k, flip)
        if self.scale or self.offset:
            view = (b,) + (1,) * (x.dim() - 1)
            out = out * gain.to(x.device, x.dtype).view(view) + shift.to(x.device, x.dtype).view(view)
            out = out.clamp_(0.0, 1.0)
        return out
