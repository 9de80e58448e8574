"""Hill-climb of the widefield preset's parameters on the statistics AUC (cheap, stable), prototype only.

python bench/s25_prototype/stats_search.py N SEED OUT.jsonl
Each candidate perturbs the best so far (log-normal factors on scalars, shifted ranges; starts at the preset), is kept
when it scores lower, and is scored by
statistics_classifier against the real crops on synthetic seeds 1000-1001 (600 crops each)."""
import sys, json, time, numpy as np
sys.path.insert(0, 'bench'); sys.path.insert(0, 'bench/s25_prototype')
import proto
from replearn.data import synthetic_aureus
from replearn.data.synthetic import PRESETS
from replearn.workflows._domain_stats import per_crop_statistics, statistics_classifier
from replearn.errors import ReplearnError

real = per_crop_statistics(np.load('/tmp/cells.npz')['unlabelled'])
base = PRESETS['widefield']
SCALARS = {"psf_sigma": (0.5, 3.0), "photons": (100, 5000), "glow": (0.0, 3.0), "glow_length": (2, 20),
           "gradient": (0, 1), "neighbours": (0.5, 5), "brightness_sd": (0.02, 0.5), "ring_unevenness": (0, 0.6),
           "ellipticity": (0, 0.5), "centre_jitter": (0, 3)}
RANGES = {"background": (0, 2), "interior": (0.3, 3), "ring_width": (0.5, 3), "diameter": (10, 26),
          "flat_brightness": (0.5, 3)}

def candidate(rng, scale, best, best_x):
    kw = dict(best)
    cur = lambda k: best.get(k, getattr(base, k))  # noqa: E731
    for k, (lo, hi) in SCALARS.items():
        if rng.random() < 0.3:
            v = cur(k) if cur(k) > 0 else 0.1
            kw[k] = float(np.clip(v * np.exp(scale * rng.standard_normal()), lo, hi))
    for k, (lo, hi) in RANGES.items():
        if rng.random() < 0.25:
            a, b = cur(k); f = np.exp(scale * rng.standard_normal()); w = np.exp(0.5 * scale * rng.standard_normal())
            m, h = (a + b) / 2 * f, (b - a) / 2 * w
            kw[k] = (float(np.clip(m - h, lo, hi)), float(np.clip(m + h, lo, hi)))
    extra = dict(best_x)
    if rng.random() < 0.15:
        extra = {"cluster": True, "lam": float(rng.uniform(1.5, 4)), "min": int(rng.integers(0, 2)), "max": 6,
                 "grow": bool(rng.random() < 0.5), "gap": [1.0, 1.12]} if not extra else {}
    return kw, extra

def score(kw, extra):
    proto.EXTRA.clear(); proto.EXTRA.update(extra)
    aucs = []
    for s in (0, 1):
        syn = synthetic_aureus(600, 0, seed=1000 + s, preset='widefield', **kw).labelled
        aucs.append(statistics_classifier(per_crop_statistics(syn), real, seed=s)["auc"])
    return float(np.mean(aucs))

n, seed, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(seed)
best, best_x = {}, {}
best_auc = score(best, best_x)
with open(out, 'a') as f:
    f.write(json.dumps({"i": 0, "auc": round(best_auc, 4), "params": {}, "x": {}, "kept": True}) + "\n")
    for i in range(1, n + 1):
        kw, extra = candidate(rng, 0.15, best, best_x)
        try:
            auc = score(kw, extra)
        except ReplearnError:
            continue
        kept = auc < best_auc
        if kept:
            best, best_x, best_auc = kw, extra, auc
        f.write(json.dumps({"i": i, "auc": round(auc, 4), "params": kw, "x": extra, "kept": kept}) + "\n"); f.flush()
