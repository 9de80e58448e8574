"""Contract test over every registered model: shapes, no NaN, backward runs, config round-trip."""

import pytest
import torch

from replearn.errors import ReplearnError
from replearn.models import create_model, list_models, model_from_config


@pytest.mark.parametrize("name", list_models())
def test_forward_backward_and_rebuild(name):
    torch.manual_seed(0)
    model = create_model(name)
    x = torch.rand(4, *model.input_shape)
    out = model(x)
    assert out.shape[0] == 4
    assert torch.isfinite(out).all()
    out.float().pow(2).mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    rebuilt = model_from_config(model.config())
    rebuilt.load_state_dict(model.state_dict())
    model.eval(), rebuilt.eval()
    assert torch.equal(model(x), rebuilt(x))


def test_registry_lists_lecture_models():
    assert {"minivgg", "conv_autoencoder", "small_cnn"} <= set(list_models())


def test_unknown_model_lists_available():
    with pytest.raises(ReplearnError, match="available: .*minivgg"):
        create_model("resnet9000")


def test_bad_keyword_is_a_user_error():
    with pytest.raises(ReplearnError, match="minivgg"):
        create_model("minivgg", nonsense=3)


def test_unknown_keyword_lists_the_accepted_ones():
    with pytest.raises(ReplearnError) as exc:
        create_model("small_cnn", depht=3)
    message = str(exc.value)
    assert "unknown keyword 'depht'" in message
    assert "it accepts: input_shape, n_classes, depth, width" in message
