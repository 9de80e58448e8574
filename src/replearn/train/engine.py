"""The one training loop of replearn: :func:`fit`.

Every workflow trains through :func:`fit`. Data arrive as tensors already in
memory and are batched by slicing (see :mod:`replearn.train.batching`); the
run is deterministic on the CPU for a given seed and number of threads (other
thread counts sum in another order and drift apart), and a run resumed from its
checkpoint ends bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn
from tqdm import tqdm

from replearn.errors import ReplearnError
from replearn.models.freeze import keep_frozen_in_eval
from replearn.train._device import autocast, place, resolve_bf16, to_device
from replearn.train.batching import AUGMENT_STREAM, epoch_generator, epoch_permutation, iter_batches, num_batches
from replearn.train.callbacks import Callback, EarlyStopping
from replearn.train.checkpoint import check_compatible, checkpoint_path, load_checkpoint, save_checkpoint
from replearn.train.config import TrainConfig
from replearn.train.distributed import (
    DistInfo, all_reduce_sum, any_process, device_for, info, is_distributed, num_global_batches, shard_batches,
    shard_range, sync_buffers, wrap,
)
from replearn.train.history import History
from replearn.train.losses import CLASSIFICATION_LOSSES, make_loss
from replearn.train.predict import evaluate
from replearn.utils.runtime import resolve_device

Pair = tuple[torch.Tensor, torch.Tensor]
Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
#: ``objective(model, x_batch, y_batch, generator) -> (loss, logits)``: a training step's loss instead of
#: ``loss_fn(model(x), y)`` (e.g. :class:`replearn.train.semisup.FixMatchObjective`).
Objective = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]

#: Progress-bar metrics are synchronised (``.item()``) every this many steps.
POSTFIX_EVERY = 10
#: Evaluation batches are at least this large (the result does not depend on it).
MIN_EVAL_BATCH = 256
#: In distributed runs, rank ``r`` draws augmentation and dropout from stream ``RANK_STREAM * r + ...``.
RANK_STREAM = 16
#: Config fields that may change between a run and its resumption.
RESUME_MAY_CHANGE = ("epochs", "early_stopping_patience", "device")


# ---------------------------------------------------------------------------- checks
def _check_pair(name: str, pair: Any, loss: str) -> Pair:
    """Validate a ``(x, y)`` pair for ``loss``; return it as a tuple."""
    if not isinstance(pair, (tuple, list)) or len(pair) != 2 or not all(isinstance(t, torch.Tensor) for t in pair):
        raise ReplearnError(f"fit: {name} must be a tuple (x, y) of tensors, got {type(pair).__name__}")
    x, y = pair
    if x.dtype != torch.float32 or x.dim() < 2:
        raise ReplearnError(
            f"fit: {name} x must be a float32 tensor (N, C, H, W), got {x.dtype} of shape {tuple(x.shape)}"
        )
    if y.dim() == 0 or x.shape[0] == 0 or x.shape[0] != y.shape[0]:
        raise ReplearnError(
            f"fit: {name} x has {x.shape[0]} samples and y has shape {tuple(y.shape)}; need the same N >= 1"
        )
    if loss in CLASSIFICATION_LOSSES:
        if y.dtype != torch.int64 or y.dim() != 1:
            raise ReplearnError(
                f"fit: {name} y must be int64 class indices (N,) for loss {loss!r}, "
                f"got {y.dtype} of shape {tuple(y.shape)}"
            )
        if int(y.min()) < 0:
            raise ReplearnError(f"fit: {name} y has class index {int(y.min())}; class indices start at 0")
    elif loss != "model" and not y.is_floating_point():
        raise ReplearnError(
            f"fit: {name} y must be a float tensor of the model's output shape for loss {loss!r}, got {y.dtype}"
        )
    return x, y


def _probe(model: nn.Module, name: str, x: torch.Tensor, y: torch.Tensor, loss: str, device: torch.device,
           channels_last: bool) -> None:
    """Run two samples through the model (eval mode, no grad) and check the output against ``y``."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(to_device(x[:2], device, channels_last))
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ReplearnError(f"fit: the model cannot take {name} x of shape {tuple(x.shape)}: {first}") from exc
    finally:
        model.train(was_training)
    if loss in CLASSIFICATION_LOSSES:
        if out.dim() != 2:
            raise ReplearnError(f"fit: loss {loss!r} needs model outputs (N, classes), got shape {tuple(out.shape)}")
        if int(y.max()) >= out.shape[1]:
            raise ReplearnError(
                f"fit: {name} y has class index {int(y.max())} but the model has {out.shape[1]} outputs"
            )
    elif loss == "model":
        if out.dim() != 1:
            raise ReplearnError(
                f"fit: loss 'model' needs the model to return per-sample losses (N,), got shape {tuple(out.shape)}"
            )
    elif tuple(out.shape[1:]) != tuple(y.shape[1:]):
        raise ReplearnError(
            f"fit: model outputs have shape (N, {', '.join(map(str, out.shape[1:]))}) but {name} y has shape "
            f"{tuple(y.shape)} for loss {loss!r}"
        )


