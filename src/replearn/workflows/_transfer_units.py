"""``replearn transfer``'s trainings as units of a parallel sweep: one per (variant, BatchNorm preset, seed).

Every unit builds its network where it runs (the base's weights read there from the ``replearn fashion`` run's
safetensors file, never pickled), seeds it from its own seed alone and trains it with the lecture's recipe, then
evaluates the final weights in float32; so the numbers do not depend on where or in which order the units ran
(``--jobs``, ``--scheduler``). ``fine-tuned`` continues the finished ``frozen`` unit of its seed: the ``frozen``
and ``scratch`` units run first, then the ``fine-tuned`` ones from the frozen weights. Finished units are kept in
``<run>/checkpoints/units/`` (``--resume`` loads them); a unit stopped mid-training continues from its per-epoch
checkpoint in ``checkpoints/<variant>_seed<k>/`` (local workers only: Dask workers write nothing).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from replearn.data import CLASS_NAMES
from replearn.models import count_params, summary
from replearn.train import continues, evaluate, stage_dir
from replearn.train.distributed import info as dist_info
from replearn.train.distributed import is_main_process
from replearn.utils.parallel import Workers, run_units
from replearn.utils.units import Unit, UnitStore
from replearn.workflows._mnist_like import BN_MOMENTA, INPUT_SHAPE, NORMALISATION
from replearn.workflows._transfer_models import variant_network
from replearn.workflows._transfer_train import classifier, file_key


@dataclasses.dataclass(frozen=True)
class Job:
    """One unit's identity: the variant, its BatchNorm preset and seed (and its name in the results)."""

    variant: str
    preset: str
    seed: int
    name: str = dataclasses.field(compare=False)

    def key(self) -> dict[str, Any]:
        return {"variant": self.variant, "bn": self.preset, "seed": self.seed}


def jobs(cfg: Any) -> list[Job]:
    """Every variant and seed, in the order of the results (per preset and seed: frozen, fine-tuned, scratch)."""
    presets = list(BN_MOMENTA) if cfg.bn_momentum == "both" else [cfg.bn_momentum]
    variants = ["frozen"] + ["fine-tuned"] * cfg.fine_tune + ["scratch"] * cfg.compare
    return [Job(v, p, s, f"{v} (BN {p})" if cfg.bn_momentum == "both" else v)
            for p in presets for s in range(cfg.seed, cfg.seed + cfg.seeds) for v in variants]


def train_unit(cfg: Any, arrays: tuple[np.ndarray, ...], base: tuple[Path | None, Any], job: Job, where: Path | None,
               resume: bool, device: str, bf16: bool, after: Unit | None = None) -> Unit:
    """Train ``job``'s network (``after``: the frozen unit a fine-tuned one continues) and evaluate it in float32.

    ``arrays``: MNIST's train and test images and labels as numpy arrays (joblib memory-maps large ones for its
    workers); ``where``: the unit's checkpoint folder (None: none). Returns the record (seed, test accuracy and
    loss, trainable parameters, training time, history per epoch) and the final weights.
    """
    # here: the run's own arrays, shared; in a worker: joblib's read-only memory maps, copied once
    x_train, y_train, x_test, y_test = (torch.from_numpy(a if a.flags.writeable else np.array(a)) for a in arrays)
    network = variant_network(job.variant, *base, BN_MOMENTA[job.preset], job.seed)
    lr, epochs = (cfg.fine_tune_lr, cfg.fine_tune_epochs) if after else (cfg.lr, cfg.epochs)
    if after is not None:
        network.load_state_dict(after.state)
    est = classifier(cfg, network, lr, epochs, job.seed, device, bf16)
    est.fit(x_train, y_train, eval_sets={"test": (x_test, y_test)}, checkpoint_dir=where,
            resume=continues(where, resume))
    history = est.history_.history
    seconds = float(sum(history["time"]))  # a resumed unit counts the epochs before the interruption too
    if after is not None:  # the frozen stage's epochs and time come first
        history = {k: list(after.record["history"][k]) + list(history.get(k, [])) for k in after.record["history"]}
        seconds += after.record["train_time_s"]
    final = evaluate(est.model_, x_test, y_test, batch_size=512)
    return Unit(record={"seed": job.seed, "test_accuracy": final["accuracy"], "test_loss": final["loss"],
                        "trainable_params": count_params(est.model_)[1], "train_time_s": seconds, "history": history},
                state=est.model_.state_dict())


