"""Read one single-channel microscopy image (8- or 16-bit TIFF) for the crops workflow.

The pages, the declared shape and the pixel type are checked from the TIFF's tags before
any pixel is decoded, so a compressed file that declares a 100,000 x 100,000 image is one
line (the byte limit of :mod:`replearn.data.limits`, 1 GiB by default, ``max_bytes`` or
``$REPLEARN_MAX_BYTES`` to raise it), not an exhausted memory.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from replearn.data import limits
from replearn.errors import ReplearnError

ALLOWED_DTYPES = (np.uint8, np.uint16)


@contextlib.contextmanager
def _quiet_tifffile() -> Iterator[None]:
    """Silence tifffile's logged warnings about damaged tags: the refusal, if any, is the one line."""
    log = logging.getLogger("tifffile")
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)


def _declared(tif) -> tuple[tuple[int, ...], np.dtype | None, int]:
    """Shape, dtype and byte size that the first series of an open ``TiffFile`` declares."""
    series = tif.series[0]
    shape = tuple(int(s) for s in series.shape)
    dtype = series.dtype
    itemsize = dtype.itemsize if dtype is not None else 8
    return shape, dtype, limits.element_count(shape) * max(itemsize, 1)


def read_tiff(
    path: str | os.PathLike,
    where: str,
    max_bytes: int | None = None,
    check: Callable[[tuple[int, ...]], None] | None = None,
) -> np.ndarray:
    """The pixels of a TIFF's first series, after checking their declared size against the byte limit.

    ``check``, when given, is called with the declared shape before the pixels are decoded.

    Raises:
        ReplearnError: ``where: not a readable TIFF (...)``, or a declared size over the limit.
    """
    import tifffile

    try:
        with _quiet_tifffile(), tifffile.TiffFile(path) as tif:
            shape, dtype, nbytes = _declared(tif)
            limits.check_bytes(nbytes, where, f"the TIFF declares {_shape(shape)} {dtype} pixels, which", max_bytes)
            if check is not None:
                check(shape)
            return np.asarray(tif.asarray())
    except ReplearnError:
        raise
    except Exception as exc:  # tifffile raises many types for corrupt or non-TIFF files
        raise ReplearnError(f"{where}: not a readable TIFF ({type(exc).__name__}: {_short(exc)})") from None


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape)


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 160 else text[:157] + "..."


def read_channel(path: str | os.PathLike, name: str = "image", *, max_bytes: int | None = None) -> np.ndarray:
    """Read a single-channel 8- or 16-bit TIFF as a 2-D array (H, W), dtype unchanged.

    Args:
        path: the TIFF file.
        name: what the image is (``"membrane"``, ``"phase"``...), used in error messages.
        max_bytes: the largest declared image (bytes) to read; default ``$REPLEARN_MAX_BYTES`` or 1 GiB.

    Raises:
        ReplearnError: the file is missing or not a readable TIFF, holds several pages,
            channels or colour samples (RGB), is not 8-/16-bit unsigned integer, or declares
            an image over the byte limit. Everything but the last-but-one check is decided
            from the tags, before the pixels are decoded.
    """
    import tifffile

    path = Path(path)
    where = f"{name} image {path}"
    if not path.is_file():
        raise ReplearnError(f"{where}: file not found")
    try:
        with _quiet_tifffile(), tifffile.TiffFile(path) as tif:
            n_pages = len(tif.pages)
            if n_pages > 1:
                raise ReplearnError(
                    f"{where}: holds {n_pages} pages (a stack or several channels); "
                    "one single-channel 2-D image per file is allowed"
                )
            page = tif.pages[0]
            samples = int(getattr(page, "samplesperpixel", 1))
            shape, dtype, nbytes = _declared(tif)
            limits.check_bytes(nbytes, where, f"the TIFF declares {_shape(shape)} {dtype} pixels, which", max_bytes)
            squeezed = shape if len(shape) == 2 else tuple(s for s in shape if s != 1)
            if samples > 1 or len(squeezed) != 2:
                raise ReplearnError(
                    f"{where}: shape {shape} with {samples} sample(s) per pixel "
                    "(RGB or multi-channel); one single-channel 2-D image (H, W) is allowed"
                )
            if dtype not in ALLOWED_DTYPES:
                raise ReplearnError(
                    f"{where}: pixel type {dtype}; 8- or 16-bit unsigned integer (uint8, uint16) is allowed"
                )
            if min(squeezed) < 16:
                raise ReplearnError(f"{where}: size {squeezed[0]}x{squeezed[1]} is too small; at least 16x16")
            image = np.asarray(tif.asarray())
    except ReplearnError:
        raise
    except Exception as exc:  # tifffile raises many types for corrupt or non-TIFF files
        raise ReplearnError(f"{where}: not a readable TIFF ({type(exc).__name__}: {_short(exc)})") from None

    image = image.reshape(squeezed) if image.shape != squeezed and image.size == np.prod(squeezed) else image
    if image.ndim != 2 or image.dtype not in ALLOWED_DTYPES:  # the pixels differ from the tags: refuse
        raise ReplearnError(
            f"{where}: decoded to shape {image.shape} and type {image.dtype}, not what its tags declare; "
            "one single-channel 8- or 16-bit 2-D image is allowed"
        )
    return image
