"""The assignment's data and models: the crops and their splits, (a) the CNN grid, (b) the autoencoders,
(b+) the SimCLR encoder and (c) the simple classifiers on the codes, each result a typed record.

Every classifier, CNN or probe, is scored through :mod:`replearn.evaluate.protocol` on the same seeded
stratified splits (training seed = ``seed`` + split number), so the comparisons are paired.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from torch import nn
from tqdm import tqdm

import replearn
from replearn.data import AssignmentData, load_assignment, repeated_stratified_splits, synthetic_aureus, to_tensor
from replearn.data.cell_augment import CellAugment
from replearn.encoders import AutoEncoderEmbedding, CNNClassifier, ContrastiveEmbedding
from replearn.errors import ReplearnError
from replearn.evaluate import reconstruction_errors
from replearn.evaluate.domain_shift import reference_meta
from replearn.evaluate.probes import PROBE_TITLES, create_probe
from replearn.evaluate.protocol import Scores, Split, best_of, evaluate_on_splits, mean_history
from replearn.models import count_params
from replearn.train import bf16_enabled
from replearn.workflows import _assignment_grid as grid


# =============================================================================================
# Records
# =============================================================================================
@dataclass
class CnnResult:
    """One grid point trained on every split: its scores, histories, times, and the model of split 0."""

    point: grid.CnnPoint
    scores: Scores = field(default_factory=Scores)
    histories: list[dict[str, list[float]]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    n_params: int = 0
    model: nn.Module | None = None

    def metrics(self) -> dict[str, Any]:
        return {"params": self.point.params(), "n_params": self.n_params, **self.scores.summary(),
                "history": mean_history(self.histories), "seconds": float(np.sum(self.seconds))}


@dataclass
class Autoencoder:
    """One autoencoder trained on the unlabelled crops; codes and reconstructions of the labelled ones."""

    name: str
    code_dim: int
    estimator: AutoEncoderEmbedding
    codes: np.ndarray
    recon: np.ndarray
    errors: dict[str, float]
    history: dict[str, list[float]]
    seconds: float
    n_params: int

    def metrics(self) -> dict[str, Any]:
        return {"code_dim": self.code_dim, "n_params": self.n_params, "epochs": len(self.history.get("loss", [])),
                "history": {k: self.history[k] for k in ("loss", "val_loss") if k in self.history},
                "val_mse": self.errors["mse"], "val_bce": self.errors["bce"], "seconds": self.seconds}


@dataclass
class Pretrained:
    """The SimCLR encoder trained without labels; its features of the labelled crops."""

    name: str
    estimator: ContrastiveEmbedding
    features: np.ndarray
    history: dict[str, list[float]]
    seconds: float
    n_params: int
    feature_dim: int

    def metrics(self) -> dict[str, Any]:
        return {"feature_dim": self.feature_dim, "n_params": self.n_params,
                "epochs": len(self.history.get("loss", [])), "history": {"loss": self.history["loss"]},
                "seconds": self.seconds}


@dataclass
class Stage:
    """Models of part (b) or (b+): by name, or ``skipped`` saying why there are none."""

    models: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None

    def metrics(self) -> dict[str, Any]:
        return {"skipped": self.skipped, "models": {n: m.metrics() for n, m in self.models.items()}}


@dataclass
class Representation:
    """Codes (N_labelled, D) of the labelled crops, one array per split; ``kind`` says where they come from."""

    name: str
    kind: str  # "autoencoder", "ssl", "pca" or "pixels"
    codes: list[np.ndarray]
    dim: int | None = None  # the code size of autoencoder and PCA codes


@dataclass
class ProbeResult:
    """One simple classifier on one representation, scored on every split."""

    probe: str
    representation: str
    kind: str
    dim: int | None = None
    scores: Scores = field(default_factory=Scores)

    def metrics(self) -> dict[str, Any]:
        return {"representation": self.representation, "probe": self.probe, **self.scores.summary()}


# =============================================================================================
# Prepare the data
# =============================================================================================
def prepare(cfg: Any, unlabelled: bool = True) -> tuple[AssignmentData, list[Split]]:
    """The crops and their splits, after every check that needs the data (sizes, the spec network, the splits).

    ``cfg`` is the assignment's Config; ``unlabelled=False`` leaves the synthetic unlabelled crops out
    (what the checks need, fast).
    """
    config = cfg.tables()
    data = prepare_data(config, cfg.data_file, cfg.seed, cfg.quick, unlabelled)
    h, w = data.labelled.shape[1:]
    grid.check_sizes(h, w, data.source, config)
    grid.check_spec(config, (1, h, w), data.n_classes, cfg.config)
    return data, make_splits(data, config, cfg.seed)


def prepare_data(config: dict[str, Any], path: str | None, seed: int, quick: bool,
                 unlabelled: bool = True) -> AssignmentData:
    """The course's file (``--data``, validated) or the built-in synthetic crops; ``--quick`` subsamples."""
    d = config["data"]
    if path is None:
        return synthetic_aureus(d["n_labelled"], d["n_unlabelled"] if unlabelled else 0, seed=seed, preset=d["preset"])
    data = load_assignment(path)
    if quick:  # same code path on a smaller, class-stratified subset
        rng = np.random.default_rng(seed)
        if len(data.labels) >= d["n_labelled"] + 2 * data.n_classes:
            keep = np.sort(next(repeated_stratified_splits(data.labels, d["n_labelled"], 1, seed))[1])
            data.labelled, data.labels = data.labelled[keep], data.labels[keep]
        if len(data.unlabelled) > d["n_unlabelled"]:
            keep = np.sort(rng.choice(len(data.unlabelled), d["n_unlabelled"], replace=False))
            data.unlabelled = data.unlabelled[keep]
    return data


