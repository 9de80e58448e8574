"""The assignment's experiment grid: defaults, TOML loading, checks and expansion into grid points.

A grid config is a TOML file whose tables and keys are those of
:data:`DEFAULTS` (every key optional; see ``configs/grid.toml``). Keys whose
default is a list of values (``cnn.depth``, ``cnn.width``, ``cnn.dropout``,
``cnn.augment``, ``autoencoder.code_dim``) are grid axes: the CNN grid is their
product, and one autoencoder is trained per ``code_dim``. Every grid point is
trained once per repeat (a seeded stratified split with its own training seed).

Resolution happens once: :data:`DEFAULTS`, then the file, then ``--quick``
(:func:`apply_quick`); the command line does it through the workflow harness (one
Config field per table, checked by ``Config.check``), :func:`load_grid` for a file
alone. An unknown key fails with a did-you-mean suggestion
(:func:`replearn.config.merge`), and every value is checked here, so a bad
config stops the run before any work starts; :func:`check_sizes` and
:func:`check_spec` check it against the crops.
"""

from __future__ import annotations

import copy
import itertools
import math
import os
from dataclasses import dataclass
from typing import Any

from replearn.config import merge, resolve
from replearn.data.synthetic import PRESETS as SYNTHETIC_PRESETS
from replearn.errors import ReplearnError
from replearn.evaluate.probes import PROBE_PARAMS, check_probe_name
from replearn.models import LECTURE_AE_BLOCKS
from replearn.train.config import OPTIMIZERS

