"""Read ``.npz`` archives and ``.npy`` files with the size each array declares checked first.

NumPy's own loader allocates the array a header declares before it reads any data, so a
few-byte header declaring (10**6, 10**6) float64, or a zip member that inflates to
gigabytes, exhausts the memory. These readers parse the ``.npy`` header
(:mod:`numpy.lib.format`) from the file or from the zip member's stream, and refuse with
one :class:`~replearn.errors.ReplearnError` line, before anything is allocated, when

- the declared size (elements x item size) is over the byte limit
  (:func:`replearn.data.limits.max_bytes`, 1 GiB by default), the arrays read from one file
  counted together; a file bigger on disk than the limit is refused at once;
- the zip member's decompressed size (its ``file_size``) is not the header plus the declared
  data (a damaged file, or one built to inflate), or an ``.npy`` file's length differs;
- the array holds Python objects (pickle is never used: ``allow_pickle=False`` throughout).

Reading a member then decompresses at most the declared number of bytes.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
from numpy.lib import format as npy_format

from replearn.data import limits
from replearn.errors import ReplearnError

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")


class ArrayHeader(NamedTuple):
    """What an ``.npy`` header declares."""

    shape: tuple[int, ...]
    fortran: bool
    dtype: np.dtype
    offset: int  # bytes of magic + header: the data starts here
    data_bytes: int  # elements x item size
    budget: int  # what the array counts against the byte limit (elements x max(item size, 1))

    def describe(self) -> str:
        dtype = str(self.dtype)
        return f"shape {self.shape}, {dtype if len(dtype) <= 40 else dtype[:37] + '...'}"


def _reason(exc: BaseException) -> str:
    """A short one-line reason from an exception raised by numpy or zipfile."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _parse_header(fh, where: str, what: str) -> ArrayHeader:
    """Read magic and header from ``fh`` (positioned at the start of an ``.npy`` stream)."""
    try:
        version = npy_format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = npy_format.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, fortran, dtype = npy_format.read_array_header_2_0(fh)
        else:
            raise ReplearnError(
                f"{where}: {what} uses .npy format version {version[0]}.{version[1]}; plain arrays "
                "(versions 1.0 and 2.0) are read"
            )
        offset = fh.tell()
    except ReplearnError:
        raise
    except Exception as exc:  # numpy and zipfile raise many types for damaged headers
        raise ReplearnError(f"{where}: {what} has no readable .npy header ({_reason(exc)}); the file is damaged") from None
    if any(s < 0 for s in shape):
        raise ReplearnError(f"{where}: {what} declares shape {shape} with a negative size; the file is damaged")
    count = limits.element_count(shape)
    return ArrayHeader(tuple(shape), bool(fortran), dtype, offset, count * dtype.itemsize, count * max(dtype.itemsize, 1))


def _refuse_objects(header: ArrayHeader, where: str, what: str) -> None:
    if header.dtype.hasobject:
        raise ReplearnError(
            f"{where}: {what} holds Python objects (an object array, which would need unpickling); "
            "save plain numeric arrays"
        )


def _build(data: bytes | bytearray, header: ArrayHeader, where: str, what: str) -> np.ndarray:
    """The array from its data bytes (writable)."""
    try:
        if header.data_bytes == 0:
            return np.zeros(header.shape, dtype=header.dtype)
        flat = np.frombuffer(bytearray(data), dtype=header.dtype)
        return flat.reshape(header.shape, order="F" if header.fortran else "C")
    except Exception as exc:  # e.g. a shape of more than 64 dimensions
        raise ReplearnError(f"{where}: {what} cannot be rebuilt from its header ({_reason(exc)}); the file is damaged") from None


def kind_of_file(path: Path) -> str:
    """``"zip"``, ``"npy"`` or ``"other"``, from the first bytes."""
    with open(path, "rb") as fh:
        head = fh.read(6)
    if head.startswith(ZIP_MAGICS):
        return "zip"
    if head == NPY_MAGIC:
        return "npy"
    return "other"


