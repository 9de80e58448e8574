"""What ``replearn course`` shows: one headline per stage (from its ``metrics.json``) and the combined report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from replearn.evaluate import Report


# ---------------------------------------------------------------------------- Headlines
def _pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _fashion(m: dict) -> str:
    return f"Fashion-MNIST test accuracy {_pct(m['test_accuracy'])}"


def _transfer(m: dict) -> str:
    return "; ".join(f"{name}: MNIST test {_pct(v['test_accuracy_mean'])}" for name, v in m["variants"].items())


def _autoencoder(m: dict) -> str:
    return "; ".join(
        f"{r['method']}: 5-NN {r['knn5']:.3f}" + (f", trust. {r['trustworthiness']:.3f}" if r.get("trustworthiness") is not None else "")
        for r in m["methods"]
    )


def _assignment(m: dict) -> str:
    parts = []
    for key, where in (("cnn", "cnn"), ("probe", "probes")):
        name = m["best"].get(key)
        if name:
            parts.append(f"best {key} {name}: val. accuracy {m[where][name]['accuracy_mean']:.3f}")
    return ("SYNTHETIC data; " if m.get("synthetic") else "") + "; ".join(parts)


HEADLINES: dict[str, Callable[[dict], str]] = {
    "fashion": _fashion, "transfer": _transfer, "autoencoder": _autoencoder, "assignment": _assignment,
}
FIGURES = {
    "fashion": ["fashion_curves.png"],
    "transfer": ["transfer_curves.png"],
    "autoencoder": ["autoencoder_codes.png", "autoencoder_reconstructions.png", "autoencoder_compare.png"],
    "assignment": ["cnn_learning_curves.png", "embedding_2d.png"],
}


def headline(stage: str, stage_dir: Path) -> str:
    """One line of the stage's main numbers, read from its ``metrics.json``."""
    try:
        metrics = json.loads((stage_dir / "metrics.json").read_text())
        return HEADLINES[stage](metrics)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"(no headline: {type(exc).__name__} reading {stage_dir / 'metrics.json'})"


# ---------------------------------------------------------------------------- Report
def report(metrics: dict[str, Any], run_dir: Path) -> Report:
    """The combined report: a table of the stages, then each stage's command line and figures."""
    results, total = metrics["stages"], metrics["total_wall_s"]
    out = Report("replearn course: representation learning, end to end")
    out.text(f"{len(results)} stages, {total / 60:.1f} min in all (budget {metrics['budget_s'] // 60} min), "
             f"peak memory {metrics['peak_rss_mb']:.0f} MB; seed {metrics['seed']}.")
    out.table(["stage", "time", "peak memory", "headline"],
              [[s, f"{r['wall_s']:.0f} s", f"{r['peak_rss_mb']:.0f} MB", r["headline"]] for s, r in results.items()])
    for stage, result in results.items():
        out.heading(stage)
        out.code(result["command"])
        for name in FIGURES[stage]:
            if (run_dir / stage / name).is_file():
                out.figure(f"{stage}/{name}", f"{stage}: {name}")
        out.text(f"Full outputs: {stage}/ (metrics.json, report or results.md, weights).")
    return out
