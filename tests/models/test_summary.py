"""Keras-exact parameter counts for the lecture's models."""

import torch

from replearn.models import attach_head, conv_autoencoder, count_params, freeze, minivgg, summary


def test_lecture_transfer_model_counts_exactly():
    base = minivgg()
    model = attach_head(base, "features")
    freeze(model.truncate("features"))
    assert count_params(model) == (1_679_082, 1_612_298, 66_784)
    text = summary(model)
    assert "Total params: 1,679,082" in text
    assert "Trainable params: 1,612,298" in text
    assert "Non-trainable params: 66,784" in text
    assert "features (Flatten)" in text and "(None, 3136)" in text


def test_unfrozen_minivgg_counts_only_bn_statistics_as_non_trainable():
    total, trainable, non_trainable = count_params(minivgg())
    assert total == 1_679_082
    # BN moving mean+variance: 2 * (32 + 32 + 64 + 64 + 512)
    assert non_trainable == 2 * (32 + 32 + 64 + 64 + 512) == 1408
    assert trainable == total - non_trainable


def test_lecture_autoencoder_shapes_and_summary():
    ae = conv_autoencoder()
    assert ae.encoder.layer_shapes["features"] == (2,)
    assert ae.encoder.output_shape == (2,)
    assert ae.decoder.layer_shapes["reshape_1"] == (8, 7, 7)
    # conv widths in the lecture's order: encoder 32 | 32 16 | 16 8, decoder 8 16 | 16 32 | 32 -> 1
    enc = [m.out_channels for m in ae.encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    dec = [m.out_channels for m in ae.decoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert enc == [32, 32, 16, 16, 8]
    assert dec == [8, 16, 16, 32, 32, 1]
    text = summary(ae)
    assert "encoder.features (Linear)" in text
    total, trainable, non_trainable = count_params(ae)
    assert total == trainable + non_trainable


def test_summary_has_a_row_per_layer():
    model = minivgg()
    text = summary(model, title="minivgg")
    assert text.startswith('Model: "minivgg"')
    for name in model.layer_names:
        assert f"{name} (" in text
