"""Channel registration: find and undo the offset of a fluorescence image against a reference.

Sign convention (the one of ``skimage.registration.phase_cross_correlation`` and
``scipy.ndimage.shift``): ``find_shift(reference, moving)`` returns ``(dy, dx)``,
the shift to *apply to* ``moving`` so that it lies on ``reference``;
``apply_shift(moving, (dy, dx))[r, c] == moving[r - dy, c - dx]``. Equivalently,
the content of ``reference`` at ``(r, c)`` sits in ``moving`` at ``(r - dy, c - dx)``.

On the shared *S. aureus* field the membrane image needs ``(+1, +5)`` and the DNA
image ``(+2, +6)``: a cell seen at ``(r, c)`` in phase contrast appears at
``(r - 1, c - 5)`` in the membrane image (see ``docs/crops.md``).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

from replearn.errors import ReplearnError

#: Connected runs of exact zeros at least this large count as missing data (blanked regions).
MIN_BLANK_AREA = 400


def blank_mask(image: np.ndarray, min_area: int = MIN_BLANK_AREA) -> np.ndarray:
    """Boolean (H, W) mask of blanked pixels: connected regions of exact zeros of at least ``min_area`` pixels.

    Microscope images carry a camera offset, so large blocks of exact zeros are
    removed or censored data (the shared DNA image has one), not signal.
    """
    zeros = np.asarray(image) == 0
    if not zeros.any():
        return zeros
    labels, n = ndi.label(zeros)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    big = sizes >= min_area
    big[0] = False
    return big[labels]


def _standardise(image: np.ndarray) -> np.ndarray:
    """Zero-mean, unit-variance float64 copy (all zeros for a constant image)."""
    x = np.asarray(image, dtype=np.float64)
    std = x.std()
    if std == 0:
        return np.zeros_like(x)
    return (x - x.mean()) / std


def find_shift(
    reference: np.ndarray,
    moving: np.ndarray,
    *,
    moving_valid: np.ndarray | None = None,
    max_shift: float | None = 20,
    name: str = "moving image",
) -> tuple[int, int]:
    """Integer shift ``(dy, dx)`` to apply to ``moving`` so that it lies on ``reference``.

    Uses the peak of the cross-correlation of the standardised images
    (``phase_cross_correlation`` with ``normalization=None``; plain phase correlation
    whitens the spectrum and locks onto noise with images as different as a mask and
    a fluorescence channel). Pixels that ``moving_valid`` marks as missing (False) are
    filled with the median of the valid ones, i.e. with featureless background, so a
    blanked block adds no edges for the correlation to lock onto.

    Args:
        reference: (H, W) image or mask the others are aligned to (e.g. the cell mask
            of the segmentation, or an inverted phase image).
        moving: (H, W) image to align, same shape.
        moving_valid: optional (H, W) bool, False on missing pixels of ``moving``.
        max_shift: largest plausible shift in pixels per axis; a larger result raises.
            ``None`` accepts any.
        name: what ``moving`` is, for error messages.

    Returns:
        ``(dy, dx)`` in pixels, see the module's sign convention.
    """
    from skimage.registration import phase_cross_correlation

    reference = np.asarray(reference)
    moving = np.asarray(moving)
    if reference.shape != moving.shape:
        raise ReplearnError(f"{name}: shape {moving.shape} differs from the reference's {reference.shape}")
    ref = _standardise(reference)
    if moving_valid is not None and not moving_valid.all():
        if moving_valid.shape != moving.shape:
            raise ReplearnError(f"{name}: valid-pixel mask shape {moving_valid.shape} differs from {moving.shape}")
        if moving_valid.mean() < 0.25:
            raise ReplearnError(f"{name}: only {moving_valid.mean():.0%} of pixels hold data; cannot register it")
        moving = np.where(moving_valid, moving, np.median(moving[moving_valid]))
    mov = _standardise(moving)
    if not ref.any() or not mov.any():
        which = "reference" if not ref.any() else name
        raise ReplearnError(f"{which}: the image is constant; there is nothing to register")
    shift = phase_cross_correlation(ref, mov, normalization=None)[0]
    dy, dx = (int(round(float(s))) for s in shift)
    if max_shift is not None and max(abs(dy), abs(dx)) > max_shift:
        raise ReplearnError(
            f"{name}: registration found a shift of ({dy:+d}, {dx:+d}) px, more than max_shift={max_shift:g}; "
            "check that the channels come from the same field, or raise --max-shift"
        )
    return dy, dx


def apply_shift(image: np.ndarray, shift: tuple[int, int], mode: str = "nearest") -> np.ndarray:
    """Move the content of a (H, W) image by an integer ``(dy, dx)``: ``out[r, c] = image[r - dy, c - dx]``.

    Pixels brought in from outside the image are filled per ``mode`` (``"nearest"``
    repeats the edge; ``"constant"`` fills with 0). Dtype and values are kept.
    """
    dy, dx = (int(s) for s in shift)
    if (dy, dx) == (0, 0):
        return np.array(image, copy=True)
    return ndi.shift(np.asarray(image), (dy, dx), order=0, mode=mode, cval=0)
