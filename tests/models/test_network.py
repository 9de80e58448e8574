"""The spec language and Network: named layers, truncation, extension, errors."""

import pytest
import torch

from replearn.errors import ReplearnError
from replearn.models import KERAS_BN_MOMENTUM, Network, attach_head, conv_autoencoder, freeze, minivgg, unfreeze


def test_named_layer_can_be_found_again():
    net = Network(["conv 4", "relu", "flatten as features", "dense 3"], (1, 6, 6))
    assert net.layer_names == ["conv_1", "relu_1", "features", "dense_1"]
    assert isinstance(net.get_layer("features"), torch.nn.Flatten)
    assert net.layer_shapes["features"] == (144,)
    x = torch.rand(2, 1, 6, 6)
    assert net.forward_features(x).shape == (2, 144)


def test_truncate_shares_modules_and_extend_adds_fresh_layers():
    base = minivgg()
    new = attach_head(base)
    assert new.get_layer("conv_1") is base.get_layer("conv_1")
    assert new.get_layer("dense_1") is not base.get_layer("dense_1")
    assert new.output_shape == (10,)
    assert new.layer_names[: base.layer_names.index("features") + 1] == base.layer_names[:17]


def test_spec_options_and_shapes():
    net = Network(["conv 8 k5 s2", "maxpool", "upsample 2", "gap", "dense 4"], (3, 16, 16))
    assert net.layer_shapes["conv_1"] == (8, 8, 8)
    assert net.layer_shapes["maxpool_1"] == (8, 4, 4)
    assert net.layer_shapes["upsample_1"] == (8, 8, 8)
    assert net(torch.rand(1, 3, 16, 16)).shape == (1, 4)


@pytest.mark.parametrize(
    "spec, message",
    [
        (["conv"], "needs 1 argument"),
        (["conv x"], "must be an integer"),
        (["dense 3"], "needs flat"),
        (["flatten", "conv 3"], "needs \\(C, H, W\\)"),
        (["blah 3"], "unknown layer 'blah'"),
        (["dropout 1.5"], "dropout rate"),
        (["conv 3 q4"], "unknown option"),
        (["flatten", "reshape 5 5 5"], "cannot reshape"),
        (["conv 2 as a", "conv 2 as a"], "used twice"),
        ([], "empty"),
    ],
)
def test_bad_specs_give_one_line_errors(spec, message):
    with pytest.raises(ReplearnError, match=message):
        Network(spec, (1, 8, 8))


def test_bn_momentum_is_passed_to_every_batchnorm():
    net = minivgg(bn_momentum=KERAS_BN_MOMENTUM, bn_eps=1e-3)
    bns = [m for m in net.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert len(bns) == 5 and all(b.momentum == 0.01 and b.eps == 1e-3 for b in bns)


def test_glorot_init_zero_biases():
    net = minivgg()
    assert torch.count_nonzero(net.get_layer("conv_1").bias) == 0
    limit = (6 / (9 * 1 + 9 * 32)) ** 0.5
    assert net.get_layer("conv_1").weight.abs().max() <= limit


def test_freeze_marks_batchnorm_and_unfreeze_restores():
    net = minivgg()
    part = net.truncate("features")
    freeze(part)
    assert all(not p.requires_grad for p in part.parameters())
    assert all(p.requires_grad for p in net.get_layer("dense_1").parameters())
    assert net.get_layer("bn_1").frozen and not net.get_layer("bn_1").training
    unfreeze(part)
    assert all(p.requires_grad for p in net.parameters()) and not net.get_layer("bn_1").frozen


def test_autoencoder_on_40x40_and_bad_sizes():
    ae = conv_autoencoder((1, 40, 40), code_dim=8)
    x = torch.rand(3, 1, 40, 40)
    assert ae.encode(x).shape == (3, 8)
    out = ae(x)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    with pytest.raises(ReplearnError, match="divisible by 4"):
        conv_autoencoder((1, 30, 30))


def test_autoencoder_hidden_dense_layers_are_mirrored():
    plain, deep = conv_autoencoder(), conv_autoencoder(hidden=(64, 16))
    assert plain.encoder.layer_names[-2:] == ["flatten_1", "features"]  # the lecture's: flatten -> Dense(2)
    assert deep.encoder.layer_names[-8:] == ["flatten_1", "dense_1", "relu_6", "bn_6", "dense_2", "relu_7", "bn_7", "features"]
    assert deep.encoder.get_layer("dense_1").out_features == 64 and deep.encoder.get_layer("features").in_features == 16
    # decoder: 2 -> 16 -> 64 -> 8*7*7, then the lecture's convolutions
    assert [deep.decoder.get_layer(f"dense_{i}").out_features for i in (1, 2, 3)] == [16, 64, 8 * 7 * 7]
    x = torch.rand(3, 1, 28, 28)
    assert deep.encode(x).shape == (3, 2) and deep(x).shape == x.shape
    extra = (72 * 64 + 64 + 2 * 64 + 64 * 16 + 16 + 2 * 16 + 16 * 2 + 2 - (72 * 2 + 2)) \
        + (2 * 16 + 16 + 2 * 16 + 16 * 64 + 64 + 2 * 64 + 64 * 392 + 392 - (2 * 392 + 392))
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(deep) - n(plain) == extra
    with pytest.raises(ReplearnError, match="hidden dense widths must be positive"):
        conv_autoencoder(hidden=(0,))
