"""The UMAP objective: its curve, its two loss terms, the edge sampler and training on known clusters."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from replearn.errors import ReplearnError
from replearn.evaluate import knn_accuracy
from replearn.models import Network
from replearn.train import TrainConfig, fit
from replearn.train.neighbour_graph import neighbour_graph
from replearn.train.umap import EdgeSampler, UMAPObjective, attraction, find_ab, repulsion, tsne_loss, umap_loss


def test_curve_parameters_match_umaps_defaults():
    a, b = find_ab(0.1, 1.0)
    assert a == pytest.approx(1.577, abs=0.02) and b == pytest.approx(0.895, abs=0.01)
    with pytest.raises(ReplearnError, match="min_dist"):
        find_ab(1.5, 1.0)


def test_attraction_grows_and_repulsion_falls_with_distance():
    d2 = torch.tensor([0.0, 0.1, 1.0, 10.0])
    att, rep = attraction(d2, 1.577, 0.895), repulsion(d2, 1.577, 0.895)
    assert (att.diff() > 0).all() and (rep.diff() < 0).all()
    assert att[0] == pytest.approx(0, abs=1e-6) and rep[0] == pytest.approx(-np.log(1e-4), rel=1e-3)
    # per edge: one attraction and negative_rate times the mean repulsion of its negatives
    head, tail, neg = torch.zeros(1, 2), torch.ones(1, 2), torch.tensor([[[2.0, 2.0], [0.0, 3.0]]])
    expected = attraction(torch.tensor(2.0), 1.577, 0.895) + 5 * (repulsion(torch.tensor(8.0), 1.577, 0.895)
                                                                  + repulsion(torch.tensor(9.0), 1.577, 0.895)) / 2
    assert umap_loss(head, tail, neg, 1.577, 0.895, 5.0).item() == pytest.approx(expected.item())


def test_gradients_are_finite_when_codes_coincide():
    z = torch.zeros(4, 2, requires_grad=True)
    umap_loss(z[:2], z[2:], z[None, :2].expand(2, 2, 2), 1.577, 0.895, 5.0).sum().backward()
    assert torch.isfinite(z.grad).all()


def test_sampler_draws_edges_in_proportion_to_strength():
    graph = sp.csr_matrix(np.array([[0, 0.9, 0.1], [0.9, 0, 0], [0.1, 0, 0]], dtype=np.float32))
    sampler = EdgeSampler(graph)
    assert sampler.total == pytest.approx(2.0)
    heads, tails = sampler.sample(40000, torch.Generator().manual_seed(0))
    pairs = {(h, t): ((heads == h) & (tails == t)).float().mean().item() for h, t in [(0, 1), (1, 0), (0, 2), (2, 0)]}
    assert sum(pairs.values()) == pytest.approx(1.0)
    assert pairs[(0, 1)] == pytest.approx(0.45, abs=0.01) and pairs[(2, 0)] == pytest.approx(0.05, abs=0.005)
    with pytest.raises(ReplearnError, match="image 2 has no neighbour"):
        EdgeSampler(sp.csr_matrix(np.array([[0, 1, 0], [1, 0, 0], [0, 0, 0]], dtype=np.float32)))


def test_tsne_loss_is_the_infonce_of_cauchy_similarities():
    head, tail = torch.zeros(1, 2), torch.ones(1, 2)
    codes, neg = torch.tensor([[2.0, 2.0], [0.0, 3.0], [5.0, 5.0]]), torch.tensor([[0, 1]])
    q = 1 / (1 + torch.tensor([2.0, 8.0, 9.0]))  # the edge, then its negatives (codes 0 and 1, not 2)
    assert tsne_loss(head, tail, codes, neg).item() == pytest.approx(-torch.log(q[0] / q.sum()).item(), rel=1e-6)
    near = tsne_loss(head, torch.full((1, 2), 0.1), codes, neg)
    assert near.item() < tsne_loss(head, tail, codes, neg).item()  # a closer neighbour costs less
    # each edge its own negatives
    both = tsne_loss(torch.tensor([[0.0, 0.0], [3.0, 0.0]]), torch.ones(2, 2), codes, torch.tensor([[0, 1], [2, 2]]))
    assert both[0].item() == pytest.approx(-torch.log(q[0] / q.sum()).item(), rel=1e-6)
    q2 = 1 / (1 + torch.tensor([5.0, 29.0, 29.0]))  # head (3, 0): its edge to (1, 1), code 2 twice
    assert both[1].item() == pytest.approx(-torch.log(q2[0] / q2.sum()).item(), rel=1e-6)


@pytest.mark.parametrize("kind", ["umap", "tsne"])
def test_loss_falls_and_codes_separate_known_clusters(kind):
    """SYNTHETIC: 4 clusters of 8x8 images; a small dense encoder trained only on their neighbour graph."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 60)
    centres = rng.uniform(0, 1, size=(4, 1, 8, 8))
    images = np.clip(centres[labels] + rng.normal(0, 0.15, size=(240, 1, 8, 8)), 0, 1).astype(np.float32)
    graph = neighbour_graph(images, n_neighbors=10, pca_dims=None)
    torch.manual_seed(0)
    encoder = Network(["flatten", "dense 32", "relu", "dense 2 as features"], (1, 8, 8))
    objective = UMAPObjective(encoder, torch.from_numpy(images), graph, seed=0, kind=kind)
    slots = round(objective.sampler.total)  # one UMAP epoch of edges
    with torch.no_grad():
        before = objective(torch.zeros(48, 1)).mean().item()  # untrained codes
    config = TrainConfig(epochs=15, batch_size=48, lr=0.01, loss="model", device="cpu")
    history = fit(objective, (torch.zeros(slots, 1), torch.zeros(slots)), None, config, progress=False)
    losses = history.history["loss"]
    # InfoNCE is bounded below by log(1 + sum of the negatives' similarities / the edge's): a quarter of the
    # batch's codes are in the head's own cluster, so it cannot fall as far as UMAP's loss
    assert losses[-1] < losses[0] and losses[-1] < (0.6 if kind == "umap" else 0.8) * before
    encoder.eval()
    with torch.no_grad():
        codes = encoder(torch.from_numpy(images)).numpy()
    half = np.arange(240) % 2 == 0
    assert knn_accuracy(codes[half], labels[half], codes[~half], labels[~half], k=5) >= 0.9  # chance: 0.25


def test_objective_checks_its_arguments():
    images, graph = torch.zeros(3, 1, 2, 2), sp.csr_matrix(np.ones((3, 3)) - np.eye(3))
    encoder = Network(["flatten", "dense 2"], (1, 2, 2))
    with pytest.raises(ReplearnError, match="a graph of 4 vertices"):
        UMAPObjective(encoder, images, sp.csr_matrix(np.ones((4, 4))))
    with pytest.raises(ReplearnError, match="needs a decoder"):
        UMAPObjective(encoder, images, graph, recon_weight=1.0)
    with pytest.raises(ReplearnError, match="negative_rate"):
        UMAPObjective(encoder, images, graph, negative_rate=0)
    with pytest.raises(ReplearnError, match="kind must be one of umap, tsne"):
        UMAPObjective(encoder, images, graph, kind="pca")
