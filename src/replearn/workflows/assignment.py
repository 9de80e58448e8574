"""The assignment: S. aureus division stages from few labels, three ways, with a report to hand in.

Title: Assignment 1 -- CNN, autoencoder and simple classifiers on 400 labelled cell crops
Description: (a) a CNN trained on 300 labelled crops, validated on 100; (b) a convolutional autoencoder
trained on the unlabelled crops, validated on the 400 labelled ones; (c) simple classifiers on the
autoencoder's codes of the labelled crops, same splits; beyond the lecture, (b+) a SimCLR encoder pretrained
without labels on the unlabelled crops, whose features the classifiers of (c) also use. An architecture grid (a TOML file) is run over
repeated stratified splits, and everything goes into one HTML + Markdown report.

Why repeats: 100 validation images give about +-5 % accuracy noise, so a single split cannot tell two
architectures apart. Every grid point, every probe and every baseline is evaluated on the same
``repeats`` seeded stratified 300/100 splits (training seed = ``--seed`` + repeat), so comparisons are
paired: a comparison sentence says whether a difference is larger than that noise.

Input: the course's ``data.npz`` (``--data``; validated by :func:`replearn.data.load_assignment`), or
the built-in SYNTHETIC crops (:func:`replearn.data.synthetic_aureus`); everything made from synthetic
data says so. Crops of any size whose sides are divisible by 2^(autoencoder blocks - 1) (4 by default,
like 40x40) are used as they are; other sizes are refused with one line (crop or pad them first).

Outputs in the run folder: ``report.html`` (figures embedded) and ``report.md``, ``metrics.json``
(every number in the report), ``config.json`` (the resolved grid), ``model.safetensors`` + ``model.json``
(the best CNN of the grid, trained on the first split; ``replearn predict --model RUN`` uses it),
``autoencoder-d<k>.safetensors`` (+ ``.json``) per bottleneck size, ``simclr-encoder.safetensors`` (+ ``.json``)
and ``figures/*.png``.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from tqdm import tqdm

import replearn
from replearn.data import AssignmentData, load_assignment, repeated_stratified_splits, synthetic_aureus, to_tensor
from replearn.data.cell_augment import CellAugment
from replearn.errors import ReplearnError
from replearn.evaluate import classification_metrics, compare_sentence, embed_2d, mean_ci, reconstruction_errors
from replearn.evaluate import figures as figs
from replearn.evaluate.contrastive import ContrastiveEmbedding
from replearn.evaluate.encoder import AutoEncoderEmbedding
from replearn.evaluate.probes import PROBE_TITLES, create_probe
from replearn.models import Network, count_params, save_model, small_cnn
from replearn.train import TrainConfig, fit, predict
from replearn.train._device import bf16_native
from replearn.utils.atomic import save_json, write_text
from replearn.utils.rundir import make_run_dir
from replearn.utils.runtime import resolve_device, seed_everything
from replearn.workflows import _assignment_grid as grid
from replearn.workflows import _assignment_report as report

COMMAND = "assignment"
HELP = "the assignment: CNN, autoencoder and simple classifiers on few labelled crops, over a grid; HTML report"
EXAMPLES = """\
examples:
  replearn assignment --quick                      # built-in SYNTHETIC data, tiny grid, under a minute
  replearn assignment                              # built-in SYNTHETIC data, default grid (about 4 min on 2 cores)
  replearn assignment --data data.npz              # the course's crops
  replearn assignment --data data.npz --config configs/grid.toml --out runs/a1
  replearn predict --model runs/a1 new_crops/      # stage predictions of the saved CNN
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``replearn assignment`` (plus the common ones: --out, --seed, --quick, ...)."""
    parser.add_argument("--data", metavar="NPZ", help="the course's data.npz (default: built-in SYNTHETIC crops)")
    parser.add_argument("--config", metavar="TOML", help="grid config (see configs/grid.toml); default: built-in grid")


def run(args: argparse.Namespace) -> int:
    """Run the whole assignment and write the report; returns the exit code."""
    started = time.perf_counter()
    progress = not args.no_progress
    # Everything a user can get wrong is checked before any folder is created or any model trained.
    config = grid.load_grid(args.config, quick=args.quick)
    device = resolve_device(args.device)
    data = prepare_data(args, config)
    points = grid.cnn_points(config)
    check_sizes(data, config, points)
    grid.check_spec(config, (1, *data.labelled.shape[1:]), data.n_classes, args.config)
    splits = make_splits(data, config, args.seed)
    run_dir = make_run_dir(args.out, COMMAND)
    timing = {"data_s": time.perf_counter() - started}
    say_data(data, splits, run_dir)

    t = time.perf_counter()
    cnn = train_cnn_grid(data, splits, points, config, args.seed, str(device), progress)
    timing["cnn_s"] = time.perf_counter() - t
    t = time.perf_counter()
    ae = train_autoencoders(data, config, args.seed, str(device), progress)
    timing["autoencoder_s"] = time.perf_counter() - t
    t = time.perf_counter()
    ssl = train_ssl(data, config, args.seed, str(device), progress)
    timing["ssl_s"] = time.perf_counter() - t
    t = time.perf_counter()
    representations = build_representations(data, ae, ssl, config, splits, args.seed)
    probes = run_probes(data, splits, representations, config, args.seed, progress)
    timing["probes_s"] = time.perf_counter() - t

    # Write: weights, figures, config; metrics and the report last (each file atomically).
    saved = save_models(run_dir, data, cnn, ae, ssl, config, args.seed)
    metrics = assemble_metrics(data, splits, config, args, cnn, ae, ssl, probes, saved, timing, started, device)
    t = time.perf_counter()
    figures = draw_figures(run_dir, data, splits, cnn, ae, representations, metrics, config, args.seed)
    metrics["timing"]["figures_s"] = time.perf_counter() - t
    save_json(run_dir / "config.json", {"grid": config, "seed": args.seed, "quick": bool(args.quick),
                                        "data": args.data, "config_file": args.config, "device": str(device)})
    write_text(run_dir / "grid.toml", grid.to_toml(config))
    metrics["timing"]["total_s"] = time.perf_counter() - started
    save_json(run_dir / "metrics.json", metrics)
    md, page = report.build_report(metrics, config, figures).write(run_dir)
    say_results(metrics, page)
    return 0


# =============================================================================================
# Prepare the data
# =============================================================================================
def prepare_data(args: argparse.Namespace, config: dict[str, Any]) -> AssignmentData:
    """The course's file (``--data``, validated) or the built-in synthetic crops; ``--quick`` subsamples."""
    d = config["data"]
    if args.data is None:
        return synthetic_aureus(d["n_labelled"], d["n_unlabelled"], seed=args.seed, preset=d["preset"])
    data = load_assignment(args.data)
    if args.quick:  # same code path on a smaller, class-stratified subset
        rng = np.random.default_rng(args.seed)
        if len(data.labels) >= d["n_labelled"] + 2 * data.n_classes:
            keep = np.sort(next(repeated_stratified_splits(data.labels, d["n_labelled"], 1, args.seed))[1])
            data.labelled, data.labels = data.labelled[keep], data.labels[keep]
        if len(data.unlabelled) > d["n_unlabelled"]:
            keep = np.sort(rng.choice(len(data.unlabelled), d["n_unlabelled"], replace=False))
            data.unlabelled = data.unlabelled[keep]
    return data


