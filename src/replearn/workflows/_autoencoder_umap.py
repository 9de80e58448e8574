"""``replearn autoencoder --objective``: what the codes are trained for, and the neighbourhood-preserving estimator.

``recon``: the lecture's reconstruction loss alone (:class:`~replearn.encoders.AutoEncoderEmbedding`).
``umap``: Parametric UMAP, the UMAP cross-entropy on the images' fuzzy neighbour graph
(:class:`~replearn.encoders.UMAPEmbedding`); the decoder is fitted afterwards to invert the codes, not shaping them.
``recon+umap``: both losses shape the codes (Parametric UMAP with an autoencoder).
``tsne``: InfoNC-t-SNE (a contrastive, parametric t-SNE) on the same graph and edges as ``umap``, with more
negatives; ``recon+tsne``: that loss and the reconstruction loss together.
"""

from __future__ import annotations

from typing import Any

from replearn.errors import ReplearnError

OBJECTIVES = ("recon", "umap", "recon+umap", "tsne", "recon+tsne")
METHOD_NAMES = {"recon": "autoencoder", "umap": "parametric UMAP", "recon+umap": "parametric UMAP + reconstruction",
                "tsne": "parametric t-SNE (InfoNC)", "recon+tsne": "parametric t-SNE (InfoNC) + reconstruction"}
"""The name of the trained model's row in the table, by objective."""
RECON_WEIGHT = 1.0
"""``recon+umap``, ``recon+tsne``: weight of the per-image reconstruction loss (mean per pixel) beside the
neighbourhood loss per image."""
N_NEIGHBORS = 15  # UMAP's default neighbourhood (the point itself included)
DEFAULTS = {
    "recon": {"model": "conv_autoencoder", "epochs": 40, "batch_size": 128, "lr": 0.01, "bf16": "on"},
    "umap": {"model": "umap_autoencoder", "epochs": 40, "batch_size": 1000, "lr": 0.01, "bf16": "off"},
}
"""The options left unset (None) take these values by objective (``recon+umap``: those of ``umap``); the umap
recipe: docs/autoencoder.md (edge samples against 5-NN, MNIST)."""


def _loss(cfg: Any) -> tuple[str, bool]:
    """(the neighbourhood loss, whether reconstruction shapes the codes too) of ``cfg.objective``."""
    return ("tsne" if cfg.objective.endswith("tsne") else "umap"), cfg.objective.startswith("recon+")


def method_name(cfg: Any) -> str:
    """The table's name for the model ``cfg`` trains."""
    return METHOD_NAMES[getattr(cfg, "objective", "recon")]


def check_objective(cfg: Any) -> None:
    """Fill the options left unset with the objective's defaults; options that the neighbourhood objectives do not
    support fail in one line."""
    if cfg.objective not in OBJECTIVES:
        raise ReplearnError(f"--objective: expected one of {', '.join(OBJECTIVES)}, got {cfg.objective!r}")
    for key, value in DEFAULTS["recon" if cfg.objective == "recon" else "umap"].items():
        if getattr(cfg, key) is None:
            setattr(cfg, key, value)
    if cfg.objective == "recon":
        return
    for flag, used in (("--noise", cfg.noise > 0), ("--layerwise", cfg.layerwise_epochs > 0)):
        if used:
            raise ReplearnError(f"--objective {cfg.objective}: {flag} is only for --objective recon")


def umap_estimator(cfg: Any) -> Any:
    """The :class:`~replearn.encoders.UMAPEmbedding` of ``cfg``'s recipe (any objective but ``recon``)."""
    from replearn.encoders import UMAPEmbedding
    from replearn.train import bf16_enabled
    from replearn.utils.runtime import resolve_device

    kind, joint = _loss(cfg)
    return UMAPEmbedding(
        model=cfg.model, code_dim=cfg.code_dim, blocks=tuple(tuple(b) for b in cfg.blocks), hidden=tuple(cfg.hidden),
        epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, optimizer=cfg.optimizer,
        schedule=None if cfg.schedule == "none" else cfg.schedule, weight_decay=cfg.weight_decay, loss=cfg.loss,
        n_neighbors=N_NEIGHBORS, recon_weight=RECON_WEIGHT if joint else 0.0,
        bf16=bf16_enabled(cfg.bf16, resolve_device(cfg.device).type), channels_last=cfg.channels_last,
        kind=kind, seed=cfg.seed, device=cfg.device, progress=cfg.progress,
    )


def objective_note(cfg: Any, est: Any) -> str:
    """``"; UMAP objective ..."`` for the row's note, or ``""`` for ``recon``."""
    from replearn.train.umap import TSNE_NEGATIVES

    if cfg.objective == "recon":
        return ""
    recon = (f"plus {est.recon_weight:g} x {cfg.loss.upper()} reconstruction" if est.recon_weight > 0
             else f"decoder fitted to the final codes ({est.decoder_epochs} epochs)")
    tsne = est.kind == "tsne"
    loss = "InfoNC-t-SNE loss" if tsne else "UMAP cross-entropy"
    negatives = f"{TSNE_NEGATIVES} negatives per edge" if tsne else f"{est.negative_rate:g} negatives' worth per edge"
    return (f"; {loss} on a {est.n_neighbors}-neighbour fuzzy graph ({est.graph_edges_:,} edges, "
            f"built in {est.graph_seconds_:.0f} s, included in the time), {est.edge_samples_:,} edge samples, "
            f"{negatives}, {recon}")
