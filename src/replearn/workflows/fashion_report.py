"""What ``replearn fashion`` shows: the recipe line, the learning curves, ``results.md`` and the report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from replearn.evaluate import Report
from replearn.evaluate.figures import learning_curves
from replearn.train import History
from replearn.workflows._mnist_like import RESULTS_HEADERS, bn_momentum, results_rows, results_table


def recipe_line(cfg: Any, bf16: bool) -> str:
    """One line saying how the network is trained."""
    return (f"recipe: {cfg.epochs} epochs, batch {cfg.batch_size}, {cfg.optimizer} lr {cfg.lr} "
            f"({cfg.schedule if cfg.schedule != 'none' else 'constant'}), augmentation shift {cfg.shift} px"
            f"{' + flips' if cfg.flip else ''}, BatchNorm momentum {cfg.bn_momentum} ({bn_momentum(cfg.bn_momentum)}), "
            f"{'bf16 autocast' if bf16 else 'float32'}")


def add_outputs(result: Any, cfg: Any, history: History, has_val: bool, n_test: int, out: Path | None) -> None:
    """The curves, ``results.md``, the report and the closing lines of a finished run, added to ``result``."""
    metrics = result.metrics
    result.summary = (f"Fashion-MNIST test accuracy {100 * metrics['test_accuracy']:.2f}% after {len(history)} "
                      f"epochs ({metrics['train_time_s']:.0f} s); saved {out / 'model.safetensors' if out else 'nothing'}"
                      f"\nnext: replearn transfer --base {out}")
    keys = ["accuracy", "test_accuracy"] + (["val_accuracy"] if has_val else [])
    result.figure("fashion_curves.png", learning_curves(
        {"MiniVGG on Fashion-MNIST": history.history}, metrics=keys,
        title="accuracy per epoch (test evaluated each epoch, as the lecture's validation_data)"))
    rows = {"MiniVGG, Fashion-MNIST": {"test_accuracy": [metrics["test_accuracy"]],
                                        "trainable_params": metrics["trainable_params"],
                                        "train_time_s": [metrics["train_time_s"]]}}
    precision = "bf16 autocast" if metrics["bf16"] else "float32"
    note = (f"Seed {cfg.seed}; {len(history)} epochs; {precision} training, float32 test evaluation on "
            f"{n_test:,} images; time includes the per-epoch test evaluation.")
    result.text("results.md", "# replearn fashion\n\n" + results_table(rows) + "\n" + note + "\n")
    report = Report("replearn fashion: the lecture's CNN on Fashion-MNIST")
    report.text(recipe_line(cfg, metrics["bf16"]))
    report.table(list(RESULTS_HEADERS), results_rows(rows))
    report.text(note)
    report.figure("fashion_curves.png", "accuracy per epoch")
    result.report = report
