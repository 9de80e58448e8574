"""SimCLR: the NT-Xent loss against its definition, the objective, (the estimator: tests/encoders/test_contrastive_embedding.py)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from replearn.errors import ReplearnError
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
