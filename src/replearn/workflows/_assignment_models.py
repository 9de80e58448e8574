"""The assignment's data and models: the crops and their splits, (a) the CNN grid, (b) the autoencoders,
(b+) the SimCLR encoder and (c) the simple classifiers on the codes, each result a typed record.

Every classifier, CNN, probe or baseline, is scored through :mod:`replearn.evaluate.protocol` on the same
splits (the course's 300/100 for 400 crops, repeated stratified K-fold otherwise; training seed = ``seed`` +
split number), so the comparisons are paired; each is also scored inside each split's training part
(``inner=True``) so that the recommended model is chosen without the split's validation crops. Every
classifier predicts with test-time augmentation over the 8 symmetries of the square.

Resume: every CNN fit and probe fit (a grid point or probe on one split, or on its inner split) is a unit
of :class:`~replearn.utils.units.UnitStore`, kept in the run folder as it finishes and loaded, not redone,
by ``--resume``; the autoencoders and SimCLR continue from their per-epoch checkpoints.
"""

from __future__ import annotations

import functools
import hashlib
import random
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from sklearn.decomposition import PCA
from sklearn.exceptions import ConvergenceWarning
from torch import nn

import replearn
from replearn.data import AssignmentData, load_assignment, repeated_stratified_splits, synthetic_aureus, to_tensor
from replearn.data.cell_augment import CellAugment
from replearn.data.synthetic import source_preset
from replearn.encoders import (AutoEncoderEmbedding, CNNClassifier, ContrastiveEmbedding, FineTunedClassifier,
                               SemiSupervisedClassifier, pretrained_encoder)
from replearn.encoders.semi_supervised_classifier import _CNN_PARAMS
from replearn.errors import ReplearnError
from replearn.evaluate import reconstruction_errors
from replearn.evaluate.baselines import BASELINES, hog_features
from replearn.evaluate.domain_shift import reference_meta
from replearn.evaluate.probes import PROBE_TITLES, create_probe, fit_predict_views, majority
from replearn.evaluate.protocol import (Protocol, Scores, Split, choose_protocol, evaluate_on_splits, mean_history,
                                        planned_fits)