def make_splits(data: AssignmentData, config: dict[str, Any], seed: int) -> list[Split]:
    """``repeats`` seeded stratified (train_idx, val_idx) splits of the labelled crops (same for every model)."""
    d = config["data"]
    try:
        return list(repeated_stratified_splits(data.labels, d["n_val"], d["repeats"], seed))
    except ReplearnError as exc:
        raise ReplearnError(f"{data.source}: {exc} (the validation size is [data] n_val = {d['n_val']} of a --config file)") from None


def say_data(data: AssignmentData, splits: list[Split]) -> None:
    """Print what is used, shapes included; synthetic data says so."""
    kind = "SYNTHETIC crops (not the course's data)" if data.synthetic else "crops"
    counts = np.bincount(data.labels, minlength=data.n_classes)
    print(f"Data: {kind} from {data.source}")
    print(f"  labelled {data.labelled.shape} {data.labelled.dtype}, per class {counts.tolist()}; "
          f"unlabelled {data.unlabelled.shape}")
    print(f"  {len(splits)} stratified splits of {len(splits[0][0])} train / {len(splits[0][1])} validation")


def pixels(images: np.ndarray) -> np.ndarray:
    """Crops (N, H, W) as rows (N, H*W) of pixels in [0, 1]."""
    return to_tensor(images).reshape(len(images), -1).numpy()


# =============================================================================================
# (a) The CNN grid
# =============================================================================================
def cnn_estimator(point: grid.CnnPoint, config: dict[str, Any], n_classes: int, seed: int, device: str,
                  augment: CellAugment | None) -> CNNClassifier:
    """The classifier of a grid point: small_cnn (or the config's spec), seeded with ``seed_everything(seed)``."""
    c = config["cnn"]
    network = ({"spec": list(point.spec)} if point.spec else
               {"depth": point.depth, "width": point.width, "dropout": point.dropout, "dense": c["dense"]})
    return CNNClassifier(
        network_params=network, epochs=c["epochs"], batch_size=c["batch_size"], optimizer=c["optimizer"], lr=c["lr"],
        weight_decay=c["weight_decay"], schedule=None if c["schedule"] == "none" else c["schedule"],
        bf16=bf16_enabled(c["bf16"], torch.device(device).type), channels_last=c["channels_last"],
        augment=augment if point.augment else None, seed=seed, seeding="all", classes=list(range(n_classes)),
        device=device,
    )


def train_cnn_grid(data: AssignmentData, splits: list[Split], points: list[grid.CnnPoint], config: dict[str, Any],
                   seed: int, device: str, progress: bool) -> dict[str, CnnResult]:
    """Train every grid point on every split; score the final-epoch model on the split's validation images.

    The final epoch is scored (no best-epoch picking on the validation set, which would flatter).
    """
    x, y = to_tensor(data.labelled), torch.from_numpy(data.labels)
    augment = CellAugment(**config["augment"])
    out: dict[str, CnnResult] = {}
    bar = tqdm(total=len(points) * len(splits), desc="(a) CNN grid", unit="run", disable=not progress)
    for point in points:
        rec = out[point.name] = CnnResult(point)

        def fit_predict(tr: np.ndarray, va: np.ndarray, r: int, rec: CnnResult = rec) -> np.ndarray:
            t = time.perf_counter()
            clf = cnn_estimator(rec.point, config, data.n_classes, seed + r, device, augment)
            clf.fit(x[tr], y[tr], validation_data=(x[va], y[va]))
            predicted = clf.predict(x[va])
            rec.histories.append({key: clf.history_[key] for key in ("loss", "accuracy", "val_loss", "val_accuracy")})
            rec.seconds.append(time.perf_counter() - t)
            rec.model = clf.model_.cpu() if r == 0 else rec.model
            rec.n_params = count_params(clf.model_)[0]
            return predicted

        def after(r: int, m: dict[str, Any], name: str = point.name) -> None:
            bar.set_postfix_str(f"{name}: val acc {m['accuracy']:.2f}")
            bar.update(1)

        rec.scores = evaluate_on_splits(fit_predict, data.labels, splits, data.n_classes, after)
    bar.close()
    return out


