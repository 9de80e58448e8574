"""Trainable image encoders and classifiers as scikit-learn estimators, and loaders of saved models.

The layer between training/evaluation and the workflows: each estimator trains
through :func:`replearn.train.fit` and follows scikit-learn's contract, so it
can sit in a ``Pipeline``, be cloned, pickled and searched over.
"""

from replearn.encoders._inputs import ImageInputError, ImageInputTypeError
from replearn.encoders.autoencoder_embedding import AutoEncoderEmbedding
from replearn.encoders.cnn_classifier import CNNClassifier
from replearn.encoders.contrastive_embedding import ContrastiveEmbedding
from replearn.encoders.fine_tuned_classifier import EncoderHead, FineTunedClassifier, pretrained_encoder
from replearn.encoders.loading import LoadedClassifier, LoadedEncoder, load_classifier, load_encoder, weights_file
from replearn.encoders.semi_supervised_classifier import SemiSupervisedClassifier
from replearn.encoders.umap_embedding import UMAPEmbedding

__all__ = [
    "AutoEncoderEmbedding",
    "CNNClassifier",
    "ContrastiveEmbedding",
    "EncoderHead",
    "FineTunedClassifier",
    "ImageInputError",
    "ImageInputTypeError",
    "LoadedClassifier",
    "LoadedEncoder",
    "SemiSupervisedClassifier",
    "UMAPEmbedding",
    "load_classifier",
    "load_encoder",
    "pretrained_encoder",
    "weights_file",
]
