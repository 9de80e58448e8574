"""FixMatch pieces: the pseudo-label mask, the unlabelled loss, the objective inside fit, discriminative rates."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from replearn.errors import ReplearnError
from replearn.train import TrainConfig, fit
from replearn.train.engine import param_groups
from replearn.train.semisup import (FixMatchObjective, align_distribution, fixmatch_views, pseudo_labels,
                                     unlabelled_loss)


def test_pseudo_label_mask_obeys_the_threshold():
    probs = torch.tensor([[0.96, 0.04], [0.94, 0.06], [0.5, 0.5], [0.02, 0.98], [0.949, 0.051]])
    logits = probs.log()
    label, mask = pseudo_labels(logits, 0.95)
    assert label.tolist() == [0, 0, 0, 1, 0]
    assert mask.tolist() == [True, False, False, True, False]
    conf = torch.softmax(logits, 1).max(1).values
    for t in (0.0, 0.5, 0.9, 0.95, 0.97, 1.0):
        assert torch.equal(pseudo_labels(logits, t)[1], conf >= t)


def test_unlabelled_loss_is_zero_when_nothing_passes_and_masked_mean_otherwise():
    torch.manual_seed(0)
    weak = torch.zeros(6, 3)  # every prediction has confidence 1/3
    strong = torch.randn(6, 3, requires_grad=True)
    loss = unlabelled_loss(strong, weak, 0.95)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.count_nonzero(strong.grad) == 0
    weak = torch.tensor([[9.0, 0, 0], [0, 0, 0], [0, 0, 9.0]])  # rows 0 and 2 pass
    strong = torch.randn(3, 3)
    per = nn.functional.cross_entropy(strong, torch.tensor([0, 0, 2]), reduction="none")
    assert unlabelled_loss(strong, weak, 0.95).item() == pytest.approx((per[0] + per[2]).item() / 3)


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))


def _identity(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return x


def test_the_objective_trains_through_fit_and_is_reproducible():
    torch.manual_seed(1)
    x, y = torch.rand(8, 1, 2, 2), torch.tensor([0, 1] * 4)
    u = torch.rand(50, 1, 2, 2)
    config = TrainConfig(epochs=3, batch_size=4, lr=1e-2, device="cpu", seed=3)
    runs = []
    for _ in range(2):
        model = _mlp()
        obj = FixMatchObjective(u, _identity, _identity, threshold=0.0, ratio=3)
        hist = fit(model, (x, y), None, config, progress=False, objective=obj)
        runs.append((hist["loss"], [p.detach().clone() for p in model.parameters()]))
        assert 0.0 <= float(obj.mask_rate) <= 1.0
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))


def test_objective_and_views_refuse_bad_settings():
    u = torch.rand(5, 1, 2, 2)
    with pytest.raises(ReplearnError, match="threshold"):
        FixMatchObjective(u, _identity, _identity, threshold=1.5)
    with pytest.raises(ReplearnError, match="ratio"):
        FixMatchObjective(u, _identity, _identity, ratio=0)
    with pytest.raises(ReplearnError, match="unlabelled must be images"):
        FixMatchObjective(torch.rand(5, 4), _identity, _identity)
    with pytest.raises(ReplearnError, match="kind 'texts'"):
        fixmatch_views("texts")
    with pytest.raises(ReplearnError, match="strength"):
        fixmatch_views("digits", 2.0)


@pytest.mark.parametrize("kind", ["digits", "fashion", "cells"])
def test_views_keep_shape_and_range(kind):
    weak, strong = fixmatch_views(kind, 1.0)
    x = torch.rand(6, 1, 12, 12)
    for view in (weak, strong):
        out = view(x, torch.Generator().manual_seed(0))
        assert out.shape == x.shape and float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert not torch.equal(strong(x, torch.Generator().manual_seed(0)), x)


def test_discriminative_rates_reach_the_optimiser_parameter_groups():
    model = nn.Sequential()
    model.add_module("encoder", nn.Linear(4, 3))
    model.add_module("head", nn.Linear(3, 2))
    groups = param_groups(model, 0.01, {"encoder.": 0.1})
    assert [g["lr"] for g in groups] == [0.01, pytest.approx(0.001)]
    assert [len(g["params"]) for g in groups] == [2, 2]
    assert groups[1]["params"][0] is model.encoder.weight
    with pytest.raises(ReplearnError, match="matches no trainable parameter"):
        param_groups(model, 0.01, {"decoder.": 0.1})
    # Through fit: an encoder at rate 0 does not move, the head does, under every schedule.
    for schedule in (None, "onecycle", "cosine"):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten())
        model.add_module("encoder", nn.Linear(4, 3))
        model.add_module("head", nn.Linear(3, 2))
        before = {k: v.clone() for k, v in model.state_dict().items()}
        x, y = torch.rand(16, 1, 2, 2), torch.tensor([0, 1] * 8)
        fit(model, (x, y), None, TrainConfig(epochs=2, batch_size=8, lr=0.05, schedule=schedule, device="cpu"),
            progress=False, lr_scales={"encoder.": 0.0})
        after = model.state_dict()
        assert torch.equal(before["encoder.weight"], after["encoder.weight"])
        assert not torch.equal(before["head.weight"], after["head.weight"])


def test_distribution_alignment_pulls_an_over_predicted_class_down():
    probs = torch.tensor([[0.7, 0.3], [0.6, 0.4], [0.96, 0.04]])
    aligned = align_distribution(probs, probs.mean(0))  # the model predicts class 0 three times in four
    torch.testing.assert_close(aligned.sum(1), torch.ones(3))
    assert aligned[0, 0] < 0.5 < aligned[0, 1]  # the 0.7 row flips to class 1
    assert aligned[2, 0] > 0.85  # a confident row stays confident (0.887)
    torch.testing.assert_close(align_distribution(probs, torch.full((2,), 0.5)), probs)  # uniform mean: unchanged


def test_distribution_alignment_aims_at_the_given_class_shares():
    probs = torch.tensor([[0.7, 0.3], [0.6, 0.4], [0.96, 0.04]])
    mean = probs.mean(0)  # (0.753, 0.247)
    # aiming at the shares the model already predicts changes nothing; balanced shares = no shares given
    torch.testing.assert_close(align_distribution(probs, mean, mean), probs)
    balanced = align_distribution(probs, mean, torch.tensor([0.5, 0.5]))
    torch.testing.assert_close(balanced, align_distribution(probs, mean))
    # a labelled set with class 0 three times in four keeps the 0.7 row at class 0 (balanced alignment flips it)
    shares = torch.tensor([0.75, 0.25])
    aligned = align_distribution(probs, mean, shares)
    expected = probs * shares / mean
    torch.testing.assert_close(aligned, expected / expected.sum(1, keepdim=True))
    assert aligned[0, 0] > 0.5 > align_distribution(probs, mean)[0, 0]


def test_the_aligned_objective_keeps_a_running_mean_of_the_predictions():
    torch.manual_seed(1)
    x, y = torch.rand(8, 1, 2, 2), torch.tensor([0, 1] * 4)
    obj = FixMatchObjective(torch.rand(50, 1, 2, 2), _identity, _identity, threshold=0.5, ratio=3, align=True)
    fit(_mlp(), (x, y), None, TrainConfig(epochs=2, batch_size=4, lr=1e-2, device="cpu", seed=3), progress=False,
        objective=obj)
    assert obj.prob_mean.shape == (2,) and float(obj.prob_mean.sum()) == pytest.approx(1.0, abs=1e-5)


class _Recorder(nn.Module):
    """Records every batch it sees; predicts class 0 with certainty (every pseudo-label passes)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(()))
        self.seen: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.detach().clone())
        logits = torch.zeros(len(x), 2)
        logits[:, 0] = 9.0
        return logits + self.w