def unit_store(cfg: Any, out: Path | None, resume: bool, weights: Path, device: str, workers: Workers) -> UnitStore:
    """The run's finished units in ``out``; fingerprint: the settings, the base's bytes, device, threads, ranks."""
    with open(weights, "rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    settings = {k: v for k, v in vars(cfg).items() if k not in ("progress", "jobs", "scheduler", "data_dir", "base")}
    return UnitStore(out, resume, fingerprint={"config": settings, "base_sha256": digest, "device": device,
                                               "threads": workers.unit_threads(),
                                               "ranks": dist_info().world_size},
                     write=is_main_process())  # --ddp: every rank trains every unit alike, rank 0 alone writes


def train_all(cfg: Any, data: dict[str, Any], weights: Path, side: Any, out: Path | None, resume: bool, device: str,
              bf16: bool, result: Any) -> dict[str, list[dict[str, Any]]]:
    """Every variant and seed as a unit on ``cfg.workers()``; their weights added to ``result``; name -> records."""
    workers = cfg.workers()  # --jobs local processes, or the --scheduler cluster
    if dist_info().world_size > 1:  # --ddp: the ranks train every unit together, one after another
        workers = dataclasses.replace(workers, jobs=1, scheduler=None)
    todo = jobs(cfg)
    here = workers.scheduler is None and min(workers.local_jobs(), len(todo)) == 1
    unit_cfg = cfg if here else dataclasses.replace(cfg, progress=False)  # no per-epoch bars from the workers
    arrays = tuple(t.numpy() for t in (*data["train"], *data["test"]))
    first = variant_network("frozen", weights, side, BN_MOMENTA[todo[0].preset], cfg.seed)
    print(summary(first, title="transfer"))

    store = unit_store(cfg, out, resume, weights, device, workers)
    units: dict[Job, Unit] = {}
    for stage, desc in (([j for j in todo if j.variant != "fine-tuned"], "transfer"),
                        ([j for j in todo if j.variant == "fine-tuned"], "fine-tuning")):  # from the frozen weights
        plan = [(j.key(), functools.partial(
            train_unit, unit_cfg, arrays, (weights, side), j,
            None if workers.scheduler else stage_dir(out, file_key(j.name, j.seed)), resume, device, bf16,
            units[dataclasses.replace(j, variant="frozen")] if j.variant == "fine-tuned" else None)) for j in stage]
        run_units(store, plan, workers, desc=desc, unit="training")
        units.update({j: store.unit(key, compute) for j, (key, compute) in zip(stage, plan)})
    if store.loaded:
        print(f"--resume: {store.loaded} finished training(s) loaded from {store.folder}")
    results: dict[str, list[dict[str, Any]]] = {}
    for job in todo:
        unit = units[job]
        results.setdefault(job.name, []).append(unit.record)
        _add_weights(result, job, unit, weights, side)
        print(f"[{job.name}, seed {job.seed}] test accuracy {100 * unit.record['test_accuracy']:.2f}% "
              f"({unit.record['train_time_s']:.0f} s)")
    return results


def _add_weights(result: Any, job: Job, unit: Unit, weights: Path, side: Any) -> None:
    """The unit's final weights as ``<variant>_seed<k>.safetensors`` (+ ``.json``) in the run's outputs."""
    model = variant_network(job.variant, weights, side, BN_MOMENTA[job.preset], job.seed)
    model.load_state_dict(unit.state)
    result.weights(file_key(job.name, job.seed) + ".safetensors", model, {
        "dataset": "mnist", "classes": list(CLASS_NAMES["mnist"]), "normalisation": NORMALISATION,
        "input_shape": list(INPUT_SHAPE), "variant": f"{job.name}_seed{job.seed}", "base": str(weights)})
