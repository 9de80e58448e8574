"""Prototype generator mechanisms (monkeypatched; nothing in the repo changes). EXTRA set from JSON key 'x'."""
import numpy as np
from replearn.data import synthetic as S
EXTRA = {}
_orig_draw = S._draw_cells
MAXN = 6

def draw(rng, stages, p, size):
    c = _orig_draw(rng, stages, p, size)
    if not EXTRA.get("cluster"):
        return c
    n = stages.size; k = size / S._REFERENCE_SIZE
    lam, lo, hi = EXTRA.get("lam", 3.0), EXTRA.get("min", 1), EXTRA.get("max", MAXN)
    count = np.clip(rng.poisson(lam, n), lo, hi)
    radius = 0.5 * (c["a"] + c["b"])
    # rejection placement per crop
    for j in range(MAXN):
        for key in ("a","b","theta","cy","cx","amp","interior","sep"):
            c[f"n{j}_{key}"] = np.ones(n) if key in ("a","b") else np.zeros(n)
    gap = EXTRA.get("gap", (0.95, 1.05))
    for i in range(n):
        placed = [(c["cy"][i], c["cx"][i], radius[i])]
        j = 0; tries = 0
        while j < count[i] and tries < 200:
            tries += 1
            r_n = 0.5 * k * rng.uniform(*p.diameter)
            # attach to a random already placed cell (cluster growth)
            py, px, pr = placed[rng.integers(len(placed))] if EXTRA.get("grow") else placed[0]
            ang = rng.uniform(0, 2*np.pi); d = (pr + r_n) * rng.uniform(*gap)
            y, x = py + d*np.sin(ang), px + d*np.cos(ang)
            if not (-r_n*0.6 < y < size - 1 + r_n*0.6 and -r_n*0.6 < x < size - 1 + r_n*0.6):
                continue
            if any(np.hypot(y-qy, x-qx) < (r_n+qr)*gap[0]*0.98 for qy,qx,qr in placed):
                continue
            placed.append((y, x, r_n))
            asp = 1.0 + p.ellipticity * rng.random()
            c[f"n{j}_a"][i] = r_n/np.sqrt(asp); c[f"n{j}_b"][i] = r_n*np.sqrt(asp)
            c[f"n{j}_theta"][i] = rng.uniform(0, np.pi); c[f"n{j}_cy"][i] = y; c[f"n{j}_cx"][i] = x
            c[f"n{j}_amp"][i] = np.exp(p.brightness_sd * rng.standard_normal())
            c[f"n{j}_interior"][i] = rng.uniform(*p.interior)
            c[f"n{j}_sep"][i] = rng.uniform(*p.septum_brightness[1]) if rng.random() < 0.3 else 0.0
            j += 1
    return c

S._draw_cells = draw
_orig_render = S._render
def render(cells, p, size, rng):
    if EXTRA.get("cluster"):
        S._MAX_NEIGHBOURS = MAXN
    try:
        return _orig_render(cells, p, size, rng)
    finally:
        S._MAX_NEIGHBOURS = 3
S._render = render

# --- neighbour distance and outline irregularity -------------------------------------------------
_orig_draw2 = S._draw_cells
def draw2(rng, stages, p, size):
    c = _orig_draw2(rng, stages, p, size)
    n = stages.size
    if "ndist" in EXTRA and not EXTRA.get("cluster"):
        lo, hi = EXTRA["ndist"]
        radius = 0.5 * (c["a"] + c["b"])
        for j in range(S._MAX_NEIGHBOURS):
            r_n = 0.5 * (c[f"n{j}_a"] + c[f"n{j}_b"])
            dy, dx = c[f"n{j}_cy"] - c["cy"], c[f"n{j}_cx"] - c["cx"]
            d = np.hypot(dy, dx); want = (radius + r_n) * rng.uniform(lo, hi, n)
            c[f"n{j}_cy"] = c["cy"] + dy / d * want; c[f"n{j}_cx"] = c["cx"] + dx / d * want
    irr = EXTRA.get("irr", 0.0)
    for prefix in [""] + [f"n{j}_" for j in range(MAXN)]:
        for kk in (2, 3, 4):
            c[f"{prefix}irr{kk}"] = irr * rng.random(n) / (kk - 1)
            c[f"{prefix}irp{kk}"] = rng.uniform(0, 2*np.pi, n)
    return c
S._draw_cells = draw2

def frame(cells, prefix, yy, xx):
    a = cells[prefix + "a"][:, None, None].astype(np.float32)
    b = cells[prefix + "b"][:, None, None].astype(np.float32)
    th = cells[prefix + "theta"][:, None, None]
    cos, sin = np.cos(th).astype(np.float32), np.sin(th).astype(np.float32)
    dy = yy - cells[prefix + "cy"][:, None, None].astype(np.float32)
    dx = xx - cells[prefix + "cx"][:, None, None].astype(np.float32)
    u = dx * cos + dy * sin; v = dy * cos - dx * sin
    r = np.sqrt(u * u + v * v) + 1e-3
    rho = np.sqrt((u / a) ** 2 + (v / b) ** 2) + 1e-6
    if EXTRA.get("irr", 0.0) > 0 and prefix + "irr2" in cells:
        phi = np.arctan2(v, u)
        delta = sum(cells[f"{prefix}irr{kk}"][:, None, None] * np.cos(kk * phi - cells[f"{prefix}irp{kk}"][:, None, None]) for kk in (2, 3, 4))
        rho = rho / (1.0 + delta.astype(np.float32))
    return u, v, r * (1.0 - 1.0 / rho)
S._frame = frame