# =============================================================================================
# (b) The autoencoder(s) on the unlabelled crops, validated on the labelled ones; (b+) SimCLR
# =============================================================================================
def train_autoencoders(data: AssignmentData, config: dict[str, Any], seed: int, device: str, progress: bool) -> Stage:
    """One conv autoencoder per bottleneck size; skipped when there are no unlabelled crops."""
    a = config["autoencoder"]
    if len(data.unlabelled) == 0:
        note = "the data has no unlabelled crops, so part (b) (the autoencoder) was skipped; the probes run on raw pixels and PCA"
        print(f"Note: {note}")
        return Stage(skipped=note)
    stage = Stage()
    for dim in grid.code_dims(config):
        t = time.perf_counter()
        print(f"(b) autoencoder with a {dim}-D code on {len(data.unlabelled)} unlabelled crops")
        ae = AutoEncoderEmbedding(
            code_dim=dim, blocks=[tuple(b) for b in a["blocks"]], epochs=a["epochs"], batch_size=a["batch_size"],
            lr=a["lr"], loss=a["loss"], bf16=bf16_enabled(a["bf16"], torch.device(device).type),
            channels_last=a["channels_last"], seed=seed, device=device, progress=progress,
            validation_data=data.labelled,
        ).fit(data.unlabelled)
        labelled = to_tensor(data.labelled)[:, 0].numpy()
        recon = ae.reconstruct(data.labelled)
        stage.models[f"AE-{dim}"] = Autoencoder(
            f"AE-{dim}", dim, ae, codes=ae.transform(data.labelled), recon=recon,
            errors=reconstruction_errors(labelled, recon), history=ae.history_, seconds=time.perf_counter() - t,
            n_params=count_params(ae.model_)[0])
    return stage


def train_ssl(data: AssignmentData, config: dict[str, Any], seed: int, device: str, progress: bool) -> Stage:
    """Beyond the lecture: a SimCLR encoder on the unlabelled crops; skipped when off or impossible."""
    s = config["ssl"]
    if s["epochs"] == 0:
        return Stage(skipped="[ssl] epochs = 0")
    if len(data.unlabelled) < 2:
        return Stage(skipped="the data has fewer than 2 unlabelled crops, so SimCLR pretraining was skipped")
    t = time.perf_counter()
    print(f"(b+) SimCLR self-supervised pretraining on {len(data.unlabelled)} unlabelled crops")
    est = ContrastiveEmbedding(
        depth=s["depth"], width=s["width"], epochs=s["epochs"], batch_size=s["batch_size"], lr=s["lr"],
        temperature=s["temperature"], proj_dim=s["proj_dim"], shift=s["shift"],
        bf16=bf16_enabled(s["bf16"], torch.device(device).type), channels_last=s["channels_last"], seed=seed,
        device=device, progress=progress,
    ).fit(data.unlabelled)
    model = Pretrained("SimCLR", est, features=est.transform(data.labelled), history=est.history_,
                       seconds=time.perf_counter() - t, n_params=count_params(est.encoder_)[0],
                       feature_dim=est.feature_dim_)
    return Stage(models={"SimCLR": model})


# =============================================================================================
# (c) Simple classifiers on the codes, and honest baselines
# =============================================================================================
def build_representations(data: AssignmentData, ae: Stage, ssl: Stage, config: dict[str, Any], splits: list[Split],
                          seed: int) -> list[Representation]:
    """The codes of the labelled crops the probes use, one array per split.

    The autoencoder codes, the SimCLR features and PCA fitted on the unlabelled crops do not depend
    on the split (no labels used); without unlabelled crops, PCA is fitted on each split's training crops.
    """
    raw = pixels(data.labelled)
    n = len(splits)
    reps = [Representation(f"{m.name} codes", "autoencoder", [m.codes] * n, m.code_dim) for m in ae.models.values()]
    reps += [Representation(f"{m.name} features", "ssl", [m.features] * n) for m in ssl.models.values()]
    if config["probes"]["pca"]:
        unl = pixels(data.unlabelled) if len(data.unlabelled) else None
        for dim in grid.code_dims(config):
            if unl is not None and dim < min(unl.shape):
                codes = PCA(n_components=dim, random_state=seed).fit(unl).transform(raw)
                reps.append(Representation(f"PCA-{dim}", "pca", [codes] * n, dim))
            elif unl is None:
                per = []
                for tr, _ in splits:
                    if dim >= min(len(tr), raw.shape[1]):
                        break
                    per.append(PCA(n_components=dim, random_state=seed).fit(raw[tr]).transform(raw))
                if len(per) == n:
                    reps.append(Representation(f"PCA-{dim}", "pca", per, dim))
    if config["probes"]["raw_pixels"] or not reps:
        reps.append(Representation("raw pixels", "pixels", [raw] * n))
    return reps


