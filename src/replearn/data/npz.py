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

The file is read with ``allow_pickle=False``. Every violation raises one
:class:`ReplearnError` line naming the file, the key and the problem.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from replearn.data.assignment_data import AssignmentData
from replearn.errors import ReplearnError

REQUIRED_KEYS = ("labelled", "labels", "unlabelled")
_DEFAULT_K = 3


def _read_key(npz: np.lib.npyio.NpzFile, key: str, where: str) -> np.ndarray:
    try:
        return npz[key]
    except ValueError as exc:  # object arrays need pickle, which is refused
        raise ReplearnError(
            f"{where}: key '{key}' holds Python objects (an object array, which would need unpickling); "
            "save plain numeric arrays"
        ) from exc
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise ReplearnError(f"{where}: key '{key}' cannot be read ({exc}); the file is damaged") from exc


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
    labels = arr.astype(np.int64)
    top = int(labels.max())
    if n_classes is not None:
        if top >= n_classes:
            raise ReplearnError(
                f"{where}: key 'labels' has label {top}, out of range for {n_classes} classes (allowed 0..{n_classes - 1})"
            )
        return labels, n_classes
    present = np.unique(labels)
    missing = sorted(set(range(top + 1)) - set(present.tolist()))
    if missing:
        raise ReplearnError(
            f"{where}: key 'labels' has classes {present.tolist()} but none of {missing}; labels must be 0..K-1 "
            "with every class present (1-based labels? subtract 1; or pass n_classes)"
        )
    return labels, top + 1


def _check_no_labels(npz: np.lib.npyio.NpzFile, n_classes: int | None, where: str) -> tuple[np.ndarray, int]:
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


def _class_names(npz: np.lib.npyio.NpzFile, k: int, where: str) -> list[str] | None:
    """Names from the optional key, None for the default stage names (K = 3), else "0", "1", ..."""
    if "class_names" not in npz.files:
        return None if k == _DEFAULT_K else [str(i) for i in range(k)]
    names = _read_key(npz, "class_names", where)
    if names.dtype.kind not in "US" or names.ndim != 1 or len(names) != k:
        raise ReplearnError(
            f"{where}: key 'class_names' has shape {names.shape} and dtype {names.dtype}; "
            f"expected {k} strings, one per class"
        )
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names.tolist()]


def _synthetic_source(npz: np.lib.npyio.NpzFile, where: str) -> str | None:
    """The generator's description when the file is marked synthetic (key ``synthetic`` True), else None."""
    if "synthetic" not in npz.files:
        return None
    marker = _read_key(npz, "synthetic", where)
    if marker.dtype.kind != "b" or marker.size != 1:
        raise ReplearnError(
            f"{where}: key 'synthetic' has shape {marker.shape} and dtype {marker.dtype}; expected one true/false "
            "marker (as replearn synth writes)"
        )
    if not bool(marker.reshape(())):
        return None
    if "source" in npz.files:
        source = _read_key(npz, "source", where)
        if source.dtype.kind in "US" and source.size == 1:
            text = source.reshape(()).item()
            return text.decode() if isinstance(text, bytes) else str(text)
    return "synthetic data"


def marked_synthetic(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an ``.npz`` carrying the ``synthetic`` marker set to True (False for anything else)."""
    path = Path(path)
    if not path.is_file() or path.suffix.lower() != ".npz":
        return False
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile):
        return False
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        return False
    with loaded as npz:
        try:
            return _synthetic_source(npz, str(path)) is not None
        except ReplearnError:  # a 'synthetic' key that is no marker (e.g. images): not marked
            return False


def load_assignment(
    path: str | os.PathLike, n_classes: int | None = None, require_labelled: bool = True
) -> AssignmentData:
    """Load the assignment's ``data.npz`` and validate it (see the module docstring for the format).

    Args:
        path: the ``.npz`` file with keys ``labelled``, ``labels``, ``unlabelled``.
        n_classes: the number of classes K, when known; labels must then lie in 0..K-1.
            Without it K = max label + 1 and every class must occur.
        require_labelled: when False, a file with no labelled crops is accepted (labels
            empty too) as long as it has unlabelled crops; for uses that need no labels.

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
        loaded = np.load(path, allow_pickle=False)
    except ValueError as exc:  # numpy's text here suggests allow_pickle, which replearn never uses
        raise ReplearnError(
            f"{where}: not an .npz archive (not a NumPy file; expected keys {', '.join(REQUIRED_KEYS)})"
        ) from exc
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ReplearnError(f"{where}: not an .npz archive ({exc})") from exc
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise ReplearnError(
            f"{where}: holds a single array (.npy format), not an .npz archive with keys {', '.join(REQUIRED_KEYS)}"
        )
    with loaded as npz:
        missing = [k for k in REQUIRED_KEYS if k not in npz.files]
        if missing:
            raise ReplearnError(
                f"{where}: missing key {', '.join(repr(k) for k in missing)} "
                f"(found {', '.join(repr(k) for k in npz.files) or 'no keys'}; required {', '.join(REQUIRED_KEYS)})"
            )
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
    source = where if synthetic is None else f"{where} ({synthetic})"
    data = AssignmentData(labelled=labelled, labels=labels, unlabelled=unlabelled, source=source,
                          synthetic=synthetic is not None)
    if class_names is not None:
        data.class_names = class_names
    return data
