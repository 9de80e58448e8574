"""Models: a spec language, the lecture's networks, a registry, summaries and saving."""

from replearn.models._registry import create_model, list_models, register_model
from replearn.models.autoencoder import AutoEncoder
from replearn.models.dense_autoencoder import DENSE_AE_HIDDEN, UMAP_HIDDEN, dense_autoencoder, umap_autoencoder
from replearn.models.freeze import freeze, keep_frozen_in_eval, unfreeze
from replearn.models.lecture import (
    LECTURE_AE_BLOCKS,
    MINIVGG_SPEC,
    TRANSFER_HEAD_SPEC,
    attach_head,
    conv_autoencoder,
    minivgg,
    small_cnn,
)
from replearn.models.network import KERAS_BN_MOMENTUM, Network, init_glorot
from replearn.models.serialization import load_model, load_weights, model_from_config, read_sidecar, save_model
from replearn.models.summary import count_params, summary

__all__ = [
    "AutoEncoder",
    "DENSE_AE_HIDDEN",
    "KERAS_BN_MOMENTUM",
    "LECTURE_AE_BLOCKS",
    "MINIVGG_SPEC",
    "Network",
    "TRANSFER_HEAD_SPEC",
    "attach_head",
    "conv_autoencoder",
    "count_params",
    "create_model",
    "dense_autoencoder",
    "freeze",
    "init_glorot",
    "keep_frozen_in_eval",
    "list_models",
    "load_model",
    "load_weights",
    "minivgg",
    "model_from_config",
    "read_sidecar",
    "register_model",
    "save_model",
    "small_cnn",
    "summary",
    "umap_autoencoder",
    "unfreeze",
]
