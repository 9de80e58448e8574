"""The estimators on CUDA: every part of a fitted model on the GPU, codes that separate known clusters, and a model
saved from the GPU that gives the same codes on the CPU. Skipped where no CUDA device is present (CI has none;
`bench/device_smoke.sh cuda` and these tests are what a session with a GPU runs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from replearn.encoders import CNNClassifier, UMAPEmbedding, load_encoder
from replearn.evaluate import knn_accuracy
from replearn.models import save_model
from tests.encoders.test_umap_embedding import toy_images  # three classes: a bright left, middle or right third

DEVICE = "cuda"
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def devices(model: torch.nn.Module) -> set[str]:
    return {t.device.type for t in [*model.parameters(), *model.buffers()]}


@pytest.mark.parametrize("kind, recon_weight", [("umap", 0.0), ("umap", 1.0), ("tsne", 1.0)])
def test_umap_with_a_pca_stem_fits_and_encodes_on_cuda(kind, recon_weight, tmp_path):
    # the frozen PCA stem is not trained, so fit() alone would leave it on the CPU (seen on an H200, 2026-12-04)
    images, labels = toy_images()
    est = UMAPEmbedding(model="dense_autoencoder", hidden=(32,), epochs=6, batch_size=32, lr=0.01, n_neighbors=8,
                        pca_dims=16, kind=kind, recon_weight=recon_weight, decoder_epochs=2, device=DEVICE)
    est.fit(images)
    assert devices(est.model_) == {DEVICE}
    codes = est.transform(images)
    new, new_labels = toy_images(seed=1)
    assert knn_accuracy(codes, labels, est.transform(new), new_labels, k=5) >= 0.9  # chance: 1/3
    assert est.reconstruct(new[:4]).shape == (4, 12, 12)
    save_model(est.model_, tmp_path / "run", meta={"workflow": "test"})  # saved from the GPU, read on the CPU
    loaded = load_encoder(tmp_path / "run")
    assert devices(loaded.model) == {"cpu"}
    np.testing.assert_allclose(loaded.codes(new), est.transform(new), rtol=1e-4, atol=1e-4)


def test_cnn_classifier_trains_and_predicts_on_cuda():
    images, labels = toy_images()
    clf = CNNClassifier("small_cnn", dict(depth=2, width=8, dropout=0.0, dense=16), epochs=8, batch_size=16,
                        device=DEVICE).fit(images, labels)
    assert devices(clf.model_) == {DEVICE}
    new, new_labels = toy_images(seed=1)
    assert (clf.predict(new) == new_labels).mean() >= 0.9