def run_probes(data: AssignmentData, splits: list[Split], reps: list[Representation], config: dict[str, Any],
               seed: int, progress: bool) -> tuple[dict[str, ProbeResult], int]:
    """Every probe on every representation, through the protocol; also the number of ConvergenceWarnings."""
    names = config["probes"]["names"]
    results: dict[str, ProbeResult] = {}
    warned = [0]
    bar = tqdm(total=len(reps) * len(names), desc="(c) probes", unit="probe", disable=not progress)
    for rep in reps:
        for name in names:
            def fit_predict(tr: np.ndarray, va: np.ndarray, r: int, rep: Representation = rep, name: str = name):
                probe = create_probe(name, seed=seed + r, **grid.probe_params(config, name))
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", ConvergenceWarning)
                    probe.fit(rep.codes[r][tr], data.labels[tr])
                warned[0] += sum(issubclass(w.category, ConvergenceWarning) for w in caught)
                return probe.predict(rep.codes[r][va])

            scores = evaluate_on_splits(fit_predict, data.labels, splits, data.n_classes)
            results[f"{PROBE_TITLES[name]} on {rep.name}"] = ProbeResult(name, rep.name, rep.kind, rep.dim, scores)
            bar.update(1)
    bar.close()
    return results, warned[0]


# =============================================================================================
# The models to save
# =============================================================================================
def saved_models(data: AssignmentData, cnn: dict[str, CnnResult], ae: Stage, ssl: Stage, config: dict[str, Any],
                 seed: int) -> tuple[list[tuple[str, nn.Module, dict[str, Any]]], dict[str, Any]]:
    """The best CNN (``model.safetensors``, trained on split 0), each autoencoder and the SimCLR encoder.

    Returns the (file, model, meta) to write and the ``saved`` table of the metrics.
    """
    h, w = (int(s) for s in data.labelled.shape[1:])
    common = {
        "class_names": list(data.class_names[: data.n_classes]),
        "normalisation": "uint8 pixels / 255 -> [0, 1]; float pixels in [0, 1] kept (replearn.data.to_tensor)",
        "input_size": [h, w],
        "synthetic": bool(data.synthetic),
        "data_source": data.source,
        "seed": seed,
        "replearn_version": replearn.__version__,
        **reference_meta(data.labelled, data.unlabelled, seed=seed),  # for the domain-shift check of predict/embed
    }
    files: list[tuple[str, nn.Module, dict[str, Any]]] = []
    saved: dict[str, Any] = {"cnn": None, "autoencoders": {}, "ssl": {}}
    best = best_of({n: r.scores for n, r in cnn.items()})
    if best is not None:
        rec = cnn[best]
        files.append(("model.safetensors", rec.model, {
            **common, "task": "classifier", "grid_point": best, "params": rec.point.params(),
            "trained_on": "split 0 of the run (seed = --seed): its training crops",
            "val_accuracy_split0": rec.scores.accuracy[0]}))
        saved["cnn"] = {"name": best, "weights": "model.safetensors"}
    for name, m in ae.models.items():
        file = f"autoencoder-d{m.code_dim}.safetensors"
        files.append((file, m.estimator.model_.cpu(), {
            **common, "task": "autoencoder", "code_dim": m.code_dim, "blocks": config["autoencoder"]["blocks"],
            "trained_on": "the unlabelled crops; the labelled crops were its validation set"}))
        saved["autoencoders"][name] = file
    for name, m in ssl.models.items():
        file = f"{name.lower()}-encoder.safetensors"
        files.append((file, m.estimator.encoder_.cpu(), {
            **common, "task": "encoder", "method": name, "feature_dim": m.feature_dim, "ssl": config["ssl"],
            "trained_on": "the unlabelled crops, without labels"}))
        saved["ssl"][name] = file
    return files, saved