DEFAULTS: dict[str, Any] = {
    "data": {
        "n_val": 100,  # validation images per split (the assignment: 300 train / 100 validation)
        "repeats": 5,  # stratified splits, each with its own training seed; 100 images give about +-5 %
        # any size but the course's 400 crops (or --cv K): repeated stratified K-fold cross-validation
        "folds": 5,  # K; fewer (with a note) when a stage has fewer crops, never below 3
        "cv_repeats": 1,  # repeats of the K-fold shuffle: every crop is predicted once per repeat
        "n_labelled": 400,  # size of the built-in synthetic data (ignored with --data)
        "n_unlabelled": 3892,
        "preset": "sim",  # synthetic image model: "sim" (super-resolution), "widefield" or "widefield-septa"
    },
    "cnn": {
        # grid axes (lists): every combination is a grid point
        # depth 4 turns 40x40 crops into 2x2 maps before the global pooling: a receptive field that covers a cell of
        # 20-35 px (depths 2 and 3 scored at chance on real and widefield-like crops; docs/assignment.md)
        "depth": [4],  # conv blocks (conv-ReLU-BN, 2x2 max-pool), widths doubling
        "width": [16],  # filters of the first block
        "dropout": [0.25],  # dropout before and after the dense layer
        "augment": [True],  # train with [augment] (flips, 90-degree turns, intensity) or without ([true, false])
        # sim-to-real: "none", or first train on pretrain_n generated crops of a preset ("sim", "widefield", ...)
        "pretrain": ["none", "widefield"],
        # "cnn": supervised on the labelled crops; "semisup": the same network trained FixMatch-style on the labelled
        # crops plus the unlabelled ones ([semisup]); "simclr_ft": the (b+) SimCLR encoder + a new head, fine-tuned
        # (both beyond the lecture, off by default: each costs several supervised points; docs/fewlabels.md)
        "method": ["cnn"],
        # fixed for every point
        "dense": 64,  # units of the hidden dense layer
        "spec": [],  # optional layer spec replacing small_cnn (depth/width/dropout unused), e.g. ["conv 16", ...]
        "epochs": 90,  # 30 left the CNNs short of their accuracy (widefield-169: 0.69 -> 0.81; docs/assignment.md)
        "batch_size": 16,  # 32 until session 15: 16 gives twice the steps for the same time (+0.02 at 169 crops)
        "optimizer": "adam",
        "lr": 0.003,
        "weight_decay": 0.0001,
        "schedule": "onecycle",  # "onecycle", "cosine" or "none"
        "bf16": "auto",  # bfloat16 autocast: "auto" (where the hardware has native bf16), "on" or "off"
        "channels_last": True,  # channels-last memory format (faster convolutions on CPUs)
        "tta": True,  # predict by averaging over the 8 symmetries of the square (test-time augmentation)
        "pretrain_n": 1000,  # generated labelled crops of grid points with a pretrain preset
        "pretrain_epochs": 3,
    },
    "semisup": {
        # the "semisup" and "simclr_ft" methods of [cnn] method (replearn.encoders.SemiSupervisedClassifier)
        "threshold": 0.95,  # confidence a weak view's prediction needs to become a pseudo-label
        "ratio": 7,  # unlabelled crops per labelled crop in a step (FixMatch's mu)
        "strength": 0.5,  # 0..1: magnitude of the strong view (symmetries, gain/offset, shifts, pixel noise)
        "weight": 1.0,  # weight of the unlabelled loss
        "ema": 0.0,  # > 0: predict with an exponential moving average of the weights (FixMatch: 0.999)
        "align": True,  # distribution alignment of the pseudo-labels towards the labelled crops' class shares
        # a semi-supervised fit takes this many times the supervised CNN's steps (2: ahead of the CNN on both presets
        # by more than the interval; 1 was level on widefield; docs/fewlabels.md, session 17)
        "steps_scale": 2,
        "encoder_lr_scale": 0.1,  # simclr_ft: the encoder's learning rate as a fraction of [cnn] lr
        "fine_tune_unlabelled": False,  # simclr_ft: FixMatch-style on top (true) or plain fine-tuning (false)
    },
    "augment": {
        "flips": True,  # random mirror flips
        "rot90": True,  # random multiples of 90 degrees (square crops)
        "scale": 0.1,  # brightness gain in [1 - scale, 1 + scale]
        "offset": 0.05,  # brightness offset in [-offset, offset]
    },
    "autoencoder": {
        "code_dim": [16, 2],  # grid axis: bottleneck sizes (2 also gives a direct 2-D view)
        "blocks": [list(b) for b in LECTURE_AE_BLOCKS],  # encoder conv widths per pooling block
        "epochs": 20,  # the validation loss is flat after about 20 epochs on the built-in data
        "batch_size": 128,
        "lr": 0.003,
        "loss": "bce",  # "bce" (as the lecture) or "mse"
        "bf16": "auto",  # "auto": on where the CPU/GPU has native bfloat16 (about 2x faster), else off
        "channels_last": True,
    },
    "ssl": {
        # beyond the lecture: a small CNN pretrained with SimCLR (contrastive, self-supervised) on the
        # unlabelled crops; the simple classifiers of (c) also run on its features
        "epochs": 30,  # 0 skips it
        "depth": 3,  # encoder: small_cnn blocks up to global average pooling (features of width * 2**(depth-1))
        "width": 16,
        "batch_size": 256,  # images per step; each has two views, the other 2N - 2 views are its negatives
        "lr": 0.003,
        "temperature": 0.5,  # NT-Xent temperature (0.5 beat 0.2 and 1.0 on the synthetic crops)
        "proj_dim": 32,  # projection head output (dropped after training)
        "shift": 3,  # views: a random symmetry of the square, brightness (gain +-0.2, offset +-0.1), shift <= shift px
        "bf16": "auto",
        "channels_last": True,
    },
    "pretrain": {
        # the autoencoders and SimCLR need many crops: with fewer unlabelled crops than min_unlabelled,
        # `generated` SYNTHETIC crops of `preset` are added to them (SYNTHETIC data: the preset it was made with)
        "min_unlabelled": 1000,
        "generated": 1000,
        "preset": "widefield",
    },
    "probes": {
        "names": ["logreg", "linear_svm", "rbf_svm", "knn", "mlp"],
        "raw_pixels": True,  # baseline: the same probes on the raw pixels
        "pca": True,  # baseline: PCA codes of the same sizes as the autoencoder codes
        "C": 0.0,  # > 0: C of logreg/linear_svm/rbf_svm (0 keeps each probe's default)
        "k": 5,  # neighbours of knn
        "hidden": 64,  # hidden units of mlp
        "tta": True,  # predict by averaging the class scores over the 8 symmetries of each crop
    },
    "report": {
        "embedding": "tsne",  # 2-D view of the codes: "tsne", "isomap" or "pca"
    },
}
"""Every key a grid config may set, with its default."""

QUICK: dict[str, Any] = {"n_labelled": 120, "n_unlabelled": 300, "repeats": 2, "cnn_epochs": 10, "ae_epochs": 3,
                         "ssl_epochs": 3, "folds": 3, "cv_repeats": 1, "generated": 300,
                         "pretrain_n": 120, "pretrain_epochs": 1}
"""``--quick``: smaller data, 2 repeats, few epochs, each grid axis cut to its first value (``augment`` kept);
``n_val`` shrinks in proportion to ``n_labelled`` (at least 3) and never grows."""

