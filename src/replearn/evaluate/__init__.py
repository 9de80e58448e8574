"""Evaluation: metrics, 2-D embeddings, comparisons, figures and reports."""

from replearn.evaluate.compare import compare_sentence
from replearn.evaluate.embeddings import METHODS as EMBEDDING_METHODS
from replearn.evaluate.embeddings import NOTES as EMBEDDING_NOTES
from replearn.evaluate.embeddings import embed_2d
from replearn.evaluate.contrastive import ContrastiveEmbedding
from replearn.evaluate.encoder import AutoEncoderEmbedding
from replearn.evaluate.metrics import (
    classification_metrics,
    knn_accuracy,
    mean_ci,
    reconstruction_errors,
    trustworthiness,
)
from replearn.evaluate.probes import PROBES, create_probe, list_probes
from replearn.evaluate.report import Report

__all__ = [
    "AutoEncoderEmbedding",
    "ContrastiveEmbedding",
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
