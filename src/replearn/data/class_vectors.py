"""Class description vectors for zero-shot learning: the shipped attribute tables and a user's own file.

A class vector file gives every class of a data set one row of numbers (attributes, a word
embedding, any semantic space):

- CSV: one row per class, the class name (or its number) first, then the values; an optional
  header row (``class,loops,vertical,...``) names the columns::

      class,worn_upper_body,worn_feet,has_heel
      T-shirt/top,1,0,0
      ...

- ``.npy``: a numeric (K, D) array, row i for class i.

Every problem is one line naming the class and what is wrong: a missing class, a row of another
width, NaN or infinity, a class named twice, a name that is not a class.

The shipped tables (:func:`attribute_table`) live in ``replearn/data/attributes/``: ``<data set>.csv``
and ``<data set>.txt``, the definition of each attribute in one line (``name: definition``).
"""

from __future__ import annotations

import csv
import difflib
import io
import math
import os
from importlib import resources
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np

from replearn.data import limits
from replearn.data.npyfile import read_npy
from replearn.errors import ReplearnError

ATTRIBUTE_TABLES = ("mnist", "fashion")
"""Data sets with a shipped attribute table."""


class ClassVectors(NamedTuple):
    """Description vectors (K, D) float64 in class order, the column names (D,) and their definitions."""

    vectors: np.ndarray
    columns: list[str]
    definitions: dict[str, str]
    source: str


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _class_index(name: str, class_names: Sequence[str], where: str, row: int) -> int:
    lowered = [c.lower() for c in class_names]
    if name.lower() in lowered:
        return lowered.index(name.lower())
    if name.isdigit() and int(name) < len(class_names):
        return int(name)
    close = difflib.get_close_matches(name, list(class_names), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; the classes are: {', '.join(class_names)}"
    raise ReplearnError(f"{where}: row {row} names {name!r}, which is not a class{hint}")


def _parse_csv(text: str, class_names: Sequence[str], where: str) -> tuple[np.ndarray, list[str]]:
    rows = [r for r in csv.reader(io.StringIO(text)) if r and any(c.strip() for c in r)]
    if not rows:
        raise ReplearnError(f"{where}: is empty; expected one row per class: name, then its values")
    first = rows[0][0].strip()
    is_class = first.lower() in [c.lower() for c in class_names] or (first.isdigit() and int(first) < len(class_names))
    header = None if is_class else rows[0]  # a first row that does not name a class names the columns
    body = rows[1:] if header is not None else rows
    width = len(header) - 1 if header is not None else len(body[0]) - 1 if body else 0
    if width < 1:
        raise ReplearnError(f"{where}: no values after the class name; expected name, then at least one number")
    found: dict[int, tuple[int, list[float]]] = {}
    for row_no, row in enumerate(body, start=2 if header is not None else 1):
        name = row[0].strip()
        k = _class_index(name, class_names, where, row_no)
        if k in found:
            raise ReplearnError(f"{where}: class {class_names[k]!r} appears twice (rows {found[k][0]} and {row_no})")
        cells = [c.strip() for c in row[1:]]
        if len(cells) != width:
            raise ReplearnError(f"{where}: the row of class {class_names[k]!r} has {len(cells)} values; the "
                                f"{'header' if header is not None else 'first row'} has {width}")
        values = [_number(c) for c in cells]
        bad = next((j for j, v in enumerate(values) if v is None or not math.isfinite(v)), None)
        if bad is not None:
            raise ReplearnError(f"{where}: the row of class {class_names[k]!r} holds {cells[bad]!r} in value "
                                f"{bad + 1}; every value must be a finite number")
        found[k] = (row_no, [float(v) for v in values])  # type: ignore[arg-type]
    missing = [class_names[k] for k in range(len(class_names)) if k not in found]
    if missing:
        raise ReplearnError(f"{where}: no row for class {missing[0]!r}; every class needs one "
                            f"({len(missing)} missing)")
    columns = [c.strip() for c in header[1:]] if header is not None else [f"v{j}" for j in range(width)]
    return np.asarray([found[k][1] for k in range(len(class_names))], dtype=np.float64), columns


def _check_array(arr: np.ndarray, class_names: Sequence[str], where: str) -> np.ndarray:
    if arr.ndim != 2 or arr.dtype.kind not in "biuf":
        raise ReplearnError(f"{where}: holds a {arr.dtype} array of shape {arr.shape}; expected numbers (classes, D)")
    if arr.shape[0] != len(class_names):
        raise ReplearnError(f"{where}: has {arr.shape[0]} rows; the data set has {len(class_names)} classes "
                            f"(one row per class, in order: {', '.join(class_names)})")
    if arr.shape[1] < 1:
        raise ReplearnError(f"{where}: has no columns; every class needs at least one value")
    arr = arr.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(arr).all(axis=1))
    if len(bad):
        raise ReplearnError(f"{where}: the row of class {class_names[bad[0]]!r} holds NaN or infinity; "
                            "every value must be a finite number")
    return arr


def read_class_vectors(path: str | os.PathLike, class_names: Sequence[str]) -> ClassVectors:
    """One description vector per class from a CSV or ``.npy`` file: (K, D) float64 in ``class_names`` order."""
    path = Path(path)
    where = f"--class-vectors {path}"
    if path.suffix.lower() not in (".csv", ".npy"):
        raise ReplearnError(f"{where}: expected a .csv or .npy file")
    if not path.is_file():
        raise ReplearnError(f"{where}: no such file")
    if path.suffix.lower() == ".npy":
        arr = _check_array(read_npy(path, where), class_names, where)
        return ClassVectors(arr, [f"v{j}" for j in range(arr.shape[1])], {}, str(path))
    limits.check_bytes(path.stat().st_size, where, "the file", verb="has")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReplearnError(f"{where}: cannot read it as UTF-8 text ({exc})") from None
    vectors, columns = _parse_csv(text, class_names, where)
    return ClassVectors(vectors, columns, {}, str(path))


def attribute_table(dataset: str, class_names: Sequence[str]) -> ClassVectors:
    """The attribute table replearn ships for ``dataset`` (see :data:`ATTRIBUTE_TABLES`), with definitions."""
    if dataset not in ATTRIBUTE_TABLES:
        raise ReplearnError(f"no attribute table ships for {dataset!r} (only {', '.join(ATTRIBUTE_TABLES)}); "
                            "give --class-vectors FILE")
    folder = resources.files("replearn.data") / "attributes"
    where = f"replearn's attribute table {dataset}.csv"
    vectors, columns = _parse_csv((folder / f"{dataset}.csv").read_text(encoding="utf-8"), class_names, where)
    definitions = {}
    for line in (folder / f"{dataset}.txt").read_text(encoding="utf-8").splitlines():
        name, sep, text = line.partition(":")
        if sep and not line.startswith("#"):
            definitions[name.strip()] = text.strip()
    return ClassVectors(vectors, columns, definitions, where)