BF16_CHOICES = ("auto", "on", "off")

GRID_AXES = {"cnn": ("depth", "width", "dropout", "augment", "pretrain", "method"), "autoencoder": ("code_dim",)}
PRETRAIN_CHOICES = ("none", *sorted(SYNTHETIC_PRESETS))
METHOD_CHOICES = ("cnn", "semisup", "simclr_ft")
METHOD_TAGS = {"cnn": "cnn", "semisup": "semisup", "simclr_ft": "simclr_ft"}


@dataclass(frozen=True)
class CnnPoint:
    """One CNN of the grid: small_cnn(depth, width, dropout) (or the config's spec), with or without augmentation."""

    depth: int
    width: int
    dropout: float
    augment: bool
    spec: tuple[str, ...] = ()
    pretrain: str = "none"
    method: str = "cnn"

    @property
    def name(self) -> str:
        """Short unique name, e.g. ``cnn d3 w16 p0.25 +aug`` (``+sim2real widefield``: pretrained on generated crops;
        ``semisup d3 w16 p0.25 +aug``: semi-supervised; ``simclr_ft +aug``: the SimCLR encoder fine-tuned)."""
        if self.method == "simclr_ft":
            return "simclr_ft" + (" +aug" if self.augment else "")
        tag = METHOD_TAGS[self.method]
        base = f"{tag} spec" if self.spec else f"{tag} d{self.depth} w{self.width} p{self.dropout:g}"
        pre = f" +sim2real {self.pretrain}" if self.pretrain != "none" else ""
        return base + (" +aug" if self.augment else "") + pre

    def params(self) -> dict[str, Any]:
        """The point's settings as a JSON-ready dict."""
        extra = {} if self.method == "cnn" else {"method": self.method}
        if self.method == "simclr_ft":
            return {"augment": self.augment, **extra}
        if self.spec:
            return {"spec": list(self.spec), "augment": self.augment, "pretrain": self.pretrain, **extra}
        return {"depth": self.depth, "width": self.width, "dropout": self.dropout, "augment": self.augment,
                "pretrain": self.pretrain, **extra}

    def twin(self, augment: bool) -> "CnnPoint":
        """The same network with ``augment`` switched."""
        return CnnPoint(self.depth, self.width, self.dropout, augment, self.spec, self.pretrain, self.method)

    def supervised(self) -> "CnnPoint":
        """The supervised CNN trained on the same labelled crops (itself for a ``cnn`` point)."""
        return CnnPoint(self.depth, self.width, self.dropout, self.augment, self.spec, self.pretrain)


def _where(path: str | os.PathLike | None, table: str, key: str) -> str:
    return f"{path or 'grid config'} [{table}] {key}"


def _check_list(cfg: dict, table: str, key: str, kind: type, lo: float, hi: float | None, path) -> None:
    values = cfg[table][key]
    where = _where(path, table, key)
    if not values:
        raise ReplearnError(f"{where}: the list is empty; give at least one value")
    for v in values:
        ok = isinstance(v, kind) and not (kind is not bool and isinstance(v, bool))
        if kind is float and isinstance(v, int) and not isinstance(v, bool):
            ok = True
        if ok and kind is not bool:
            ok = v >= lo and (hi is None or v < hi)
        if not ok:
            rng = "true or false" if kind is bool else f"{kind.__name__}s >= {lo:g}" + (f" and < {hi:g}" if hi else "")
            raise ReplearnError(f"{where}: got {v!r} in {values!r}; allowed: {rng}")
    if len(set(values)) != len(values):
        raise ReplearnError(f"{where}: {values!r} repeats a value; list each value once")


def _check_number(cfg: dict, table: str, key: str, lo: float, path, strict: bool = False, hi: float | None = None) -> None:
    v = cfg[table][key]
    bad = v <= lo if strict else v < lo
    if bad or (hi is not None and v >= hi):
        rng = f"{'>' if strict else '>='} {lo:g}" + (f" and < {hi:g}" if hi is not None else "")
        raise ReplearnError(f"{_where(path, table, key)}: got {v!r}; allowed: a number {rng}")


def _check_choice(cfg: dict, table: str, key: str, choices: tuple, path) -> None:
    v = cfg[table][key]
    if v not in choices:
        raise ReplearnError(f"{_where(path, table, key)}: got {v!r}; allowed: {', '.join(map(repr, choices))}")


