"""Synthetic *S. aureus* membrane-stain crops, a stand-in for the course's ``data.npz``.

The course's real crops (400 labelled 40x40 SIM images of dividing
*Staphylococcus aureus*, stages 0/1/2, plus 3,892 unlabelled) are not public.
:func:`synthetic_aureus` draws crops from a simple image-formation model so
that every workflow runs end to end without them. Everything made from this
data must say it is synthetic (``AssignmentData.synthetic`` is True).

Image model, per crop (all lengths in pixels of a 40x40 crop; other ``size``
values scale the geometry by ``size / 40``):

1. **Cell.** A slightly elliptical cell (aspect ratio up to ``1 + ellipticity``)
   near the crop centre (``centre_jitter``), diameter uniform in ``diameter``,
   random orientation. Its membrane is a bright ring with a Gaussian cross
   section (``ring_width``), uneven along its length (``ring_unevenness``),
   around a dimmer cytoplasm (``interior``).
2. **Stage.** 0 (before division): intact ring; a fraction ``flat_fraction`` of
   these cells has one flattened, brighter side where a sister cell has just
   split off. 1 (septum forming): the septum grows in from opposite sides of
   the ring along the minor axis, as two bright spots or a partial bar; each
   side covers a fraction of the half-chord drawn from ``septum_progress``.
   2 (septum formed): a complete bright line across the cell. Septum
   brightness relative to the ring is drawn from ``septum_brightness`` (per
   stage), so some septa are dim.
3. **Neighbours.** Up to three touching cells around the crop, cut by the crop
   edge (Poisson number with mean ``neighbours``), some of them dividing.
4. **Optics and camera.** Out-of-focus glow around cells (``glow``), background
   offset and linear gradient (``background``, ``gradient``), per-cell
   brightness (log-normal, ``brightness_sd``), a Gaussian PSF (``psf_sigma``),
   Poisson shot noise at ``photons`` photons for a unit-brightness ring, and a
   fixed conversion to uint8 (``gain``: grey value of a unit-brightness ring
   before blur) with clipping at 255 -- or, with ``stretch``, each crop's
   percentiles mapped to 0 and 255 as ``replearn crops`` scales real crops.
5. **Ambiguity.** Stage 1 spans short, dim septa (close to stage 0) to nearly
   closed ones (close to stage 2). A fraction ``stage_confusion`` of labelled
   crops is rendered as an adjacent stage while keeping its label, as
   annotators would disagree on borderline cells.

Presets (:data:`PRESETS`): ``"sim"`` (default) imitates super-resolution SIM
crops: the cell fills most of the crop (diameter 28-34 px), thin sharp ring,
little blur. ``"widefield"`` imitates the crops ``replearn crops`` cuts from the
shared widefield field (``aureus-maicrobe/test_membrane.tif``), fitted to their
per-crop statistics (docs/real_cells.md): cells 14.5-21.5 px across and more
elongated, cytoplasm about as bright as the ring, soft ring, blur and glow, more
neighbours in the crop, and each crop stretched to 0-255 like the real ones.
``"widefield-septa"`` is ``"widefield"`` with brighter septa and more stage-0
cells with a bright flattened side: a model trained on generated crops alone
reads real stages better with it (for zero-shot use; see :data:`PRESETS`).

Class counts: ``n_labelled`` is split by ``proportions`` (default 45/30/25 %)
with largest-remainder rounding, so the counts sum to ``n_labelled`` exactly;
every class gets at least 2 crops when ``n_labelled >= 6`` and at least 1 when
``n_labelled >= 3`` (moved from the largest class), see :func:`class_counts`.
The unlabelled crops are split the same way; their labels are discarded. Both
sets are shuffled.

Deterministic: the same arguments give identical arrays on every machine with
the same NumPy; a different ``seed`` gives different crops.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
from scipy import ndimage

from replearn.data.assignment_data import AssignmentData
from replearn.data.crops import scale_to_uint8
from replearn.errors import ReplearnError

__all__ = ["AureusParams", "PRESETS", "class_counts", "source_preset", "synthetic_aureus"]

_REFERENCE_SIZE = 40
_MAX_NEIGHBOURS = 3
_CHUNK = 512


@dataclass(frozen=True)
class AureusParams:
    """Generator parameters (lengths in pixels of a 40x40 crop). See the module docstring.

    Ranges ``(lo, hi)`` are sampled uniformly per cell unless stated otherwise.
    """

    diameter: tuple[float, float] = (28.0, 34.0)
    """Cell diameter range (mean of the two ellipse axes)."""
    ellipticity: float = 0.12
    """Largest aspect ratio minus 1 (axis ratio uniform in [1, 1 + ellipticity])."""
    centre_jitter: float = 1.5
    """Standard deviation of the cell centre around the crop centre."""
    centre_offset: float = 0.0
    """Shift (px, down and right, not scaled with ``size``) of the mean cell centre from the crop's middle
    ``(size - 1) / 2``; 0.5 puts it on pixel ``size // 2``, where ``replearn crops`` puts a cell's centroid."""
    ring_width: tuple[float, float] = (0.8, 1.2)
    """Gaussian sigma of the membrane cross section, before the PSF."""
    ring_unevenness: float = 0.2
    """Amplitude of the smooth brightness modulation along the ring (0 = even)."""
    interior: tuple[float, float] = (0.12, 0.3)
    """Cytoplasm brightness relative to the ring."""
    flat_fraction: float = 0.3
    """Fraction of stage-0 cells with a flattened, brighter side (recent split)."""
    flat_brightness: tuple[float, float] = (1.2, 1.8)
    """Brightness of the flattened side relative to the ring."""
    septum_progress: tuple[float, float] = (0.08, 0.95)
    """Stage 1: fraction of each half-chord covered by the ingrowing septum."""
    septum_brightness: tuple[tuple[float, float], tuple[float, float]] = ((0.35, 1.6), (0.6, 2.0))
    """Septum brightness relative to the ring, for stage 1 and stage 2."""
    neighbours: float = 1.0
    """Mean number of neighbouring cells around the crop (Poisson, at most 3)."""
    glow: float = 0.0
    """Out-of-focus glow around cells, relative to the ring."""
    glow_length: float = 4.0
    """Decay length of the glow outside a cell."""
    background: tuple[float, float] = (0.04, 0.12)
    """Background offset relative to the ring."""
    gradient: float = 0.08
    """Largest background change across the crop (random direction)."""
    brightness_sd: float = 0.25
    """Standard deviation of the log per-cell brightness."""
    psf_sigma: float = 0.8
    """Gaussian PSF sigma of the optics."""
    photons: float = 60.0
    """Photons collected at the peak of a unit-brightness ring (sets the shot noise)."""
    gain: float = 140.0
    """Grey value (before blur) of a unit-brightness ring in the uint8 output."""
    proportions: tuple[float, float, float] = (0.45, 0.30, 0.25)
    """Class proportions of stages 0, 1, 2 (normalised to sum to 1)."""
    stage_confusion: float = 0.04
    """Fraction of labelled crops rendered as an adjacent stage (borderline cells)."""
    stretch: tuple[float, float] | None = None
    """None: fixed ``gain``. A pair of percentiles: each crop's are mapped to 0 and 255 before rounding, as
    ``replearn crops`` scales real crops (:func:`replearn.data.crops.scale_to_uint8`); ``gain`` is then unused."""