def test_neighbour_views_take_the_strong_view_from_a_listed_neighbour():
    m = 12
    u = torch.arange(m, dtype=torch.float32).view(m, 1, 1, 1).expand(m, 1, 2, 2) / m  # image i is all i / m
    neighbours = torch.tensor([[(i + 1) % m, (i + 2) % m] for i in range(m)])
    x, y = torch.rand(4, 1, 2, 2) + 5.0, torch.tensor([0, 1, 0, 1])
    obj = FixMatchObjective(u, _identity, _identity, threshold=0.5, ratio=5, neighbours=neighbours)
    model = _Recorder()
    obj(model, x, y, torch.Generator().manual_seed(0))
    weak, both = model.seen
    strong = both[len(x):]
    assert len(weak) == len(strong) == 20
    w_idx = torch.round(weak[:, 0, 0, 0] * m).long()
    s_idx = torch.round(strong[:, 0, 0, 0] * m).long()
    assert all(int(s) in neighbours[int(w)].tolist() for w, s in zip(w_idx, s_idx))  # never the image itself
    assert len(set(((s_idx - w_idx) % m).tolist())) == 2  # both neighbours are drawn
    model = _Recorder()
    FixMatchObjective(u, _identity, _identity, threshold=0.5, ratio=5)(model, x, y, torch.Generator().manual_seed(0))
    assert torch.equal(model.seen[0], model.seen[1][len(x):])  # without neighbours: the image itself


def test_neighbour_views_refuse_a_wrong_table():
    u = torch.rand(5, 1, 2, 2)
    with pytest.raises(ReplearnError, match=r"neighbours must be indices \(5, k\)"):
        FixMatchObjective(u, _identity, _identity, neighbours=torch.zeros(4, 2, dtype=torch.long))
    with pytest.raises(ReplearnError, match="neighbours must be indices"):
        FixMatchObjective(u, _identity, _identity, neighbours=[[1]] * 5)