def check(cfg: dict[str, Any], path: str | os.PathLike | None = None) -> dict[str, Any]:
    """Check every value of a resolved config; raise one line naming the file, table and key. Returns ``cfg``."""
    for key in ("n_val", "repeats", "n_labelled", "cv_repeats"):
        _check_number(cfg, "data", key, 1, path)
    _check_number(cfg, "data", "folds", 3, path)
    _check_number(cfg, "pretrain", "min_unlabelled", 0, path)
    _check_number(cfg, "pretrain", "generated", 0, path)
    _check_choice(cfg, "pretrain", "preset", tuple(sorted(SYNTHETIC_PRESETS)), path)
    _check_number(cfg, "data", "n_unlabelled", 0, path)
    _check_choice(cfg, "data", "preset", tuple(sorted(SYNTHETIC_PRESETS)), path)

    _check_list(cfg, "cnn", "depth", int, 1, None, path)
    _check_list(cfg, "cnn", "width", int, 1, None, path)
    _check_list(cfg, "cnn", "dropout", float, 0.0, 1.0, path)
    _check_list(cfg, "cnn", "augment", bool, 0, None, path)
    pre = cfg["cnn"]["pretrain"]
    if not pre or any(v not in PRETRAIN_CHOICES for v in pre) or len(set(pre)) != len(pre):
        raise ReplearnError(f"{_where(path, 'cnn', 'pretrain')}: got {pre!r}; allowed: a list of distinct values "
                            f"from {', '.join(map(repr, PRETRAIN_CHOICES))}")
    methods = cfg["cnn"]["method"]
    if not methods or any(v not in METHOD_CHOICES for v in methods) or len(set(methods)) != len(methods):
        raise ReplearnError(f"{_where(path, 'cnn', 'method')}: got {methods!r}; allowed: a list of distinct values "
                            f"from {', '.join(map(repr, METHOD_CHOICES))}")
    if "simclr_ft" in methods and cfg["ssl"]["epochs"] == 0:
        raise ReplearnError(f"{_where(path, 'cnn', 'method')}: 'simclr_ft' fine-tunes the SimCLR encoder, but "
                            "[ssl] epochs = 0 turns SimCLR off; give [ssl] epochs > 0 or drop 'simclr_ft'")
    for key in ("threshold", "strength"):
        v = cfg["semisup"][key]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
            raise ReplearnError(f"{_where(path, 'semisup', key)}: got {v!r}; allowed: a number in [0, 1]")
    _check_number(cfg, "semisup", "ratio", 1, path)
    _check_number(cfg, "semisup", "steps_scale", 1, path)
    _check_number(cfg, "semisup", "weight", 0.0, path)
    _check_number(cfg, "semisup", "ema", 0.0, path, hi=1.0)
    _check_number(cfg, "semisup", "encoder_lr_scale", 0.0, path)
    for key in ("align", "fine_tune_unlabelled"):
        if not isinstance(cfg["semisup"][key], bool):
            raise ReplearnError(f"{_where(path, 'semisup', key)}: got {cfg['semisup'][key]!r}; allowed: true or false")
    _check_number(cfg, "cnn", "pretrain_n", 6, path)
    _check_number(cfg, "cnn", "pretrain_epochs", 1, path)
    for key in ("dense", "epochs", "batch_size"):
        _check_number(cfg, "cnn", key, 1, path)
    _check_number(cfg, "cnn", "lr", 0.0, path, strict=True)
    _check_number(cfg, "cnn", "weight_decay", 0.0, path)
    _check_choice(cfg, "cnn", "optimizer", OPTIMIZERS, path)
    _check_choice(cfg, "cnn", "schedule", ("onecycle", "cosine", "none"), path)
    if not all(isinstance(s, str) and s.strip() for s in cfg["cnn"]["spec"]):
        raise ReplearnError(f"{_where(path, 'cnn', 'spec')}: must be a list of layer strings like \"conv 16\"")

    for key in ("scale", "offset"):
        _check_number(cfg, "augment", key, 0.0, path, hi=1.0)

    _check_list(cfg, "autoencoder", "code_dim", int, 1, None, path)
    blocks = cfg["autoencoder"]["blocks"]
    if not blocks or not all(
        isinstance(b, list) and b and all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in b)
        for b in blocks
    ):
        raise ReplearnError(
            f"{_where(path, 'autoencoder', 'blocks')}: got {blocks!r}; allowed: a non-empty list of non-empty lists "
            "of positive widths, e.g. [[32], [32, 16], [16, 8]]"
        )
    for key in ("epochs", "batch_size"):
        _check_number(cfg, "autoencoder", key, 1, path)
    _check_number(cfg, "autoencoder", "lr", 0.0, path, strict=True)
    _check_choice(cfg, "autoencoder", "loss", ("bce", "mse"), path)
    _check_number(cfg, "ssl", "epochs", 0, path)
    for key in ("depth", "width", "proj_dim"):
        _check_number(cfg, "ssl", key, 1, path)
    _check_number(cfg, "ssl", "batch_size", 2, path)
    _check_number(cfg, "ssl", "shift", 0, path)
    for key in ("lr", "temperature"):
        _check_number(cfg, "ssl", key, 0.0, path, strict=True)
    for table in ("cnn", "autoencoder", "ssl"):
        _check_choice(cfg, table, "bf16", BF16_CHOICES, path)

    names = cfg["probes"]["names"]
    if not names:
        raise ReplearnError(f"{_where(path, 'probes', 'names')}: the list is empty; give at least one probe")
    for name in names:
        check_probe_name(name, _where(path, "probes", "names"))
    _check_number(cfg, "probes", "C", 0.0, path)
    _check_number(cfg, "probes", "k", 1, path)
    _check_number(cfg, "probes", "hidden", 1, path)
    _check_choice(cfg, "report", "embedding", ("tsne", "isomap", "pca"), path)
    return cfg


