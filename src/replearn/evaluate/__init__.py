"""Evaluation: metrics, 2-D embeddings, comparisons, figures and reports.

The trainable estimators live in :mod:`replearn.encoders`; ``AutoEncoderEmbedding``
and ``ContrastiveEmbedding`` are still reachable here, imported on first use, so
``import replearn.evaluate`` does not import :mod:`replearn.train`.
"""

from typing import Any

from replearn.evaluate.compare import compare_sentence
from replearn.evaluate.embeddings import METHODS as EMBEDDING_METHODS
from replearn.evaluate.embeddings import NOTES as EMBEDDING_NOTES
from replearn.evaluate.embeddings import embed_2d
from replearn.evaluate.metrics import (
    classification_metrics,
    knn_accuracy,
    mean_ci,
    reconstruction_errors,
    trustworthiness,
)
from replearn.evaluate.probes import PROBES, create_probe, list_probes
from replearn.evaluate.report import Report

__all__ = [  # AutoEncoderEmbedding and ContrastiveEmbedding are not listed: they import train
    "EMBEDDING_METHODS",
    "EMBEDDING_NOTES",
    "PROBES",
    "Report",
    "classification_metrics",
    "compare_sentence",
    "create_probe",
    "embed_2d",
    "knn_accuracy",
    "list_probes",
    "mean_ci",
    "reconstruction_errors",
    "trustworthiness",
]

_MOVED = {
    "AutoEncoderEmbedding": "replearn.encoders.autoencoder_embedding",
    "ContrastiveEmbedding": "replearn.encoders.contrastive_embedding",
}


def __getattr__(name: str) -> Any:
    """The estimators that moved to :mod:`replearn.encoders`, imported lazily."""
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
