"""``AutoEncoderEmbedding``: the scikit-learn contract, Pipeline use, shapes and the pretrained path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from replearn.errors import ReplearnError
from replearn.encoders import AutoEncoderEmbedding
from replearn.models import conv_autoencoder, save_model

SMALL = ((4,), (4,))  # two tiny pooling blocks keep every test fast
ARGS = dict(blocks=SMALL, epochs=2, batch_size=16, lr=3e-3, device="cpu")


def toy_images(n: int = 48, size: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """SYNTHETIC uint8 images (n, size, size): class 0 a bright left half, class 1 a bright right half."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    images = rng.integers(0, 40, size=(n, size, size)).astype(np.uint8)
    half = size // 2
    images[labels == 0, :, :half] += 200
    images[labels == 1, :, half:] += 200
    return images, labels


def test_init_stores_params_unchanged_and_clone_works():
    est = AutoEncoderEmbedding(code_dim=3, blocks=SMALL, epochs=4, lr=0.01, loss="mse")
    params = est.get_params()
    assert params["code_dim"] == 3 and params["blocks"] is SMALL and params["loss"] == "mse"
    twin = clone(est)
    assert twin.get_params() == params
    assert not hasattr(twin, "model_")


def test_fit_returns_self_and_shapes():
    x, _ = toy_images()
    est = AutoEncoderEmbedding(code_dim=3, **ARGS)
    assert est.fit(x) is est
    assert est.input_shape_ == (1, 16, 16) and est.code_dim_ == 3
    codes = est.transform(x[:5])
    assert codes.shape == (5, 3) and codes.dtype == np.float32
    assert est.reconstruct(x[:5]).shape == (5, 16, 16)
    back = est.inverse_transform(codes)
    assert back.shape == (5, 16, 16) and back.min() >= 0 and back.max() <= 1
    np.testing.assert_allclose(back, est.reconstruct(x[:5]), atol=1e-5)
    assert list(est.get_feature_names_out()) == ["z0", "z1", "z2"]
    assert len(est.history_["loss"]) == 2
    # (N, 1, H, W) float input gives the same codes as (N, H, W) uint8
    np.testing.assert_allclose(est.transform(x[:5, None] / 255.0), codes, atol=1e-5)


def test_training_lowers_reconstruction_error():
    x, _ = toy_images(64)
    before = AutoEncoderEmbedding(**{**ARGS, "epochs": 1, "lr": 1e-9}).fit(x).score(x)
    after = AutoEncoderEmbedding(**{**ARGS, "epochs": 8}).fit(x).score(x)
    assert after > before  # score is the negative MSE


def test_validation_data_is_monitored():
    x, _ = toy_images()
    est = AutoEncoderEmbedding(**ARGS, validation_data=x[:8]).fit(x[8:])
    assert len(est.history_["val_loss"]) == 2


def test_in_a_pipeline_with_a_classifier():
    x, y = toy_images(64)
    pipe = Pipeline([("ae", AutoEncoderEmbedding(**{**ARGS, "epochs": 6})), ("clf", LogisticRegression())])
    pipe.fit(x, y)
    assert pipe.predict(x).shape == (64,)
    assert pipe.score(x, y) >= 0.9  # the two halves are trivially separable from a 2-D code
    clone(pipe)  # the whole pipeline clones


def test_same_seed_same_codes():
    x, _ = toy_images()
    a = AutoEncoderEmbedding(**ARGS).fit(x).transform(x)
    b = AutoEncoderEmbedding(**ARGS).fit(x).transform(x)
    np.testing.assert_array_equal(a, b)


def test_pretrained_path_does_not_refit(tmp_path):
    x, y = toy_images()
    trained = AutoEncoderEmbedding(**ARGS).fit(x)
    save_model(trained.model_.cpu(), tmp_path / "run", meta={"workflow": "test"})
    est = AutoEncoderEmbedding.from_pretrained(tmp_path / "run", device="cpu")
    assert est.epochs == 0
    np.testing.assert_allclose(est.transform(x), trained.transform(x), atol=1e-6)
    pipe = Pipeline([("ae", est), ("clf", LogisticRegression())]).fit(x, y)
    np.testing.assert_allclose(pipe.named_steps["ae"].transform(x), trained.transform(x), atol=1e-6)
    # a clone is unfitted, and fitting it with epochs=0 adopts the same weights
    again = clone(est).fit(x)
    np.testing.assert_allclose(again.transform(x), trained.transform(x), atol=1e-6)


def test_prebuilt_model_is_not_modified_by_fit():
    x, _ = toy_images()
    torch.manual_seed(0)
    ae = conv_autoencoder((1, 16, 16), code_dim=2, blocks=SMALL)
    before = {k: v.clone() for k, v in ae.state_dict().items()}
    est = AutoEncoderEmbedding(model=ae, epochs=2, batch_size=16, device="cpu").fit(x)
    for k, v in ae.state_dict().items():
        assert torch.equal(v, before[k])
    assert est.model_ is not ae


