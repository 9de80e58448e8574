"""Load and validate the assignment's ``data.npz`` (labelled crops, labels, unlabelled crops).

Accepted format (the course's file is ``labelled`` (400, 40, 40) uint8,
``labels`` (400,) in 0..2, ``unlabelled`` (3892, 40, 40) uint8):

- ``labelled`` (N, H, W) and ``unlabelled`` (M, H, W): uint8, another integer type
  with values in 0..255 (converted to uint8), or float in [0, 1] or [0, 255]
  (converted to float32 in [0, 1]; the scale is decided from both arrays together).
  A trailing channel axis of size 1, (N, H, W, 1), is squeezed away; other channel
  counts are refused. Both arrays use the same pixel type; ``unlabelled`` may be
  empty (M = 0, the assignment then skips the autoencoder) but keeps its rank.
- ``labels`` (N,): integers, or floats holding whole numbers, converted to int64.
  With ``n_classes`` given they must lie in 0..n_classes-1; otherwise they must be
  0..K-1 with every class present (so 1-based labels are caught).
- optional ``class_names`` (K,) strings; else the three stage names for K = 3,
  and "0", "1", ... otherwise.
- optional ``synthetic``: a 0-d boolean marker (``replearn synth`` writes True, with
  a 0-d string ``source`` describing the generator); a file without it is real data.
  Other extra keys are ignored.
- ``require_labelled=False`` also accepts a file with no labelled crops
  (``labelled`` (0, H, W), ``labels`` (0,)), as ``replearn crops`` writes without
  ``--labels``, for uses that need no labels (encoding, domain-shift views); it then
  needs at least one unlabelled crop. K is ``n_classes``, the length of
  ``class_names``, or 3.

The file is read with ``allow_pickle=False`` through :mod:`replearn.data.npyfile`: each
array's declared size is checked (against ``$REPLEARN_MAX_BYTES``, 1 GiB, and the archive
member's size) before it is allocated; the crops together may number at most
``$REPLEARN_MAX_IMAGES`` (1,000,000) and measure at most ``$REPLEARN_MAX_CROP`` (1024) px per
side (:mod:`replearn.data.limits`). Every violation raises one :class:`ReplearnError` line
naming the file, the key and the problem.

Degenerate data (``docs/reliability.md``): all labelled crops blank (each crop a single
value) or all identical is refused, and so are a single class among the labels and a class
with one labelled crop (unless ``require_labelled=False``: the labels are then not trained
on and the classes are not checked); some blank crops, or a class of ``n_classes`` with no
labelled crop, give one :class:`~replearn.data.limits.DataWarning` with the count. Without
labelled crops, unlabelled crops that are all blank or all identical are refused.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from replearn.data import limits
from replearn.data.assignment_data import AssignmentData
from replearn.data.npyfile import NpzArchive, kind_of_file
from replearn.errors import ReplearnError

REQUIRED_KEYS = ("labelled", "labels", "unlabelled")
_DEFAULT_K = 3


def _read_key(npz: NpzArchive, key: str, where: str) -> np.ndarray:
    """One array, its declared size checked first (object arrays are refused: no pickle)."""
    return npz[key]


def _check_images(arr: np.ndarray, key: str, where: str) -> np.ndarray:
    """Validate one image array; return it as (n, H, W) uint8 or float64 (not yet rescaled)."""
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 3:
        raise ReplearnError(
            f"{where}: key '{key}' has shape {arr.shape} (rank {arr.ndim}); expected images (n, H, W) or (n, H, W, 1)"
        )
    if arr.shape[1] == 0 or arr.shape[2] == 0:
        raise ReplearnError(f"{where}: key '{key}' has shape {arr.shape}; images must be at least 1x1 pixels")
    kind = arr.dtype.kind
    if kind in "ui":
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise ReplearnError(
                f"{where}: key '{key}' ({arr.dtype}) has values {arr.min()}..{arr.max()}; integer pixels must lie in 0..255"
            )
        return arr.astype(np.uint8, copy=False)
    if kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        if bad:
            raise ReplearnError(f"{where}: key '{key}' has {bad} NaN/inf values; pixels must be finite")
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise ReplearnError(
                f"{where}: key '{key}' has values {arr.min():g}..{arr.max():g}; float pixels must lie in [0, 1] or [0, 255]"
            )
        return arr.astype(np.float64, copy=False)
    raise ReplearnError(f"{where}: key '{key}' has dtype {arr.dtype}; images must be uint8 (0..255) or float")


def _check_labels(arr: np.ndarray, n: int, n_classes: int | None, where: str) -> tuple[np.ndarray, int]:
    """Validate the labels; return them as int64 and the number of classes K."""
    if arr.ndim != 1:
        raise ReplearnError(f"{where}: key 'labels' has shape {arr.shape} (rank {arr.ndim}); expected (N,) class indices")
    if len(arr) != n:
        raise ReplearnError(f"{where}: key 'labels' has {len(arr)} entries but 'labelled' has {n} images")
    kind = arr.dtype.kind
    if kind == "f":
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        if bad:
            raise ReplearnError(f"{where}: key 'labels' has {bad} NaN/inf values; labels must be class indices 0..K-1")
        frac = arr[arr != np.round(arr)]
        if frac.size:
            raise ReplearnError(
                f"{where}: key 'labels' has non-integer values (e.g. {frac[0]:g}); labels must be class indices 0..K-1"
            )
    elif kind not in "ui":
        raise ReplearnError(f"{where}: key 'labels' has dtype {arr.dtype}; labels must be integer class indices 0..K-1")
    if arr.min() < 0:
        raise ReplearnError(f"{where}: key 'labels' has negative values (min {arr.min():g}); labels must be 0..K-1")
    if float(arr.max()) >= 2.0**31:
        raise ReplearnError(f"{where}: key 'labels' has label {arr.max():g}, too large for a class index 0..K-1")
    labels = arr.astype(np.int64)
    top = int(labels.max())
    if n_classes is not None:
        if top >= n_classes:
            raise ReplearnError(
                f"{where}: key 'labels' has label {top}, out of range for {n_classes} classes (allowed 0..{n_classes - 1})"
            )
        return labels, n_classes
    present = np.unique(labels)
    if len(present) < top + 1:
        missing = np.setdiff1d(np.arange(min(top + 1, len(present) + 10)), present)
        raise ReplearnError(
            f"{where}: key 'labels' has classes {_listed(present)} but none of {_listed(missing)}; labels must be 0..K-1 "
            "with every class present (1-based labels? subtract 1; or pass n_classes)"
        )
    return labels, top + 1


def _listed(values: np.ndarray, limit: int = 10) -> str:
    """``[0, 1, 2]``, or the first ``limit`` values and ``...``."""
    shown = ", ".join(str(int(v)) for v in values[:limit])
    return f"[{shown}{', ...' if len(values) > limit else ''}]"


def _check_no_labels(npz: NpzArchive, n_classes: int | None, where: str) -> tuple[np.ndarray, int]:
    """Labels of a file without labelled crops: must be empty; K from ``n_classes``, ``class_names`` or 3."""
    arr = _read_key(npz, "labels", where)
    if arr.ndim != 1 or len(arr) != 0:
        raise ReplearnError(
            f"{where}: key 'labels' has shape {arr.shape} but 'labelled' has no images; expected an empty (0,) array"
        )
    if arr.dtype.kind not in "uif":
        raise ReplearnError(f"{where}: key 'labels' has dtype {arr.dtype}; labels must be integer class indices 0..K-1")
    if n_classes is not None:
        return np.zeros(0, dtype=np.int64), n_classes
    if "class_names" in npz.files:
        names = _read_key(npz, "class_names", where)
        if names.ndim == 1 and len(names) > 0:
            return np.zeros(0, dtype=np.int64), len(names)
    return np.zeros(0, dtype=np.int64), _DEFAULT_K


def _class_names(npz: NpzArchive, k: int, where: str) -> list[str] | None:
    """Names from the optional key, None for the default stage names (K = 3), else "0", "1", ..."""
    if "class_names" not in npz.files:
        return None if k == _DEFAULT_K else [str(i) for i in range(k)]
    names = _read_key(npz, "class_names", where)
    if names.dtype.kind not in "US" or names.ndim != 1 or len(names) != k:
        raise ReplearnError(
            f"{where}: key 'class_names' has shape {names.shape} and dtype {names.dtype}; "
            f"expected {k} strings, one per class"
        )
    return [_text(n) for n in names.tolist()]


def _synthetic_source(npz: NpzArchive, where: str) -> str | None:
    """The generator's description when the file is marked synthetic (key ``synthetic`` True), else None."""
    if "synthetic" not in npz.files:
        return None
    head = npz.header("synthetic")  # checked before reading: the key might hold anything
    if head.dtype.kind != "b" or limits.element_count(head.shape) != 1:
        raise ReplearnError(
            f"{where}: key 'synthetic' has shape {head.shape} and dtype {head.dtype}; expected one true/false "
            "marker (as replearn synth writes)"
        )
    marker = _read_key(npz, "synthetic", where)
    if not bool(marker.reshape(())):
        return None
    if "source" in npz.files:
        source = npz.header("source")
        if source.dtype.kind in "US" and limits.element_count(source.shape) == 1 and source.data_bytes <= 1 << 16:
            text = _read_key(npz, "source", where).reshape(()).item()
            return _text(text)
    return "synthetic data"


