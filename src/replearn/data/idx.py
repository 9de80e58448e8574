"""Reader for the IDX files of MNIST and Fashion-MNIST (raw or gzip-compressed).

IDX layout (big-endian): two zero bytes, a type code (``0x08`` = unsigned
byte), the number of dimensions ``d``, then ``d`` 32-bit sizes, then the data.
Images are ``idx3`` (magic 2051: count, rows, cols), labels ``idx1``
(magic 2049: count). Every check names the file and what was wrong, so a
truncated download or a swapped file fails with one clear line; the declared
size is checked against the limits of :mod:`replearn.data.limits` before the
data is read or inflated.
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from pathlib import Path

import numpy as np

from replearn.data import limits
from replearn.errors import ReplearnError

UBYTE = 0x08
_TYPE_NAMES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32", 0x0E: "float64"}
_GZIP_MAGIC = b"\x1f\x8b"
_MAX_NDIM = 8


def gunzip_if_needed(data: bytes, source: str, max_bytes: int | None = None) -> bytes:
    """Return ``data`` decompressed when it starts with the gzip magic, else unchanged.

    Compression is recognised from the content, not the file name, so a raw
    file named ``.gz`` (or the reverse) still reads. At most the byte limit
    (:func:`replearn.data.limits.max_bytes`) is inflated: more is refused.
    """
    if not data.startswith(_GZIP_MAGIC):
        return data
    limit = limits.max_bytes(max_bytes)
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as fh:
            out = fh.read(limit + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise ReplearnError(f"{source}: corrupted or truncated gzip data ({exc}); delete it and fetch it again") from exc
    if len(out) > limit:
        raise ReplearnError(
            f"{source}: the gzip data inflates to more than {limits.human_bytes(limit)}, the limit per file"
            + limits.raise_bytes_hint(2 * limit)
        )
    return out


def _parse_header(data: bytes, source: str, expect_ndim: int | None) -> tuple[tuple[int, ...], int]:
    """The declared dimensions and the header length, from (at least) the header bytes."""
    if len(data) < 4:
        raise ReplearnError(
            f"{source}: truncated IDX header ({len(data)} bytes; an IDX file starts with a 4-byte magic number)"
        )
    zero0, zero1, type_code, ndim = data[0], data[1], data[2], data[3]
    magic = int.from_bytes(data[:4], "big")
    if zero0 != 0 or zero1 != 0:
        raise ReplearnError(
            f"{source}: not an IDX file (magic number 0x{magic:08X}; IDX files start with two zero bytes, "
            "e.g. 2051 for images, 2049 for labels)"
        )
    if type_code != UBYTE:
        name = _TYPE_NAMES.get(type_code, "unknown")
        raise ReplearnError(
            f"{source}: IDX type code 0x{type_code:02X} ({name}) is not supported; "
            "MNIST-style files hold unsigned bytes (0x08)"
        )
    if not 1 <= ndim <= _MAX_NDIM:
        raise ReplearnError(f"{source}: IDX header declares {ndim} dimensions; allowed are 1..{_MAX_NDIM}")
    if expect_ndim is not None and ndim != expect_ndim:
        raise ReplearnError(
            f"{source}: magic number {magic} declares {ndim}-D data where {expect_ndim}-D was expected "
            f"(magic {0x0800 + expect_ndim}); is it the {'labels' if ndim == 1 else 'images'} file?"
        )
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise ReplearnError(
            f"{source}: truncated IDX header ({len(data)} bytes; {ndim} dimensions need a {header_len}-byte header)"
        )
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return dims, header_len


def _check_declared(dims: tuple[int, ...], source: str, max_bytes: int | None, max_images: int | None) -> None:
    """The declared size against the limits, before the data is read."""
    limits.check_bytes(limits.element_count(dims), source, f"the IDX header's shape {dims}", max_bytes)
    if len(dims) >= 3:
        limits.check_images(dims[0], source, "images (IDX header)", max_images)


def _check_length(dims: tuple[int, ...], expected: int, actual: int, source: str, more: bool = False) -> None:
    if actual < expected:
        raise ReplearnError(
            f"{source}: truncated IDX file: header declares shape {dims} ({expected} bytes in all) "
            f"but the file has {actual} bytes"
        )
    if actual > expected:
        raise ReplearnError(
            f"{source}: IDX file is longer than its header declares: shape {dims} needs {expected} bytes, "
            f"the file has {'more than ' if more else ''}{actual} (wrong dimensions or trailing garbage)"
        )


def parse_idx(
    data: bytes,
    source: str = "<bytes>",
    expect_ndim: int | None = None,
    *,
    max_bytes: int | None = None,
    max_images: int | None = None,
) -> np.ndarray:
    """Parse the bytes of one uncompressed IDX file into a uint8 array.

    Args:
        data: the whole file content (already decompressed).
        source: a name for error messages (usually the file path).
        expect_ndim: when given, the number of dimensions the header must declare
            (3 for images, magic 2051; 1 for labels, magic 2049).
        max_bytes, max_images: raise the limits of :mod:`replearn.data.limits`.

    Returns:
        A writable uint8 array with the shape declared in the header.
    """
    dims, header_len = _parse_header(data, source, expect_ndim)
    _check_declared(dims, source, max_bytes, max_images)
    expected = header_len + limits.element_count(dims)
    _check_length(dims, expected, len(data), source)
    try:
        return np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(dims).copy()
    except ValueError:  # e.g. (0, 10**9, 10**9, 10**9): no data, yet beyond what an array can describe
        raise ReplearnError(f"{source}: IDX header declares shape {dims}, which no array can hold") from None


def read_idx(
    path: str | os.PathLike,
    expect_ndim: int | None = None,
    *,
    max_bytes: int | None = None,
    max_images: int | None = None,
) -> np.ndarray:
    """Read an IDX file (raw or ``.gz``) into a uint8 array, validating its header.

    The header is read first and its declared size checked against the limits
    (:mod:`replearn.data.limits`: 1 GiB, 1,000,000 images by default; ``max_bytes`` and
    ``max_images`` raise them) and, for a raw file, against the file's length; a gzip file
    is then inflated only up to the declared size (plus one byte, to notice trailing data).

    Args:
        path: the file; gzip compression is detected from the content.
        expect_ndim: when given, the number of dimensions the header must declare
            (3 for image files, 1 for label files).

    Returns:
        uint8 array of the declared shape, e.g. (60000, 28, 28) or (60000,).

    Raises:
        ReplearnError: missing file, bad gzip, wrong magic number, unsupported type
            code, a length that does not match the declared dimensions, or a declared
            size over the limits.
    """
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise ReplearnError(f"{path}: IDX file not found")
    if not path.is_file():
        raise ReplearnError(f"{path}: is not a file (expected an IDX file such as train-images-idx3-ubyte.gz)")
    try:
        with open(path, "rb") as raw:
            if raw.read(2) != _GZIP_MAGIC:
                raw.seek(0)
                head = raw.read(4 + 4 * _MAX_NDIM)
                dims, header_len = _parse_header(head, source, expect_ndim)
                _check_declared(dims, source, max_bytes, max_images)
                expected = header_len + limits.element_count(dims)
                _check_length(dims, expected, path.stat().st_size, source)
                raw.seek(0)
                data = raw.read()
            else:
                raw.seek(0)
                data = _read_gzip(raw, source, expect_ndim, max_bytes, max_images)
    except OSError as exc:
        raise ReplearnError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    return parse_idx(data, source, expect_ndim, max_bytes=max_bytes, max_images=max_images)


def _read_gzip(raw, source: str, expect_ndim: int | None, max_bytes: int | None, max_images: int | None) -> bytes:
    """The decompressed IDX bytes of a gzip stream, inflating no more than the header declares (+1 byte)."""
    try:
        with gzip.GzipFile(fileobj=raw) as fh:
            head = fh.read(4)
            if len(head) == 4 and head[:2] == b"\0\0" and head[2] == UBYTE and 1 <= head[3] <= _MAX_NDIM:
                head += fh.read(4 * head[3])
            dims, header_len = _parse_header(head, source, expect_ndim)
            _check_declared(dims, source, max_bytes, max_images)
            expected = header_len + limits.element_count(dims)
            body = fh.read(expected - len(head) + 1)
            data = head + body
            if len(data) > expected:
                extra = len(data) - expected  # count the rest, in chunks, up to the byte limit
                cap = limits.max_bytes(max_bytes)
                while extra <= cap and (chunk := fh.read(1 << 20)):
                    extra += len(chunk)
                _check_length(dims, expected, expected + extra, source, more=extra > cap)
    except (OSError, EOFError, zlib.error) as exc:
        raise ReplearnError(f"{source}: corrupted or truncated gzip data ({exc}); delete it and fetch it again") from None
    return data