from replearn.evaluate.tta import d4_views, tta_average
from replearn.models import count_params
from replearn.train import bf16_enabled
from replearn.train.checkpoint import continues, stage_dir
from replearn.utils.parallel import Workers, run_units
from replearn.utils.units import Unit, UnitStore
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
    models: list[nn.Module] = field(default_factory=list)
    """The models of the first splits (one repeat of the folds): the fold ensemble that is saved."""

    @property
    def model(self) -> nn.Module | None:
        """The model of split 0."""
        return self.models[0] if self.models else None

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
    seen: dict[str, int] = field(default_factory=dict)

    def metrics(self) -> dict[str, Any]:
        return {"code_dim": self.code_dim, "n_params": self.n_params, "epochs": len(self.history.get("loss", [])),
                "seen": self.seen,
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
    seen: dict[str, int] = field(default_factory=dict)

    def metrics(self) -> dict[str, Any]:
        return {"feature_dim": self.feature_dim, "n_params": self.n_params, "seen": self.seen,
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
    """Codes of the labelled crops and of their 8 symmetric versions, one (8, N, D) array per split.

    ``kind`` says where they come from: "autoencoder", "ssl", "pca", "pixels" or "hog".
    """

    name: str
    kind: str
    views: list[np.ndarray]
    dim: int | None = None  # the code size of autoencoder and PCA codes

    @property
    def codes(self) -> list[np.ndarray]:
        """The codes (N, D) of the crops as given, one array per split."""
        return [v[0] for v in self.views]


@dataclass
class ProbeResult:
    """One simple classifier on one representation, scored on every split."""

    probe: str
    representation: str
    kind: str
    dim: int | None = None
    scores: Scores = field(default_factory=Scores)
    baseline: bool = False

    def metrics(self) -> dict[str, Any]:
        return {"representation": self.representation, "probe": self.probe, "baseline": self.baseline,
                **self.scores.summary()}


# =============================================================================================
# Prepare the data
# =============================================================================================
def prepare(cfg: Any, unlabelled: bool = True) -> tuple[AssignmentData, Protocol]:
    """The crops and their protocol, after every check that needs the data (sizes, the spec network, the splits).

    ``cfg`` is the assignment's Config; ``unlabelled=False`` leaves the synthetic unlabelled crops out
    (what the checks need, fast).
    """
    config = cfg.tables()
    data = prepare_data(config, cfg.data_file, cfg.seed, cfg.quick, unlabelled)
    h, w = data.labelled.shape[1:]
    grid.check_sizes(h, w, data.source, config)
    grid.check_spec(config, (1, h, w), data.n_classes, cfg.config)
    return data, make_protocol(data, config, cfg.seed, cfg.cv)


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


def make_protocol(data: AssignmentData, config: dict[str, Any], seed: int, cv: int = 0) -> Protocol:
    """The splits of the labelled crops (same for every model): see :func:`~replearn.evaluate.protocol.choose_protocol`."""
    d = config["data"]
    try:
        return choose_protocol(data.labels, d["n_val"], d["repeats"], d["folds"], cv, seed, d["cv_repeats"])
    except ReplearnError as exc:
        raise ReplearnError(f"{data.source}: {exc}") from None


def unit_store(cfg: Any, out: Any, resume: bool, device: str) -> UnitStore:
    """The store of the run's finished CNN and probe fits in ``out`` (None: kept nowhere); ``resume`` loads them.

    Its fingerprint is everything they depend on: the grid config, seed, ``--cv``, device, ``--threads`` (the
    numbers change slightly with it) and the data file's bytes; fits stored under another one are redone.
    """
    digest = None
    if cfg.data_file is not None:
        with open(cfg.data_file, "rb") as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
    return UnitStore(out, resume, fingerprint={"config": cfg.tables(), "seed": cfg.seed, "cv": cfg.cv,
                                               "device": device, "data_sha256": digest, "data": cfg.data_file,
                                               "threads": cfg.workers().unit_threads()})


def say_data(data: AssignmentData, protocol: Protocol) -> None:
    """Print what is used, shapes included; synthetic data says so."""
    kind = "SYNTHETIC crops (not the course's data)" if data.synthetic else "crops"
    counts = np.bincount(data.labels, minlength=data.n_classes)
    print(f"Data: {kind} from {data.source}")
    print(f"  labelled {data.labelled.shape} {data.labelled.dtype}, per class {counts.tolist()}; "
          f"unlabelled {data.unlabelled.shape}")
    print(f"  protocol: {protocol.describe()}, about {len(protocol.splits[0][0])} train / "
          f"{len(protocol.splits[0][1])} validation crops per split")
    if protocol.note:
        print(f"  Note: {protocol.note}")


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
        device=device, pretrain=None if point.pretrain == "none" else point.pretrain, pretrain_n=c["pretrain_n"],
        pretrain_epochs=c["pretrain_epochs"],
    )


def grid_estimator(point: grid.CnnPoint, config: dict[str, Any], n_classes: int, seed: int, device: str,
                   augment: CellAugment | None, unlabelled: torch.Tensor | None = None,
                   encoder: nn.Module | None = None) -> CNNClassifier:
    """The classifier of a grid point of any ``method``: :func:`cnn_estimator`'s for ``cnn``; for ``semisup`` the
    same network and training settings plus the ``unlabelled`` crops (N, 1, H, W), FixMatch-style with the cell
    views; for ``simclr_ft`` the SimCLR ``encoder`` + a new head, fine-tuned with a lower rate for the encoder.

    Semi-supervised runs take as many steps per epoch as the supervised CNN (one pass over the labelled crops),
    each with ``[semisup] ratio`` times as many unlabelled crops, for ``[semisup] steps_scale`` times its epochs.
    """
    base = cnn_estimator(point, config, n_classes, seed, device, augment)
    if point.method == "cnn":
        return base
    s = config["semisup"]
    params = {k: v for k, v in base.get_params().items() if k in _CNN_PARAMS}
    if point.method == "semisup" or s["fine_tune_unlabelled"]:  # the fits that see the unlabelled crops
        params["epochs"] = params["epochs"] * int(s["steps_scale"])
    semi = dict(threshold=s["threshold"], ratio=int(s["ratio"]), unlabelled_weight=s["weight"], strength=s["strength"],
                views="cells", ema=s["ema"], align=s["align"], steps_per_epoch=1)  # 1: no repeats, the CNN's steps
    if point.method == "semisup":
        return SemiSupervisedClassifier(**params, unlabelled=unlabelled, **semi)
    params = {k: v for k, v in params.items() if k not in ("network", "network_params")}
    return FineTunedClassifier(**params, **semi, unlabelled=unlabelled if s["fine_tune_unlabelled"] else None,
                               encoder=encoder, encoder_lr_scale=s["encoder_lr_scale"],
                               head_hidden=config["cnn"]["dense"])


def _network(point: grid.CnnPoint, config: dict[str, Any], n_classes: int, shape: tuple[int, ...],
             state: dict[str, torch.Tensor]) -> nn.Module:
    """The grid point's network (CPU) for crops of ``shape`` (1, H, W) holding the weights ``state``.

    Building it draws no number from the random generators a later fit or probe may use.
    """
    est = cnn_estimator(point, config, n_classes, 0, "cpu", None)
    python_state, numpy_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        model = est._build(tuple(int(s) for s in shape), n_classes)
    random.setstate(python_state)
    np.random.set_state(numpy_state)
    model.load_state_dict(state)
    return model.eval()


def ensemble_size(protocol: Protocol) -> int:
    """How many split models form the saved fold ensemble: one repeat's folds, or up to 5 holdout splits."""
    return protocol.folds if protocol.kind == "cv" else min(len(protocol.splits), 5)


def _train_cnn(point: grid.CnnPoint, config: dict[str, Any], n_classes: int, seed: int, device: str,
               augment: CellAugment, x: torch.Tensor, y: torch.Tensor, tr: np.ndarray, va: np.ndarray,
               outer: bool, keep_model: bool, unlabelled: torch.Tensor | None = None,
               encoder: nn.Module | None = None) -> Unit:
    """One CNN unit: grid point ``point`` trained on crops ``x[tr]`` (N, 1, H, W), seeded by ``seed`` (seed + split)
    alone; its predictions of ``x[va]``, its history (``outer``: with validation), with ``keep_model`` its weights.
    ``unlabelled`` and ``encoder``: for ``semisup`` and ``simclr_ft`` points (:func:`grid_estimator`)."""
    t = time.perf_counter()
    clf = grid_estimator(point, config, n_classes, seed, device, augment, unlabelled, encoder)
    clf.fit(x[tr], y[tr], validation_data=(x[va], y[va]) if outer else None)
    scores = tta_average(clf.predict_proba, x[va]) if config["cnn"]["tta"] else clf.predict_proba(x[va])
    keys = ("loss", "accuracy", "val_loss", "val_accuracy") if outer else ()
    history = {k: clf.history_[k] for k in keys}
    record = {"history": history, "seconds": time.perf_counter() - t, "n_params": count_params(clf.model_)[0]}
    return Unit(record=record,
                arrays={"predicted": np.asarray(clf.classes_[scores.argmax(axis=1)], dtype=np.int64)},
                state=clf.model_.state_dict() if keep_model else {})


def _cnn_key(point: grid.CnnPoint, r: int, outer: bool, n_train: int) -> dict[str, Any]:
    return {"part": "cnn", "point": point.name, "split": r, "inner": not outer, "n_train": n_train}


def train_cnn_grid(data: AssignmentData, protocol: Protocol, points: list[grid.CnnPoint], config: dict[str, Any],
                   seed: int, device: str, progress: bool, store: UnitStore | None = None,
                   workers: Workers | None = None, ssl: Stage | None = None) -> dict[str, CnnResult]:
    """Train every grid point on every split (and on its inner split); score the final-epoch model.

    ``semisup`` points also train on the unlabelled crops (those the autoencoders see, :func:`pretraining_crops`;
    never a split's validation crops); ``simclr_ft`` points fine-tune the encoder of ``ssl`` (their models are
    scored but not kept: ``replearn predict`` rebuilds small_cnn networks only).

    The final epoch is scored (no best-epoch picking on the validation set, which would flatter), with
    test-time augmentation over the 8 symmetries when ``[cnn] tta``. The models of the first
    :func:`ensemble_size` splits are kept (the fold ensemble). Each fit is a unit of ``store`` (its
    predictions, history, and the weights of an ensemble member): finished ones are loaded, not redone;
    the others run first, in parallel on ``workers`` (default: here, one after another).
    """
    store = store or UnitStore(None)
    workers = workers or Workers(progress=progress)
    x, y = to_tensor(data.labelled), torch.from_numpy(data.labels)
    augment = CellAugment(**config["augment"])
    keep = ensemble_size(protocol)
    splits = protocol.splits
    methods = {p.method for p in points}
    needs = "semisup" in methods or ("simclr_ft" in methods and config["semisup"]["fine_tune_unlabelled"])
    unlabelled = to_tensor(pretraining_crops(data, config, seed)[0]) if needs else None
    if "simclr_ft" in methods and (ssl is None or "SimCLR" not in ssl.models):
        raise ReplearnError("[cnn] method 'simclr_ft' needs the SimCLR encoder, which was not trained"
                            + (f" ({ssl.skipped})" if ssl is not None and ssl.skipped else ""))
    encoder = pretrained_encoder(ssl.models["SimCLR"].estimator) if "simclr_ft" in methods else None

    def train(point: grid.CnnPoint, tr: np.ndarray, va: np.ndarray, r: int, outer: bool) -> Any:
        keep_model = outer and r < keep and point.method != "simclr_ft"  # predict rebuilds small_cnn networks only
        return functools.partial(_train_cnn, point, config, data.n_classes, seed + r, device, augment, x, y, tr, va,
                                 outer, keep_model, unlabelled, encoder)

    plan = [(_cnn_key(p, r, not inner, len(tr)), train(p, tr, va, r, not inner))
            for p in points for r, tr, va, inner in planned_fits(data.labels, splits, inner=True, seed=seed)]
    run_units(store, plan, workers, desc="(a) CNN grid", unit="fit")
    out: dict[str, CnnResult] = {}
    for point in points:
        rec = out[point.name] = CnnResult(point)
        kept = point.method != "simclr_ft"  # its EncoderHead is not a small_cnn that predict can rebuild

        def fit_predict(tr: np.ndarray, va: np.ndarray, r: int, rec: CnnResult = rec, kept: bool = kept) -> np.ndarray:
            outer = len(tr) + len(va) == len(y) and len(rec.histories) == r  # the split itself, not its inner part
            unit = store.unit(_cnn_key(rec.point, r, outer, len(tr)), train(rec.point, tr, va, r, outer))
            if outer:
                rec.histories.append(unit.record["history"])
                rec.seconds.append(unit.record["seconds"])
                rec.n_params = unit.record["n_params"]
                if r < keep and kept:
                    rec.models.append(_network(rec.point, config, data.n_classes, x.shape[1:], unit.state))
            return unit.arrays["predicted"]

        rec.scores = evaluate_on_splits(fit_predict, data.labels, splits, data.n_classes, inner=True, seed=seed)
    return out


# =============================================================================================
# (b) The autoencoder(s) on the unlabelled crops, validated on the labelled ones; (b+) SimCLR
# =============================================================================================
def pretraining_crops(data: AssignmentData, config: dict[str, Any], seed: int) -> tuple[np.ndarray, dict[str, int], str]:
    """The crops the autoencoders and SimCLR train on: the unlabelled ones, plus generated ones when they are few.

    With fewer than ``[pretrain] min_unlabelled`` unlabelled crops, ``[pretrain] generated`` SYNTHETIC crops
    of the ``[pretrain] preset`` (for SYNTHETIC data, the preset it was made with) are added, labels discarded.
    Returns the crops (M, H, W) uint8 or float, the counts {"unlabelled", "generated"} and a sentence.
    """
    pre = config["pretrain"]
    unl = data.unlabelled
    n_gen = pre["generated"] if len(unl) < pre["min_unlabelled"] else 0
    seen = {"unlabelled": int(len(unl)), "generated": int(n_gen)}
    if not n_gen:
        return unl, seen, f"the {len(unl)} unlabelled crops"
    preset = (source_preset(data.source) if data.synthetic else None) or pre["preset"]  # SYNTHETIC: its own preset
    h = data.labelled.shape[1]
    gen = synthetic_aureus(0, n_gen, seed=seed + 7919, preset=preset, size=h).unlabelled
    if data.labelled.dtype != np.uint8:
        gen = gen.astype(np.float32) / 255.0
    if not len(unl):
        return gen, seen, (f"{n_gen} SYNTHETIC crops generated with the {preset!r} preset "
                           "(the data has no unlabelled crops)")
    return np.concatenate([unl.astype(gen.dtype), gen]), seen, (
        f"the {len(unl)} unlabelled crops plus {n_gen} SYNTHETIC crops generated with the {preset!r} preset "
        f"(fewer than {pre['min_unlabelled']} unlabelled crops were given)")


def train_autoencoders(data: AssignmentData, config: dict[str, Any], seed: int, device: str, progress: bool,
                       out: Any = None, resume: bool = False) -> Stage:
    """One conv autoencoder per bottleneck size; skipped when there is nothing to pretrain on.

    Each checkpoints every epoch in ``out`` (stage ``autoencoder-d<k>``); ``resume`` continues from there.
    """
    a = config["autoencoder"]
    crops, seen, what = pretraining_crops(data, config, seed)
    if len(crops) == 0:
        note = "the data has no unlabelled crops, so part (b) (the autoencoder) was skipped; the probes run on raw pixels and PCA"
        print(f"Note: {note}")
        return Stage(skipped=note)
    stage = Stage()
    for dim in grid.code_dims(config):
        t = time.perf_counter()
        print(f"(b) autoencoder with a {dim}-D code on {what}")
        ae = AutoEncoderEmbedding(
            code_dim=dim, blocks=[tuple(b) for b in a["blocks"]], epochs=a["epochs"], batch_size=a["batch_size"],
            lr=a["lr"], loss=a["loss"], bf16=bf16_enabled(a["bf16"], torch.device(device).type),
            channels_last=a["channels_last"], seed=seed, device=device, progress=progress,
            validation_data=data.labelled,
        ).fit(crops, checkpoint_dir=(ckpt := stage_dir(out, f"autoencoder-d{dim}")), resume=continues(ckpt, resume))
        labelled = to_tensor(data.labelled)[:, 0].numpy()
        recon = ae.reconstruct(data.labelled)
        stage.models[f"AE-{dim}"] = Autoencoder(
            f"AE-{dim}", dim, ae, codes=ae.transform(data.labelled), recon=recon,
            errors=reconstruction_errors(labelled, recon), history=ae.history_, seconds=time.perf_counter() - t,
            n_params=count_params(ae.model_)[0], seen=seen)
    return stage


def train_ssl(data: AssignmentData, config: dict[str, Any], seed: int, device: str, progress: bool,
              out: Any = None, resume: bool = False) -> Stage:
    """Beyond the lecture: a SimCLR encoder on the pretraining crops; skipped when off or impossible.

    It checkpoints every epoch in ``out`` (stage ``simclr``); ``resume`` continues from there.
    """
    s = config["ssl"]
    if s["epochs"] == 0:
        return Stage(skipped="[ssl] epochs = 0")
    crops, seen, what = pretraining_crops(data, config, seed)
    if len(crops) < 2:
        return Stage(skipped="the data has fewer than 2 unlabelled crops, so SimCLR pretraining was skipped")
    t = time.perf_counter()
    print(f"(b+) SimCLR self-supervised pretraining on {what}")
    est = ContrastiveEmbedding(
        depth=s["depth"], width=s["width"], epochs=s["epochs"], batch_size=s["batch_size"], lr=s["lr"],
        temperature=s["temperature"], proj_dim=s["proj_dim"], shift=s["shift"],
        bf16=bf16_enabled(s["bf16"], torch.device(device).type), channels_last=s["channels_last"], seed=seed,
        device=device, progress=progress,
    ).fit(crops, checkpoint_dir=(ckpt := stage_dir(out, "simclr")), resume=continues(ckpt, resume))
    model = Pretrained("SimCLR", est, features=est.transform(data.labelled), history=est.history_,
                       seconds=time.perf_counter() - t, n_params=count_params(est.encoder_)[0],
                       feature_dim=est.feature_dim_, seen=seen)
    return Stage(models={"SimCLR": model})


# =============================================================================================
# (c) Simple classifiers on the codes, and the baselines
# =============================================================================================
def _views(encode: Any, images: np.ndarray) -> np.ndarray:
    """(8, N, D) codes of the 8 symmetric versions of images (N, H, W) (identity first)."""
    return np.stack([np.asarray(encode(v), dtype=np.float32).reshape(len(images), -1) for v in d4_views(images)])


def _flat(model: Any) -> Any:
    """``model.transform`` of crops (N, H, W) as rows of pixels."""
    return lambda images: model.transform(images.reshape(len(images), -1))


def build_representations(data: AssignmentData, ae: Stage, ssl: Stage, config: dict[str, Any], splits: list[Split],
                          seed: int) -> list[Representation]:
    """The codes of the labelled crops (and of their 8 symmetric versions) that the probes and baselines use.

    The autoencoder codes, the SimCLR features and PCA fitted on the unlabelled crops do not depend on
    the split (no labels used); without unlabelled crops, PCA is fitted on each split's training crops.
    Raw pixels and HOG features (the baselines') are always there.
    """
    images = to_tensor(data.labelled)[:, 0].numpy()
    n = len(splits)
    raw = _views(lambda v: v, images)
    reps = [Representation(f"{m.name} codes", "autoencoder", [_views(m.estimator.transform, images)] * n, m.code_dim)
            for m in ae.models.values()]
    reps += [Representation(f"{m.name} features", "ssl", [_views(m.estimator.transform, images)] * n)
             for m in ssl.models.values()]
    if config["probes"]["pca"]:
        unl = pixels(data.unlabelled) if len(data.unlabelled) else None
        for dim in grid.code_dims(config):
            if unl is not None and dim < min(unl.shape):
                pca = PCA(n_components=dim, random_state=seed).fit(unl)
                reps.append(Representation(f"PCA-{dim}", "pca", [_views(_flat(pca), images)] * n, dim))
            elif unl is None:
                per = []
                for tr, _ in splits:
                    if dim >= min(len(tr), raw.shape[2]):
                        break
                    per.append(_views(_flat(PCA(n_components=dim, random_state=seed).fit(raw[0, tr])), images))
                if len(per) == n:
                    reps.append(Representation(f"PCA-{dim}", "pca", per, dim))
    reps.append(Representation("raw pixels", "pixels", [raw] * n))
    reps.append(Representation("HOG features", "hog", [_views(hog_features, images)] * n))
    return reps


def _fit_probe(name: str, config: dict[str, Any], seed: int, views: np.ndarray, labels: np.ndarray, tr: np.ndarray,
               va: np.ndarray, d4_train: bool, tta: bool) -> Unit:
    """One probe unit: probe ``name`` (seeded by ``seed`` = seed + split alone) on codes ``views`` (8, N, D) of ``tr``;
    its predictions of ``va`` and how many ConvergenceWarnings it raised."""
    probe = majority() if name == "majority" else create_probe(name, seed, **grid.probe_params(config, name))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        predicted = fit_predict_views(probe, views, labels, tr, va, d4_train, tta)
    return Unit(record={"warned": sum(issubclass(w.category, ConvergenceWarning) for w in caught)},
                arrays={"predicted": np.asarray(predicted)})


def run_probes(data: AssignmentData, splits: list[Split], reps: list[Representation], config: dict[str, Any],
               seed: int, progress: bool, store: UnitStore | None = None,
               workers: Workers | None = None) -> tuple[dict[str, ProbeResult], int]:
    """The baselines, then every probe on every learned representation (and on raw pixels with
    ``[probes] raw_pixels``), through the protocol with inner scores; also the number of ConvergenceWarnings.

    Each probe fit on a split (or its inner split) is a unit of ``store``: finished ones are loaded, not redone;
    the others run first, in parallel on ``workers`` (default: here, one after another).
    """
    store = store or UnitStore(None)
    workers = workers or Workers(progress=progress)
    names, tta = config["probes"]["names"], config["probes"]["tta"]
    by_name = {r.name: r for r in reps}
    jobs: list[tuple[str, str, Representation, bool, bool]] = [
        (b.title, b.probe, by_name[b.representation], b.d4_train, True) for b in BASELINES]
    taken = {(b.probe, b.representation) for b in BASELINES if not b.d4_train}
    for rep in reps:
        if rep.kind == "hog" or (rep.kind == "pixels" and not config["probes"]["raw_pixels"]):
            continue
        jobs += [(f"{PROBE_TITLES[n]} on {rep.name}", n, rep, False, False) for n in names if (n, rep.name) not in taken]

    def key(title: str, r: int, tr: np.ndarray, inner: bool) -> dict[str, Any]:
        return {"part": "probe", "name": title, "split": r, "inner": inner, "n_train": len(tr)}

    def train(name: str, rep: Representation, d4_train: bool, tr: np.ndarray, va: np.ndarray, r: int) -> Any:
        return functools.partial(_fit_probe, name, config, seed + r, rep.views[r],
                                 data.labels, tr, va, d4_train, tta)

    plan = [(key(title, r, tr, inner), train(name, rep, d4, tr, va, r)) for title, name, rep, d4, _ in jobs
            for r, tr, va, inner in planned_fits(data.labels, splits, inner=True, seed=seed)]
    run_units(store, plan, workers, desc="(c) probes and baselines", unit="fit")
    results: dict[str, ProbeResult] = {}
    warned = [0]
    for title, name, rep, d4_train, baseline in jobs:
        def fit_predict(tr: np.ndarray, va: np.ndarray, r: int, rep: Representation = rep, name: str = name,
                        d4_train: bool = d4_train, title: str = title) -> np.ndarray:
            inner = len(tr) + len(va) < len(data.labels)
            unit = store.unit(key(title, r, tr, inner), train(name, rep, d4_train, tr, va, r))
            warned[0] += unit.record["warned"]
            return unit.arrays["predicted"]

        scores = evaluate_on_splits(fit_predict, data.labels, splits, data.n_classes, inner=True, seed=seed)
        representation = rep.name + (" + D4 copies" if d4_train else "")
        results[title] = ProbeResult(name, representation, rep.kind, rep.dim, scores, baseline)
    return results, warned[0]


# =============================================================================================
# The models to save
# =============================================================================================
def saved_models(data: AssignmentData, cnn: dict[str, CnnResult], best: str | None, ae: Stage, ssl: Stage,
                 config: dict[str, Any], seed: int) -> tuple[list[tuple[str, nn.Module, dict[str, Any]]], dict[str, Any]]:
    """The CNN chosen by nested selection as a fold ensemble (``model.safetensors`` = the model of split 0,
    ``model-fold<k>.safetensors`` the others), each autoencoder and the SimCLR encoder.

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
    if best is not None:
        rec = cnn[best]
        members = ["model.safetensors"] + [f"model-fold{k + 1}.safetensors" for k in range(1, len(rec.models))]
        for k, (file, model) in enumerate(zip(members, rec.models)):
            files.append((file, model, {
                **common, "task": "classifier", "grid_point": best, "params": rec.point.params(),
                "trained_on": f"split {k} of the run (seed = --seed): its training crops",
                "val_accuracy_split": rec.scores.accuracy[k], "split": k,
                "ensemble": members, "tta": "d4" if config["cnn"]["tta"] else "none"}))
        saved["cnn"] = {"name": best, "weights": "model.safetensors", "ensemble": members}
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