def _text(value) -> str:
    """A string from a numpy str or bytes scalar (bytes decoded as UTF-8, bad bytes replaced)."""
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def marked_synthetic(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an ``.npz`` carrying the ``synthetic`` marker set to True (False for anything else)."""
    path = Path(path)
    if not path.is_file() or path.suffix.lower() != ".npz":
        return False
    try:
        if kind_of_file(path) != "zip":
            return False
        with NpzArchive(path) as npz:
            return _synthetic_source(npz, str(path)) is not None
    except (OSError, ReplearnError):  # unreadable, or a 'synthetic' key that is no marker (e.g. images)
        return False


def load_assignment(
    path: str | os.PathLike,
    n_classes: int | None = None,
    require_labelled: bool = True,
    *,
    max_bytes: int | None = None,
    max_images: int | None = None,
    max_side: int | None = None,
) -> AssignmentData:
    """Load the assignment's ``data.npz`` and validate it (see the module docstring for the format).

    Args:
        path: the ``.npz`` file with keys ``labelled``, ``labels``, ``unlabelled``.
        n_classes: the number of classes K, when known; labels must then lie in 0..K-1.
            Without it K = max label + 1 and every class must occur.
        require_labelled: when False, a file with no labelled crops is accepted (labels
            empty too) as long as it has unlabelled crops; for uses that need no labels.
        max_bytes, max_images, max_side: raise the limits of :mod:`replearn.data.limits`
            (default ``$REPLEARN_MAX_BYTES`` or 1 GiB of arrays, ``$REPLEARN_MAX_IMAGES`` or
            1,000,000 crops, ``$REPLEARN_MAX_CROP`` or 1024 px per side).

    Returns:
        AssignmentData with labelled (N, H, W), labels (N,) int64 and unlabelled (M, H, W),
        images uint8, or float32 in [0, 1] for float input; ``source`` is the path (followed
        by the generator's description for a file marked synthetic); ``synthetic`` is the marker.

    Raises:
        ReplearnError: one line naming the file, the key and the problem.
    """
    path = Path(path)
    where = str(path)
    if not path.exists():
        raise ReplearnError(f"{where}: file not found (expected an .npz with keys {', '.join(REQUIRED_KEYS)})")
    if not path.is_file():
        raise ReplearnError(f"{where}: is a folder, not a file (expected an .npz with keys {', '.join(REQUIRED_KEYS)})")
    if n_classes is not None and n_classes < 1:
        raise ReplearnError(f"n_classes={n_classes}: must be at least 1")
    try:
        kind = kind_of_file(path)
    except OSError as exc:
        raise ReplearnError(f"{where}: cannot read it ({exc.strerror})") from None
    if kind == "npy":
        raise ReplearnError(
            f"{where}: holds a single array (.npy format), not an .npz archive with keys {', '.join(REQUIRED_KEYS)}"
        )
    if kind != "zip":  # numpy's own text here suggests allow_pickle, which replearn never uses
        raise ReplearnError(
            f"{where}: not an .npz archive (not a NumPy file; expected keys {', '.join(REQUIRED_KEYS)})"
        )
    with NpzArchive(path, where, max_bytes=max_bytes) as npz:
        missing = [k for k in REQUIRED_KEYS if k not in npz.files]
        if missing:
            raise ReplearnError(
                f"{where}: missing key {', '.join(repr(k) for k in missing)} "
                f"(found {', '.join(repr(k) for k in npz.files) or 'no keys'}; required {', '.join(REQUIRED_KEYS)})"
            )
        _check_declared(npz, where, max_images, max_side)
        labelled = _check_images(_read_key(npz, "labelled", where), "labelled", where)
        unlabelled = _check_images(_read_key(npz, "unlabelled", where), "unlabelled", where)
        if len(labelled) == 0 and require_labelled:
            raise ReplearnError(
                f"{where}: key 'labelled' has no images (shape {labelled.shape}); at least one is needed "
                "here (a file without labels, as `replearn crops` writes without --labels, suits replearn domain, embed "
                "and predict; label some cells with replearn crops --labels for training)"
            )
        if len(labelled) == 0:
            if len(unlabelled) == 0:
                raise ReplearnError(f"{where}: keys 'labelled' and 'unlabelled' hold no images; at least one crop is needed")
            labels, k = _check_no_labels(npz, n_classes, where)
        else:
            labels, k = _check_labels(_read_key(npz, "labels", where), len(labelled), n_classes, where)
        if unlabelled.shape[1:] != labelled.shape[1:]:
            raise ReplearnError(
                f"{where}: key 'unlabelled' has {unlabelled.shape[1]}x{unlabelled.shape[2]} images but 'labelled' has "
                f"{labelled.shape[1]}x{labelled.shape[2]}; both must be the same size"
            )
        class_names = _class_names(npz, k, where)
        named_classes = "class_names" in npz.files
        synthetic = _synthetic_source(npz, where)

    if len(unlabelled) == 0:
        unlabelled = unlabelled.astype(labelled.dtype)
    elif len(labelled) == 0:
        labelled = labelled.astype(unlabelled.dtype)
    elif (unlabelled.dtype == np.uint8) != (labelled.dtype == np.uint8):
        raise ReplearnError(
            f"{where}: key 'unlabelled' holds {'integer' if unlabelled.dtype == np.uint8 else 'float'} pixels but "
            f"'labelled' holds {'integer' if labelled.dtype == np.uint8 else 'float'} pixels; use one pixel type for both"
        )
    if labelled.dtype != np.uint8:
        top = max(float(labelled.max()) if labelled.size else 0.0, float(unlabelled.max()) if unlabelled.size else 0.0)
        scale = 255.0 if top > 1.0 else 1.0
        labelled = (labelled / scale).astype(np.float32)
        unlabelled = (unlabelled / scale).astype(np.float32)
    _check_useful(labelled, labels, unlabelled, k, class_names if named_classes else None, where,
                  strict=require_labelled)
    source = where if synthetic is None else f"{where} ({synthetic})"
    data = AssignmentData(labelled=labelled, labels=labels, unlabelled=unlabelled, source=source,
                          synthetic=synthetic is not None)
    if class_names is not None:
        data.class_names = class_names
    return data


def _check_declared(npz: NpzArchive, where: str, max_images: int | None, max_side: int | None) -> None:
    """Crop count and crop size from the headers of 'labelled' and 'unlabelled', before any pixel is read."""
    count = 0
    for key in ("labelled", "unlabelled"):
        shape = npz.header(key).shape
        if len(shape) in (3, 4):
            count += shape[0]
            limits.check_side(shape[1], shape[2], where, f"key '{key}' holds crops of", max_side)
    limits.check_images(count, where, "crops ('labelled' and 'unlabelled' together)", max_images)


# ----------------------------------------------------------------------------- degenerate data


def blank_images(images: np.ndarray) -> np.ndarray:
    """(N,) bool: which of the (N, H, W) images are blank (every pixel the same value)."""
    if len(images) == 0 or images.size == 0:
        return np.zeros(len(images), dtype=bool)
    flat = images.reshape(len(images), -1)
    return flat.min(axis=1) == flat.max(axis=1)


def all_identical(images: np.ndarray) -> bool:
    """Whether the (N, H, W) images, N >= 2, are all the same image."""
    if len(images) < 2:
        return False
    return bool(np.all(images.min(axis=0) == images.max(axis=0)))


def _some(indices: np.ndarray, limit: int = 5) -> str:
    shown = ", ".join(str(int(i)) for i in indices[:limit])
    return shown + (", ..." if len(indices) > limit else "")


def _check_classes(labels: np.ndarray, k: int, n: int, unit: str, name, where: str) -> None:
    """At least two classes, each with at least two labelled crops; a class of K with none is a warning."""
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2:
        raise ReplearnError(
            f"{where}: only {unit} {name(int(classes[0]))} is present in key 'labels' (all {n} labelled crops); "
            f"the assignment needs at least two {unit}s"
        )
    ones = classes[counts == 1]
    if ones.size:
        which = f"class {ones[0]} has" if ones.size == 1 else f"classes {_some(ones)} have"
        raise ReplearnError(
            f"{where}: key 'labels': {which} only 1 example; at least 2 labelled crops per class are needed "
            "(the stratified splits put one in training and one in validation)"
        )
    absent = k - len(classes)
    if absent > 0:
        missing = np.setdiff1d(np.arange(min(k, len(classes) + 6)), classes)
        limits.warn(f"{where}: {absent} of {k} {unit}s have no labelled crop ({unit} {_some(missing)})")


def _check_useful(
    labelled: np.ndarray,
    labels: np.ndarray,
    unlabelled: np.ndarray,
    k: int,
    names: list[str] | None,
    where: str,
    strict: bool,
) -> None:
    """Refuse data with nothing to learn from; warn (once) about parts that are useless.

    ``strict`` (``require_labelled``): the labels are trained on, so the classes are checked too.
    """
    unit = "stage" if names is None else "class"

    def name(c: int) -> str:
        return str(c) if names is None else repr(names[c])

    n, m = len(labelled), len(unlabelled)
    if n:
        blank = blank_images(labelled)
        if blank.all():
            zero = ", all zero" if not labelled.any() else ""
            raise ReplearnError(
                f"{where}: all {n} labelled crops are blank (each crop a single value{zero}); there is nothing to "
                "learn from; check how the crops were made"
            )
        if all_identical(labelled):
            raise ReplearnError(f"{where}: all {n} labelled crops are identical; there is nothing to tell apart")
        if blank.any():
            limits.warn(
                f"{where}: {int(blank.sum())} of {n} labelled crops are blank (each crop a single value; rows "
                f"{_some(np.flatnonzero(blank))}); they carry nothing to learn from"
            )
        if strict:  # the class checks matter where the labels are trained on
            _check_classes(labels, k, n, unit, name, where)
    if m:
        blank = blank_images(unlabelled)
        if n == 0 and blank.all():
            zero = ", all zero" if not unlabelled.any() else ""
            raise ReplearnError(
                f"{where}: all {m} unlabelled crops are blank (each crop a single value{zero}) and there are no "
                "labelled crops; there is nothing to learn from"
            )
        if n == 0 and all_identical(unlabelled):
            raise ReplearnError(f"{where}: all {m} unlabelled crops are identical and there are no labelled crops")
        if blank.any():
            limits.warn(
                f"{where}: {int(blank.sum())} of {m} unlabelled crops are blank (each crop a single value; rows "
                f"{_some(np.flatnonzero(blank))}); they carry nothing to learn from"
            )
