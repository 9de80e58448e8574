"""Read one single-channel microscopy image (8- or 16-bit TIFF) for the crops workflow."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from replearn.errors import ReplearnError

ALLOWED_DTYPES = (np.uint8, np.uint16)


def read_channel(path: str | os.PathLike, name: str = "image") -> np.ndarray:
    """Read a single-channel 8- or 16-bit TIFF as a 2-D array (H, W), dtype unchanged.

    Args:
        path: the TIFF file.
        name: what the image is (``"membrane"``, ``"phase"``...), used in error messages.

    Raises:
        ReplearnError: the file is missing or not a readable TIFF, holds several pages,
            channels or colour samples (RGB), or is not 8-/16-bit unsigned integer.
    """
    import tifffile

    path = Path(path)
    if not path.is_file():
        raise ReplearnError(f"{name} image {path}: file not found")
    try:
        with tifffile.TiffFile(path) as tif:
            n_pages = len(tif.pages)
            page = tif.pages[0]
            samples = int(getattr(page, "samplesperpixel", 1))
            image = tif.asarray(key=0) if n_pages > 1 else tif.asarray()
    except ReplearnError:
        raise
    except Exception as exc:  # tifffile raises many types for corrupt or non-TIFF files
        raise ReplearnError(f"{name} image {path}: not a readable TIFF ({type(exc).__name__}: {exc})") from None

    if n_pages > 1:
        raise ReplearnError(
            f"{name} image {path}: holds {n_pages} pages (a stack or several channels); "
            "one single-channel 2-D image per file is allowed"
        )
    image = np.asarray(image)
    if samples > 1 or image.ndim != 2:
        squeezed = np.squeeze(image)
        if samples > 1 or squeezed.ndim != 2:
            raise ReplearnError(
                f"{name} image {path}: shape {tuple(image.shape)} with {samples} sample(s) per pixel "
                "(RGB or multi-channel); one single-channel 2-D image (H, W) is allowed"
            )
        image = squeezed
    if image.dtype not in ALLOWED_DTYPES:
        raise ReplearnError(
            f"{name} image {path}: pixel type {image.dtype}; 8- or 16-bit unsigned integer (uint8, uint16) is allowed"
        )
    if min(image.shape) < 16:
        raise ReplearnError(f"{name} image {path}: size {image.shape[0]}x{image.shape[1]} is too small; at least 16x16")
    return image
