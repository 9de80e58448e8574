"""The assignment: S. aureus division stages from few labels, three ways, with a report to hand in.

Title: Assignment 1 -- CNN, autoencoder and simple classifiers on few labelled cell crops
Description: (a) a CNN grid on the labelled crops; (b) a convolutional autoencoder and (b+) a SimCLR encoder
trained on the unlabelled crops (plus generated ones when they are few); (c) simple classifiers on their
codes; baselines; everything goes into one HTML + Markdown report.

Protocol: a 400-crop file keeps the course's ``repeats`` seeded stratified 300/100 splits; any other size (or
``--cv K``) uses repeated stratified K-fold cross-validation, so every crop is predicted once per repeat. Every grid
point, probe and baseline (majority class, linear models and RBF SVM on pixels, SVM on HOG) is evaluated on the same
splits (training seed = ``--seed`` + split), so comparisons are paired, and predicts with test-time augmentation over
the 8 symmetries of the square. The recommended model is chosen inside each split's training crops (nested selection).

Input: the course's ``data.npz`` (``--data``) or the built-in SYNTHETIC crops; everything made from
synthetic data says so. Sides must be divisible by 2^(autoencoder blocks - 1) (4 by default, like 40x40).

Outputs in the run folder: ``report.html`` (figures embedded), ``report.md``, ``metrics.json`` (every number in the
report), ``config.json``, ``grid.toml`` (the resolved grid), ``model.safetensors`` + ``model.json`` (the CNN chosen by
nested selection, for ``replearn predict --model RUN``) and ``model-fold<k>`` (its fold ensemble), ``autoencoder-d<k>``,
``simclr-encoder`` (each + ``.json``), ``figures/*.png``; ``checkpoints/``: finished fits, for ``--resume``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from replearn.errors import ReplearnError
from replearn.utils.parallel import with_threads
from replearn.utils.runtime import resolve_device, timed
from replearn.workflows import _assignment_grid as grid
from replearn.workflows import _assignment_models as models
from replearn.workflows import assignment_report
from replearn.workflows._assignment_metrics import assemble_metrics, choose
from replearn.workflows._run import ParallelOptions, Result, RunOptions, option

COMMAND = "assignment"
RESUMABLE = True  # --resume: finished CNN and probe fits are loaded, the autoencoders and SimCLR continue
HELP = "the assignment: CNN, autoencoder and simple classifiers on few labelled crops, over a grid; HTML report"
EXAMPLES = """\
examples:
  replearn assignment --quick                      # built-in SYNTHETIC data, tiny grid, under a minute
  replearn assignment                              # built-in SYNTHETIC data, default grid (about 4 min on 2 cores)
  replearn assignment --data data.npz              # the course's crops (any number: cross-validated)
  replearn assignment --data data.npz --cv 10      # 10-fold cross-validation whatever the size
  replearn assignment --jobs 1 --threads 2         # one fit after another, 2 threads each (as before)
  replearn assignment --scheduler tcp://HOST:8786  # the grid on a Dask cluster (docs/performance.md)
  replearn assignment --data data.npz --config configs/grid.toml --out runs/a1   # your own grid
  replearn predict --model runs/a1 new_crops/      # stage predictions of the saved CNN
"""


def _table(name: str) -> Any:
    """The field of the grid config's table ``[name]``: a key of the --config file, no flag."""
    return option(grid.DEFAULTS[name], f"the grid config's [{name}] table (see configs/grid.toml)", cli=False)


