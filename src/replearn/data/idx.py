"""Reader for the IDX files of MNIST and Fashion-MNIST (raw or gzip-compressed).

IDX layout (big-endian): two zero bytes, a type code (``0x08`` = unsigned
byte), the number of dimensions ``d``, then ``d`` 32-bit sizes, then the data.
Images are ``idx3`` (magic 2051: count, rows, cols), labels ``idx1``
(magic 2049: count). Every check names the file and what was wrong, so a
truncated download or a swapped file fails with one clear line.
"""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import numpy as np

from replearn.errors import ReplearnError

UBYTE = 0x08
_TYPE_NAMES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32", 0x0E: "float64"}
_GZIP_MAGIC = b"\x1f\x8b"
_MAX_NDIM = 8


def gunzip_if_needed(data: bytes, source: str) -> bytes:
    """Return ``data`` decompressed when it starts with the gzip magic, else unchanged.

    Compression is recognised from the content, not the file name, so a raw
    file named ``.gz`` (or the reverse) still reads.
    """
    if not data.startswith(_GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise ReplearnError(f"{source}: corrupted or truncated gzip data ({exc}); delete it and fetch it again") from exc


def parse_idx(data: bytes, source: str = "<bytes>", expect_ndim: int | None = None) -> np.ndarray:
    """Parse the bytes of one uncompressed IDX file into a uint8 array.

    Args:
        data: the whole file content (already decompressed).
        source: a name for error messages (usually the file path).
        expect_ndim: when given, the number of dimensions the header must declare
            (3 for images, magic 2051; 1 for labels, magic 2049).

    Returns:
        A writable uint8 array with the shape declared in the header.
    """
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
    expected = header_len + int(np.prod(dims, dtype=np.int64))
    if len(data) < expected:
        raise ReplearnError(
            f"{source}: truncated IDX file: header declares shape {dims} ({expected} bytes in all) "
            f"but the file has {len(data)} bytes"
        )
    if len(data) > expected:
        raise ReplearnError(
            f"{source}: IDX file is longer than its header declares: shape {dims} needs {expected} bytes, "
            f"the file has {len(data)} (wrong dimensions or trailing garbage)"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_len).reshape(dims).copy()


def read_idx(path: str | os.PathLike, expect_ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (raw or ``.gz``) into a uint8 array, validating its header.

    Args:
        path: the file; gzip compression is detected from the content.
        expect_ndim: when given, the number of dimensions the header must declare
            (3 for image files, 1 for label files).

    Returns:
        uint8 array of the declared shape, e.g. (60000, 28, 28) or (60000,).

    Raises:
        ReplearnError: missing file, bad gzip, wrong magic number, unsupported type
            code, or a length that does not match the declared dimensions.
    """
    path = Path(path)
    if not path.exists():
        raise ReplearnError(f"{path}: IDX file not found")
    if not path.is_file():
        raise ReplearnError(f"{path}: is not a file (expected an IDX file such as train-images-idx3-ubyte.gz)")
    data = gunzip_if_needed(path.read_bytes(), str(path))
    return parse_idx(data, str(path), expect_ndim=expect_ndim)