PRESETS: dict[str, AureusParams] = {
    "sim": AureusParams(),
    # widefield: fitted to the 244 real crops that ``replearn crops`` cuts from the shared widefield field
    # (docs/real_cells.md, bench/widefield_realism.py): each crop stretched to 0-255 between its 0.5th and
    # 99.5th percentiles and the cell centred as ``replearn crops`` does; size, cytoplasm/ring ratio, noise,
    # blur and background from per-crop statistics of both sets; then a coordinate search on the
    # domain-classifier AUC of a trained CNN's features (0.99 -> 0.86 over 3 seeds; the target 0.75 is not met).
    "widefield": AureusParams(
        diameter=(14.5, 21.5),
        ellipticity=0.25,
        centre_jitter=0.75,
        centre_offset=0.75,
        ring_width=(1.3, 1.8),
        ring_unevenness=0.15,
        interior=(0.95, 1.3),
        flat_brightness=(1.0, 1.3),
        septum_brightness=((0.8, 1.8), (1.2, 2.2)),
        neighbours=2.25,
        glow=0.6,
        glow_length=8.0,
        background=(0.2, 0.4),
        gradient=0.12,
        brightness_sd=0.1,
        psf_sigma=1.35,
        photons=450.0,
        stretch=(0.5, 99.5),
    ),
}
# widefield-septa: the widefield preset with brighter septa and more stage-0 cells carrying a bright flattened side
# (a wall shared with a neighbour), as many real stage-0 cells do. A CNN trained on 300 of its crops alone reads the
# stages of the shared field's 244 real cells better than one trained on ``widefield``: 0.756 vs 0.643 against the
# first reading of bench/labels/, 0.736 vs 0.623 against the second, independent one (which took no part in the
# choice), seeds 0-1 (docs/real_cells.md, section 3). Its domain AUC is about the same (0.82 vs 0.84). For models
# trained on generated crops alone (zero-shot); the grid's sim-to-real row, fine-tuned on real labels, does not
# gain from it (docs/real_cells.md), so it keeps ``widefield``.
PRESETS["widefield-septa"] = replace(PRESETS["widefield"], flat_fraction=0.6, flat_brightness=(1.3, 2.0),
                                     septum_brightness=((1.2, 2.2), (1.6, 2.6)))
