import pytest
import torch

from replearn.models import Network
from replearn.models.dropout import Dropout, quantised_rate


@pytest.mark.parametrize("p", [0.25, 0.5, 0.3])
def test_drop_rate_and_scale(p):
    torch.manual_seed(0)
    x = torch.ones(64, 32, 14, 14)
    layer = Dropout(p).train()
    y = layer(x)
    dropped = (y == 0).float().mean().item()
    q = quantised_rate(p)
    assert abs(dropped - q) < 0.005  # 400k elements: the standard error is under 0.001
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / (1 - q)))
    assert abs(y.mean().item() - 1.0) < 0.01  # the expected output equals the input


def test_quantised_rate():
    assert quantised_rate(0.25) == 0.25 and quantised_rate(0.5) == 0.5
    assert quantised_rate(0.3) == 77 / 256
    assert quantised_rate(0.0) == 0.0 and quantised_rate(0.9999) == 255 / 256


def test_eval_identity_and_seeded_masks():
    x = torch.randn(8, 16)
    layer = Dropout(0.5)
    assert torch.equal(layer.eval()(x), x)
    layer.train()
    torch.manual_seed(3)
    a = layer(x)
    torch.manual_seed(3)
    assert torch.equal(layer(x), a)
    assert not torch.equal(layer(x), a)


def test_channels_last_mask_follows_the_layout():
    torch.manual_seed(1)
    x = torch.rand(4, 8, 6, 6) + 0.5
    xc = x.contiguous(memory_format=torch.channels_last)
    torch.manual_seed(1)
    y = Dropout(0.25).train()(xc)
    assert y.is_contiguous(memory_format=torch.channels_last)
    kept = y != 0
    assert torch.allclose(y[kept], x[kept] / 0.75)
    assert 0.15 < 1 - kept.float().mean().item() < 0.35


def test_gradient_flows_through_kept_elements_only():
    x = torch.ones(1000, requires_grad=True)
    y = Dropout(0.5).train()(x)
    y.sum().backward()
    assert torch.equal(x.grad, (y != 0).float() * 2.0)


def test_spec_builds_this_dropout():
    net = Network(["flatten", "dropout 0.5", "dense 3"], (1, 4, 4))
    assert any(type(m) is Dropout for m in net.modules())
