"""Segment round bacteria (S. aureus, about 20 px across) in a phase-contrast or membrane image.

Two steps, each usable alone:

- :func:`detect_objects` splits the foreground into objects with a seeded watershed
  and keeps everything (also clumps, debris and cells cut by the border);
- :func:`filter_cells` drops objects touching the border and implausible ones
  (area, solidity) and numbers the rest 1..N in reading order (top to bottom).

:func:`segment_cells` runs both and optionally grows the masks. It refuses a field where no
cell is left (:func:`check_cells`) and one that looks like noise (:func:`check_plausible`:
fewer than 25 % of the objects clear of the border pass the filters; under 50 % is a warning).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import ndimage as ndi

from replearn.errors import ReplearnError

Kind = Literal["phase", "fluorescence"]
KINDS = ("phase", "fluorescence")

#: Defaults tuned on the shared S. aureus field (cells about 20 px across, median area about 290 px).
MIN_AREA = 150
MAX_AREA = 600
MIN_SOLIDITY = 0.9
MIN_DISTANCE = 5
#: Typical cell radius (px): scales the distance transform in the phase watershed.
CELL_RADIUS = 10.0
#: Smoothing (px) and weight of the phase darkness added to the distance (in radii) for the watershed.
DARK_SIGMA = 2.0
DARK_WEIGHT = 2.0
#: Neighbourhood (px) a membrane ring must outshine to count as foreground.
RING_SIGMA = 8.0
#: The noise check (:func:`check_plausible`): of the objects clear of the border, a field of cells keeps
#: most through the area and solidity filters (the shared S. aureus field: 94 % on phase, 85 % on the
#: membrane; the synthetic test field 92 %), an image of pure noise few (0-20 %: the "objects" are
#: speckles or one sprawling foreground). Below ``MIN_KEPT_FRACTION`` the field is refused, below
#: ``WARN_KEPT_FRACTION`` a warning says so.
MIN_KEPT_FRACTION = 0.25
WARN_KEPT_FRACTION = 0.5


def _normalise(image: np.ndarray) -> np.ndarray:
    """Float image stretched so the 0.5 and 99.5 percentiles map to 0 and 1 (clipped)."""
    x = np.asarray(image, dtype=np.float64)
    lo, hi = np.percentile(x, [0.5, 99.5])
    if hi <= lo:
        lo, hi = float(x.min()), float(x.max())
    return np.clip((x - lo) / (hi - lo), 0.0, 1.0)


def _seeded_watershed(mask: np.ndarray, height: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """Watershed of ``height`` from the (N, 2) ``seeds`` restricted to ``mask``; int32 labels."""
    from skimage.segmentation import watershed

    markers = np.zeros(mask.shape, dtype=np.int32)
    markers[tuple(seeds.T)] = np.arange(1, len(seeds) + 1, dtype=np.int32)
    return watershed(height, markers, mask=mask).astype(np.int32)


def _phase_foreground(norm: np.ndarray) -> np.ndarray:
    """Dark cells: the darkest of three Otsu classes (cells / background / halos), holes filled."""
    from skimage.filters import gaussian, threshold_multiotsu
    from skimage.morphology import disk, opening

    smooth = gaussian(norm, 1)
    dark = ndi.binary_fill_holes(smooth < threshold_multiotsu(smooth, classes=3)[0])
    return opening(dark, disk(2))


def _fluorescence_foreground(norm: np.ndarray) -> np.ndarray:
    """Bright rings: above the Otsu level *and* brighter than their neighbourhood, gaps closed, rings filled.

    The local test (against a Gaussian of ``RING_SIGMA`` px) keeps the rings and
    drops the diffuse glow between crowded cells.
    """
    from skimage.filters import gaussian, threshold_otsu
    from skimage.morphology import closing, disk, opening

    smooth = gaussian(norm, 1)
    rings = (smooth > threshold_otsu(smooth)) & (smooth > gaussian(smooth, RING_SIGMA))
    return opening(ndi.binary_fill_holes(closing(rings, disk(1))), disk(3))


def foreground(image: np.ndarray, kind: Kind = "phase") -> np.ndarray:
    """Boolean (H, W) mask of cell pixels (filled cells, not yet split into cells).

    ``kind="phase"``: cells dark on grey with bright halos. ``kind="fluorescence"``:
    cells as bright membrane rings. A constant image gives an empty mask.
    """
    _check(image, kind)
    image = np.asarray(image)
    if not np.isfinite(image).all() or image.min() == image.max():
        return np.zeros(image.shape, dtype=bool)
    norm = _normalise(image)
    return _phase_foreground(norm) if kind == "phase" else _fluorescence_foreground(norm)


def _check(image: np.ndarray, kind: str) -> None:
    if kind not in KINDS:
        raise ReplearnError(f"segmentation kind {kind!r} is not allowed; use one of {', '.join(KINDS)}")
    if np.ndim(image) != 2:
        raise ReplearnError(f"segmentation needs a 2-D image (H, W); got shape {np.shape(image)}")


def detect_objects(image: np.ndarray, kind: Kind = "phase", min_distance: int = MIN_DISTANCE) -> np.ndarray:
    """Label every object in a (H, W) image, without any filtering.

    The :func:`foreground` is split by a seeded watershed on its distance transform
    (in cell radii). On phase contrast the smoothed darkness is added to it, so
    touching cells split even where the distance alone has one broad ridge (clumps
    of three or four cells). Dense clumps may stay merged; the filters reject them.

    Args:
        image: (H, W) phase-contrast (cells dark) or membrane fluorescence (cells bright rings).
        kind: ``"phase"`` or ``"fluorescence"``.
        min_distance: smallest distance (px) between two cell centres; smaller
            splits touching cells more eagerly.

    Returns:
        (H, W) int32 labels, 0 = background.
    """
    from skimage.feature import peak_local_max
    from skimage.filters import gaussian
    from skimage.measure import label

    mask = foreground(image, kind)
    if not mask.any():
        return np.zeros(mask.shape, dtype=np.int32)
    height = gaussian(ndi.distance_transform_edt(mask), 1) / CELL_RADIUS
    if kind == "phase":
        height = height + DARK_WEIGHT * (1.0 - gaussian(_normalise(image), DARK_SIGMA))
    seeds = peak_local_max(height, min_distance=min_distance, labels=label(mask), exclude_border=False)
    return _seeded_watershed(mask, -height, seeds)


def filter_cells(
    objects: np.ndarray,
    *,
    min_area: int = MIN_AREA,
    max_area: int = MAX_AREA,
    min_solidity: float = MIN_SOLIDITY,
    drop_border: bool = True,
) -> np.ndarray:
    """Keep plausible single cells and number them 1..N by centroid (row, then column).

    Args:
        objects: (H, W) int labels from :func:`detect_objects`.
        min_area, max_area: allowed area in pixels (inclusive).
        min_solidity: smallest area / convex-hull area; clumps and split fragments score lower.
        drop_border: drop objects touching the image border.

    Returns:
        (H, W) int32 labels of the kept cells, 0 elsewhere.
    """
    from skimage.measure import regionprops
    from skimage.segmentation import clear_border

    if min_area > max_area:
        raise ReplearnError(f"min_area {min_area} is larger than max_area {max_area}")
    labels = clear_border(objects) if drop_border else objects
    kept = []
    for region in regionprops(labels):
        if min_area <= region.area <= max_area and region.solidity >= min_solidity:
            kept.append((region.centroid, region.label))
    kept.sort()
    lut = np.zeros(int(objects.max()) + 1, dtype=np.int32)
    for new, (_, old) in enumerate(kept, start=1):
        lut[old] = new
    return lut[labels]


def segment_cells(
    image: np.ndarray,
    kind: Kind = "phase",
    *,
    min_area: int = MIN_AREA,
    max_area: int = MAX_AREA,
    min_solidity: float = MIN_SOLIDITY,
    min_distance: int = MIN_DISTANCE,
    grow: int = 0,
    name: str = "image",
) -> np.ndarray:
    """Segment cells: detect, drop border/implausible objects, optionally grow masks.

    Args:
        image: (H, W) phase-contrast (``kind="phase"``, cells dark) or membrane
            fluorescence (``kind="fluorescence"``, cells bright rings).
        min_area, max_area, min_solidity: see :func:`filter_cells` (applied before growing).
        min_distance: see :func:`detect_objects`.
        grow: grow each mask by this many pixels (``skimage.segmentation.expand_labels``,
            never into a neighbour).
        name: what the image is, for error messages.

    Returns:
        (H, W) int32 labels 1..N of the kept cells, 0 = background.

    Raises:
        ReplearnError: no cell is left (blank image, wrong kind, filters too strict), or the
            field looks like noise (:func:`check_plausible`).
    """
    objects = detect_objects(image, kind, min_distance)
    labels = filter_cells(objects, min_area=min_area, max_area=max_area, min_solidity=min_solidity)
    check_cells(labels, objects, name=name, kind=kind, min_area=min_area, max_area=max_area, min_solidity=min_solidity)
    return grow_labels(labels, grow)


def grow_labels(labels: np.ndarray, grow: int) -> np.ndarray:
    """Grow every label by ``grow`` pixels without overlapping its neighbours (0 = unchanged)."""
    from skimage.segmentation import expand_labels

    if grow < 0:
        raise ReplearnError(f"grow must be 0 or more pixels; got {grow}")
    return expand_labels(labels, grow).astype(np.int32) if grow else labels


def check_cells(
    labels: np.ndarray,
    objects: np.ndarray,
    *,
    name: str,
    kind: str,
    min_area: int,
    max_area: int,
    min_solidity: float,
) -> None:
    """Raise a one-line :class:`ReplearnError` when the filtered segmentation holds no cell, or looks like noise.

    ``labels`` are the cells kept by :func:`filter_cells` from the detected ``objects``; the noise
    criterion is :func:`check_plausible`'s.
    """
    if labels.max() > 0:
        check_plausible(labels, objects, name=name, kind=kind, min_area=min_area, max_area=max_area,
                        min_solidity=min_solidity)
        return
    n = int(len(np.unique(objects)) - 1)
    if n == 0:
        raise ReplearnError(f"{name}: segmentation ({kind}) found no objects; is the image blank or of another kind?")
    raise ReplearnError(
        f"{name}: segmentation ({kind}) found {n} objects but none is a cell clear of the border with area "
        f"{min_area}-{max_area} px and solidity >= {min_solidity:g}; adjust --min-area/--max-area/--min-solidity"
    )


def kept_fraction(labels: np.ndarray, objects: np.ndarray) -> tuple[int, int]:
    """``(kept, candidates)``: cells kept by :func:`filter_cells` and the objects clear of the border."""
    from skimage.segmentation import clear_border

    candidates = int(len(np.unique(clear_border(objects))) - 1)
    return int(len(np.unique(labels)) - (1 if (labels == 0).any() else 0)), candidates


def check_plausible(
    labels: np.ndarray,
    objects: np.ndarray,
    *,
    name: str,
    kind: str,
    min_area: int,
    max_area: int,
    min_solidity: float,
) -> None:
    """Refuse a field that looks like noise; warn about one that might be.

    The criterion (documented in ``docs/reliability.md``): the fraction of the detected objects
    clear of the border that pass the area and solidity filters. Below ``MIN_KEPT_FRACTION``
    (25 %) a :class:`ReplearnError`, below ``WARN_KEPT_FRACTION`` (50 %) one
    :class:`~replearn.data.limits.DataWarning`.
    """
    from replearn.data import limits

    kept, candidates = kept_fraction(labels, objects)
    if candidates == 0 or kept == 0:
        return  # check_cells speaks for an empty segmentation
    fraction = kept / candidates
    if fraction >= WARN_KEPT_FRACTION:
        return
    what = (
        f"{name}: segmentation ({kind}) kept {kept} of the {candidates} objects clear of the border as cells "
        f"({fraction:.0%}; area {min_area}-{max_area} px, solidity >= {min_solidity:g})"
    )
    if fraction < MIN_KEPT_FRACTION:
        raise ReplearnError(
            f"{what}; a field of cells keeps most of them, so this looks like noise or an image of another kind: "
            "check the image (phase contrast for --phase, membrane dye for --membrane) or adjust "
            "--min-area/--max-area/--min-solidity"
        )
    limits.warn(f"{what}; a field of cells usually keeps most of them: check the overlay for noise or clumps")
