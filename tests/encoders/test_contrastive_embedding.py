"""``ContrastiveEmbedding``: SimCLR features as a scikit-learn transformer.

Moved here from tests/train/test_contrastive.py (the NT-Xent and objective tests stay there).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from replearn.data import to_tensor
from replearn.encoders import ContrastiveEmbedding
from replearn.errors import ReplearnError
from replearn.train.contrastive import cell_views


def spots(n: int = 96, size: int = 16, seed: int = 0) -> np.ndarray:
    """SYNTHETIC uint8 images, each with its own 1-3 Gaussian spots (every image is a distinct instance)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    out = np.zeros((n, size, size))
    for i in range(n):
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.uniform(3, size - 3, 2)
            s = rng.uniform(1, 3)
            out[i] += rng.uniform(0.4, 1) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
    return (np.clip(out, 0, 1) * 255).astype(np.uint8)


def view_retrieval(est: ContrastiveEmbedding, x: np.ndarray) -> float:
    """Fraction of images whose view's nearest feature (cosine) among other views is a view of the same image."""
    t = to_tensor(x)
    views = cell_views(shift=2)
    a, b = views(t, torch.Generator().manual_seed(5)), views(t, torch.Generator().manual_seed(6))
    fa, fb = (torch.nn.functional.normalize(torch.from_numpy(est.transform(v)), dim=1) for v in (a, b))
    return float(((fa @ fb.T).argmax(dim=1) == torch.arange(len(x))).float().mean())


def test_contrastive_embedding_learns_view_invariant_features():
    x = spots()
    args = dict(depth=2, width=8, batch_size=32, shift=2, temperature=0.2, device="cpu", seed=0)
    est = ContrastiveEmbedding(epochs=30, **args)
    assert est.fit(x) is est
    feats = est.transform(x)
    assert feats.shape == (96, 16) and feats.dtype == np.float32
    assert est.feature_dim_ == 16 and list(est.get_feature_names_out()[:2]) == ["f0", "f1"]
    loss = est.history_["loss"]
    assert len(loss) == 30 and loss[-1] < loss[0] - 0.5
    # what SimCLR trains for: two new random views of an image find each other among 96 images
    # far more often than with the untrained encoder (chance: 1/96)
    untrained = ContrastiveEmbedding(epochs=1, lr=1e-9, **args).fit(x)
    trained_hits, untrained_hits = view_retrieval(est, x), view_retrieval(untrained, x)
    assert trained_hits >= max(0.1, 2 * untrained_hits), (trained_hits, untrained_hits)
    # seeded: the same estimator gives the same features
    np.testing.assert_array_equal(clone(est).fit(x).transform(x), feats)


def test_contrastive_embedding_errors():
    x = spots(8)
    with pytest.raises(NotFittedError):
        ContrastiveEmbedding().transform(x)
    with pytest.raises(ReplearnError, match="epochs"):
        ContrastiveEmbedding(epochs=0).fit(x)
    with pytest.raises(ReplearnError, match="at least 2"):
        ContrastiveEmbedding(epochs=1).fit(x[:1])
    est = ContrastiveEmbedding(depth=1, width=4, epochs=1, batch_size=4, device="cpu").fit(x)
    with pytest.raises(ReplearnError, match="encoder takes"):
        est.transform(np.zeros((2, 20, 20), np.uint8))


def test_flattened_rows_give_the_same_features_as_images():
    x = spots(12)
    args = dict(depth=1, width=4, epochs=1, batch_size=4, device="cpu")
    images = ContrastiveEmbedding(**args).fit(x)
    rows = ContrastiveEmbedding(**args, image_shape=(16, 16)).fit(x.reshape(12, -1))
    np.testing.assert_array_equal(rows.transform(x.reshape(12, -1)), images.transform(x))
    assert rows.n_features_in_ == images.n_features_in_ == 256
    with pytest.raises(ValueError, match="X has 255 features, but ContrastiveEmbedding is expecting 256"):
        rows.transform(x.reshape(12, -1)[:, :255])


def test_resumed_training_equals_an_uninterrupted_one(tmp_path, monkeypatch):
    """The views' generator is in the checkpoint: stopped after epoch 1 and resumed, the features are identical."""
    import replearn.encoders.contrastive_embedding as module
    from replearn.train import load_checkpoint

    x = spots(48)
    args = dict(depth=2, width=4, epochs=3, batch_size=16, seed=1, device="cpu")
    whole = ContrastiveEmbedding(**args).fit(x, checkpoint_dir=tmp_path / "a")
    real_fit = module.fit
    monkeypatch.setattr(module, "fit", lambda *a, **k: real_fit(*a, callbacks=[lambda epoch, logs: True], **k))
    ContrastiveEmbedding(**args).fit(x, checkpoint_dir=tmp_path / "b")
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["epoch"] == 1
    assert load_checkpoint(tmp_path / "b" / "checkpoint.pt")["model"]["_extra_state"].dtype == torch.uint8
    monkeypatch.setattr(module, "fit", real_fit)
    resumed = ContrastiveEmbedding(**args).fit(x, checkpoint_dir=tmp_path / "b", resume=True)
    assert resumed.history_["loss"] == whole.history_["loss"]
    assert np.array_equal(resumed.transform(x), whole.transform(x))
    fresh = ContrastiveEmbedding(**args).fit(x, checkpoint_dir=tmp_path / "c", resume=True)  # no checkpoint: a start
    assert fresh.history_["loss"] == whole.history_["loss"]
