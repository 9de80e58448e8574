"""Batch augmentations for small images, on tensors, seeded by a ``torch.Generator``.

These are the ``augment`` functions :func:`replearn.train.fit` accepts:
``f(x, generator) -> x`` applied to each training batch (N, C, H, W) on the
training device. Random numbers are always drawn on the CPU from the given
generator (``fit`` seeds it from the run's seed and the epoch), so a batch's
augmentation does not depend on the device and a resumed run is identical.

- :func:`random_shift`: zero-pad by ``pad`` pixels and crop back to the
  original size at a random offset (the "random crop with padding" of CIFAR
  recipes), i.e. a shift by up to ``pad`` pixels filled with background.
- :func:`random_hflip`: mirror left-right with probability ``p``
  (right for clothes, wrong for digits: do not flip MNIST).
- :func:`make_augment`: the two combined into one ``augment`` function.
- :func:`gaussian_noise` / :func:`pixel_dropout`: the corruptions of a
  denoising autoencoder (the model sees the corrupted image and is trained
  to reconstruct the clean one); :func:`make_corruption` builds the
  ``augment`` function for either.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from replearn.errors import ReplearnError

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _check_batch(x: torch.Tensor, who: str) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ReplearnError(f"{who}: expected a batch of images (N, C, H, W), got {shape}")


def random_shift(x: torch.Tensor, generator: torch.Generator, pad: int = 2) -> torch.Tensor:
    """Shift every image by its own random offset of -``pad``..``pad`` pixels in each direction.

    Equivalent to zero-padding by ``pad`` and taking a random crop of the
    original size. The background fill is 0 (black, as in MNIST and Fashion-MNIST).

    Args:
        x: images (N, C, H, W).
        generator: CPU generator the offsets are drawn from.
        pad: largest shift in pixels (0 returns ``x`` unchanged).

    Returns:
        A new tensor (N, C, H, W) on ``x``'s device.
    """
    _check_batch(x, "random_shift")
    if pad < 0:
        raise ReplearnError(f"random_shift: pad must be >= 0, got {pad}")
    if pad == 0 or x.shape[0] == 0:
        return x
    n, _, h, w = x.shape
    offsets = torch.randint(0, 2 * pad + 1, (2, n), generator=generator).to(x.device)
    padded = F.pad(x, (pad, pad, pad, pad))  # (N, C, H + 2p, W + 2p)
    rows = offsets[0][:, None] + torch.arange(h, device=x.device)  # (N, H)
    cols = offsets[1][:, None] + torch.arange(w, device=x.device)  # (N, W)
    batch = torch.arange(n, device=x.device)[:, None, None]
    # Advanced indexing on dims 0, 2, 3 with a slice on dim 1 gives (N, H, W, C).
    out = padded[batch, :, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()


def random_hflip(x: torch.Tensor, generator: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Mirror each image left-right with probability ``p``: (N, C, H, W) -> (N, C, H, W)."""
    _check_batch(x, "random_hflip")
    if not 0.0 <= p <= 1.0:
        raise ReplearnError(f"random_hflip: p must be in [0, 1], got {p}")
    if p == 0.0 or x.shape[0] == 0:
        return x
    flip = (torch.rand(x.shape[0], generator=generator) < p).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def make_augment(shift: int = 2, flip: bool = True) -> Augment | None:
    """An ``augment(x, generator)`` for :func:`replearn.train.fit`: random shift, then flip.

    Args:
        shift: largest shift in pixels (0: none).
        flip: mirror half the images left-right.

    Returns:
        The function, or ``None`` when it would do nothing (``shift=0, flip=False``).
    """
    if shift < 0:
        raise ReplearnError(f"augmentation shift must be >= 0 pixels, got {shift}")
    if shift == 0 and not flip:
        return None

    def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if shift:
            x = random_shift(x, generator, shift)
        if flip:
            x = random_hflip(x, generator)
        return x

    augment.__doc__ = f"Random shift by up to {shift} px" + (" and left-right flip" if flip else "") + "."
    return augment


CORRUPTIONS = ("gaussian", "dropout")
"""Kinds of input corruption for denoising autoencoders (:func:`make_corruption`)."""


def gaussian_noise(x: torch.Tensor, generator: torch.Generator, sigma: float = 0.3) -> torch.Tensor:
    """Add N(0, ``sigma``^2) noise to every pixel and clip to [0, 1]: (N, C, H, W) -> (N, C, H, W)."""
    _check_batch(x, "gaussian_noise")
    if sigma < 0:
        raise ReplearnError(f"gaussian_noise: sigma must be >= 0, got {sigma}")
    if sigma == 0 or x.shape[0] == 0:
        return x
    noise = torch.randn(x.shape, generator=generator, dtype=torch.float32).to(device=x.device, dtype=x.dtype)
    return (x + sigma * noise).clamp_(0.0, 1.0)


def pixel_dropout(x: torch.Tensor, generator: torch.Generator, p: float = 0.3) -> torch.Tensor:
    """Set each pixel to 0 with probability ``p`` ("masking noise"): (N, C, H, W) -> (N, C, H, W)."""
    _check_batch(x, "pixel_dropout")
    if not 0.0 <= p < 1.0:
        raise ReplearnError(f"pixel_dropout: p must be in [0, 1), got {p}")
    if p == 0 or x.shape[0] == 0:
        return x
    keep = (torch.rand(x.shape, generator=generator) >= p).to(x.device)
    return x * keep


def make_corruption(kind: str = "gaussian", amount: float = 0.3) -> Augment | None:
    """An ``augment(x, generator)`` that corrupts inputs for a denoising autoencoder.

    Args:
        kind: ``"gaussian"`` (add noise of standard deviation ``amount``, clip to [0, 1])
            or ``"dropout"`` (set a fraction ``amount`` of the pixels to 0).
        amount: noise level; 0 means no corruption.

    Returns:
        The function, or ``None`` when ``amount`` is 0.
    """
    if kind not in CORRUPTIONS:
        raise ReplearnError(f"corruption {kind!r} is not known; choose one of: {', '.join(CORRUPTIONS)}")
    if kind == "dropout" and not 0.0 <= amount < 1.0:
        raise ReplearnError(f"pixel dropout rate must be in [0, 1), got {amount}")
    if amount < 0:
        raise ReplearnError(f"noise level must be >= 0, got {amount}")
    if amount == 0:
        return None
    fn = gaussian_noise if kind == "gaussian" else pixel_dropout

    def corrupt(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return fn(x, generator, amount)

    corrupt.__doc__ = (f"Gaussian noise, sigma {amount}, clipped to [0, 1]." if kind == "gaussian"
                       else f"Each pixel set to 0 with probability {amount}.")
    return corrupt
