"""One-shot and k-shot transfer: classes recognised from a few labelled examples, never trained on.

The classes of MNIST or Fashion-MNIST are split into seen (default 0-4) and unseen (the rest).
Representations are learned without the unseen classes: a supervised CNN on the seen classes, the
lecture's autoencoder and a SimCLR encoder on seen-class images only, and raw pixels as the
baseline. Then each unseen class gets k = 1, 5, 10 labelled examples (the support) and the other
pool images of the unseen classes are the queries: a nearest-class-mean classifier and a logistic
regression on the features label them. Each k is repeated over random episodes (default 100):
accuracy mean and 95% CI per representation, k and classifier.

With ``--dataset synthetic`` (the built-in SYNTHETIC crops) or ``--dataset data.npz`` (the
course's crops) the same is done for the assignment: the representations learn from the unlabelled
crops only; k labelled crops per stage are the support and every other labelled crop a query.

Writes into the run folder: ``fewshot.png`` (accuracy against k), ``config.json``,
``report.md``/``report.html`` and ``metrics.json``. See docs/lecture_concepts.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from replearn.data import load_assignment
from replearn.errors import ReplearnError
from replearn.evaluate import mean_ci
from replearn.evaluate.fewshot import FEWSHOT_CLASSIFIERS, episode_accuracies, episode_rng, sample_episode
from replearn.utils.runtime import machine_summary
from replearn.workflows import fewshot_report
from replearn.workflows._fewshot_data import MNIST_LIKE, prepare_task, split_classes
from replearn.workflows._fewshot_features import RUN_QUICK, RepresentationOptions, check_representations, learn
from replearn.workflows._run import Result, check_at_least, option, parse_int_list

COMMAND = "fewshot"
HELP = "k-shot transfer to classes never trained on: CNN, autoencoder, SimCLR, pixels; 1/5/10 shots, episodes"
EXAMPLES = """\
examples:
  replearn fewshot --quick                        # MNIST, tiny training, 20 episodes: under a minute
  replearn fewshot                                # MNIST, seen 0-4, unseen 5-9, 100 episodes per k
  replearn fewshot --dataset fashion --seen 0,2,4,6,8
  replearn fewshot --dataset synthetic            # the assignment's crops (built-in SYNTHETIC ones)
  replearn fewshot --dataset data.npz --shots 1,5,10,20
"""
CONFIG_FILE = True


# ----------------------------------------------------------------------------- Setup
@dataclass
class Config(RepresentationOptions):
    """The default experiment: MNIST, seen 0-4, 5,000 seen training images, 2,000 unseen pool images."""

    dataset: str = option("mnist", "'mnist', 'fashion', 'synthetic' (built-in crops) or the course's data.npz")
    shots: list = option([1, 5, 10], "labelled examples per unseen class", metavar="K,K", parse=parse_int_list)
    episodes: int = option(100, "random episodes per k")
    queries: int = option(0, "queries per class in an episode (0: every other pool image)")

    def check(self) -> None:
        self.check_options(crops=self.dataset not in MNIST_LIKE)
        check_at_least(self, 1, "episodes")
        check_at_least(self, 0, "queries")
        if not self.shots or min(self.shots) < 1:
            raise ReplearnError(f"--shots {self.shots}: give positive numbers of labelled examples, e.g. 1,5,10")
        if self.dataset in MNIST_LIKE:
            split_classes(self.seen, self.unseen)
        elif self.dataset != "synthetic":
            labels = load_assignment(self.dataset).labels  # a missing or bad file is one line, before any folder
            sample_episode(labels, sorted(set(labels.tolist())), max(self.shots), self.queries, episode_rng(0, 0, 0))


QUICK = {**RUN_QUICK, "episodes": 20}


# ----------------------------------------------------------------------------- Run
def run(cfg: Config, out: Path | None = None) -> Result:
    """Learn the representations without the unseen classes; k-shot episodes; the figure and report."""
    # Prepare the data: seen-class images to learn from, the unseen classes' pool to classify.
    task = prepare_task(cfg)
    print(task.line())
    # every class must hold the largest k plus the queries: one line now, before any training
    sample_episode(task.pool_y, task.classes, max(cfg.shots), cfg.queries, episode_rng(cfg.seed, 0, 0))

    # Learn the representations (no image of a class to classify is used), then the pool's features.
    names = check_representations(cfg.representations, task.seen_x is None)
    encoders, seconds = learn(cfg, task, names)
    features = {name: encoders[name](task.pool_x) for name in names}

    # Evaluate: the same episodes for every representation and classifier.
    start, results = time.perf_counter(), {}
    with tqdm(total=len(names) * len(cfg.shots), desc="episodes", unit="k", disable=not cfg.progress) as bar:
        for name in names:
            results[name] = {c: {} for c in FEWSHOT_CLASSIFIERS}
            for k in cfg.shots:
                acc = episode_accuracies(features[name], task.pool_y, task.classes, k, cfg.episodes, cfg.queries,
                                         cfg.seed)
                for clf, values in acc.items():
                    mean, half = mean_ci(values)
                    results[name][clf][str(k)] = {"mean": mean, "ci95": half, "episodes": values.tolist()}
                bar.update(1)
    episode_seconds = time.perf_counter() - start

    # The metrics; the figure and the report.
    result = Result(synthetic=task.synthetic, metrics={
        "workflow": COMMAND, "data": task.title, "synthetic": task.synthetic, "seen": task.seen,
        "classes": task.classes, "class_names": task.class_names, "chance": 1 / len(task.classes),
        "pool_images": len(task.pool_y), "learn_images": len(task.learn), "results": results,
        "feature_dims": {n: int(f.shape[1]) for n, f in features.items()}, "train_seconds": seconds,
        "episode_seconds": round(episode_seconds, 1), "machine": machine_summary()})
    fewshot_report.add_outputs(result, cfg, task, results)
    return result
