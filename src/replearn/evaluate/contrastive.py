"""Old import path of :class:`replearn.encoders.ContrastiveEmbedding` (kept as an alias)."""

from replearn.encoders.contrastive_embedding import ContrastiveEmbedding

__all__ = ["ContrastiveEmbedding"]