"""Named parameter sets: ``"sim"`` (super-resolution crops), ``"widefield"`` and ``"widefield-septa"``."""


def source_preset(source: str) -> str | None:
    """The preset named in a data source string that :func:`synthetic_aureus` wrote (``"... preset=NAME, ..."``);
    None when it names none of :data:`PRESETS`."""
    match = re.search(r"preset=([\w-]+)", str(source))
    return match.group(1) if match and match.group(1) in PRESETS else None


def class_counts(n: int, proportions: tuple[float, ...] | np.ndarray, min_per_class: int = 2) -> np.ndarray:
    """Split ``n`` into per-class counts following ``proportions`` (largest-remainder rounding).

    The counts sum to ``n``. Every class with a positive proportion then gets at least
    ``min(min_per_class, n // K)`` (K such classes), moved one at a time from the largest
    class: with the default, at least 2 each once ``n >= 2K`` and at least 1 once ``n >= K``.
    """
    p = np.asarray(proportions, dtype=np.float64)
    p = p / p.sum()
    raw = n * p
    counts = np.floor(raw).astype(np.int64)
    remainder = n - int(counts.sum())
    order = np.argsort(-(raw - counts), kind="stable")
    counts[order[:remainder]] += 1
    present = np.flatnonzero(p > 0)
    floor = min(min_per_class, n // len(present))
    for k in present:
        while counts[k] < floor:
            counts[int(np.argmax(counts))] -= 1
            counts[k] += 1
    assert counts.sum() == n and (counts >= 0).all()
    return counts


def synthetic_aureus(
    n_labelled: int = 400,
    n_unlabelled: int = 3892,
    seed: int = 0,
    preset: str = "sim",
    size: int = 40,
    **params: Any,
) -> AssignmentData:
    """Draw synthetic membrane-stain crops of *S. aureus* in the course's ``data.npz`` format.

    Args:
        n_labelled: number of labelled crops (split into stages by ``proportions``).
        n_unlabelled: number of unlabelled crops, same process and class mix, labels discarded.
        seed: random seed; the same seed gives identical arrays.
        preset: ``"sim"`` (super-resolution crops, cell fills the crop), ``"widefield"`` or ``"widefield-septa"``.
        size: crop side in pixels (geometry scales with ``size / 40``).
        **params: overrides of :class:`AureusParams` fields (e.g. ``psf_sigma=1.0``).

    Returns:
        AssignmentData with ``labelled`` (n_labelled, size, size) uint8, ``labels``
        (n_labelled,) int64 in 0..2, ``unlabelled`` (n_unlabelled, size, size) uint8,
        ``synthetic=True``.

    Raises:
        ReplearnError: negative counts, an unknown preset or parameter, or an invalid value.
    """
    p = _resolve_params(preset, params)
    for name, value in (("n_labelled", n_labelled), ("n_unlabelled", n_unlabelled)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ReplearnError(f"synthetic_aureus: {name} must be an integer >= 0, got {value!r}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 16:
        raise ReplearnError(f"synthetic_aureus: size must be an integer >= 16, got {size!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ReplearnError(f"synthetic_aureus: seed must be an integer >= 0, got {seed!r}")

    rng = np.random.default_rng(int(seed))
    n_l, n_u = int(n_labelled), int(n_unlabelled)
    labels = np.repeat(np.arange(3, dtype=np.int64), class_counts(n_l, p.proportions))
    hidden = np.repeat(np.arange(3, dtype=np.int64), class_counts(n_u, p.proportions))
    labels = rng.permutation(labels)
    hidden = rng.permutation(hidden)

    # Borderline cells: some labelled crops look like an adjacent stage.
    drawn = labels.copy()
    confused = rng.random(n_l) < p.stage_confusion
    step = np.where(rng.random(n_l) < 0.5, -1, 1)
    step = np.where(drawn == 0, 1, np.where(drawn == 2, -1, step))
    drawn[confused] += step[confused]

    stages = np.concatenate([drawn, hidden])
    cells = _draw_cells(rng, stages, p, size)
    images = np.empty((stages.size, size, size), dtype=np.uint8)
    for start in range(0, stages.size, _CHUNK):
        stop = min(start + _CHUNK, stages.size)
        chunk = {key: value[start:stop] for key, value in cells.items()}
        images[start:stop] = _render(chunk, p, size, rng)

    return AssignmentData(
        labelled=images[:n_l],
        labels=labels,
        unlabelled=images[n_l:],
        source=f"synthetic S. aureus (replearn.data.synthetic_aureus, preset={preset}, seed={seed})",
        synthetic=True,
    )


def _resolve_params(preset: str, params: dict[str, Any]) -> AureusParams:
    """The preset's parameters with ``params`` applied, validated."""
    if preset not in PRESETS:
        raise ReplearnError(f"synthetic_aureus: unknown preset {preset!r}; allowed: {', '.join(sorted(PRESETS))}")
    names = [f.name for f in fields(AureusParams)]
    for key in params:
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ReplearnError(f"synthetic_aureus: unknown parameter {key!r}{hint}; allowed: {', '.join(names)}")
    p = replace(PRESETS[preset], **params)

    def bad(name: str, what: str) -> ReplearnError:
        return ReplearnError(f"synthetic_aureus: {name}={getattr(p, name)!r} is invalid; expected {what}")

    def check_range(name: str, lo: float, hi: float, value: Any = None) -> None:
        value = getattr(p, name) if value is None else value
        try:
            a, b = (float(v) for v in value)
        except (TypeError, ValueError):
            raise bad(name, f"a pair (lo, hi) with {lo} <= lo <= hi <= {hi}") from None
        if not (lo <= a <= b <= hi):
            raise bad(name, f"a pair (lo, hi) with {lo} <= lo <= hi <= {hi}")

    check_range("diameter", 4.0, 60.0)
    check_range("ring_width", 0.1, 5.0)
    check_range("interior", 0.0, 5.0)
    check_range("flat_brightness", 0.0, 10.0)
    check_range("septum_progress", 0.0, 1.0)
    check_range("background", 0.0, 5.0)
    if p.stretch is not None:
        check_range("stretch", 0.0, 100.0)
        if not p.stretch[0] < p.stretch[1]:
            raise bad("stretch", "None or two percentiles (lo, hi) with 0 <= lo < hi <= 100")
    try:
        s1, s2 = p.septum_brightness
    except (TypeError, ValueError):
        raise bad("septum_brightness", "two pairs ((lo, hi) for stage 1, (lo, hi) for stage 2)") from None
    check_range("septum_brightness", 0.0, 10.0, s1)
    check_range("septum_brightness", 0.0, 10.0, s2)
    scalars = {
        "ellipticity": (0.0, 1.0),
        "centre_jitter": (0.0, 20.0),
        "centre_offset": (-5.0, 5.0),
        "ring_unevenness": (0.0, 0.9),
        "flat_fraction": (0.0, 1.0),
        "neighbours": (0.0, 10.0),
        "glow": (0.0, 5.0),
        "glow_length": (0.1, 40.0),
        "gradient": (0.0, 5.0),
        "brightness_sd": (0.0, 2.0),
        "psf_sigma": (0.0, 10.0),
        "photons": (1.0, 1e6),
        "gain": (1.0, 1e4),
        "stage_confusion": (0.0, 1.0),
    }
    for name, (lo, hi) in scalars.items():
        value = getattr(p, name)
        is_number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
        if not is_number or not (lo <= value <= hi):
            raise bad(name, f"a number in [{lo}, {hi}]")
    try:
        prop = np.asarray(p.proportions, dtype=np.float64)
    except (TypeError, ValueError):
        raise bad("proportions", "three non-negative numbers with a positive sum") from None
    if prop.shape != (3,) or (prop < 0).any() or not prop.sum() > 0:
        raise bad("proportions", "three non-negative numbers with a positive sum")
    return p


def _uniform(rng: np.random.Generator, bounds: tuple[float, float], n: int) -> np.ndarray:
    """``n`` uniform draws in ``bounds``."""
    return rng.uniform(bounds[0], bounds[1], n)


def _draw_cells(rng: np.random.Generator, stages: np.ndarray, p: AureusParams, size: int) -> dict[str, np.ndarray]:
    """Every random per-crop quantity (geometry, stage features, brightness), drawn up front."""
    n = stages.size
    k = size / _REFERENCE_SIZE
    c = {}
    c["stage"] = stages
    radius = 0.5 * k * _uniform(rng, p.diameter, n)
    aspect = 1.0 + p.ellipticity * rng.random(n)
    # The septum lies along the short axis ``a``; dividing cells are longer across it.
    c["a"] = radius / np.sqrt(aspect)
    c["b"] = radius * np.sqrt(aspect)
    c["theta"] = rng.uniform(0.0, np.pi, n)
    c["cy"] = (size - 1) / 2 + p.centre_offset + k * p.centre_jitter * rng.standard_normal(n)
    c["cx"] = (size - 1) / 2 + p.centre_offset + k * p.centre_jitter * rng.standard_normal(n)
    c["width"] = k * _uniform(rng, p.ring_width, n)
    c["interior"] = _uniform(rng, p.interior, n)
    c["uneven1"] = p.ring_unevenness * rng.random(n)
    c["uneven2"] = 0.5 * p.ring_unevenness * rng.random(n)
    c["phase1"] = rng.uniform(0.0, 2 * np.pi, n)
    c["phase2"] = rng.uniform(0.0, 2 * np.pi, n)
    c["brightness"] = np.exp(p.brightness_sd * rng.standard_normal(n))

    flat = (stages == 0) & (rng.random(n) < p.flat_fraction)
    c["flat_offset"] = np.where(flat, rng.uniform(0.72, 0.9, n) * radius, 1e6)
    c["flat_angle"] = rng.uniform(0.0, 2 * np.pi, n)
    c["flat_boost"] = _uniform(rng, p.flat_brightness, n)

    # Septum: fraction of each half-chord covered from the left and right side.
    progress = _uniform(rng, p.septum_progress, n)
    left = np.clip(progress * rng.uniform(0.7, 1.3, n), 0.0, 1.0)
    right = np.clip(progress * rng.uniform(0.7, 1.3, n), 0.0, 1.0)
    c["sep_left"] = np.where(stages == 2, 1.0, np.where(stages == 1, left, 0.0))
    c["sep_right"] = np.where(stages == 2, 1.0, np.where(stages == 1, right, 0.0))
    s1 = _uniform(rng, p.septum_brightness[0], n)
    s2 = _uniform(rng, p.septum_brightness[1], n)
    c["sep_amp"] = np.where(stages == 2, s2, np.where(stages == 1, s1, 0.0))
    c["sep_offset"] = 0.05 * radius * rng.standard_normal(n)

    count = np.minimum(rng.poisson(p.neighbours, n), _MAX_NEIGHBOURS)
    for j in range(_MAX_NEIGHBOURS):
        r_n = 0.5 * k * _uniform(rng, p.diameter, n)
        angle = rng.uniform(0.0, 2 * np.pi, n)
        dist = (radius + r_n) * rng.uniform(1.0, 1.12, n)
        asp = 1.0 + p.ellipticity * rng.random(n)
        c[f"n{j}_a"] = r_n / np.sqrt(asp)
        c[f"n{j}_b"] = r_n * np.sqrt(asp)
        c[f"n{j}_theta"] = rng.uniform(0.0, np.pi, n)
        c[f"n{j}_cy"] = c["cy"] + dist * np.sin(angle)
        c[f"n{j}_cx"] = c["cx"] + dist * np.cos(angle)
        c[f"n{j}_amp"] = np.where(j < count, np.exp(p.brightness_sd * rng.standard_normal(n)), 0.0)
        c[f"n{j}_interior"] = _uniform(rng, p.interior, n)
        c[f"n{j}_sep"] = np.where(rng.random(n) < 0.3, _uniform(rng, p.septum_brightness[1], n), 0.0)

    c["background"] = _uniform(rng, p.background, n)
    c["gradient"] = p.gradient * rng.random(n)
    c["gradient_angle"] = rng.uniform(0.0, 2 * np.pi, n)
    return c


def _frame(
    cells: dict[str, np.ndarray], prefix: str, yy: np.ndarray, xx: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rotated coordinates ``(u, v)`` (u along axis ``a``) and signed distance to the ellipse edge."""
    a = cells[prefix + "a"][:, None, None].astype(np.float32)
    b = cells[prefix + "b"][:, None, None].astype(np.float32)
    th = cells[prefix + "theta"][:, None, None]
    cos, sin = np.cos(th).astype(np.float32), np.sin(th).astype(np.float32)
    dy = yy - cells[prefix + "cy"][:, None, None].astype(np.float32)
    dx = xx - cells[prefix + "cx"][:, None, None].astype(np.float32)
    u = dx * cos + dy * sin
    v = dy * cos - dx * sin
    r = np.sqrt(u * u + v * v) + 1e-3
    rho = np.sqrt((u / a) ** 2 + (v / b) ** 2) + 1e-6
    # Distance along the ray from the centre: exact for circles, close for mild ellipses.
    return u, v, r * (1.0 - 1.0 / rho)


def _segment_distance(u: np.ndarray, v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Distance from points ``(u, v)`` to the segment ``v = 0, lo <= u <= hi``."""
    du = np.maximum(np.maximum(lo - u, u - hi), 0.0)
    return np.sqrt(du * du + v * v)


def _render(cells: dict[str, np.ndarray], p: AureusParams, size: int, rng: np.random.Generator) -> np.ndarray:
    """Render a chunk of crops to uint8, shape (n, size, size)."""
    k = size / _REFERENCE_SIZE
    col = lambda key: cells[key][:, None, None].astype(np.float32)  # noqa: E731
    grid = np.arange(size, dtype=np.float32)
    yy, xx = grid[None, :, None], grid[None, None, :]

    # Main cell: ring (optionally with a flattened side), cytoplasm, septum.
    u, v, sd = _frame(cells, "", yy, xx)
    fa = col("flat_angle")
    flat_d = (u * np.cos(fa) + v * np.sin(fa)) - col("flat_offset")
    on_flat = 1.0 / (1.0 + np.exp(-np.clip((flat_d - sd) / 0.7, -30, 30)))
    # Soft maximum: the flattened side meets the round side with rounded corners.
    soft = 1.5 * k
    sd = soft * np.logaddexp(sd / soft, flat_d / soft)
    width = col("width")
    phi = np.arctan2(v, u)
    uneven = 1.0 + col("uneven1") * np.cos(phi - col("phase1")) + col("uneven2") * np.cos(2 * phi - col("phase2"))
    ring = np.exp(-0.5 * (sd / width) ** 2) * uneven * (1.0 + (col("flat_boost") - 1.0) * on_flat)
    inside = 1.0 / (1.0 + np.exp(np.clip(sd / (0.7 * width), -30, 30)))
    cell = ring + col("interior") * inside

    off = col("sep_offset")
    half = col("a") * np.sqrt(np.clip(1.0 - (off / col("b")) ** 2, 0.0, 1.0))
    vs = v - off
    d_left = _segment_distance(u, vs, -half, -half + col("sep_left") * half)
    d_right = _segment_distance(u, vs, half - col("sep_right") * half, half)
    septum = np.exp(-0.5 * (np.minimum(d_left, d_right) / width) ** 2)
    septum *= (col("sep_left") + col("sep_right") > 0) * (sd < 0.5 * width)
    cell += col("sep_amp") * septum
    image = col("brightness") * cell
    glow = col("brightness") * np.exp(-np.maximum(sd, 0.0) / (k * p.glow_length))

    # Neighbouring cells, mostly cut by the crop edge.
    for j in range(_MAX_NEIGHBOURS):
        amp = col(f"n{j}_amp")
        if not amp.any():
            continue
        nu, nv, nsd = _frame(cells, f"n{j}_", yy, xx)
        n_ring = np.exp(-0.5 * (nsd / width) ** 2)
        n_inside = 1.0 / (1.0 + np.exp(np.clip(nsd / (0.7 * width), -30, 30)))
        n_sep = np.exp(-0.5 * (nv / width) ** 2) * (nsd < 0.5 * width)
        image += amp * (n_ring + col(f"n{j}_interior") * n_inside + col(f"n{j}_sep") * n_sep)
        glow += amp * np.exp(-np.maximum(nsd, 0.0) / (k * p.glow_length))

    # Background, glow and optics.
    ga = col("gradient_angle")
    ramp = ((yy - (size - 1) / 2) * np.sin(ga) + (xx - (size - 1) / 2) * np.cos(ga)) / size
    image += p.glow * glow + col("background") + col("gradient") * (ramp + 0.5)
    if p.psf_sigma > 0:
        image = ndimage.gaussian_filter(image, sigma=(0.0, k * p.psf_sigma, k * p.psf_sigma), mode="nearest")

    counts = rng.poisson(np.maximum(image, 0.0) * p.photons)
    if p.stretch is not None:
        return np.stack([scale_to_uint8(crop, *p.stretch) for crop in counts])
    grey = counts.astype(np.float32) * (p.gain / p.photons)
    return np.clip(np.rint(grey), 0, 255).astype(np.uint8)
