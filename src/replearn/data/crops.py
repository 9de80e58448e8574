"""From one raw microscopy field to cell crops in the assignment's ``data.npz`` format.

Pipeline (:func:`process_field`):

1. segment the cells on the phase-contrast image when given (cells dark), else on
   the membrane image (:mod:`replearn.data.segmentation`);
2. register the membrane (and DNA) image to the segmentation by cross-correlation
   against the distance transform of the cell mask (:mod:`replearn.data.registration`):
   the membrane through the distance transform of its own filled-ring mask, the DNA
   image as it is, its blanked (all-zero) regions left out;
3. cut a ``size`` x ``size`` crop of the registered membrane image centred on each
   cell's centroid (rounded to the pixel; the crop's centre pixel is
   ``size // 2``). Windows that reach past the field are padded by reflection;
4. scale each crop on its own to uint8: its 0.5th and 99.5th intensity percentiles
   map to 0 and 255 (clipped), so a few hot pixels do not wash out a crop and every
   crop uses the full range, like the course's crops.

:meth:`FieldCrops.save` then writes, each atomically, the ``.npz`` and beside it
``<stem>_cells.csv`` (one row per cell), ``<stem>_montage.png`` (all crops with
their ids), ``<stem>_overlay.png`` (outlines on the field) and ``<stem>_crops.json``
(inputs, settings, shifts, counts).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from replearn.data import limits
from replearn.data.assignment_data import AssignmentData
from replearn.data.registration import MIN_BLANK_AREA, apply_shift, blank_mask, find_shift
from replearn.data.segmentation import (
    MAX_AREA,
    MIN_AREA,
    MIN_DISTANCE,
    MIN_SOLIDITY,
    check_cells,
    detect_objects,
    filter_cells,
    foreground,
    grow_labels,
)
from replearn.errors import ReplearnError

STAGE_NAMES = ["0 before division", "1 septum forming", "2 septum formed"]
#: Percentiles mapped to 0 and 255 in each crop.
LOW_PERCENTILE = 0.5
HIGH_PERCENTILE = 99.5
DEFAULT_SIZE = 40
#: Largest plausible channel offset (px per axis).
MAX_SHIFT = 20


# ----------------------------------------------------------------------------- crops


def scale_to_uint8(crop: np.ndarray, low: float = LOW_PERCENTILE, high: float = HIGH_PERCENTILE) -> np.ndarray:
    """Stretch one (H, W) crop so its ``low``/``high`` percentiles map to 0/255; uint8 (a flat crop gives 0)."""
    x = np.asarray(crop, dtype=np.float64)
    lo, hi = np.percentile(x, [low, high])
    if hi <= lo:
        return np.zeros(x.shape, dtype=np.uint8)
    return np.round(np.clip((x - lo) / (hi - lo), 0.0, 1.0) * 255.0).astype(np.uint8)


def cell_table(labels: np.ndarray) -> dict[str, np.ndarray]:
    """Properties of the cells in a (H, W) label image, one entry per label in increasing id.

    Columns: ``id``, ``centroid_row``, ``centroid_col``, ``area``, ``bbox_min_row``,
    ``bbox_min_col``, ``bbox_max_row``, ``bbox_max_col`` (exclusive) and ``solidity``.
    """
    from skimage.measure import regionprops

    regions = regionprops(labels)
    return {
        "id": np.array([r.label for r in regions], dtype=np.int64),
        "centroid_row": np.array([r.centroid[0] for r in regions], dtype=np.float64),
        "centroid_col": np.array([r.centroid[1] for r in regions], dtype=np.float64),
        "area": np.array([r.area for r in regions], dtype=np.int64),
        "bbox_min_row": np.array([r.bbox[0] for r in regions], dtype=np.int64),
        "bbox_min_col": np.array([r.bbox[1] for r in regions], dtype=np.int64),
        "bbox_max_row": np.array([r.bbox[2] for r in regions], dtype=np.int64),
        "bbox_max_col": np.array([r.bbox[3] for r in regions], dtype=np.int64),
        "solidity": np.array([r.solidity for r in regions], dtype=np.float64),
    }


def cut_crops(
    image: np.ndarray,
    labels: np.ndarray,
    size: int = DEFAULT_SIZE,
    *,
    progress: bool = False,
    max_side: int | None = None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Cut a ``size`` x ``size`` crop of ``image`` centred on each labelled cell's centroid.

    Args:
        image: (H, W) intensity image, already registered to ``labels``.
        labels: (H, W) int cell labels (0 = background), e.g. from ``segment_cells``.
        size: crop side in pixels (the centroid, rounded, lands on pixel ``size // 2``).
        progress: show a tqdm bar.
        max_side: the largest crop side allowed (default ``$REPLEARN_MAX_CROP`` or 1024 px).

    Returns:
        ``(crops, table)``: (N, size, size) uint8 crops, each scaled by
        :func:`scale_to_uint8`, in the order of ``table`` (see :func:`cell_table`).
    """
    from tqdm.auto import tqdm

    if image.shape != labels.shape:
        raise ReplearnError(f"image shape {image.shape} differs from labels shape {labels.shape}")
    check_crop_size(size, image.shape, max_side)
    table = cell_table(labels)
    half = size // 2
    padded = np.pad(np.asarray(image), size, mode="reflect")
    crops = np.zeros((len(table["id"]), size, size), dtype=np.uint8)
    rows = np.round(table["centroid_row"]).astype(int)
    cols = np.round(table["centroid_col"]).astype(int)
    for i in tqdm(range(len(crops)), desc="crops", unit="cell", disable=not progress, leave=False):
        top, left = rows[i] - half + size, cols[i] - half + size
        crops[i] = scale_to_uint8(padded[top : top + size, left : left + size])
    return crops, table


