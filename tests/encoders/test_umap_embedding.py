"""``UMAPEmbedding``: the scikit-learn contract, codes that separate known clusters, save/load round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from replearn.encoders import UMAPEmbedding, load_encoder
from replearn.errors import ReplearnError
from replearn.evaluate import knn_accuracy
from replearn.models import AutoEncoder, save_model

ARGS = dict(model="dense_autoencoder", hidden=(32,), epochs=6, batch_size=32, lr=0.01, n_neighbors=8,
            pca_dims=None, device="cpu")


def toy_images(n: int = 120, size: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """SYNTHETIC uint8 images (n, size, size): three classes, a bright left, middle or right third."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    images = rng.integers(0, 40, size=(n, size, size)).astype(np.uint8)
    third = size // 3
    for c in range(3):
        images[labels == c, :, c * third:(c + 1) * third] += 200
    return images, labels


@pytest.fixture(scope="module")
def fitted():
    images, labels = toy_images()
    return UMAPEmbedding(**ARGS).fit(images), images, labels


def test_init_stores_params_unchanged_and_clone_works():
    est = UMAPEmbedding(n_neighbors=10, recon_weight=2.0, hidden=(64,))
    params = est.get_params()
    assert params["n_neighbors"] == 10 and params["recon_weight"] == 2.0 and params["hidden"] == (64,)
    assert clone(est).get_params() == params
    with pytest.raises(NotFittedError):
        est.transform(np.zeros((2, 12, 12), np.uint8))


def test_fit_returns_self_and_transform_gives_separated_2d_codes(fitted):
    est, images, labels = fitted
    codes = est.transform(images)
    assert codes.shape == (len(images), 2) and codes.dtype == np.float32 and np.isfinite(codes).all()
    assert est.code_dim_ == 2 and est.input_shape_ == (1, 12, 12) and est.graph_edges_ >= len(images) * 7
    assert est.history_["loss"][-1] < est.history_["loss"][0]
    new, new_labels = toy_images(seed=1)  # unseen images: one forward pass
    assert knn_accuracy(codes, labels, est.transform(new), new_labels, k=5) >= 0.9  # chance: 1/3
    assert est.reconstruct(new[:4]).shape == (4, 12, 12)
    assert est.inverse_transform(codes[:3]).shape == (3, 12, 12)


def test_same_seed_same_codes(fitted):
    est, images, _ = fitted
    again = UMAPEmbedding(**ARGS).fit(images)
    np.testing.assert_array_equal(again.transform(images), est.transform(images))


def test_save_load_round_trip(fitted, tmp_path):
    est, images, _ = fitted
    save_model(est.model_.cpu(), tmp_path / "run", meta={"workflow": "test"})
    loaded = load_encoder(tmp_path / "run")
    assert loaded.kind == "autoencoder" and isinstance(loaded.model, AutoEncoder)
    np.testing.assert_allclose(loaded.codes(images), est.transform(images), rtol=1e-5, atol=1e-5)
    again = UMAPEmbedding.from_pretrained(tmp_path / "run")
    np.testing.assert_allclose(again.transform(images), est.transform(images), rtol=1e-5, atol=1e-5)


def test_recon_weight_trains_the_decoder_with_the_codes():
    images, _ = toy_images()
    est = UMAPEmbedding(**{**ARGS, "recon_weight": 1.0}).fit(images)
    x = images / 255.0
    mean_image_mse = float(((x - x.mean(axis=0)) ** 2).mean())  # what a decoder ignoring the codes would reach
    assert -est.score(images) < 0.5 * mean_image_mse  # score: negative MSE


@pytest.mark.parametrize("bad, message", [
    (dict(n_neighbors=1), "n_neighbors must be an integer >= 2"),
    (dict(negative_rate=0), "negative_rate must be positive"),
    (dict(recon_weight=-1.0), "recon_weight must be >= 0"),
    (dict(loss="hinge"), "loss 'hinge' is not allowed"),
    (dict(n_neighbors=200), "too few for n_neighbors=200"),
    (dict(model="umap_autoencoder", hidden=(), batch_size=1), "batch_size must be an integer >= 2"),
])
def test_bad_parameters_are_one_line_errors(bad, message):
    with pytest.raises(ReplearnError, match=message):
        UMAPEmbedding(**{**ARGS, **bad}).fit(toy_images()[0])


def test_resumed_training_equals_an_uninterrupted_one(tmp_path, monkeypatch):
    """The neighbour/negative generator is in the checkpoint: stopped after epoch 1 and resumed, the codes are
    identical to an uninterrupted fit's (what `replearn autoencoder --objective umap --resume` relies on)."""
    import torch

    import replearn.encoders.umap_embedding as module
    from replearn.train import load_checkpoint

    images, _ = toy_images(80)
    args = {**ARGS, "epochs": 3}
    whole = UMAPEmbedding(**args).fit(images, checkpoint_dir=tmp_path / "a")
    real_fit = module.fit
    monkeypatch.setattr(module, "fit", lambda *a, **k: real_fit(*a, callbacks=[lambda epoch, logs: True], **k))
    UMAPEmbedding(**args).fit(images, checkpoint_dir=tmp_path / "b")
    state = load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    assert state["epoch"] == 1 and state["model"]["_extra_state"].dtype == torch.uint8
    monkeypatch.setattr(module, "fit", real_fit)
    resumed = UMAPEmbedding(**args).fit(images, checkpoint_dir=tmp_path / "b", resume=True)
    assert resumed.history_["loss"] == whole.history_["loss"]
    assert np.array_equal(resumed.transform(images), whole.transform(images))


def test_pca_layer_is_set_to_the_principal_components_and_stays_frozen():
    """umap_autoencoder's first layer: the training images' principal components (scaled), not trained."""
    from sklearn.decomposition import PCA

    images, labels = toy_images()
    est = UMAPEmbedding(**{**ARGS, "model": "umap_autoencoder", "hidden": (32,), "decoder_epochs": 2}).fit(images)
    layer = est.model_.encoder.get_layer("pca")
    assert not layer.weight.requires_grad
    rows = images.reshape(len(images), -1) / 255.0
    projected = layer(torch.from_numpy(rows.astype(np.float32))).detach().numpy()
    reference = PCA(100, random_state=0).fit_transform(rows)
    np.testing.assert_allclose(np.abs(projected[:, :5]) / np.abs(projected[:, :5]).max(0),
                               np.abs(reference[:, :5]) / np.abs(reference[:, :5]).max(0), atol=1e-3)
    assert float(projected.var(0).sum() / 100) == pytest.approx(1.0, rel=0.05)  # unit variance per input on average
    codes = est.transform(images)
    assert knn_accuracy(codes[::2], labels[::2], codes[1::2], labels[1::2], k=5) >= 0.9
    assert len(est.decoder_history_["loss"]) == 2 and est.decoder_history_["loss"][-1] < est.decoder_history_["loss"][0]
    with pytest.raises(ReplearnError, match="pca layer has 100 outputs; the 60 training images"):
        UMAPEmbedding(**{**ARGS, "model": "umap_autoencoder", "hidden": (32,)}).fit(images[:60])
