"""``load_encoder`` / ``load_classifier``: saved tiny models give codes, probabilities and one-line errors.

The error lines are those of the loaders they replace in the domain, embed and
predict workflows (tests/workflows/test_domain.py, test_embed.py, test_predict.py
assert on them through the CLI).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from replearn.data import to_tensor
from replearn.encoders import LoadedClassifier, LoadedEncoder, load_classifier, load_encoder
from replearn.errors import ReplearnError
from replearn.models import Network, conv_autoencoder, save_model, small_cnn
from replearn.train import predict

SIZE = 16
NAMES = ["0 before division", "1 septum forming", "2 septum formed"]


def crops(n: int = 5) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, SIZE, SIZE), dtype=np.uint8)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """An untrained 3-class CNN (run folder), an autoencoder, a 1-output network and a vector network (files)."""
    root = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    cnn = small_cnn((1, SIZE, SIZE), 3, depth=2, width=4, dense=8).eval()
    with torch.no_grad():
        cnn.get_layer("dense_2").bias.copy_(torch.tensor([0.3, 0.0, -0.3]))
    save_model(cnn, root / "run" / "model.safetensors", {"task": "classifier", "class_names": NAMES})
    ae = conv_autoencoder((1, SIZE, SIZE), code_dim=4, blocks=((4,), (4,))).eval()
    save_model(ae, root / "ae.safetensors", {"task": "autoencoder"})
    one = Network(["conv 2", "relu", "gap as features", "dense 1"], (1, SIZE, SIZE)).eval()
    save_model(one, root / "one.safetensors", {})
    vec = Network(["dense 4 as features", "dense 3"], (8,)).eval()
    save_model(vec, root / "vec.safetensors", {})
    (root / "notes.txt").write_text("not a model")
    (root / "empty").mkdir()
    (root / "two").mkdir()
    save_model(ae, root / "two" / "autoencoder-d4.safetensors", {})
    return root, cnn, ae


def test_classifier_as_encoder_gives_the_features_layer(saved):
    root, cnn, _ = saved
    enc = load_encoder(root / "run")
    assert isinstance(enc, LoadedEncoder)
    assert enc.kind == "classifier" and enc.input_shape == (1, SIZE, SIZE) and enc.layer == "features"
    assert enc.path == root / "run" / "model.safetensors" and enc.class_names == NAMES and enc.code_dim == 8
    assert enc.description == "classifier network, layer 'features' (8-D codes)"
    x = crops()
    with torch.no_grad():
        expected = cnn.forward_features(to_tensor(x), "features").flatten(1).numpy()
    codes = enc.codes(x, "cpu")
    assert codes.shape == (5, 8) and codes.dtype == np.float32
    np.testing.assert_allclose(codes, expected, atol=1e-6)
    np.testing.assert_allclose(enc.probabilities(x, "cpu"),
                               torch.softmax(predict(cnn, to_tensor(x)).double(), dim=1).numpy(), atol=1e-12)
    # building the codes module draws nothing from the RNG (the domain workflow seeds before encoding)
    state = torch.get_rng_state()
    enc.module()
    assert torch.equal(state, torch.get_rng_state())
    # another layer, flattened
    conv = load_encoder(root / "run", layer="conv_1")
    assert conv.kind == "classifier" and conv.codes(x).shape == (5, 4 * SIZE * SIZE)
    with pytest.raises(ReplearnError, match="holds a classifier, not an autoencoder"):
        enc.reconstruct(x)


def test_autoencoder_as_encoder(saved):
    root, _, ae = saved
    enc = load_encoder(root / "ae.safetensors")
    assert enc.kind == "autoencoder" and enc.class_names is None and enc.code_dim == 4
    assert enc.description == "autoencoder encoder (4-D codes)"
    x = crops()
    with torch.no_grad():
        np.testing.assert_allclose(enc.codes(x), ae.encoder(to_tensor(x)).numpy(), atol=1e-6)
        np.testing.assert_allclose(enc.reconstruct(x), ae(to_tensor(x)).numpy()[:, 0], atol=1e-6)
    assert enc.module() is enc.model.encoder
    with pytest.raises(ReplearnError, match="holds an autoencoder, not a classifier; it has no class probabilities"):
        enc.probabilities(x)
    one = load_encoder(root / "one.safetensors")
    assert one.kind == "network" and one.description == "network layer 'features' (2-D codes)"


def test_load_classifier_unpacks_like_the_predict_workflow(saved):
    root, cnn, _ = saved
    loaded = load_classifier(root / "run")
    assert isinstance(loaded, LoadedClassifier)
    model, meta, names = loaded
    assert names == NAMES and meta["task"] == "classifier" and loaded.input_shape == (1, SIZE, SIZE)
    x = crops()
    np.testing.assert_allclose(loaded.probabilities(x, "cpu"),
                               torch.softmax(predict(cnn, to_tensor(x)).double(), dim=1).numpy(), atol=1e-12)
    # a 1-output network is a (1-class) classifier for predict, with numbered class names
    assert load_classifier(root / "one.safetensors").class_names == ["0"]


def one_line(exc_info) -> str:
    text = str(exc_info.value)
    assert "\n" not in text
    return text


def test_encoder_error_lines(saved):
    root, _, _ = saved
    cases = [
        (root / "nothing", "--model {p}: no such run folder or weights file"),
        (root / "empty", "--model {p}: folder has no model.safetensors; it holds no .safetensors file"),
        (root / "two", "--model {p}: folder has no model.safetensors; it holds autoencoder-d4.safetensors: "
                       "name one of them"),
        (root / "notes.txt", "--model {p}: expected a run folder or a .safetensors file, got a .txt file"),
        (root / "vec.safetensors", "--model {p}: takes inputs of shape (8,), not images (C, H, W)"),
    ]
    for path, message in cases:
        with pytest.raises(ReplearnError) as info:
            load_encoder(path)
        assert one_line(info) == message.format(p=path)
    with pytest.raises(ReplearnError) as info:
        load_encoder(root / "run", layer="nope")
    assert one_line(info).startswith(f"--model {root / 'run'}: the network has no layer 'nope' to read codes from; "
                                     "its layers are conv_1, relu_1, bn_1")
    assert one_line(info).endswith("(choose one with --layer)")
    with pytest.raises(ReplearnError, match=r"^--base x: no such run folder"):
        load_encoder("x", option="--base")


def test_classifier_error_lines(saved):
    root, _, _ = saved
    for path, message in [
        (root / "ae.safetensors",
         "--model {p}: holds an autoencoder, not a classifier (use `replearn embed` for codes)"),
        (root / "nothing", "--model {p}: no such run folder or weights file"),
        (root / "empty", "--model {p}: folder has no model.safetensors; it holds no .safetensors file"),
    ]:
        with pytest.raises(ReplearnError) as info:
            load_classifier(path)
        assert one_line(info) == message.format(p=path)
    conv = Network(["conv 2 as features"], (1, 4, 4))
    path = save_model(conv, root / "conv.safetensors", {})
    with pytest.raises(ReplearnError) as info:
        load_classifier(path)
    assert one_line(info) == (f"--model {path}: holds a network with outputs (2, 4, 4), not a classifier "
                              "(use `replearn embed` for codes)")
