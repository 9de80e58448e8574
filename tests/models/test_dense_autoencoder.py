"""``dense_autoencoder``: shapes, the mirrored decoder, ``blocks`` ignored, bad widths."""

from __future__ import annotations

import pytest
import torch

from replearn.errors import ReplearnError
from replearn.models import create_model


def test_shapes_and_mirrored_widths():
    ae = create_model("dense_autoencoder", input_shape=(1, 12, 10), code_dim=3, hidden=(16, 8), blocks=((32,),))
    x = torch.rand(5, 1, 12, 10)
    assert ae.encoder(x).shape == (5, 3) and ae(x).shape == (5, 1, 12, 10)
    assert ae(x).min() >= 0 and ae(x).max() <= 1  # sigmoid output
    widths = [m.out_features for m in ae.decoder.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [8, 16, 120] and ae.code_dim == 3


def test_bad_widths_are_one_line_errors():
    with pytest.raises(ReplearnError, match="hidden widths"):
        create_model("dense_autoencoder", hidden=())