# ----------------------------------------------------------------------------- Setup
@dataclass
class Config(RunOptions, ParallelOptions):
    """The grid config, one field per table (keys and defaults: ``_assignment_grid.DEFAULTS``), and the data.

    ``replearn assignment --config FILE`` reads the file's tables into these fields. From Python, pass them:
    ``Config(config=path, **_assignment_grid.load_grid(path))`` (``config`` alone only names the file in messages).
    """

    data: dict = _table("data")
    cnn: dict = _table("cnn")
    augment: dict = _table("augment")
    semisup: dict = _table("semisup")
    autoencoder: dict = _table("autoencoder")
    ssl: dict = _table("ssl")
    pretrain: dict = _table("pretrain")
    probes: dict = _table("probes")
    report: dict = _table("report")
    data_file: str | None = option(None, "the course's data.npz (default: built-in SYNTHETIC crops)", flag="--data",
                                   metavar="NPZ", in_file=False)
    cv: int = option(0, "K-fold cross-validation whatever the number of crops (0: the course's 300/100 for "
                        "400 crops, 5-fold otherwise)", metavar="K")
    # --config is a field (not CONFIG_FILE) so that checks name the file; the harness reads it from args.config
    config: str | None = option(None, "grid config (see configs/grid.toml); default: built-in grid", metavar="TOML",
                                in_file=False)

    def tables(self) -> dict[str, dict[str, Any]]:
        """The grid config: table -> keys (what ``grid.toml`` holds)."""
        return {table: getattr(self, table) for table in grid.DEFAULTS}

    def check(self) -> None:
        """Everything a user can get wrong, before any folder is made or any model trained.

        Completes the tables from the defaults and checks them (``--quick`` cuts the grid after the
        file, as it always did), then checks them against the crops: their size, the ``[cnn] spec``
        network and the splits. Calling it again changes nothing.
        """
        for table, values in grid.complete(self.tables(), self.config, self.quick).items():
            setattr(self, table, values)
        if self.cv == 1 or self.cv < 0:
            raise ReplearnError(f"--cv {self.cv}: give at least 2 folds (or 0 to choose automatically)")
        resolve_device(self.device)
        models.prepare(self, unlabelled=False)


# ----------------------------------------------------------------------------- Run
@with_threads  # --threads: every training of the run, in this process and in the workers
def run(cfg: Config, out: Path | None = None, resume: bool = False) -> Result:
    """Run the whole assignment with ``cfg`` (finished parts kept in ``out``; ``resume`` continues from them)."""
    started = time.perf_counter()
    cfg.check()  # the harness checked it already; a Config made in Python gets the same checks
    config, seed, device = cfg.tables(), cfg.seed, str(resolve_device(cfg.device))
    timing: dict[str, float] = {}
    store = models.unit_store(cfg, out, resume, device)  # every CNN and probe fit, kept as it finishes
    workers = cfg.workers()  # where the fits run: --jobs local processes, or the --scheduler cluster

    # Prepare the data: the crops and the protocol's splits (300/100 or K-fold), the same for every model.
    with timed(timing, "data_s"):
        data, protocol = models.prepare(cfg)
    models.say_data(data, protocol)

    with timed(timing, "ssl_s"):  # (b+) SimCLR without labels first: the grid's simclr_ft points fine-tune it
        ssl = models.train_ssl(data, config, seed, device, cfg.progress, out, resume)
    # (a) The CNN grid: every point trained on every split (and its inner split), scored after its last epoch.
    with timed(timing, "cnn_s"):
        cnn = models.train_cnn_grid(data, protocol, grid.cnn_points(config), config, seed, device, cfg.progress, store,
                                    workers, ssl)
    with timed(timing, "autoencoder_s"):  # (b) an autoencoder per code size on the unlabelled (+ generated) crops
        ae = models.train_autoencoders(data, config, seed, device, cfg.progress, out, resume)
    # (c) The baselines, and simple classifiers on the codes, on the same splits.
    with timed(timing, "probes_s"):
        reps = models.build_representations(data, ae, ssl, config, protocol.splits, seed)
        probes, warned = models.run_probes(data, protocol.splits, reps, config, seed, cfg.progress, store, workers)

    # Choose honestly: on each split, the model with the best score inside its training crops.
    selection, cnn_choice = choose(data, protocol.splits, cnn, probes)

    # Evaluate: every number in metrics.json; the saved models, the figures and the report.
    result = Result(synthetic=bool(data.synthetic))
    weights, saved = models.saved_models(data, cnn, cnn_choice and cnn_choice.recommended, ae, ssl, config, seed)
    for name, model, meta in weights:
        result.weights(name, model, meta)
    metrics = assemble_metrics(data, protocol, cfg, cnn, ae, ssl, probes, warned, saved, timing, device, selection,
                               cnn_choice)
    with timed(metrics["timing"], "figures_s"):
        figures = assignment_report.draw_figures(result, data, protocol.splits, cnn, ae, reps, metrics, config, seed)
    result.text("grid.toml", grid.to_toml(config))
    metrics["timing"]["total_s"] = time.perf_counter() - started
    result.metrics = metrics
    result.report = assignment_report.build_report(metrics, config, figures)
    result.summary = assignment_report.summary(metrics, out)
    return result
