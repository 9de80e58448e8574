"""Resource limits of the data readers, and the warning for data that is legal but useless.

Every reader checks what a file *declares* (an ``.npy`` header inside an ``.npz``, an IDX
header, a TIFF page, a PNG header, the entries of a folder) against these limits before it
allocates memory for the pixels, so a hostile or damaged file gives one line instead of a
crash. The defaults cover every real use many times over (MNIST's training images are
47 MB and 60,000 images, the assignment's ``data.npz`` 6 MB with 40x40 crops, a microscopy
field a few MB):

============================  ==========  ======================  ===================
limit                         default     environment variable    keyword argument
============================  ==========  ======================  ===================
array bytes read from a file  1 GiB       ``REPLEARN_MAX_BYTES``  ``max_bytes=``
images in a file or folder    1,000,000   ``REPLEARN_MAX_IMAGES`` ``max_images=``
side of a crop (px)           1024        ``REPLEARN_MAX_CROP``   ``max_side=``
============================  ==========  ======================  ===================

A keyword argument wins over the environment variable, which wins over the default.
Byte counts may carry a binary suffix: ``REPLEARN_MAX_BYTES=8G`` (also ``8GiB``, ``512M``,
``64K``, ``1T``). See ``docs/reliability.md``.
"""

from __future__ import annotations

import math
import os
import re
import warnings

from replearn.errors import ReplearnError

DEFAULT_MAX_BYTES = 1 << 30
DEFAULT_MAX_IMAGES = 1_000_000
DEFAULT_MAX_CROP = 1024

BYTES_ENV = "REPLEARN_MAX_BYTES"
IMAGES_ENV = "REPLEARN_MAX_IMAGES"
CROP_ENV = "REPLEARN_MAX_CROP"

_SUFFIXES = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_NUMBER = re.compile(r"^\s*(\d+)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)


class DataWarning(UserWarning):
    """Data that loads but is (partly) useless: blank crops, a class without examples, a noisy field."""


def warn(message: str) -> None:
    """Issue one :class:`DataWarning` (Python shows each distinct message once per place)."""
    warnings.warn(message, DataWarning, stacklevel=3)


def _from_env(name: str, default: int, unit: str) -> int:
    text = os.environ.get(name)
    if text is None or text.strip() == "":
        return default
    match = _NUMBER.match(text)
    value = int(match.group(1)) * _SUFFIXES[match.group(2).upper()] if match else 0
    if value < 1:
        example = "8G or 8589934592" if unit == "bytes" else "2000000" if unit == "images" else "2048"
        raise ReplearnError(f"{name}={text!r}: expected a positive number of {unit}, such as {example}")
    return value


def _given(value: int | None, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ReplearnError(f"{name}={value!r}: expected a positive integer")
    return value


def max_bytes(value: int | None = None) -> int:
    """The byte limit: ``value`` when given, else ``$REPLEARN_MAX_BYTES``, else 1 GiB."""
    return _given(value, "max_bytes") or _from_env(BYTES_ENV, DEFAULT_MAX_BYTES, "bytes")


def max_images(value: int | None = None) -> int:
    """The image-count limit: ``value`` when given, else ``$REPLEARN_MAX_IMAGES``, else 1,000,000."""
    return _given(value, "max_images") or _from_env(IMAGES_ENV, DEFAULT_MAX_IMAGES, "images")


def max_crop_side(value: int | None = None) -> int:
    """The crop-side limit in px: ``value`` when given, else ``$REPLEARN_MAX_CROP``, else 1024."""
    return _given(value, "max_side") or _from_env(CROP_ENV, DEFAULT_MAX_CROP, "pixels")


def human_bytes(n: int) -> str:
    """``n`` bytes in words: ``512 bytes``, ``3.0 KiB``, ``1.5 GiB``."""
    if n >= 1 << 50:
        return f"{n / (1 << 40):.3g} TiB"
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def element_count(shape: tuple[int, ...]) -> int:
    """Number of elements of ``shape`` as an exact Python int (no overflow)."""
    return math.prod(int(s) for s in shape)


def check_bytes(n: int, where: str, what: str, limit: int | None = None, verb: str = "needs") -> None:
    """Refuse, before anything is allocated, ``what`` (a description) needing ``n`` bytes over the limit."""
    limit = max_bytes(limit)
    if n > limit:
        raise ReplearnError(f"{where}: {what} {verb} {human_bytes(n)}, over the limit of {human_bytes(limit)} per file"
                            + raise_bytes_hint(n))


def raise_bytes_hint(n: int) -> str:
    """The end of a byte-limit refusal: how to raise the limit to fit ``n`` bytes."""
    if n > 1 << 40:  # no real file of this project is that large: no example value
        return f"; if the file is genuine, raise the limit with {BYTES_ENV}"
    return f"; if the file is genuine, raise the limit with {BYTES_ENV} (e.g. {BYTES_ENV}={_suggest_bytes(n)})"


def _suggest_bytes(n: int) -> str:
    return f"{max(1, -(-n // (1 << 30)) * 2)}G"


def check_images(n: int, where: str, what: str = "images", limit: int | None = None) -> None:
    """Refuse ``n`` images (``what`` names them) in one file or folder over the image limit."""
    limit = max_images(limit)
    if n > limit:
        raise ReplearnError(
            f"{where}: holds {n:,} {what}, over the limit of {limit:,} per file or folder; if that is "
            f"intended, raise the limit with {IMAGES_ENV} (e.g. {IMAGES_ENV}={n})"
        )


def check_side(height: int, width: int, where: str, what: str = "crops of", limit: int | None = None) -> None:
    """Refuse a crop whose side is over the crop-side limit (crops are cells, not fields)."""
    limit = max_crop_side(limit)
    if max(height, width) > limit:
        raise ReplearnError(
            f"{where}: {what} {height}x{width} px, over the limit of {limit} px per side (crops show single "
            f"cells); if that is intended, raise the limit with {CROP_ENV} (e.g. {CROP_ENV}={max(height, width)})"
        )