def check_crop_size(size: int, shape: tuple[int, ...], max_side: int | None = None) -> None:
    """Refuse a crop side below 8 px, beyond the field, or over the crop-side limit (1024 px by default)."""
    top = limits.max_crop_side(max_side)
    if size > top:
        raise ReplearnError(
            f"crop size {size} px is over the limit of {top} px (crops show single cells, about 20 px across); "
            f"if that is intended, raise the limit with {limits.CROP_ENV} (e.g. {limits.CROP_ENV}={size})"
        )
    if not 8 <= size <= min(shape):
        raise ReplearnError(f"crop size {size} is not allowed; use 8 to {min(min(shape), top)} px")


# ----------------------------------------------------------------------------- stages


def read_stages(path: str | os.PathLike, n_classes: int = len(STAGE_NAMES)) -> dict[int, int]:
    """Read ``cell id, stage`` rows from a CSV (optional header, ``#`` comments) into ``{id: stage}``.

    Stages are integers 0..n_classes-1 (0 before division, 1 septum forming, 2 septum formed).
    """
    path = Path(path)
    if not path.is_file():
        raise ReplearnError(f"labels file {path}: file not found")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReplearnError(f"labels file {path}: cannot read it as UTF-8 text ({exc})") from None
    stages: dict[int, int] = {}
    first = True
    for line_no, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in row]
        if not cells or all(c == "" for c in cells) or cells[0].startswith("#"):
            continue
        if len(cells) != 2:
            raise ReplearnError(
                f"labels file {path} line {line_no}: {len(cells)} columns; two are allowed: cell id, stage"
            )
        is_header, first = first and not cells[0].lstrip("+-").isdigit(), False
        if is_header:
            continue
        try:
            cell_id = int(cells[0])
        except ValueError:
            raise ReplearnError(f"labels file {path} line {line_no}: cell id {cells[0]!r} is not an integer") from None
        try:
            stage = int(cells[1])
        except ValueError:
            stage = -1
        if not 0 <= stage < n_classes:
            raise ReplearnError(
                f"labels file {path} line {line_no}: stage {cells[1]!r} for cell {cell_id}; "
                f"allowed: an integer 0..{n_classes - 1}"
            )
        if cell_id in stages:
            raise ReplearnError(f"labels file {path} line {line_no}: cell id {cell_id} is listed twice")
        stages[cell_id] = stage
    if not stages:
        raise ReplearnError(f"labels file {path}: no 'cell id, stage' rows found")
    return stages


