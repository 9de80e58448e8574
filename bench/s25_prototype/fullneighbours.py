"""Prototype (bench only): neighbours drawn with the whole cell model (their own stage, septum, flattened side,
unevenness, ring width), where the preset draws them as plain rings (30 % with a full septum).
EXTRA['full'] = True switches it on; EXTRA['stage_mix'] = (p0, p1, p2) the neighbours' stage mix."""
import numpy as np
from replearn.data import synthetic as S
from replearn.data.crops import scale_to_uint8

EXTRA = {}
_orig_draw = S._draw_cells
_orig_render = S._render


def draw(rng, stages, p, size):
    c = _orig_draw(rng, stages, p, size)
    if not EXTRA.get("full"):
        return c
    n = stages.size
    mix = np.asarray(EXTRA.get("stage_mix", p.proportions), float)
    for j in range(S._MAX_NEIGHBOURS):
        sub = _orig_draw(rng, rng.choice(3, n, p=mix / mix.sum()), p, size)
        # The neighbour's own cell model, at the neighbour's place and size.
        for key, value in sub.items():
            if not key.startswith("n"):
                c[f"f{j}_{key}"] = value
        r_n = 0.5 * (c[f"n{j}_a"] + c[f"n{j}_b"])
        r_sub = 0.5 * (sub["a"] + sub["b"])
        for key in ("a", "b"):
            c[f"f{j}_{key}"] = sub[key] * r_n / r_sub
        c[f"f{j}_flat_offset"] = np.where(sub["flat_offset"] < 1e5, sub["flat_offset"] * r_n / r_sub, 1e6)
        c[f"f{j}_cy"], c[f"f{j}_cx"] = c[f"n{j}_cy"], c[f"n{j}_cx"]
        c[f"f{j}_brightness"] = c[f"n{j}_amp"]
    return c


def _cell(cells, prefix, p, size, yy, xx):
    k = size / S._REFERENCE_SIZE
    col = lambda key: cells[prefix + key][:, None, None].astype(np.float32)  # noqa: E731
    u, v, sd = S._frame(cells, prefix, yy, xx)
    fa = col("flat_angle")
    flat_d = (u * np.cos(fa) + v * np.sin(fa)) - col("flat_offset")
    on_flat = 1.0 / (1.0 + np.exp(-np.clip((flat_d - sd) / 0.7, -30, 30)))
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
    d_left = S._segment_distance(u, vs, -half, -half + col("sep_left") * half)
    d_right = S._segment_distance(u, vs, half - col("sep_right") * half, half)
    septum = np.exp(-0.5 * (np.minimum(d_left, d_right) / width) ** 2)
    septum *= (col("sep_left") + col("sep_right") > 0) * (sd < 0.5 * width)
    cell += col("sep_amp") * septum
    glow = col("brightness") * np.exp(-np.maximum(sd, 0.0) / (k * p.glow_length))
    return col("brightness") * cell, glow


def render(cells, p, size, rng):
    if not EXTRA.get("full"):
        return _orig_render(cells, p, size, rng)
    k = size / S._REFERENCE_SIZE
    grid = np.arange(size, dtype=np.float32)
    yy, xx = grid[None, :, None], grid[None, None, :]
    image, glow = _cell(cells, "", p, size, yy, xx)
    for j in range(S._MAX_NEIGHBOURS):
        if not cells[f"f{j}_brightness"].any():
            continue
        im, gl = _cell(cells, f"f{j}_", p, size, yy, xx)
        image += im
        glow += gl
    col = lambda key: cells[key][:, None, None].astype(np.float32)  # noqa: E731
    ga = col("gradient_angle")
    ramp = ((yy - (size - 1) / 2) * np.sin(ga) + (xx - (size - 1) / 2) * np.cos(ga)) / size
    image += p.glow * glow + col("background") + col("gradient") * (ramp + 0.5)
    if p.psf_sigma > 0:
        from scipy import ndimage
        image = ndimage.gaussian_filter(image, sigma=(0.0, k * p.psf_sigma, k * p.psf_sigma), mode="nearest")
    counts = rng.poisson(np.maximum(image, 0.0) * p.photons)
    return np.stack([scale_to_uint8(crop, *p.stretch) for crop in counts])


S._draw_cells = draw
S._render = render