def check_sizes(h: int, w: int, source: str, cfg: dict[str, Any]) -> None:
    """Refuse crops (h x w, from ``source``) the models cannot take: sides not divisible by 2^(blocks-1), or
    too small for a CNN or SimCLR depth."""
    step = 2 ** (len(cfg["autoencoder"]["blocks"]) - 1)
    if h % step or w % step or min(h, w) < 2 * step:
        raise ReplearnError(
            f"{source}: crops are {h}x{w} pixels; the models need sides divisible by {step} and at least "
            f"{2 * step} (like the course's 40x40): crop or pad them, e.g. to {max(h // step, 2) * step}x"
            f"{max(w // step, 2) * step}"
        )
    for p in cnn_points(cfg):
        if not p.spec and min(h, w) < 2**p.depth:
            raise ReplearnError(
                f"[cnn] depth = {p.depth} halves {h}x{w} crops {p.depth} times, below 1 pixel; "
                f"allowed depth for these crops: at most {int(math.log2(min(h, w)))}"
            )
    ssl_depth = cfg["ssl"]["depth"]
    if cfg["ssl"]["epochs"] and min(h, w) < 2**ssl_depth:
        raise ReplearnError(
            f"[ssl] depth = {ssl_depth} halves {h}x{w} crops {ssl_depth} times, below 1 pixel; "
            f"allowed depth for these crops: at most {int(math.log2(min(h, w)))} (or [ssl] epochs = 0)"
        )


def check_spec(cfg: dict[str, Any], input_shape: tuple[int, int, int], n_classes: int,
               path: str | os.PathLike | None = None) -> None:
    """Build the ``[cnn] spec`` network once (CPU, no training) for the data's crops and classes.

    Raises:
        ReplearnError: one line naming the file and key, for a bad layer or an output that is
            not ``n_classes`` logits; nothing is raised without a spec.
    """
    import torch

    from replearn.models import Network

    spec = cfg["cnn"]["spec"]
    if not spec:
        return
    where = _where(path, "cnn", "spec")
    with torch.random.fork_rng(devices=[]):  # building initialises weights; leave the global RNG as it was
        try:
            out = tuple(Network(list(spec), input_shape).output_shape)
        except ReplearnError as exc:
            raise ReplearnError(f"{where}: {exc}") from None
    if len(out) != 1:
        raise ReplearnError(f"{where}: the spec's output has shape {out}, but a classifier needs {n_classes} "
                            f"logits; end it with e.g. \"gap\", \"dense {n_classes}\"")
    if out[0] != n_classes:
        raise ReplearnError(f"{where}: the spec's output has {out[0]} units but the data has {n_classes} classes; "
                            f"end it with \"dense {n_classes}\"")