def _check_resume_config(saved: Mapping[str, Any], config: TrainConfig, path: os.PathLike) -> None:
    """Only epochs, patience and device may change on resume (epochs not with a schedule)."""
    current = config.to_dict()
    for key, value in current.items():
        if key not in RESUME_MAY_CHANGE and saved.get(key) != value:
            raise ReplearnError(
                f"resume: {path} was trained with {key}={saved.get(key)!r} but the config now has {key}={value!r}; "
                f"only {', '.join(RESUME_MAY_CHANGE)} may change"
            )
    if config.schedule is not None and saved.get("epochs") != config.epochs:
        raise ReplearnError(
            f"resume: schedule {config.schedule!r} depends on epochs; {path} was trained with "
            f"epochs={saved.get('epochs')!r}, the config now has epochs={config.epochs}"
        )


class _FunctionCallback(Callback):
    """Adapts a plain ``f(epoch, logs)`` to :class:`Callback`."""

    def __init__(self, fn: Callable[[int, dict[str, float]], bool | None]) -> None:
        self.fn = fn

    def on_epoch_end(self, epoch: int, logs: dict[str, float]) -> bool | None:
        return self.fn(epoch, logs)


def _as_callbacks(callbacks: Sequence[Callback | Callable] | None) -> list[Callback]:
    out: list[Callback] = []
    for cb in callbacks or ():
        if isinstance(cb, Callback):
            out.append(cb)
        elif callable(cb):
            out.append(_FunctionCallback(cb))
        else:
            raise ReplearnError(f"fit: callbacks must be Callback objects or callables, got {type(cb).__name__}")
    return out


# ---------------------------------------------------------------------------- optimisation
def param_groups(model: nn.Module, lr: float, lr_scales: Mapping[str, float] | None = None) -> list[dict[str, Any]]:
    """The trainable parameters of ``model`` as optimiser groups with discriminative learning rates.

    ``lr_scales`` maps a parameter-name prefix (``"encoder."``) to a multiplier of ``lr``; the first
    matching prefix wins, unmatched parameters keep ``lr`` and come first (group 0, whose rate is logged).
    Groups without trainable parameters are left out.
    """
    scales = dict(lr_scales or {})
    for prefix, scale in scales.items():
        if not isinstance(prefix, str) or isinstance(scale, bool) or not isinstance(scale, (int, float)) or scale < 0:
            raise ReplearnError(f"fit: lr_scales must map name prefixes to numbers >= 0, got {prefix!r}: {scale!r}")
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    unmatched = [prefix for prefix in scales if not any(n.startswith(prefix) for n, _ in named)]
    if unmatched:
        raise ReplearnError(f"fit: lr_scales prefix {unmatched[0]!r} matches no trainable parameter of the model")
    groups: dict[float, list[nn.Parameter]] = {1.0: []}
    for name, p in named:
        scale = next((float(s) for prefix, s in scales.items() if name.startswith(prefix)), 1.0)
        groups.setdefault(scale, []).append(p)
    return [{"params": ps, "lr": lr * scale, "lr_scale": scale} for scale, ps in groups.items() if ps]