def make_splits(data: AssignmentData, config: dict[str, Any], seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``repeats`` seeded stratified (train_idx, val_idx) splits of the labelled crops (same for every model)."""
    d = config["data"]
    try:
        return list(repeated_stratified_splits(data.labels, d["n_val"], d["repeats"], seed))
    except ReplearnError as exc:
        raise ReplearnError(f"{data.source}: {exc} (the validation size is [data] n_val = {d['n_val']} of a --config file)") from None


def check_sizes(data: AssignmentData, config: dict[str, Any], points: list[grid.CnnPoint]) -> None:
    """Refuse crops the models cannot take: sides not divisible by 2^(blocks-1), or too small for a CNN depth."""
    h, w = data.labelled.shape[1:]
    step = 2 ** (len(config["autoencoder"]["blocks"]) - 1)
    if h % step or w % step or min(h, w) < 2 * step:
        raise ReplearnError(
            f"{data.source}: crops are {h}x{w} pixels; the models need sides divisible by {step} and at least "
            f"{2 * step} (like the course's 40x40): crop or pad them, e.g. to {max(h // step, 2) * step}x"
            f"{max(w // step, 2) * step}"
        )
    for p in points:
        if not p.spec and min(h, w) < 2**p.depth:
            raise ReplearnError(
                f"[cnn] depth = {p.depth} halves {h}x{w} crops {p.depth} times, below 1 pixel; "
                f"allowed depth for these crops: at most {int(np.log2(min(h, w)))}"
            )
    ssl_depth = config["ssl"]["depth"]
    if config["ssl"]["epochs"] and min(h, w) < 2**ssl_depth:
        raise ReplearnError(
            f"[ssl] depth = {ssl_depth} halves {h}x{w} crops {ssl_depth} times, below 1 pixel; "
            f"allowed depth for these crops: at most {int(np.log2(min(h, w)))} (or [ssl] epochs = 0)"
        )


def say_data(data: AssignmentData, splits: list, run_dir: Path) -> None:
    """Print what is used, shapes included; synthetic data says so."""
    kind = "SYNTHETIC crops (not the course's data)" if data.synthetic else "crops"
    counts = np.bincount(data.labels, minlength=data.n_classes)
    print(f"Data: {kind} from {data.source}")
    print(f"  labelled {data.labelled.shape} {data.labelled.dtype}, per class {counts.tolist()}; "
          f"unlabelled {data.unlabelled.shape}")
    print(f"  {len(splits)} stratified splits of {len(splits[0][0])} train / {len(splits[0][1])} validation")
    print(f"Run folder: {run_dir}")


# =============================================================================================
# Build the models and train: (a) the CNN grid
# =============================================================================================
def use_bf16(setting: str, device: str) -> bool:
    """The config's ``bf16`` ("auto", "on", "off") for ``device``."""
    return setting == "on" or (setting == "auto" and bf16_native(torch.device(device).type))


def build_cnn(point: grid.CnnPoint, input_shape: tuple[int, int, int], n_classes: int, dense: int) -> Network:
    """small_cnn for a grid point, or the config's layer spec."""
    if point.spec:
        return Network(list(point.spec), input_shape)
    return small_cnn(input_shape, n_classes, depth=point.depth, width=point.width, dropout=point.dropout, dense=dense)


def cnn_train_config(config: dict[str, Any], seed: int, device: str) -> TrainConfig:
    """The TrainConfig of every CNN of the grid (only the seed changes per repeat)."""
    c = config["cnn"]
    return TrainConfig(
        epochs=c["epochs"], batch_size=c["batch_size"], optimizer=c["optimizer"], lr=c["lr"],
        weight_decay=c["weight_decay"], schedule=None if c["schedule"] == "none" else c["schedule"],
        bf16=use_bf16(c["bf16"], device), channels_last=c["channels_last"], seed=seed, device=device,
    )


def train_cnn_grid(
    data: AssignmentData, splits: list, points: list[grid.CnnPoint], config: dict[str, Any], seed: int,
    device: str, progress: bool,
) -> dict[str, dict[str, Any]]:
    """Train every grid point on every split; score the final-epoch model on the split's validation images.

    Returns name -> {point, per-repeat accuracy/macro_f1/confusion/history, state of repeat 0, ...}.
    The final epoch is scored (no best-epoch picking on the validation set, which would flatter).
    """
    x = to_tensor(data.labelled)
    y = torch.from_numpy(data.labels)
    k = data.n_classes
    augment = CellAugment(**config["augment"])
    out: dict[str, dict[str, Any]] = {}
    bar = tqdm(total=len(points) * len(splits), desc="(a) CNN grid", unit="run", disable=not progress)
    for point in points:
        rec: dict[str, Any] = {"point": point, "accuracy": [], "macro_f1": [], "confusion": [], "history": [],
                               "seconds": []}
        for r, (tr, va) in enumerate(splits):
            t = time.perf_counter()
            seed_everything(seed + r)
            model = build_cnn(point, tuple(x.shape[1:]), k, config["cnn"]["dense"])
            hist = fit(model, (x[tr], y[tr]), (x[va], y[va]), cnn_train_config(config, seed + r, device),
                       augment=augment if point.augment else None, progress=False)
            pred = predict(model, x[va]).argmax(dim=1).numpy()
            m = classification_metrics(data.labels[va], pred, k)
            for key in ("accuracy", "macro_f1", "confusion"):
                rec[key].append(m[key])
            rec["history"].append({key: hist[key] for key in ("loss", "accuracy", "val_loss", "val_accuracy")})
            rec["seconds"].append(time.perf_counter() - t)
            if r == 0:
                rec["model"] = model.cpu()
            rec["n_params"] = count_params(model)[0]
            bar.set_postfix_str(f"{point.name}: val acc {m['accuracy']:.2f}")
            bar.update(1)
        out[point.name] = rec
    bar.close()
    return out


# =============================================================================================
# (b) The autoencoder(s) on the unlabelled crops, validated on the labelled ones
# =============================================================================================
def train_autoencoders(
    data: AssignmentData, config: dict[str, Any], seed: int, device: str, progress: bool
) -> dict[str, Any]:
    """One conv autoencoder per bottleneck size; ``{"skipped": reason}`` when there are no unlabelled crops."""
    a = config["autoencoder"]
    if len(data.unlabelled) == 0:
        note = "the data has no unlabelled crops, so part (b) (the autoencoder) was skipped; the probes run on raw pixels and PCA"
        print(f"Note: {note}")
        return {"skipped": note, "models": {}}
    models: dict[str, Any] = {}
    for dim in grid.code_dims(config):
        t = time.perf_counter()
        print(f"(b) autoencoder with a {dim}-D code on {len(data.unlabelled)} unlabelled crops")
        ae = AutoEncoderEmbedding(
            code_dim=dim, blocks=[tuple(b) for b in a["blocks"]], epochs=a["epochs"], batch_size=a["batch_size"],
            lr=a["lr"], loss=a["loss"], bf16=use_bf16(a["bf16"], device), channels_last=a["channels_last"],
            seed=seed, device=device, progress=progress,
            validation_data=data.labelled,
        ).fit(data.unlabelled)
        labelled = to_tensor(data.labelled)[:, 0].numpy()
        recon = ae.reconstruct(data.labelled)
        models[f"AE-{dim}"] = {
            "estimator": ae, "code_dim": dim, "codes": ae.transform(data.labelled), "recon": recon,
            "errors": reconstruction_errors(labelled, recon), "history": ae.history_,
            "seconds": time.perf_counter() - t, "n_params": count_params(ae.model_)[0],
        }
    return {"skipped": None, "models": models}


def train_ssl(data: AssignmentData, config: dict[str, Any], seed: int, device: str, progress: bool) -> dict[str, Any]:
    """Beyond the lecture: a SimCLR encoder on the unlabelled crops; ``{"skipped": reason}`` when off or impossible."""
    s = config["ssl"]
    if s["epochs"] == 0:
        return {"skipped": "[ssl] epochs = 0", "models": {}}
    if len(data.unlabelled) < 2:
        return {"skipped": "the data has fewer than 2 unlabelled crops, so SimCLR pretraining was skipped", "models": {}}
    t = time.perf_counter()
    print(f"(b+) SimCLR self-supervised pretraining on {len(data.unlabelled)} unlabelled crops")
    est = ContrastiveEmbedding(
        depth=s["depth"], width=s["width"], epochs=s["epochs"], batch_size=s["batch_size"], lr=s["lr"],
        temperature=s["temperature"], proj_dim=s["proj_dim"], shift=s["shift"], bf16=use_bf16(s["bf16"], device),
        channels_last=s["channels_last"], seed=seed, device=device, progress=progress,
    ).fit(data.unlabelled)
    model = {"estimator": est, "features": est.transform(data.labelled), "history": est.history_,
             "seconds": time.perf_counter() - t, "n_params": count_params(est.encoder_)[0],
             "feature_dim": est.feature_dim_}
    return {"skipped": None, "models": {"SimCLR": model}}


# =============================================================================================
# (c) Simple classifiers on the codes, and honest baselines
# =============================================================================================
def build_representations(
    data: AssignmentData, ae: dict[str, Any], ssl: dict[str, Any], config: dict[str, Any], splits: list, seed: int
) -> dict[str, list[np.ndarray]]:
    """Representation name -> codes (N_labelled, D) of the labelled crops, one array per split.

    The autoencoder codes, the SimCLR features and PCA fitted on the unlabelled crops do not depend
    on the split (no labels used); without unlabelled crops, PCA is fitted on each split's training crops.
    """
    pixels = to_tensor(data.labelled).reshape(len(data.labels), -1).numpy()
    reps: dict[str, list[np.ndarray]] = {}
    for name, m in ae["models"].items():
        reps[f"{name} codes"] = [m["codes"]] * len(splits)
    for name, m in ssl["models"].items():
        reps[f"{name} features"] = [m["features"]] * len(splits)
    if config["probes"]["pca"]:
        unl = to_tensor(data.unlabelled).reshape(len(data.unlabelled), -1).numpy() if len(data.unlabelled) else None
        for dim in grid.code_dims(config):
            if unl is not None and dim < min(unl.shape):
                codes = PCA(n_components=dim, random_state=seed).fit(unl).transform(pixels)
                reps[f"PCA-{dim}"] = [codes] * len(splits)
            elif unl is None:
                per = []
                for tr, _ in splits:
                    if dim >= min(len(tr), pixels.shape[1]):
                        break
                    per.append(PCA(n_components=dim, random_state=seed).fit(pixels[tr]).transform(pixels))
                if len(per) == len(splits):
                    reps[f"PCA-{dim}"] = per
    if config["probes"]["raw_pixels"] or not reps:
        reps["raw pixels"] = [pixels] * len(splits)
    return reps


def run_probes(
    data: AssignmentData, splits: list, reps: dict[str, list[np.ndarray]], config: dict[str, Any], seed: int,
    progress: bool,
) -> dict[str, Any]:
    """Every probe on every representation and split: per-repeat accuracy, macro-F1 and confusion."""
    k = data.n_classes
    names = config["probes"]["names"]
    results: dict[str, dict[str, Any]] = {}
    warned = 0
    bar = tqdm(total=len(reps) * len(names), desc="(c) probes", unit="probe", disable=not progress)
    for rep, per_split in reps.items():
        for name in names:
            rec: dict[str, Any] = {"representation": rep, "probe": name, "accuracy": [], "macro_f1": [],
                                   "confusion": []}
            for r, (tr, va) in enumerate(splits):
                codes = per_split[r]
                probe = create_probe(name, seed=seed + r, **grid.probe_params(config, name))
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", ConvergenceWarning)
                    probe.fit(codes[tr], data.labels[tr])
                warned += sum(issubclass(w.category, ConvergenceWarning) for w in caught)
                m = classification_metrics(data.labels[va], probe.predict(codes[va]), k)
                for key in ("accuracy", "macro_f1", "confusion"):
                    rec[key].append(m[key])
            results[f"{PROBE_TITLES[name]} on {rep}"] = rec
            bar.update(1)
    bar.close()
    return {"results": results, "convergence_warnings": warned}


# =============================================================================================
# Save the models
# =============================================================================================
def best_of(records: dict[str, dict[str, Any]]) -> str | None:
    """Name with the highest mean accuracy (ties: higher mean macro-F1, then the first listed)."""
    if not records:
        return None
    return max(records, key=lambda n: (float(np.mean(records[n]["accuracy"])), float(np.mean(records[n]["macro_f1"]))))


def save_models(run_dir: Path, data: AssignmentData, cnn: dict, ae: dict, ssl: dict, config: dict,
                seed: int) -> dict[str, Any]:
    """The best CNN (``model.safetensors``, trained on split 0), each autoencoder and the SimCLR encoder."""
    h, w = (int(s) for s in data.labelled.shape[1:])
    common = {
        "class_names": list(data.class_names[: data.n_classes]),
        "normalisation": "uint8 pixels / 255 -> [0, 1]; float pixels in [0, 1] kept (replearn.data.to_tensor)",
        "input_size": [h, w],
        "synthetic": bool(data.synthetic),
        "data_source": data.source,
        "seed": seed,
        "replearn_version": replearn.__version__,
    }
    saved: dict[str, Any] = {"cnn": None, "autoencoders": {}, "ssl": {}}
    best = best_of(cnn)
    if best is not None:
        rec = cnn[best]
        meta = {**common, "task": "classifier", "grid_point": best, "params": rec["point"].params(),
                "trained_on": "split 0 of the run (seed = --seed): its training crops",
                "val_accuracy_split0": rec["accuracy"][0]}
        save_model(rec["model"], run_dir / "model.safetensors", meta)
        saved["cnn"] = {"name": best, "weights": "model.safetensors"}
    for name, m in ae["models"].items():
        file = f"autoencoder-d{m['code_dim']}.safetensors"
        meta = {**common, "task": "autoencoder", "code_dim": m["code_dim"], "blocks": config["autoencoder"]["blocks"],
                "trained_on": "the unlabelled crops; the labelled crops were its validation set"}
        save_model(m["estimator"].model_.cpu(), run_dir / file, meta)
        saved["autoencoders"][name] = file
    for name, m in ssl["models"].items():
        file = f"{name.lower()}-encoder.safetensors"
        meta = {**common, "task": "encoder", "method": name, "feature_dim": m["feature_dim"],
                "ssl": config["ssl"], "trained_on": "the unlabelled crops, without labels"}
        save_model(m["estimator"].encoder_.cpu(), run_dir / file, meta)
        saved["ssl"][name] = file
    return saved


# =============================================================================================
# Evaluate: every number of the report, in one JSON
# =============================================================================================
def summarise(rec: dict[str, Any]) -> dict[str, Any]:
    """Mean and 95% CI half-width of accuracy and macro-F1; confusion summed over the repeats."""
    acc_m, acc_h = mean_ci(rec["accuracy"])
    f1_m, f1_h = mean_ci(rec["macro_f1"])
    return {
        "accuracy": [float(v) for v in rec["accuracy"]], "macro_f1": [float(v) for v in rec["macro_f1"]],
        "accuracy_mean": acc_m, "accuracy_ci": acc_h, "macro_f1_mean": f1_m, "macro_f1_ci": f1_h,
        "confusion": np.sum(np.asarray(rec["confusion"]), axis=0).tolist(), "runs": len(rec["accuracy"]),
    }


def mean_history(histories: list[dict[str, list[float]]]) -> dict[str, list[float]]:
    """Per-epoch mean over the repeats (every repeat trains the same number of epochs)."""
    return {key: np.mean([h[key] for h in histories], axis=0).tolist() for key in histories[0]}


def comparisons(cnn: dict, probes: dict, ae_names: list[str], ssl_names: list[str]) -> list[dict[str, Any]]:
    """The paired comparisons the report discusses, each with a sentence generated from the numbers."""
    out: list[dict[str, Any]] = []

    def add(title: str, a: str, ra: dict, b: str, rb: dict) -> None:
        out.append({"title": title, "a": a, "b": b, "metric": "accuracy",
                    "sentence": compare_sentence(a, ra["accuracy"], b, rb["accuracy"], "validation accuracy",
                                                 paired=True)})

    best_cnn, best_probe = best_of(cnn), best_of(probes)
    if best_cnn and best_probe:
        add("Best CNN vs best simple classifier", best_cnn, cnn[best_cnn], best_probe, probes[best_probe])
    if best_cnn:
        ranked = sorted(cnn, key=lambda n: -float(np.mean(cnn[n]["accuracy"])))
        if len(ranked) > 1:
            add("Best vs second-best CNN of the grid", ranked[0], cnn[ranked[0]], ranked[1], cnn[ranked[1]])
        point = cnn[best_cnn]["point"]
        with_aug, without = point.twin(True).name, point.twin(False).name
        if with_aug in cnn and without in cnn:
            add("CNN with vs without augmentation", with_aug, cnn[with_aug], without, cnn[without])
    ae_probes = {n: r for n, r in probes.items() if any(r["representation"] == f"{a} codes" for a in ae_names)}
    best_ae = best_of(ae_probes)
    if best_ae:
        rec = probes[best_ae]
        title = PROBE_TITLES[rec["probe"]]
        raw = f"{title} on raw pixels"
        if raw in probes:
            add("Autoencoder codes vs raw pixels (same classifier)", best_ae, rec, raw, probes[raw])
        dim = rec["representation"].split()[0].split("-")[1]
        pca = f"{title} on PCA-{dim}"
        if pca in probes:
            add(f"Autoencoder vs PCA, both {dim}-D (same classifier)", best_ae, rec, pca, probes[pca])
        others = [f"{title} on {a} codes" for a in ae_names if f"{title} on {a} codes" != best_ae]
        for other in others:
            if other in probes:
                add("Bottleneck size (same classifier)", best_ae, rec, other, probes[other])
    ssl_probes = {n: r for n, r in probes.items() if any(r["representation"] == f"{m} features" for m in ssl_names)}
    best_ssl = best_of(ssl_probes)
    if best_ssl:
        rec = probes[best_ssl]
        title = PROBE_TITLES[rec["probe"]]
        same = {n: r for n, r in ae_probes.items() if r["probe"] == rec["probe"]}
        if same:
            ae_name = best_of(same)
            add("SimCLR features vs autoencoder codes (same classifier)", best_ssl, rec, ae_name, probes[ae_name])
        raw = f"{title} on raw pixels"
        if raw in probes:
            add("SimCLR features vs raw pixels (same classifier)", best_ssl, rec, raw, probes[raw])
        if best_cnn and best_ssl != best_probe:  # otherwise "best CNN vs best simple classifier" says it
            add("Best CNN vs SimCLR features + simple classifier", best_cnn, cnn[best_cnn], best_ssl, rec)
    if best_probe and not ae_names:
        raw = [n for n in probes if probes[n]["representation"] == "raw pixels"]
        pca = [n for n in probes if probes[n]["representation"].startswith("PCA")]
        if raw and pca:
            a, b = best_of({n: probes[n] for n in pca}), best_of({n: probes[n] for n in raw})
            add("PCA codes vs raw pixels", a, probes[a], b, probes[b])
    return out


def assemble_metrics(
    data: AssignmentData, splits: list, config: dict, args: argparse.Namespace, cnn: dict, ae: dict, ssl: dict,
    probes: dict, saved: dict, timing: dict, started: float, device: torch.device,
) -> dict[str, Any]:
    """Everything the report shows, as plain JSON-ready numbers and strings."""
    counts = np.bincount(data.labels, minlength=data.n_classes).tolist()
    cnn_out = {
        name: {"params": rec["point"].params(), "n_params": rec["n_params"], **summarise(rec),
               "history": mean_history(rec["history"]), "seconds": float(np.sum(rec["seconds"]))}
        for name, rec in cnn.items()
    }
    ae_out = {
        name: {"code_dim": m["code_dim"], "n_params": m["n_params"], "epochs": len(m["history"].get("loss", [])),
               "history": {k: m["history"][k] for k in ("loss", "val_loss") if k in m["history"]},
               "val_mse": m["errors"]["mse"], "val_bce": m["errors"]["bce"], "seconds": m["seconds"]}
        for name, m in ae["models"].items()
    }
    ssl_out = {
        name: {"feature_dim": m["feature_dim"], "n_params": m["n_params"], "epochs": len(m["history"].get("loss", [])),
               "history": {"loss": m["history"]["loss"]}, "seconds": m["seconds"]}
        for name, m in ssl["models"].items()
    }
    probe_out = {
        name: {"representation": rec["representation"], "probe": rec["probe"], **summarise(rec)}
        for name, rec in probes["results"].items()
    }
    results = [
        {"name": n, "kind": "CNN", "representation": "pixels (end to end)", **{k: v for k, v in r.items()
         if k in ("accuracy_mean", "accuracy_ci", "macro_f1_mean", "macro_f1_ci", "runs")}}
        for n, r in cnn_out.items()
    ] + [
        {"name": n, "kind": "probe", "representation": r["representation"], **{k: v for k, v in r.items()
         if k in ("accuracy_mean", "accuracy_ci", "macro_f1_mean", "macro_f1_ci", "runs")}}
        for n, r in probe_out.items()
    ]
    results.sort(key=lambda r: (-r["accuracy_mean"], -r["macro_f1_mean"]))
    best_cnn, best_probe = best_of(cnn), best_of(probes["results"])
    return {
        "synthetic": bool(data.synthetic),
        "data": {
            "source": data.source, "synthetic": bool(data.synthetic), "n_labelled": int(len(data.labels)),
            "n_unlabelled": int(len(data.unlabelled)), "image_size": [int(s) for s in data.labelled.shape[1:]],
            "pixel_type": str(data.labelled.dtype), "class_names": list(data.class_names[: data.n_classes]),
            "class_counts": counts,
        },
        "protocol": {
            "n_train": int(len(splits[0][0])), "n_val": int(len(splits[0][1])), "repeats": len(splits),
            "seed": int(args.seed), "quick": bool(args.quick),
            "chance_accuracy": float(max(counts) / sum(counts)),
        },
        "cnn": cnn_out,
        "autoencoder": {"skipped": ae["skipped"], "models": ae_out},
        "ssl": {"skipped": ssl["skipped"], "models": ssl_out},
        "probes": probe_out,
        "probe_convergence_warnings": int(probes["convergence_warnings"]),
        "results": results,
        "best": {"cnn": best_cnn, "probe": best_probe, "overall": results[0]["name"] if results else None},
        "comparisons": comparisons(cnn, probes["results"], list(ae["models"]), list(ssl["models"])),
        "saved": saved,
        "timing": dict(timing),
        "environment": {
            "replearn": replearn.__version__, "torch": torch.__version__, "python": platform.python_version(),
            "device": str(device), "torch_threads": torch.get_num_threads(),
            "bf16_cnn": use_bf16(config["cnn"]["bf16"], str(device)),
            "bf16_autoencoder": use_bf16(config["autoencoder"]["bf16"], str(device)),
            "bf16_ssl": use_bf16(config["ssl"]["bf16"], str(device)),
        },
    }


# =============================================================================================
# Report figures
# =============================================================================================
def draw_figures(
    run_dir: Path, data: AssignmentData, splits: list, cnn: dict, ae: dict, reps: dict, metrics: dict,
    config: dict, seed: int,
) -> dict[str, Path]:
    """The report's figures (PNG, atomically) from the trained models and ``metrics``."""
    out = run_dir / "figures"
    names = data.class_names
    tag = " (SYNTHETIC data)" if data.synthetic else ""
    paths: dict[str, Path] = {}

    # Examples of each stage.
    per = 8
    idx = np.concatenate([np.flatnonzero(data.labels == c)[:per] for c in range(data.n_classes)])
    imgs = to_tensor(data.labelled[idx])[:, 0].numpy()
    titles = [names[int(c)].split()[0] if names[int(c)] else str(c) for c in data.labels[idx]]
    paths["examples"] = figs.save_figure(figs.montage(imgs, ncols=per, titles=[f"stage {t}" for t in titles],
                                                      title=f"Labelled crops by stage{tag}"), out / "examples.png")

    # Learning curves: the best CNN with and without augmentation (mean over repeats).
    best = metrics["best"]["cnn"]
    if best is not None:
        point = cnn[best]["point"]
        shown = [n for n in dict.fromkeys([best, point.twin(True).name, point.twin(False).name]) if n in cnn]
        hist = {n: metrics["cnn"][n]["history"] for n in shown}
        fig = figs.learning_curves(hist, ("accuracy", "val_accuracy"),
                                   title=f"CNN accuracy per epoch, mean of {len(splits)} splits{tag}")
        paths["cnn_curves"] = figs.save_figure(fig, out / "cnn_learning_curves.png")
        paths["cnn_confusion"] = figs.save_figure(
            figs.confusion_figure(metrics["cnn"][best]["confusion"], names,
                                  f"{best}: validation, summed over {len(splits)} splits{tag}"),
            out / "confusion_cnn.png")
    best_probe = metrics["best"]["probe"]
    if best_probe is not None:
        paths["probe_confusion"] = figs.save_figure(
            figs.confusion_figure(metrics["probes"][best_probe]["confusion"], names,
                                  f"{best_probe}: validation, summed over {len(splits)} splits{tag}"),
            out / "confusion_probe.png")

    if ae["models"]:
        hist = {n: m["history"] for n, m in metrics["autoencoder"]["models"].items()}
        paths["ae_curves"] = figs.save_figure(
            figs.learning_curves(hist, ("loss", "val_loss"), title=f"Autoencoder reconstruction loss per epoch{tag}"),
            out / "autoencoder_learning_curves.png")
        va = splits[0][1]
        pick = np.concatenate([va[data.labels[va] == c][:4] for c in range(data.n_classes)])[:10]
        rows = {"original": to_tensor(data.labelled[pick])[:, 0].numpy()}
        rows.update({n: m["recon"][pick] for n, m in ae["models"].items()})
        paths["reconstructions"] = figs.save_figure(
            figs.image_rows(rows, n=len(pick), title=f"Validation crops and their reconstructions{tag}"),
            out / "reconstructions.png")

    # The 2-D view of the codes, coloured by stage.
    method = config["report"]["embedding"]
    label = {"tsne": "t-SNE", "isomap": "ISOMAP", "pca": "PCA"}[method]
    panels: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    code_reps = [r for r in reps if r != "raw pixels" and not r.endswith(" features")]
    if code_reps:
        first = code_reps[0]
        panels[f"{first}, {label}"] = (embed_2d(method, reps[first][0], seed=seed)[0], data.labels)
    for name in [r for r in reps if r.endswith(" features")]:
        panels[f"{name}, {label}"] = (embed_2d(method, reps[name][0], seed=seed)[0], data.labels)
    for name, m in ae["models"].items():
        if m["code_dim"] == 2:
            panels[f"{name} codes (the 2-D code itself)"] = (m["codes"], data.labels)
    pixels = to_tensor(data.labelled).reshape(len(data.labels), -1).numpy()
    panels[f"raw pixels, {label}"] = (embed_2d(method, pixels, seed=seed)[0], data.labels)
    paths["embedding"] = figs.save_figure(
        figs.embeddings_figure(panels, names, title=f"The {len(data.labels)} labelled crops in 2-D{tag}"),
        out / "embedding_2d.png")
    metrics["embedding"] = {"method": method, "panels": list(panels), "note": report.embedding_note(method)}
    return paths


def say_results(metrics: dict, page: Path) -> None:
    """Print the headline numbers and where the report is."""
    syn = " -- made from SYNTHETIC data" if metrics["synthetic"] else ""
    for key in ("cnn", "probe"):
        name = metrics["best"][key]
        if name:
            r = (metrics["cnn"] if key == "cnn" else metrics["probes"])[name]
            print(f"best {key}: {name}: accuracy {r['accuracy_mean']:.3f} +- {r['accuracy_ci']:.3f} "
                  f"(95% CI, {r['runs']} splits)")
    print(f"Report: {page}{syn}")
    sys.stdout.flush()