def apply_quick(cfg: dict[str, Any]) -> dict[str, Any]:
    """The ``--quick`` version of a resolved config (a copy): see :data:`QUICK`."""
    out = copy.deepcopy(cfg)
    data = out["data"]
    n_labelled = min(data["n_labelled"], QUICK["n_labelled"])
    # n_val shrinks with the data (at least 3, one per stage), but never grows beyond what the config asks.
    scaled = round(data["n_val"] * n_labelled / max(data["n_labelled"], 1))
    data["n_val"] = min(data["n_val"], max(3, scaled))
    data["n_labelled"] = n_labelled
    data["n_unlabelled"] = min(data["n_unlabelled"], QUICK["n_unlabelled"])
    data["repeats"] = min(data["repeats"], QUICK["repeats"])
    data["folds"] = min(data["folds"], QUICK["folds"])
    data["cv_repeats"] = min(data["cv_repeats"], QUICK["cv_repeats"])
    out["pretrain"]["generated"] = min(out["pretrain"]["generated"], QUICK["generated"])
    out["cnn"]["epochs"] = min(out["cnn"]["epochs"], QUICK["cnn_epochs"])
    out["autoencoder"]["epochs"] = min(out["autoencoder"]["epochs"], QUICK["ae_epochs"])
    out["ssl"]["epochs"] = min(out["ssl"]["epochs"], QUICK["ssl_epochs"])
    for table, axes in GRID_AXES.items():
        for axis in axes:
            if axis not in ("augment", "pretrain", "method"):
                out[table][axis] = out[table][axis][:1]
    out["cnn"]["pretrain_n"] = min(out["cnn"]["pretrain_n"], QUICK["pretrain_n"])
    out["cnn"]["pretrain_epochs"] = min(out["cnn"]["pretrain_epochs"], QUICK["pretrain_epochs"])
    return out


def complete(tables: dict[str, Any], path: str | os.PathLike | None = None, quick: bool = False) -> dict[str, Any]:
    """``tables`` over :data:`DEFAULTS` (a table or key left out keeps its default), checked, cut by ``--quick``.

    Raises:
        ReplearnError: an unknown key (with a did-you-mean suggestion) or a bad value, in one
            line naming ``path`` (the file the tables came from), the table and the key.
    """
    cfg = check(merge(copy.deepcopy(DEFAULTS), copy.deepcopy(tables), str(path or "grid config")), path)
    return check(apply_quick(cfg), path) if quick else cfg


def load_grid(path: str | os.PathLike | None = None, quick: bool = False) -> dict[str, Any]:
    """Resolve the grid config: :data:`DEFAULTS` <- TOML ``path`` <- ``--quick``; checked.

    Raises:
        ReplearnError: a missing or malformed file, an unknown key (with a did-you-mean
            suggestion) or a bad value, in one line naming the file, table and key.
    """
    return complete(resolve(DEFAULTS, path), path, quick)


def cnn_points(cfg: dict[str, Any]) -> list[CnnPoint]:
    """The CNN grid: one point per combination of the ``cnn`` axes (only ``augment`` and ``pretrain`` vary with a
    ``spec``). ``pretrain`` varies only the supervised ``cnn`` method; ``simclr_ft`` (the SimCLR encoder) varies
    only with ``augment``."""
    c = cfg["cnn"]
    points: list[CnnPoint] = []
    for method in c["method"]:
        pres = c["pretrain"] if method == "cnn" else ["none"]
        if method == "simclr_ft":
            points += [CnnPoint(0, 0, 0.0, bool(a), (), "none", method) for a in c["augment"]]
        elif c["spec"]:
            points += [CnnPoint(0, 0, 0.0, bool(a), tuple(c["spec"]), str(pre), method)
                       for a, pre in itertools.product(c["augment"], pres)]
        else:
            points += [CnnPoint(int(d), int(w), float(p), bool(a), (), str(pre), method)
                       for d, w, p, a, pre in itertools.product(c["depth"], c["width"], c["dropout"], c["augment"], pres)]
    return points


def code_dims(cfg: dict[str, Any]) -> list[int]:
    """The autoencoder bottleneck sizes, one autoencoder each."""
    return [int(d) for d in cfg["autoencoder"]["code_dim"]]


def probe_params(cfg: dict[str, Any], name: str) -> dict[str, Any]:
    """Keyword overrides for probe ``name`` from the ``probes`` table."""
    p = cfg["probes"]
    allowed = PROBE_PARAMS[name]
    out: dict[str, Any] = {}
    if "C" in allowed and p["C"] > 0:
        out["C"] = float(p["C"])
    if "k" in allowed:
        out["k"] = int(p["k"])
    if "hidden" in allowed:
        out["hidden"] = int(p["hidden"])
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def to_toml(cfg: dict[str, Any]) -> str:
    """The resolved config as TOML text that :func:`load_grid` reads back unchanged."""
    lines: list[str] = []
    for table, values in cfg.items():
        lines.append(f"[{table}]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
        lines.append("")
    return "\n".join(lines)
