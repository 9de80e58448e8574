"""Zero-shot learning: classes recognised from a description alone (the lecture's Socher et al. 2013 example).

No labelled image of an unseen class is used. Every class has a description vector: replearn's
attribute table for MNIST or Fashion-MNIST (``replearn/data/attributes/``; each attribute defined
in one line, listed in the report), or the user's own vectors (``--class-vectors FILE``, CSV or
npy: word embeddings or any other semantic space). A ridge regression learns to map image features
to the description of their class on the seen classes; an unseen image gets the unseen class whose
description is nearest to its mapped features. Reported: unseen-class accuracy against chance, the
confusion matrix of the unseen classes, and the generalised setting (seen and unseen test images,
every class a candidate): accuracy on each side and their harmonic mean. The representations are
those of ``replearn fewshot`` (pixels, supervised CNN, autoencoder, SimCLR; none sees an unseen class).

Writes into the run folder: ``zeroshot.png`` (accuracy against chance), ``zeroshot_confusion.png``,
``config.json``, ``report.md``/``report.html`` and ``metrics.json``. See docs/lecture_concepts.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from replearn.data import CLASS_NAMES
from replearn.data.class_vectors import ClassVectors, attribute_table, read_class_vectors
from replearn.evaluate import classification_metrics, mean_ci
from replearn.evaluate.zeroshot import METRICS, AttributeClassifier, check_distinct
from replearn.utils.runtime import machine_summary
from replearn.workflows import zeroshot_report
from replearn.workflows._fewshot_data import prepare_task, split_classes
from replearn.workflows._fewshot_features import RUN_QUICK, RepresentationOptions, check_representations, learn
from replearn.workflows._run import Result, check_at_least, option

COMMAND = "zeroshot"
HELP = "zero-shot: unseen classes recognised from attribute/description vectors (ridge map); accuracy vs chance"
EXAMPLES = """\
examples:
  replearn zeroshot --quick                         # Fashion-MNIST, shipped attributes, tiny training
  replearn zeroshot                                 # Fashion-MNIST; unseen pullover, dress, shirt, ankle boot
  replearn zeroshot --dataset mnist --seen 0-4      # digits from stroke attributes (loops, bars, curves)
  replearn zeroshot --class-vectors words.csv       # your own vectors: class name, then its values
"""
CONFIG_FILE = True


# ----------------------------------------------------------------------------- Setup
@dataclass
class Config(RepresentationOptions):
    """The default experiment: Fashion-MNIST, seen T-shirt, trouser, coat, sandal, sneaker, bag (0,1,4,5,7,8),
    unseen pullover, dress, shirt, ankle boot: each unseen class shares its attributes with seen ones."""

    dataset: str = option("fashion", "data set", choices=("mnist", "fashion"))
    seen: str = option("0,1,4,5,7,8", "seen classes, e.g. 0-4 or 0,2,4,6,8")
    class_vectors: str | None = option(None, "CSV (class name, then values; optional header) or .npy (classes, D) "
                                             "(default: replearn's attribute table)", metavar="FILE")
    alpha: float = option(1.0, "ridge penalty of the map to description space")
    metric: str = option("cosine", "nearest description by", choices=METRICS)

    def vectors(self) -> ClassVectors:
        """The class description vectors (checked: every class, finite, distinct among the unseen)."""
        names = CLASS_NAMES[self.dataset]
        table = (read_class_vectors(self.class_vectors, names) if self.class_vectors
                 else attribute_table(self.dataset, names))
        check_distinct(table.vectors, split_classes(self.seen, self.unseen)[1], names, table.source)
        return table

    def check(self) -> None:
        self.check_options(crops=False)
        check_at_least(self, 0, "alpha")
        self.vectors()  # the split and the class vector file: one line each, before any folder


QUICK = dict(RUN_QUICK)


# ----------------------------------------------------------------------------- Run
def run(cfg: Config, out: Path | None = None) -> Result:
    """Learn the representations and the maps on seen classes; classify unseen images; the figures and report."""
    # Prepare the data and the descriptions.
    task, table = prepare_task(cfg), cfg.vectors()
    seen, unseen = task.seen, task.classes
    print(task.line() + f"; descriptions: {table.source} ({table.vectors.shape[1]} values per class)")

    # Learn the representations, then per representation the ridge map on the seen classes.
    names = check_representations(cfg.representations, crops=False)
    encoders, seconds = learn(cfg, task, names)
    both_y = np.concatenate([task.test_seen_y, task.pool_y])
    results = {}
    for name in names:
        f = encoders[name]
        clf = AttributeClassifier(table.vectors, alpha=cfg.alpha, metric=cfg.metric).fit(f(task.seen_x), task.seen_y)
        pool = f(task.pool_x)
        pred = clf.predict(pool, candidates=unseen)
        cm = classification_metrics(np.searchsorted(unseen, task.pool_y), np.searchsorted(unseen, pred), len(unseen))
        gen = clf.predict(np.concatenate([f(task.test_seen_x), pool]), candidates=None)
        on_seen = float(np.mean(gen[: len(task.test_seen_y)] == task.test_seen_y))
        on_unseen = float(np.mean(gen[len(task.test_seen_y):] == task.pool_y))
        results[name] = {"unseen_accuracy": cm["accuracy"], "unseen_accuracy_ci95": mean_ci(pred == task.pool_y)[1],
                         "unseen_macro_f1": cm["macro_f1"],
                         "confusion": cm["confusion"], "generalised_seen": on_seen,
                         "generalised_unseen": on_unseen, "generalised_all": float(np.mean(gen == both_y)),
                         "generalised_harmonic": 2 * on_seen * on_unseen / max(on_seen + on_unseen, 1e-12)}

    # The metrics; the figures and the report.
    result = Result(metrics={
        "workflow": COMMAND, "data": task.title, "seen": seen, "unseen": unseen,
        "class_names": list(task.class_names), "descriptions": table.source, "columns": table.columns,
        "chance_unseen": 1 / len(unseen), "chance_generalised": 1 / len(task.class_names),
        "unseen_images": len(task.pool_y), "seen_test_images": len(task.test_seen_y), "results": results,
        "train_seconds": seconds, "machine": machine_summary()})
    zeroshot_report.add_outputs(result, cfg, task, table, results)
    return result