class NpzArchive:
    """An ``.npz`` opened for checked reading: ``files`` (the keys) and ``archive[key]``.

    Use as a context manager. Keys are the member names without ``.npy``, as in
    :class:`numpy.lib.npyio.NpzFile`. :meth:`header` gives a key's declared shape and dtype
    without reading its data; ``archive[key]`` reads it after the checks of the module.
    """

    def __init__(self, path: str | os.PathLike, where: str | None = None, *, max_bytes: int | None = None):
        path = Path(path)
        self.where = where or str(path)
        self.limit = limits.max_bytes(max_bytes)
        self.used = 0
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise ReplearnError(f"{self.where}: cannot read it ({exc.strerror})") from None
        limits.check_bytes(size, self.where, "the file", self.limit, verb="is")
        try:
            self._zip = zipfile.ZipFile(path)
            names = self._zip.namelist()
        except Exception as exc:  # zipfile raises many types for damaged archives
            raise ReplearnError(f"{self.where}: not an .npz archive ({_reason(exc)})") from None
        self._names = names
        self.files = [n[:-4] if n.endswith(".npy") else n for n in names]
        self._headers: dict[str, ArrayHeader] = {}

    def __enter__(self) -> NpzArchive:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    def __contains__(self, key: str) -> bool:
        return key in self.files or key in self._names

    def _member(self, key: str) -> str:
        if key in self._names:
            return key
        if key + ".npy" in self._names:
            return key + ".npy"
        raise KeyError(key)

    def header(self, key: str) -> ArrayHeader:
        """The declared shape, dtype and sizes of ``key``, checked against the member's size (no data is read)."""
        if key in self._headers:
            return self._headers[key]
        what = f"key '{key}'"
        member = self._member(key)
        try:
            info = self._zip.getinfo(member)
            with self._zip.open(info) as fh:
                header = _parse_header(fh, self.where, what)
        except ReplearnError:
            raise
        except Exception as exc:  # encrypted or unsupported members, damaged local headers
            raise ReplearnError(f"{self.where}: {what} cannot be read ({_reason(exc)}); the file is damaged") from None
        if not header.dtype.hasobject and info.file_size != header.offset + header.data_bytes:  # objects: pickled
            held = info.file_size - header.offset
            declared, holds = human(header.data_bytes), human(held) if held >= 0 else "less than its header"
            if declared == holds:
                declared, holds = f"{header.data_bytes:,} bytes", f"{held:,} bytes"
            raise ReplearnError(
                f"{self.where}: {what} is damaged: its header declares {header.describe()} "
                f"({declared} of data) but the archive member holds {holds} (decompressed)"
            )
        self._headers[key] = header
        return header

    def __getitem__(self, key: str) -> np.ndarray:
        header = self.header(key)
        what = f"key '{key}'"
        _refuse_objects(header, self.where, what)
        total = self.used + header.budget
        if total > self.limit:
            before = f" together with the {human(self.used)} read before" if self.used else ""
            limits.check_bytes(total, self.where, f"{what} ({header.describe()}){before}", self.limit)
        try:
            with self._zip.open(self._zip.getinfo(self._member(key))) as fh:
                fh.read(header.offset)
                data = fh.read(header.data_bytes)
                fh.read(1)  # reach the end, so that the CRC is checked
        except Exception as exc:  # a bad CRC, truncated deflate data, ...
            raise ReplearnError(f"{self.where}: {what} cannot be read ({_reason(exc)}); the file is damaged") from None
        if len(data) != header.data_bytes:
            raise ReplearnError(
                f"{self.where}: {what} is truncated: {human(len(data))} of {human(header.data_bytes)} of data"
            )
        self.used = total
        return _build(data, header, self.where, what)


def human(n: int) -> str:
    return limits.human_bytes(n)


def read_npy(
    path: str | os.PathLike,
    where: str | None = None,
    *,
    max_bytes: int | None = None,
    check: Callable[[ArrayHeader], None] | None = None,
) -> np.ndarray:
    """One ``.npy`` file, its declared size checked against the limit and the file's length first.

    ``check``, when given, is called with the header before the data is read (to refuse more).
    """
    path = Path(path)
    where = where or str(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            header = _parse_header(fh, where, "the array")
            _refuse_objects(header, where, "the array")
            if size != header.offset + header.data_bytes:
                raise ReplearnError(
                    f"{where}: the array's header declares {header.describe()} ({human(header.data_bytes)} of data) "
                    f"but the file holds {human(max(size - header.offset, 0))} after it; the file is damaged"
                )
            if check is not None:
                check(header)
            limits.check_bytes(header.budget, where, f"the array ({header.describe()})", max_bytes)
            data = fh.read(header.data_bytes)
    except OSError as exc:
        raise ReplearnError(f"{where}: cannot read it ({exc.strerror or _reason(exc)})") from None
    return _build(data, header, where, "the array")
