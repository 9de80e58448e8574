"""SimCLR: the NT-Xent loss against its definition, the objective, and ``ContrastiveEmbedding``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from torch import nn

from replearn.data import to_tensor
from replearn.errors import ReplearnError
from replearn.evaluate.contrastive import ContrastiveEmbedding
from replearn.train.contrastive import SimCLRObjective, cell_views, nt_xent


def test_nt_xent_by_hand():
    # two images, views identical: each view's partner has cosine 1, the other image's views cosine 0
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    t = 0.5
    per = nt_xent(z1, z1.clone(), temperature=t)
    # row of view 0 (image 0): candidates = image 1 view (cos 0), image 0 other view (cos 1), image 1 other (cos 0)
    expected = -math.log(math.exp(1 / t) / (math.exp(1 / t) + 2 * math.exp(0)))
    torch.testing.assert_close(per, torch.full((2,), expected))


def test_nt_xent_prefers_matching_views():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(16, 8, generator=g)
    aligned = nt_xent(z, z + 0.01 * torch.randn(16, 8, generator=g))
    shuffled = nt_xent(z, z[torch.randperm(16, generator=g)])
    assert aligned.shape == (16,)
    assert aligned.mean() < shuffled.mean()
    # chance level: log(2N - 1) when all similarities are equal
    torch.testing.assert_close(nt_xent(torch.ones(4, 3), torch.ones(4, 3)), torch.full((4,), math.log(7)))


def test_nt_xent_errors():
    with pytest.raises(ReplearnError, match="N >= 2"):
        nt_xent(torch.ones(1, 3), torch.ones(1, 3))
    with pytest.raises(ReplearnError, match="same shape"):
        nt_xent(torch.ones(4, 3), torch.ones(4, 2))
    with pytest.raises(ReplearnError, match="temperature"):
        nt_xent(torch.ones(4, 3), torch.ones(4, 3), temperature=0)


def test_cell_views_are_seeded_and_change_the_images():
    x = torch.rand(8, 1, 12, 12)
    views = cell_views(shift=2)
    a = views(x, torch.Generator().manual_seed(1))
    b = views(x, torch.Generator().manual_seed(1))
    c = views(x, torch.Generator().manual_seed(2))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    assert not torch.equal(a, x) and float(a.min()) >= 0 and float(a.max()) <= 1
    with pytest.raises(ReplearnError, match="shift"):
        cell_views(shift=-1)


def test_objective_returns_per_image_losses():
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(36, 5))
    objective = SimCLRObjective(encoder, 5, cell_views(shift=1), proj_dim=4, hidden=8, seed=0)
    out = objective(torch.rand(6, 1, 6, 6))
    assert out.shape == (6,) and bool(torch.all(out > 0))
    with pytest.raises(ReplearnError, match="temperature"):
        SimCLRObjective(encoder, 5, cell_views(), temperature=-1)


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