def test_denoising_trains_on_corrupted_inputs_against_clean_targets():
    x, _ = toy_images(64)
    plain = AutoEncoderEmbedding(**{**ARGS, "epochs": 6}).fit(x)
    noisy = AutoEncoderEmbedding(**{**ARGS, "epochs": 6}, noise=0.5, noise_kind="dropout").fit(x)
    again = AutoEncoderEmbedding(**{**ARGS, "epochs": 6}, noise=0.5, noise_kind="dropout").fit(x)
    # the corruption changes training (same seed otherwise) and is itself seeded
    assert not np.allclose(noisy.transform(x), plain.transform(x))
    np.testing.assert_array_equal(noisy.transform(x), again.transform(x))
    # the training loss is measured on corrupted inputs, the validation-style score on clean ones:
    # with half the pixels dropped the training loss stays above the plain model's
    assert noisy.history_["loss"][-1] > plain.history_["loss"][-1]
    # it still learns to reconstruct clean images: better than an untrained model
    untrained = AutoEncoderEmbedding(**{**ARGS, "epochs": 1, "lr": 1e-9}).fit(x)
    assert noisy.score(x) > untrained.score(x)


def test_layerwise_pretraining_then_end_to_end_training():
    x, _ = toy_images(64)
    plain = AutoEncoderEmbedding(**ARGS).fit(x)
    greedy = AutoEncoderEmbedding(**ARGS, layerwise_epochs=2).fit(x)
    assert plain.pretraining_ == []
    # two pooling blocks and the code layer: three stages, each trained for 2 epochs, then the usual 2 epochs
    assert [r["stage"] for r in greedy.pretraining_] == [1, 2, 3]
    assert [r["loss"] for r in greedy.pretraining_] == ["bce", "mse", "mse"]
    assert all(len(r["epoch_losses"]) == 2 for r in greedy.pretraining_)
    assert len(greedy.history_["loss"]) == 2
    # pretraining changes where end-to-end training starts, so the codes differ from the plain run's
    assert not np.allclose(greedy.transform(x), plain.transform(x))
    assert all(p.requires_grad for p in greedy.model_.parameters())
    assert "layerwise_epochs" in greedy.get_params() and clone(greedy).layerwise_epochs == 2


def test_errors():
    x, _ = toy_images()
    with pytest.raises(NotFittedError):
        AutoEncoderEmbedding().transform(x)
    with pytest.raises(ReplearnError, match="needs a prebuilt AutoEncoder"):
        AutoEncoderEmbedding(epochs=0).fit(x)
    with pytest.raises(ReplearnError, match="'bce' or 'mse'"):
        AutoEncoderEmbedding(loss="cross_entropy").fit(x)
    with pytest.raises(ReplearnError, match="noise=-0.2"):
        AutoEncoderEmbedding(noise=-0.2).fit(x)
    with pytest.raises(ReplearnError, match="not known"):
        AutoEncoderEmbedding(noise=0.1, noise_kind="salt").fit(x)
    with pytest.raises(ReplearnError, match="layerwise_epochs must be"):
        AutoEncoderEmbedding(layerwise_epochs=-1).fit(x)
    with pytest.raises(ReplearnError, match="layerwise_epochs > 0 needs epochs > 0"):
        AutoEncoderEmbedding(model=conv_autoencoder((1, 16, 16), blocks=SMALL), epochs=0, layerwise_epochs=1).fit(x)
    with pytest.raises(ReplearnError, match="unknown model"):
        AutoEncoderEmbedding(model="no_such_model").fit(x)
    est = AutoEncoderEmbedding(**{**ARGS, "epochs": 1}).fit(x)
    with pytest.raises(ReplearnError, match="the model takes 16x16"):
        est.transform(np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(ReplearnError, match=r"expected \(N, 2\)"):
        est.inverse_transform(np.zeros((2, 3)))


def test_flattened_rows_with_image_shape_compose_after_other_transformers():
    from sklearn.preprocessing import MinMaxScaler

    x, y = toy_images(64)
    rows = x.reshape(64, -1)
    images = AutoEncoderEmbedding(**ARGS).fit(x)
    flat = AutoEncoderEmbedding(**ARGS, image_shape=(16, 16)).fit(rows)
    # the same images, flattened, give the same codes; reconstructions come back as rows
    np.testing.assert_array_equal(flat.transform(rows), images.transform(x))
    assert flat.n_features_in_ == images.n_features_in_ == 256 and flat.flat_input_ and not images.flat_input_
    assert flat.reconstruct(rows).shape == (64, 256) and flat.inverse_transform(flat.transform(rows)).shape == (64, 256)
    np.testing.assert_array_equal(flat.reconstruct(rows), images.reconstruct(x).reshape(64, -1))
    # after a scaler (rows in [0, 1]) and before a classifier, as in scikit-learn's digits examples
    ae = AutoEncoderEmbedding(**{**ARGS, "epochs": 6}, image_shape=(16, 16))
    pipe = Pipeline([("scale", MinMaxScaler()), ("ae", ae), ("clf", LogisticRegression())])
    assert pipe.fit(rows.astype(np.float64), y).score(rows.astype(np.float64), y) >= 0.9
    with pytest.raises(ValueError, match="X has 255 features, but AutoEncoderEmbedding is expecting 256"):
        flat.transform(rows[:, :255])
    with pytest.raises(ReplearnError, match="flattened images of unknown size; give image_shape"):
        AutoEncoderEmbedding(**ARGS).fit(rows)
