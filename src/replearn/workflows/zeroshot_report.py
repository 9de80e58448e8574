"""What ``replearn zeroshot`` shows: accuracy against chance, the unseen confusion matrix, the attributes."""

from __future__ import annotations

from typing import Any, Mapping

from replearn.evaluate import Report
from replearn.evaluate.figures import confusion_figure, grouped_bars
from replearn.workflows._fewshot_features import TITLES


def accuracy_figure(results: Mapping[str, Mapping[str, float]], chance: float, chance_all: float, title: str = ""):
    """Grouped bars per representation: zero-shot unseen accuracy, generalised seen / unseen / harmonic mean."""
    keys = {"unseen_accuracy": "zero-shot (unseen classes only)", "generalised_seen": "generalised: seen images",
            "generalised_unseen": "generalised: unseen images", "generalised_harmonic": "generalised: harmonic mean"}
    groups = {label: [r[key] for r in results.values()] for key, label in keys.items()}
    fig = grouped_bars(groups, [TITLES.get(n, n) for n in results], ylabel="accuracy", title=title, ylim=(0, 1))
    ax = fig.axes[0]
    ax.axhline(chance, color="black", ls="--", lw=1, label=f"chance, unseen only ({chance:.2f})")
    ax.axhline(chance_all, color="grey", ls=":", lw=1, label=f"chance, all classes ({chance_all:.2f})")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3, frameon=False)
    fig.tight_layout()
    return fig


def add_outputs(result: Any, cfg: Any, task: Any, table: Any, results: Mapping[str, Any]) -> None:
    """The figures, the report and the closing line, added to ``result``."""
    names = task.class_names
    chance, chance_all = 1 / len(task.classes), 1 / len(names)
    unseen = ", ".join(names[c] for c in task.classes)
    result.figure("zeroshot.png", accuracy_figure(
        results, chance, chance_all, title=f"{task.title}: unseen {unseen}; descriptions: {len(table.columns)} values"))
    best = max(results, key=lambda n: results[n]["unseen_accuracy"])
    result.figure("zeroshot_confusion.png", confusion_figure(
        results[best]["confusion"], [names[c] for c in task.classes],
        title=f"zero-shot confusion, {TITLES[best]} (rows true, columns predicted)"))
    result.summary = (f"zero-shot accuracy on the unseen classes {unseen}: best "
                      f"{100 * results[best]['unseen_accuracy']:.1f}% ({TITLES[best]}), chance {100 * chance:.0f}%")
    report = Report("replearn zeroshot: unseen classes recognised from their descriptions")
    report.text(f"{task.title}: seen classes {', '.join(names[c] for c in task.seen)}; unseen {unseen}. The "
                f"representations and the ridge map (alpha {cfg.alpha}, {cfg.metric}) learned from "
                f"{len(task.seen_y):,} seen-class training images; no image of an unseen class was used. Tested on "
                f"{len(task.pool_y):,} unseen-class and {len(task.test_seen_y):,} seen-class test images; one run, "
                f"seed {cfg.seed}.")
    report.figure("zeroshot.png", "accuracy per representation against chance")
    headers = ["representation", "zero-shot accuracy (unseen; ± 95% CI over the images)", "macro F1",
               "generalised: seen", "unseen", "harmonic mean"]
    report.table(headers, [[TITLES.get(n, n), f"{100 * r['unseen_accuracy']:.1f}% ± "
                            f"{100 * r['unseen_accuracy_ci95']:.1f}", f"{r['unseen_macro_f1']:.3f}",
                            f"{100 * r['generalised_seen']:.1f}%", f"{100 * r['generalised_unseen']:.1f}%",
                            f"{100 * r['generalised_harmonic']:.1f}%"] for n, r in results.items()])
    report.text(f"Chance: {100 * chance:.0f}% among the unseen classes, {100 * chance_all:.0f}% among all classes "
                "(the generalised setting, where a map trained on seen classes tends to pick seen classes).")
    report.figure("zeroshot_confusion.png", f"confusion matrix of the unseen classes, {TITLES[best]}")
    report.heading("Descriptions")
    report.text(f"Source: {table.source}.")
    if table.definitions:
        report.bullets([f"{c}: {table.definitions.get(c, '')}" for c in table.columns])
    report.table(["class", *table.columns],
                 [[names[k], *(f"{v:g}" for v in row)] for k, row in enumerate(table.vectors)])
    result.report = report