# ----------------------------------------------------------------------------- the field


@dataclass
class FieldCrops:
    """Everything :func:`process_field` found in one field.

    Attributes:
        data: the crops in the assignment format (``labelled`` = cells listed in the
            stages, in that order; ``unlabelled`` = the rest, by id).
        table: one entry per kept cell (see :func:`cell_table`) plus ``membrane_mean``,
            ``dna_mean`` (NaN where the DNA image is blank; absent without DNA), and
            ``stage`` (-1 = unlabelled).
        labels: (H, W) int32 labels of the kept cells (ids of ``table``), after growing.
        objects: (H, W) int32 labels of every detected object, before filtering.
        reference: (H, W) the image the cells were segmented on.
        reference_kind: ``"phase"`` or ``"fluorescence"`` (membrane).
        shifts: ``{"membrane": (dy, dx), "dna": (dy, dx)}`` applied to each channel
            (module :mod:`replearn.data.registration` gives the sign convention).
        crops: (N, size, size) uint8 crops of all kept cells, in ``table`` (id) order.
        settings: the parameters used, for the JSON sidecar.
    """

    data: AssignmentData
    table: dict[str, np.ndarray]
    labels: np.ndarray
    objects: np.ndarray
    reference: np.ndarray
    reference_kind: str
    shifts: dict[str, tuple[int, int]]
    crops: np.ndarray = field(repr=False)
    settings: dict = field(default_factory=dict)

    def save(self, out: str | os.PathLike) -> dict[str, Path]:
        """Write the ``.npz`` and its CSV, montage, overlay and JSON companions; return their paths.

        Everything is rendered in memory first, then each file is written atomically.
        """
        from replearn.utils.atomic import save_json, write_bytes, write_text

        out = Path(out)
        paths = output_paths(out)
        csv_text = table_to_csv(self.table)
        montage = render_montage(self.crops, self.table["id"], stages=self.table["stage"])
        overlay = render_overlay(self.reference, self.labels, self.objects)
        summary = {
            "source": self.data.source,
            "synthetic": self.data.synthetic,
            "segmented_on": self.reference_kind,
            "shifts": {k: list(v) for k, v in self.shifts.items()},
            "shift_convention": "apply (dy, dx) to the channel: out[r, c] = channel[r - dy, c - dx]",
            "n_objects": int(len(np.unique(self.objects)) - 1),
            "n_cells": int(len(self.table["id"])),
            "n_labelled": int(len(self.data.labels)),
            "n_unlabelled": int(len(self.data.unlabelled)),
            "settings": self.settings,
            "files": {k: p.name for k, p in paths.items()},
        }
        self.data.save_npz(paths["npz"])
        write_text(paths["csv"], csv_text)
        write_bytes(paths["montage"], montage)
        write_bytes(paths["overlay"], overlay)
        save_json(paths["json"], summary)
        return paths


def output_paths(out: str | os.PathLike) -> dict[str, Path]:
    """The files :meth:`FieldCrops.save` writes for ``out`` (the ``.npz`` path)."""
    out = Path(out)
    stem = out.with_suffix("")
    return {
        "npz": out,
        "csv": stem.parent / f"{stem.name}_cells.csv",
        "montage": stem.parent / f"{stem.name}_montage.png",
        "overlay": stem.parent / f"{stem.name}_overlay.png",
        "json": stem.parent / f"{stem.name}_crops.json",
    }


