"""What ``replearn fewshot`` shows: accuracy against k per representation, the table and the closing line."""

from __future__ import annotations

from typing import Any, Mapping

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from replearn.evaluate import Report
from replearn.evaluate.fewshot import CLASSIFIER_TITLES
from replearn.workflows._fewshot_features import TITLES


def kshot_figure(results: Mapping[str, Mapping[str, Mapping[str, Any]]], chance: float, title: str = "") -> Figure:
    """One panel per classifier: accuracy (mean, 95% CI bars) against k, one line per representation."""
    classifiers = list(next(iter(results.values())))
    fig, axes = plt.subplots(1, len(classifiers), figsize=(5.6 * len(classifiers), 4.2), sharey=True, squeeze=False)
    for ax, clf in zip(axes[0], classifiers):
        for name, per in results.items():
            ks = [int(k) for k in per[clf]]
            ax.errorbar(ks, [per[clf][str(k)]["mean"] for k in ks], yerr=[per[clf][str(k)]["ci95"] for k in ks],
                        marker="o", capsize=3, label=TITLES.get(name, name))
        ax.axhline(chance, color="grey", ls="--", lw=1, label=f"chance ({chance:.2f})")
        ax.set_xscale("log")
        ax.set_xticks(ks, [str(k) for k in ks])
        ax.set_xlabel("labelled examples per class (k)")
        ax.set_title(CLASSIFIER_TITLES.get(clf, clf), fontsize=11)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("query accuracy")
    axes[0][-1].legend(fontsize=8, loc="lower right")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def rows(results: Mapping[str, Any]) -> list[list[str]]:
    """Table rows: representation, classifier, then 'mean ± CI' per k."""
    out = []
    for name, per in results.items():
        for clf, by_k in per.items():
            out.append([TITLES.get(name, name), CLASSIFIER_TITLES.get(clf, clf)]
                       + [f"{100 * v['mean']:.1f}% ± {100 * v['ci95']:.1f}" for v in by_k.values()])
    return out


def add_outputs(result: Any, cfg: Any, task: Any, results: Mapping[str, Any]) -> None:
    """The figure, the report and the closing line, added to ``result``."""
    chance = 1 / len(task.classes)
    tag = "SYNTHETIC " if task.synthetic else ""
    what = (f"unseen classes {task.classes} of {task.title} (seen: {task.seen})" if task.seen
            else f"the stages of the {tag}{task.title} (representations from the unlabelled crops only)")
    result.figure("fewshot.png", kshot_figure(results, chance, title=f"{tag}k-shot accuracy on {what}"))
    best = max(((n, c, k, v["mean"]) for n, per in results.items() for c, by in per.items() for k, v in by.items()
                if int(k) == max(cfg.shots)), key=lambda t: t[3])
    result.summary = (f"{tag}best {best[2]}-shot accuracy {100 * best[3]:.1f}% ({TITLES[best[0]]}, "
                      f"{CLASSIFIER_TITLES[best[1]]}); chance {100 * chance:.0f}%; {cfg.episodes} episodes per k")
    report = Report(f"replearn fewshot: {tag}k-shot transfer to classes never trained on")
    if task.synthetic:
        report.banner = "SYNTHETIC data: the built-in simulated crops, not microscopy"
    queries = "every other pool image" if cfg.queries == 0 else f"{cfg.queries} per class"
    report.text(f"Classified: {what}. The representations learned from {len(task.learn):,} images that contain no "
                f"class to classify. Each episode draws k labelled examples per class from a pool of "
                f"{len(task.pool_y):,} images (queries: {queries}); {cfg.episodes} episodes per k, the same for "
                "every representation and classifier; mean and 95% CI over the episodes (Student t).")
    report.figure("fewshot.png", "query accuracy against k (log scale), 95% CI over the episodes")
    report.table(["representation", "classifier", *[f"k = {k}" for k in cfg.shots]], rows(results))
    report.text(f"Chance: {100 * chance:.0f}%. Nearest class mean uses L2-normalised features; logistic regression "
                "standardised features (C = 0.1).")
    result.report = report
