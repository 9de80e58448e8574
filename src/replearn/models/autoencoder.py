"""``AutoEncoder``: an encoder network and a decoder network."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from replearn.models.network import Network


class AutoEncoder(nn.Module):
    """Encoder and decoder :class:`Network` s; ``forward`` reconstructs its input.

    Args:
        encoder: maps (N, C, H, W) images to (N, D) codes.
        decoder: maps (N, D) codes back to (N, C, H, W) images.
    """

    def __init__(self, encoder: Network, decoder: Network) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) images -> (N, D) codes."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """(N, D) codes -> (N, C, H, W) reconstructions."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) images -> (N, C, H, W) reconstructions."""
        return self.decoder(self.encoder(x))

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.encoder.input_shape

    @property
    def code_dim(self) -> int:
        return int(self.encoder.output_shape[0])

    def config(self) -> dict[str, Any]:
        """A JSON-able description for :func:`replearn.models.model_from_config`."""
        return {"type": "autoencoder", "encoder": self.encoder.config(), "decoder": self.decoder.config()}