def _check_channel(image: np.ndarray | None, name: str, shape: tuple[int, ...] | None) -> None:
    if image is None:
        return
    if np.asarray(image).ndim != 2:
        raise ReplearnError(f"{name} image: shape {np.shape(image)}; one single-channel 2-D image (H, W) is allowed")
    if shape is not None and np.shape(image) != shape:
        raise ReplearnError(
            f"{name} image is {image.shape[0]}x{image.shape[1]} but the membrane image is {shape[0]}x{shape[1]}; "
            "all channels must be the same field"
        )


def _mean_per_cell(
    image: np.ndarray, labels: np.ndarray, ids: np.ndarray, valid: np.ndarray | None = None
) -> np.ndarray:
    """Mean of ``image`` over each cell's valid pixels (NaN where a cell has none)."""
    use = labels if valid is None else np.where(valid, labels, 0)
    n = int(labels.max()) + 1
    sums = np.bincount(use.ravel(), weights=np.asarray(image, dtype=np.float64).ravel(), minlength=n)
    counts = np.bincount(use.ravel(), minlength=n).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums / counts)[ids]


def process_field(
    membrane: np.ndarray,
    phase: np.ndarray | None = None,
    dna: np.ndarray | None = None,
    size: int = DEFAULT_SIZE,
    *,
    stages: Mapping[int, int] | None = None,
    min_area: int = MIN_AREA,
    max_area: int = MAX_AREA,
    min_solidity: float = MIN_SOLIDITY,
    min_distance: int = MIN_DISTANCE,
    grow: int = 0,
    max_shift: float = MAX_SHIFT,
    source: str = "",
    names: Mapping[str, str] | None = None,
    stages_name: str = "labels",
    progress: bool = False,
    max_side: int | None = None,
) -> FieldCrops:
    """Segment, register and crop one field; see the module docstring for the steps.

    Args:
        membrane: (H, W) membrane-dye image; the crops are cut from it.
        phase: optional (H, W) phase-contrast image of the same field; when given
            the cells are segmented on it and the fluorescence channels registered to it.
        dna: optional (H, W) DNA-dye image, registered and measured (``dna_mean``).
        size: crop side in pixels.
        stages: optional ``{cell id: stage}``; those cells become ``labelled``.
        min_area, max_area, min_solidity, min_distance, grow: segmentation settings
            (:func:`replearn.data.segmentation.segment_cells`).
        max_shift: largest accepted registration shift per axis (px).
        source: recorded in ``AssignmentData.source``.
        names: file names per channel (``{"membrane": ..., ...}``) for error messages.
        stages_name: the stages' file name, for error messages.
        progress: show a progress bar while cutting crops.
        max_side: the largest crop side allowed (default ``$REPLEARN_MAX_CROP`` or 1024 px).

    Raises:
        ReplearnError: channels that differ, a crop size out of range, no cell found, a field
            that looks like noise (:func:`replearn.data.segmentation.check_plausible`), a failed
            registration, or stages naming unknown cells; each one line.
    """
    label = {key: f"{key} ({names[key]})" if names and key in names else key for key in ("membrane", "phase", "dna")}
    _check_channel(membrane, label["membrane"], None)
    _check_channel(phase, label["phase"], membrane.shape)
    _check_channel(dna, label["dna"], membrane.shape)
    check_crop_size(size, np.shape(membrane), max_side)

    # 1. segmentation
    kind = "phase" if phase is not None else "fluorescence"
    reference = phase if phase is not None else membrane
    ref_name = label["phase"] if phase is not None else label["membrane"]
    objects = detect_objects(reference, kind, min_distance)
    cells = filter_cells(objects, min_area=min_area, max_area=max_area, min_solidity=min_solidity)
    check_cells(cells, objects, name=ref_name, kind=kind, min_area=min_area, max_area=max_area,
                min_solidity=min_solidity)
    labels = grow_labels(cells, grow)

    # 2. registration against the distance transform of everything detected: a cone per cell peaks the
    #    correlation at the cell centre whatever the exact mask radius. The membrane is compared through
    #    the distance transform of its own filled-ring mask (a ring against a filled cell correlates best
    #    off-centre, a crater); the DNA image (filled nucleoids) as it is, blanked regions left out.
    cones = ndi.distance_transform_edt(objects > 0)
    shifts: dict[str, tuple[int, int]] = {}
    if phase is not None:
        ring_mask = foreground(membrane, "fluorescence")
        if not ring_mask.any():
            raise ReplearnError(f"{label['membrane']} image: no membrane rings found to register against the cells")
        rings = ndi.distance_transform_edt(ring_mask)
        shifts["membrane"] = find_shift(cones, rings, max_shift=max_shift, name=label["membrane"])
    else:
        shifts["membrane"] = (0, 0)  # segmented on the membrane itself
    membrane_reg = apply_shift(membrane, shifts["membrane"])
    dna_reg = dna_valid = None
    if dna is not None:
        valid = ~blank_mask(dna, MIN_BLANK_AREA)
        shifts["dna"] = find_shift(cones, dna, moving_valid=valid, max_shift=max_shift, name=label["dna"])
        dna_reg = apply_shift(dna, shifts["dna"])
        dna_valid = apply_shift(valid, shifts["dna"])

    # 3-4. crops and per-cell table
    crops, table = cut_crops(membrane_reg, labels, size, progress=progress, max_side=max_side)
    ids = table["id"]
    table["membrane_mean"] = _mean_per_cell(membrane_reg, labels, ids)
    if dna_reg is not None:
        table["dna_mean"] = _mean_per_cell(dna_reg, labels, ids, dna_valid)

    stages = {int(k): int(v) for k, v in (stages or {}).items()}
    bad = {k: v for k, v in stages.items() if not 0 <= v < len(STAGE_NAMES)}
    if bad:
        k, v = next(iter(bad.items()))
        raise ReplearnError(f"{stages_name}: stage {v} for cell {k}; allowed: an integer 0..{len(STAGE_NAMES) - 1}")
    unknown = sorted(set(stages) - set(ids.tolist()))
    if unknown:
        shown = ", ".join(str(i) for i in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        raise ReplearnError(
            f"{stages_name}: cell id(s) {shown} not among the {len(ids)} cells found (ids 1..{len(ids)}); "
            "run once without labels and read the ids from the _cells.csv or the montage"
        )
    table["stage"] = np.array([stages.get(int(i), -1) for i in ids], dtype=np.int64)
    index = {int(i): k for k, i in enumerate(ids)}
    labelled_rows = [index[i] for i in stages]
    unlabelled_rows = [k for k, i in enumerate(ids) if int(i) not in stages]
    data = AssignmentData(
        labelled=crops[labelled_rows].reshape(-1, size, size),
        labels=np.array([stages[i] for i in stages], dtype=np.int64),
        unlabelled=crops[unlabelled_rows].reshape(-1, size, size),
        source=source,
        synthetic=False,
        class_names=list(STAGE_NAMES),
    )
    settings = {
        "size": size,
        "min_area": min_area,
        "max_area": max_area,
        "min_solidity": min_solidity,
        "min_distance": min_distance,
        "grow": grow,
        "max_shift": max_shift,
        "crop_scaling": f"per crop, percentiles {LOW_PERCENTILE}-{HIGH_PERCENTILE} -> 0-255",
        "crop_padding": "reflect",
    }
    return FieldCrops(
        data=data,
        table=table,
        labels=labels,
        objects=objects,
        reference=np.asarray(reference),
        reference_kind=kind,
        shifts=shifts,
        settings=settings,
        crops=crops,
    )


def field_to_crops(
    membrane: np.ndarray,
    phase: np.ndarray | None = None,
    dna: np.ndarray | None = None,
    size: int = DEFAULT_SIZE,
    **kwargs,
) -> tuple[AssignmentData, dict[str, np.ndarray]]:
    """Crops of one field as ``(AssignmentData, cell table)``; :func:`process_field` gives everything."""
    result = process_field(membrane, phase, dna, size, **kwargs)
    return result.data, result.table


# ----------------------------------------------------------------------------- outputs


def table_to_csv(table: Mapping[str, np.ndarray]) -> str:
    """CSV text of a column table (floats with 2 decimals, solidity with 3; NaN as empty)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    names = list(table)
    writer.writerow(names)
    for k in range(len(table[names[0]])):
        row = []
        for name in names:
            v = table[name][k]
            if np.issubdtype(np.asarray(v).dtype, np.floating):
                row.append("" if np.isnan(v) else f"{v:.3f}" if name == "solidity" else f"{v:.2f}")
            else:
                row.append(str(int(v)))
        writer.writerow(row)
    return buf.getvalue()


def _png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def render_montage(crops: np.ndarray, ids: np.ndarray, stages: np.ndarray | None = None, columns: int = 20) -> bytes:
    """PNG bytes of the (N, S, S) uint8 crops in a grid, each captioned with its cell id (``id:stage`` if labelled)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    n, s = len(crops), crops.shape[-1]
    columns = max(1, min(columns, n))
    rows = max(1, -(-n // columns))
    gap = 2
    sheet = np.full((rows * (s + gap) + gap, columns * (s + gap) + gap), 40, dtype=np.uint8)
    for k in range(n):
        r, c = divmod(k, columns)
        sheet[gap + r * (s + gap) : gap + r * (s + gap) + s, gap + c * (s + gap) : gap + c * (s + gap) + s] = crops[k]
    scale, dpi = 1.5, 100
    fig = Figure(figsize=(sheet.shape[1] * scale / dpi, sheet.shape[0] * scale / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(sheet, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_axis_off()
    for k in range(n):
        r, c = divmod(k, columns)
        label = str(int(ids[k]))
        if stages is not None and stages[k] >= 0:
            label += f":{int(stages[k])}"
        ax.text(
            gap + c * (s + gap) + 1,
            gap + r * (s + gap) + 1,
            label,
            color="yellow",
            fontsize=6,
            va="top",
            ha="left",
            bbox={"facecolor": "black", "alpha": 0.6, "pad": 0.6, "linewidth": 0},
        )
    return _png_bytes(fig)


def render_overlay(
    reference: np.ndarray, labels: np.ndarray, objects: np.ndarray, max_side: int | None = None
) -> bytes:
    """PNG bytes of the field with kept cells outlined in red (with ids) and rejected objects in blue.

    ``max_side`` first subsamples the field (every k-th pixel) so its longer side fits, and leaves
    the ids out (for previews).
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from skimage.measure import regionprops
    from skimage.segmentation import find_boundaries

    step = 1
    if max_side is not None and max(reference.shape) > max_side:
        step = int(np.ceil(max(reference.shape) / max_side))
    reference, labels, objects = (np.asarray(a)[::step, ::step] for a in (reference, labels, objects))
    lo, hi = np.percentile(reference, [0.5, 99.9])
    grey = np.clip((reference.astype(np.float64) - lo) / max(hi - lo, 1e-12), 0, 1)
    rgb = np.repeat(grey[..., None], 3, axis=2)
    rejected = np.where(labels > 0, 0, objects)
    rgb[find_boundaries(rejected, mode="inner")] = (0.2, 0.6, 1.0)
    rgb[find_boundaries(labels, mode="inner")] = (1.0, 0.15, 0.15)
    h, w = rgb.shape[:2]
    dpi, zoom = 100, 1.25 if step == 1 else 1.0
    fig = Figure(figsize=(w * zoom / dpi, h * zoom / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(rgb, interpolation="nearest")
    ax.set_axis_off()
    if step == 1:  # ids are unreadable on a subsampled preview
        for region in regionprops(labels):
            r, c = region.centroid
            ax.text(
                c + 7,
                r - 7,
                str(region.label),
                color="yellow",
                fontsize=6,
                ha="left",
                va="bottom",
                bbox={"facecolor": "black", "alpha": 0.5, "pad": 0.4, "linewidth": 0},
            )
    return _png_bytes(fig)
