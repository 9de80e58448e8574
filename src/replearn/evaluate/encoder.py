"""Old import path of :class:`replearn.encoders.AutoEncoderEmbedding` (kept as an alias)."""

from replearn.encoders.autoencoder_embedding import AutoEncoderEmbedding

__all__ = ["AutoEncoderEmbedding"]
