"""What ``replearn transfer`` shows: the variants' table, the learning curves, ``results.md`` and the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from replearn.evaluate import Report
from replearn.evaluate.figures import learning_curves
from replearn.workflows._mnist_like import RESULTS_HEADERS, mean_std, results_rows, results_table
from replearn.workflows._run import QUICK_BANNER

FIGURE = "transfer_curves.png"
Runs = dict[str, list[dict[str, Any]]]
"""Variant name -> one record per seed (``seed``, ``test_accuracy``, ``train_time_s``, ``history``, ...)."""


def variants(results: Runs) -> dict[str, dict[str, Any]]:
    """``metrics.json``'s ``variants``: per variant the mean and std over seeds, and every seed's record."""
    summary = {}
    for name, runs in results.items():
        acc_mean, acc_std = mean_std([r["test_accuracy"] for r in runs])
        t_mean, t_std = mean_std([r["train_time_s"] for r in runs])
        summary[name] = {"test_accuracy_mean": acc_mean, "test_accuracy_std": acc_std,
                         "train_time_s_mean": t_mean, "train_time_s_std": t_std,
                         "trainable_params": runs[0]["trainable_params"], "runs": runs}
    return summary


def mean_history(runs: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Per-epoch mean of each metric over seeds (for the figure)."""
    keys = runs[0]["history"].keys()
    return {k: [sum(v) / len(v) for v in zip(*(r["history"][k] for r in runs))] for k in keys}


def note(cfg: Any, bf16: bool) -> str:
    """What the numbers are: the data, the recipe of each variant that ran, the seeds and the precision."""
    data = f"a stratified subset of {cfg.train_size:,} MNIST training images" if cfg.train_size else \
        "the full MNIST training set"
    parts = [f"Trained on {data}: {_epochs(cfg.epochs)} at batch {cfg.batch_size}, SGD lr {cfg.lr} momentum "
             f"{cfg.momentum}, BatchNorm momentum {cfg.bn_momentum}"]
    if cfg.compare:
        parts.append("scratch: the same network from random initialisation, same budget")
    if cfg.fine_tune:
        parts.append(f"fine-tuned: +{_epochs(cfg.fine_tune_epochs)} at lr {cfg.fine_tune_lr} with every weight "
                     "trainable (its time includes the frozen stage)")
    last = cfg.seed + cfg.seeds - 1
    seeds = f"Seed {cfg.seed}" if cfg.seeds == 1 else f"Seeds {cfg.seed}..{last} (mean ± std over seeds)"
    return (f"{'; '.join(parts)}. {seeds}. {'bf16 autocast' if bf16 else 'float32'} training, float32 final test "
            f"evaluation{f' on {cfg.test_size:,} test images' if cfg.test_size else ''}; times include the "
            "per-epoch test evaluation.")


def _epochs(n: int) -> str:
    return f"{n} epoch{'' if n == 1 else 's'}"


def add_outputs(result: Any, cfg: Any, results: Runs, out: Path | None) -> None:
    """The curves, ``results.md``, the report and the closing lines of a finished run, added to ``result``."""
    metrics = result.metrics
    suffix = f" (mean of {cfg.seeds} seeds)" if cfg.seeds > 1 else ""
    curves = {name: mean_history(runs) for name, runs in results.items()}
    result.figure(FIGURE, learning_curves(curves, metrics=("accuracy", "test_accuracy"),
                                          title=f"MNIST accuracy per epoch{suffix}; test evaluated each epoch"))
    rows = {name: {"test_accuracy": [r["test_accuracy"] for r in runs],
                   "trainable_params": runs[0]["trainable_params"],
                   "train_time_s": [r["train_time_s"] for r in runs]} for name, runs in results.items()}
    table, text = results_table(rows), note(cfg, metrics["bf16"])
    banner = f"> **{QUICK_BANNER}**\n\n" if cfg.quick else ""
    result.text("results.md", "# replearn transfer\n\n" + banner + table + "\n" + text + "\n")

    report = Report("replearn transfer: Fashion-MNIST -> MNIST (the lecture's exercise 1)")
    meta = metrics["base"]["meta"]
    base_accuracy = meta.get("test_accuracy") if isinstance(meta, dict) else None
    report.text(f"Base: {metrics['base']['weights']}"
                + (f" (Fashion-MNIST test accuracy {100 * base_accuracy:.2f}%)" if base_accuracy is not None else "")
                + "; frozen up to `features`, a new Dense 512 - ReLU - BatchNorm - Dropout 0.5 - Dense 10 head.")
    report.table(list(RESULTS_HEADERS), results_rows(rows))
    report.text(text)
    report.figure(FIGURE, f"train and test accuracy per epoch of every variant{suffix}; "
                          "the test set is evaluated after every epoch, as the lecture's validation_data")
    result.report = report
    where = Path(out) if out is not None else Path()
    result.summary = table + (f"wrote {where / 'metrics.json'}, {where / 'results.md'}, {where / 'report.html'}, "
                              f"{where / FIGURE}")