def _make_optimizer(params: list[nn.Parameter] | list[dict[str, Any]], config: TrainConfig) -> torch.optim.Optimizer:
    """Build the optimizer (over parameters or parameter groups), preferring fused kernels, then foreach."""
    if config.optimizer == "sgd":
        cls, kwargs = torch.optim.SGD, dict(momentum=config.momentum, nesterov=config.nesterov)
    elif config.optimizer == "adam":
        cls, kwargs = torch.optim.Adam, {}
    else:
        cls, kwargs = torch.optim.AdamW, {}
    kwargs.update(lr=config.lr, weight_decay=config.weight_decay)
    try:
        return cls(params, fused=True, **kwargs)
    except (RuntimeError, ValueError, TypeError):
        return cls(params, foreach=True, **kwargs)


def _make_scheduler(
    optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """Per-step learning-rate schedule (``None`` for a constant rate without warm-up)."""
    total = config.epochs * steps_per_epoch
    warmup = int(round(config.warmup_epochs * steps_per_epoch))
    if config.schedule == "onecycle":
        pct = config.warmup_epochs / config.epochs if config.warmup_epochs > 0 else 0.3
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=total, pct_start=pct,
            cycle_momentum=False,
        )
    if config.schedule == "cosine":

        def cosine(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            progress = (step - warmup) / max(total - warmup, 1)
            return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, cosine)
    if warmup > 0:
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))
    return None


def _train_epoch(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epoch: int,
    config: TrainConfig,
    loss_fn: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    params: list[nn.Parameter],
    device: torch.device,
    use_bf16: bool,
    augment: Augment | None,
    classification: bool,
    bar: tqdm,
    dinfo: DistInfo | None = None,
    on_step: Callable[[int], None] | None = None,
    objective: Objective | None = None,
) -> dict[str, float]:
    """One pass over ``(x, y)`` in a seeded order; return mean loss (+ accuracy) and the last learning rate.

    With ``dinfo`` (a DDP run, ``model`` wrapped in DDP) each rank trains on its share of
    every global batch and the returned metrics are summed over all ranks. ``on_step(i)`` is
    called after the i-th step of this epoch (from 1). With ``objective`` the step's loss and logits
    come from ``objective(model, x, y, generator)`` (generator: the epoch's augmentation stream).
    """
    model.train()
    keep_frozen_in_eval(model)
    order = epoch_permutation(x.shape[0], config.seed, epoch).to(x.device)
    rank = 0 if dinfo is None else dinfo.rank
    aug_gen = None
    if augment is not None or objective is not None:
        aug_gen = epoch_generator(config.seed, epoch, AUGMENT_STREAM + RANK_STREAM * rank)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    seen = 0
    lr = optimizer.param_groups[0]["lr"]
    if dinfo is None:
        batches = ((xb, yb, 0) for xb, yb in iter_batches(x, y, config.batch_size, order, drop_single=True))
    else:
        batches = shard_batches(x, y, config.batch_size, order, dinfo.rank, dinfo.world_size)
    for step, (xb, yb, global_n) in enumerate(batches):
        xb = to_device(xb, device)
        if augment is not None:
            xb = augment(xb, aug_gen)
        xb = to_device(xb, device, config.channels_last)
        yb = to_device(yb, device)
        optimizer.zero_grad(set_to_none=True)
        if objective is None:
            with autocast(device, use_bf16):
                out = model(xb)
            out = out.float()
            loss = loss_fn(out, yb)
        else:
            with autocast(device, use_bf16):
                loss, out = objective(model, xb, yb, aug_gen)
            loss, out = loss.float(), out.float()
        if dinfo is None:
            loss.backward()
        else:  # DDP averages gradients over ranks; weighting by this rank's share gives the global-batch mean
            (loss * (xb.shape[0] * dinfo.world_size / global_n)).backward()
        if config.grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
        lr = optimizer.param_groups[0]["lr"]
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        with torch.no_grad():
            loss_sum += loss.detach().double() * xb.shape[0]
            if classification:
                correct += (out.argmax(dim=1) == yb).sum()
        seen += xb.shape[0]
        if on_step is not None:
            on_step(step + 1)
        bar.update(1)
        if not bar.disable and (step + 1) % POSTFIX_EVERY == 0:
            live = {"loss": f"{loss_sum.item() / seen:.4f}"}
            if classification:
                live["accuracy"] = f"{correct.item() / seen:.4f}"
            bar.set_postfix(live, refresh=False)
    total_loss, total_correct = loss_sum.item(), float(correct.item())
    if dinfo is not None:
        total_loss, total_correct, seen = all_reduce_sum([total_loss, total_correct, seen], device)
    logs = {"loss": total_loss / max(seen, 1)}
    if classification:
        logs["accuracy"] = total_correct / max(seen, 1)
    logs["lr"] = float(lr)
    return logs


