"""Saving and loading models as safetensors + JSON, with no pickle."""

import json

import pytest
import torch

from replearn.errors import ReplearnError
from replearn.models import conv_autoencoder, load_model, load_weights, save_model, small_cnn


def test_round_trip_restores_identical_outputs(tmp_path):
    torch.manual_seed(0)
    model = small_cnn(depth=2, width=4)
    model.train()
    model(torch.rand(8, 1, 40, 40))  # move the BN statistics away from their defaults
    path = save_model(model, tmp_path / "run", meta={"classes": ["a", "b", "c"]})
    assert path.name == "model.safetensors" and path.with_suffix(".json").is_file()
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")]
    loaded, meta = load_model(tmp_path / "run")
    assert meta == {"classes": ["a", "b", "c"]}
    model.eval()
    x = torch.rand(5, 1, 40, 40)
    assert torch.equal(model(x), loaded(x))


@pytest.mark.parametrize("hidden", [(), (32,)])
def test_autoencoder_round_trip(tmp_path, hidden):
    ae = conv_autoencoder(hidden=hidden)
    save_model(ae, tmp_path / "ae.safetensors")
    loaded, _ = load_model(tmp_path / "ae.safetensors")
    x = torch.rand(2, 1, 28, 28)
    ae.eval()
    assert torch.equal(ae.encode(x), loaded.encode(x)) and torch.equal(ae(x), loaded(x))


def test_mismatched_architecture_names_first_layer_and_shapes(tmp_path):
    save_model(small_cnn(width=8), tmp_path / "a.safetensors")
    with pytest.raises(ReplearnError, match=r"layer 'conv_1.weight' has shape \(8, 1, 3, 3\).*\(16, 1, 3, 3\)"):
        load_weights(small_cnn(width=16), tmp_path / "a.safetensors")
    with pytest.raises(ReplearnError, match="no entry for layer"):
        load_weights(conv_autoencoder((1, 40, 40)), tmp_path / "a.safetensors")


def test_missing_or_corrupt_files_are_one_line_errors(tmp_path):
    with pytest.raises(ReplearnError, match="does not exist"):
        load_model(tmp_path / "nothing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file at all")
    bad.with_suffix(".json").write_text(json.dumps({"format": "replearn-model/1", "model": small_cnn().config()}))
    with pytest.raises(ReplearnError, match="not a readable safetensors"):
        load_model(bad)
    bad.with_suffix(".json").write_text("{oops")
    with pytest.raises(ReplearnError, match="not valid JSON"):
        load_model(bad)