def _evaluate_set(model: nn.Module, pair: Pair, loss_fn: nn.Module, batch_size: int, classification: bool,
                  dinfo: DistInfo | None, **kw: Any) -> dict[str, float]:
    """``evaluate`` on ``pair``; in a DDP run each rank takes a slice and the means are combined over ranks."""
    if dinfo is None:
        return evaluate(model, *pair, loss_fn, batch_size, **kw)
    part = shard_range(pair[0].shape[0], dinfo.rank, dinfo.world_size)
    xs, ys = pair[0][part], pair[1][part]
    n = int(xs.shape[0])
    local = evaluate(model, xs, ys, loss_fn, batch_size, **kw) if n else {}
    keys = ["loss", "accuracy"] if classification else ["loss"]
    sums = all_reduce_sum([local.get(k, 0.0) * n for k in keys] + [n], kw["device"])
    return {k: v / max(sums[-1], 1.0) for k, v in zip(keys, sums)}


# ---------------------------------------------------------------------------- divergence
def _first_non_finite(model: nn.Module) -> str | None:
    """The name of the first floating-point parameter or buffer holding NaN or infinity (one device sync)."""
    named = [(name, t) for name, t in (*model.named_parameters(), *model.named_buffers()) if t.is_floating_point()]
    if not named:
        return None
    with torch.no_grad():
        finite = torch.stack([torch.isfinite(t).all() for _, t in named])
        if bool(finite.all()):
            return None
        return named[int((~finite).nonzero()[0, 0])][0]


def _diverged(epoch: int, config: TrainConfig, lr: float, what: str) -> ReplearnError:
    """The one-line error for a run whose loss or weights stopped being finite in ``epoch`` (0-based)."""
    return ReplearnError(
        f"training diverged in epoch {epoch + 1} of {config.epochs}: {what} at learning rate {lr:.3g}; "
        f"nothing of this epoch was saved; lower --lr (e.g. from {config.lr:.3g} to {config.lr / 10:.3g}) "
        "and train again"
    )


# ---------------------------------------------------------------------------- fit
def fit(
    model: nn.Module,
    train: Pair,
    val: Pair | None = None,
    config: TrainConfig | None = None,
    *,
    augment: Augment | None = None,
    checkpoint_dir: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool = True,
    eval_sets: Mapping[str, Pair] | None = None,
    callbacks: Sequence[Callback | Callable[[int, dict[str, float]], bool | None]] | None = None,
    distributed: bool | None = None,
    objective: Objective | None = None,
    lr_scales: Mapping[str, float] | None = None,
) -> History:
    """Train ``model`` in place on in-memory tensors and return its :class:`History`.

    Args:
        model: any ``nn.Module``; parameters with ``requires_grad=False`` are not
            optimised and submodules with ``frozen = True`` stay in eval mode.
        train: ``(x, y)``: x float32 (N, C, H, W); y int64 classes (N,) for
            ``cross_entropy`` or float targets of the output's shape (e.g. ``x``) otherwise; with
            loss ``"model"`` the model returns per-sample losses (N,) and y only needs N rows.
        val: optional ``(x, y)`` evaluated after every epoch (``val_loss``, ``val_accuracy``).
        config: hyper-parameters (default :class:`TrainConfig()`).
        augment: optional ``f(x_batch, generator) -> x_batch`` applied to training
            batches only, on the training device; ``generator`` is a CPU
            ``torch.Generator`` seeded from ``(seed, epoch)``.
        checkpoint_dir: folder for ``checkpoint.pt``, rewritten atomically after every epoch.
        resume: continue from ``checkpoint_dir``'s checkpoint (same result as an uninterrupted run).
        progress: show a tqdm bar per epoch with live loss/accuracy.
        eval_sets: name -> ``(x, y)`` also evaluated every epoch, logged as
            ``"<name>_loss"``/``"<name>_accuracy"`` (never used for early stopping).
        callbacks: :class:`Callback` objects or ``f(epoch, logs)``; returning ``True`` stops training.
            A callback's ``on_batch_end(step, model)`` runs after every optimisation step.
        distributed: train with ``DistributedDataParallel`` over the active process group
            (see :mod:`replearn.train.distributed`): ``None`` (default) does so whenever
            :func:`~replearn.train.distributed.init_from_env` started a group of more than one
            process, ``True`` requires one, ``False`` never. ``config.batch_size`` is the
            global batch; only rank 0 writes the checkpoint and shows progress.
        objective: optional ``f(model, x_batch, y_batch, generator) -> (loss, logits)`` replacing
            ``loss(model(x), y)`` for training steps (after ``augment``); ``generator`` is the epoch's
            seeded augmentation stream. Evaluation still uses ``config.loss``. Not with ``distributed``.
        lr_scales: discriminative learning rates: parameter-name prefix -> multiplier of ``config.lr``
            (e.g. ``{"encoder.": 0.1}``), one optimiser parameter group each (see :func:`param_groups`).

    Returns:
        The run's :class:`History` (including epochs before a resume).

    Raises:
        ReplearnError: bad data, config or checkpoint; the message names what and why. Also a run
            that diverges: when an epoch's mean training loss, or a weight or buffer at the end of
            the epoch, is NaN or infinite, training stops with one line naming the epoch and the
            learning rate, before that epoch's checkpoint is written (the last good one stays).
    """
    config = TrainConfig() if config is None else config
    if not isinstance(config, TrainConfig):
        raise ReplearnError(f"fit: config must be a TrainConfig, got {type(config).__name__}")
    config.validate()
    x, y = _check_pair("train", train, config.loss)
    val = None if val is None else _check_pair("val", val, config.loss)
    named_sets: dict[str, Pair] = {}
    for name, pair in (eval_sets or {}).items():
        if not isinstance(name, str) or not name.isidentifier() or name == "val":
            raise ReplearnError(f"fit: eval_sets names must be identifiers other than 'val', got {name!r}")
        named_sets[name] = _check_pair(name, pair, config.loss)
    cbs = _as_callbacks(callbacks)
    classification = config.loss in CLASSIFICATION_LOSSES
    tracking = val is not None or not config.monitor.startswith("val_")
    if not tracking and (config.early_stopping_patience is not None or config.restore_best):
        raise ReplearnError(
            f"fit: monitor {config.monitor!r} needs a val set for early stopping/restore_best; "
            "pass val=(x, y) or set monitor='loss'"
        )
    if resume and checkpoint_dir is None:
        raise ReplearnError("fit: resume=True needs checkpoint_dir")
    if distributed and not torch.distributed.is_initialized():
        raise ReplearnError(
            "fit: distributed=True needs a process group; run under torchrun and call "
            "replearn.train.distributed.init_from_env() first"
        )
    dinfo = info() if distributed is not False and is_distributed() else None
    if objective is not None and dinfo is not None:
        raise ReplearnError("fit: an objective does not train distributed; pass distributed=False")
    if objective is not None and not callable(objective):
        raise ReplearnError(f"fit: objective must be callable f(model, x, y, generator), "
                            f"got {type(objective).__name__}")

    device = resolve_device(config.device)
    if dinfo is not None:
        device = device_for(device, dinfo)
        if dinfo.backend == "nccl" and device.type != "cuda":
            raise ReplearnError(f"fit: the process group uses nccl, which needs a CUDA device, got {device}")
        progress = progress and dinfo.rank == 0
    use_bf16 = resolve_bf16(config.bf16, device)
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    for name, (px, py) in {"train": (x, y), **({"val": val} if val is not None else {}), **named_sets}.items():
        _probe(model, name, px, py, config.loss, device, config.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ReplearnError("fit: the model has no trainable parameters (all have requires_grad=False)")
    loss_fn = make_loss(config.loss, config.label_smoothing).to(device)
    if dinfo is None:
        steps_per_epoch = num_batches(x.shape[0], config.batch_size, drop_single=True)
    else:
        steps_per_epoch = num_global_batches(x.shape[0], config.batch_size, dinfo.world_size)
        if steps_per_epoch == 0:
            raise ReplearnError(
                f"fit: train has {x.shape[0]} samples; {dinfo.world_size} processes need at least "
                f"{2 * dinfo.world_size} (2 per process)"
            )
    optimizer = _make_optimizer(params if lr_scales is None else param_groups(model, config.lr, lr_scales), config)
    scheduler = _make_scheduler(optimizer, config, steps_per_epoch)
    history = History(config.monitor)
    stopper = EarlyStopping(config.monitor, config.early_stopping_patience, config.min_delta,
                            keep_best_state=config.restore_best)
    ckpt_file = checkpoint_path(checkpoint_dir) if checkpoint_dir is not None else None
    start_epoch = 0
    rng_state: dict[str, Any] | None = None
    if resume:
        assert ckpt_file is not None
        state = load_checkpoint(ckpt_file)
        _check_resume_config(state["config"], config, ckpt_file)
        if state["n_train"] != x.shape[0]:
            raise ReplearnError(
                f"resume: {ckpt_file} was trained on {state['n_train']} samples, train now has {x.shape[0]}"
            )
        check_compatible(model, state["model"], ckpt_file)
        model.load_state_dict(state["model"])
        flags = [(g.get("fused"), g.get("foreach")) for g in optimizer.param_groups]
        try:
            optimizer.load_state_dict(state["optimizer"])
        except (ValueError, KeyError) as exc:
            raise ReplearnError(
                f"resume: the optimizer state in {ckpt_file} does not fit the model's trainable parameters: {exc}"
            ) from None
        for group, (fused, foreach) in zip(optimizer.param_groups, flags):
            group["fused"], group["foreach"] = fused, foreach
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        history = History.from_dict(state["history"])
        stopper.load_state_dict(state["early_stopping"])
        start_epoch = int(state["epoch"])
        rng_state = {"cpu": state["rng_cpu"], "cuda": state.get("rng_cuda")}

    x, y = place(x, device), place(y, device)
    if val is not None:
        val = (place(val[0], device), place(val[1], device))
    named_sets = {k: (place(a, device), place(b, device)) for k, (a, b) in named_sets.items()}
    eval_batch = max(config.batch_size, MIN_EVAL_BATCH)
    eval_kw = dict(device=device, channels_last=config.channels_last, bf16=use_bf16)
    was_training = model.training

    for cb in cbs:
        cb.on_train_begin(model, history)
    if rng_state is None:
        torch.manual_seed(config.seed)
    else:
        torch.set_rng_state(rng_state["cpu"])
        if device.type == "cuda" and rng_state["cuda"] is not None:
            torch.cuda.set_rng_state(rng_state["cuda"], device)
    stepped = [cb for cb in cbs if type(cb).on_batch_end is not Callback.on_batch_end]
    net = model
    if dinfo is not None:
        if dinfo.rank > 0:  # dropout masks differ between ranks (rank 0 keeps the single-process stream)
            torch.manual_seed(epoch_generator(config.seed, start_epoch, RANK_STREAM * dinfo.rank).initial_seed())
        net = wrap(model, device)  # broadcasts rank 0's parameters and buffers

    for epoch in range(start_epoch, config.epochs):
        if stopper.stopped_:
            break
        start = time.perf_counter()
        bar = tqdm(total=steps_per_epoch, desc=f"Epoch {epoch + 1}/{config.epochs}", unit="step",
                   disable=not progress, leave=True, dynamic_ncols=True)
        try:
            on_step = None
            if stepped:
                def on_step(i: int, first: int = epoch * steps_per_epoch) -> None:
                    for cb in stepped:
                        cb.on_batch_end(first + i, model)
            logs = _train_epoch(net, x, y, epoch, config, loss_fn, optimizer, scheduler, params, device,
                                use_bf16, augment, classification, bar, dinfo, on_step, objective)
            lr = logs.pop("lr")
            if not math.isfinite(logs["loss"]):  # the same sum on every rank of a DDP run
                raise _diverged(epoch, config, lr, f"the training loss became {logs['loss']}")
            sync_buffers(model)  # DDP runs: BatchNorm statistics of rank 0 everywhere
            bad = _first_non_finite(model)
            what = None if bad is None else f"tensor {bad!r} of the model became NaN or infinite"
            if dinfo is not None and any_process(bad is not None, device) and bad is None:
                what = "a tensor of the model on another process became NaN or infinite"
            if what is not None:
                raise _diverged(epoch, config, lr, what)
            if val is not None:
                for key, value in _evaluate_set(model, val, loss_fn, eval_batch, classification, dinfo,
                                                **eval_kw).items():
                    logs[f"val_{key}"] = value
            for name, pair in named_sets.items():
                for key, value in _evaluate_set(model, pair, loss_fn, eval_batch, classification, dinfo,
                                                **eval_kw).items():
                    logs[f"{name}_{key}"] = value
            logs["lr"] = lr
            logs["time"] = time.perf_counter() - start
            bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items() if k != "time"}, refresh=True)
        finally:
            bar.close()
        history.append(epoch, logs)
        stop = stopper.update(epoch, logs, model) if tracking else False
        history.best_epoch, history.best_metric = stopper.best_epoch_, stopper.best_
        if stop:
            history.stopped_epoch = epoch
        stop_requested = [bool(cb.on_epoch_end(epoch, dict(logs))) for cb in cbs]
        if dinfo is not None:
            stop_requested = [any_process(any(stop_requested), device)]
        if ckpt_file is not None and (dinfo is None or dinfo.rank == 0):
            save_checkpoint(ckpt_file, {
                "epoch": epoch + 1,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "rng_cpu": torch.get_rng_state(),
                "rng_cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                "history": history.to_dict(),
                "early_stopping": stopper.state_dict(),
                "config": config.to_dict(),
                "n_train": int(x.shape[0]),
            })
        if stop or any(stop_requested):
            break

    if dinfo is not None:
        del net  # drops DDP's gradient hooks from the parameters
        torch.distributed.barrier()
    if config.restore_best and stopper.best_state_ is not None:
        model.load_state_dict(stopper.best_state_)
    model.train(was_training)
    if was_training:
        keep_frozen_in_eval(model)
    for cb in cbs:
        cb.on_train_end(model, history)
    return history
