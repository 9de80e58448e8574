"""SemiSupervisedClassifier and FineTunedClassifier: the toy cluster problem, the contract, fine-tuning rates."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_digits, make_moons
from torch import nn

from replearn.data.augment import gaussian_noise, random_shift
from replearn.data.digit_augment import DigitAugment
from replearn.data.draws import draw_labelled
from replearn.encoders import FineTunedClassifier, SemiSupervisedClassifier, pretrained_encoder
from replearn.errors import ReplearnError


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(2, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))


def _jitter(sigma: float):
    def view(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        return (x + sigma * torch.randn(x.shape, generator=g)).clamp(0.0, 1.0)
    return view


def _moons(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two moons scaled into [0, 1], as (N, 1, 1, 2) 'images'."""
    pts, labels = make_moons(n, noise=0.05, random_state=seed)
    pts = (pts - np.array([-1.2, -0.7])) / np.array([3.4, 1.9])
    return pts.reshape(n, 1, 1, 2).astype(np.float32), labels


def test_semi_supervised_beats_its_supervised_twin_where_unlabelled_data_carry_the_clusters():
    """scikit-learn's 8x8 digits (bundled, no download): 3 labels per class, the other ~1,400 training
    images unlabelled. The twin is the same run with the unlabelled loss weighted 0."""
    digits = load_digits()
    x, y = (digits.images / 16.0).astype(np.float32)[:, None], digits.target
    perm = np.random.default_rng(0).permutation(len(y))
    test, train = perm[:400], perm[400:]
    lab, unl = draw_labelled(y[train], 3, 0)
    warp = DigitAugment(0.5, cutout=False)
    views = (lambda t, g: random_shift(t, g, 1), lambda t, g: gaussian_noise(warp(t, g), g, 0.1))
    common = dict(network_params={"depth": 2, "width": 8, "dropout": 0.0, "dense": 32}, epochs=8, batch_size=30,
                  lr=1e-2, schedule="cosine", unlabelled=x[train[unl]], views=views, threshold=0.8, ratio=3,
                  steps_per_epoch=50, device="cpu", seed=0)
    semi = SemiSupervisedClassifier(**common).fit(x[train[lab]], y[train[lab]])
    twin = SemiSupervisedClassifier(**common, unlabelled_weight=0.0).fit(x[train[lab]], y[train[lab]])
    acc_semi, acc_twin = (semi.predict(x[test]) == y[test]).mean(), (twin.predict(x[test]) == y[test]).mean()
    assert acc_semi > acc_twin + 0.05, (acc_semi, acc_twin)  # measured: 0.68 vs 0.59


def test_contract_clone_refit_and_refusals():
    x, y = _moons(40, 0)
    clf = SemiSupervisedClassifier(network=_mlp(), epochs=1, batch_size=4, unlabelled=x,
                                   views=(_jitter(0.0), _jitter(0.1)), device="cpu")
    assert clone(clf).get_params()["ratio"] == 7
    clf.fit(x[:10], y[:10])
    assert clf.predict_proba(x).shape == (40, 2) and set(clf.predict(x)) <= {0, 1}
    with pytest.raises(ReplearnError, match="unlabelled images are needed"):
        SemiSupervisedClassifier(network=_mlp()).fit(x[:10], y[:10])
    with pytest.raises(ReplearnError, match="views 'words'"):
        SemiSupervisedClassifier(network=_mlp(), unlabelled=x, views="words").fit(x[:10], y[:10])
    with pytest.raises(ReplearnError, match="threshold"):
        SemiSupervisedClassifier(network=_mlp(), unlabelled=x, threshold=2.0).fit(x[:10], y[:10])
    with pytest.raises(ReplearnError, match="neighbours must be an integer >= 0, got -1"):
        SemiSupervisedClassifier(network=_mlp(), unlabelled=x, neighbours=-1).fit(x[:10], y[:10])
    with pytest.raises(ReplearnError, match="neighbours=40 needs more than that many unlabelled images, got 40"):
        SemiSupervisedClassifier(network=_mlp(), unlabelled=x, neighbours=40, epochs=1).fit(x[:10], y[:10])
    assert clone(clf).get_params()["neighbours"] == 0
    clf.set_params(neighbours=3).fit(x[:10], y[:10])  # neighbours found among the 40 unlabelled points
    assert clf.predict(x).shape == (40,)


def test_fine_tuning_keeps_the_pretrained_encoder_at_rate_zero_and_moves_it_otherwise():
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(2, 8), nn.ReLU())
    x, y = _moons(60, 0)
    common = dict(encoder=encoder, epochs=3, batch_size=8, lr=1e-2, views=(_jitter(0.0), _jitter(0.0)), device="cpu")
    frozen = FineTunedClassifier(**common, encoder_lr_scale=0.0).fit(x, y)
    moved = FineTunedClassifier(**common, encoder_lr_scale=0.5).fit(x, y)
    assert torch.equal(frozen.model_.encoder[1].weight.cpu(), encoder[1].weight)
    assert not torch.equal(moved.model_.encoder[1].weight.cpu(), encoder[1].weight)
    assert frozen.model_.head.in_features == 8 and frozen.predict(x).shape == (60,)
    with pytest.raises(ReplearnError, match="pretrained nn.Module"):
        FineTunedClassifier().fit(x, y)
    with pytest.raises(ReplearnError, match="not a fitted encoder"):
        pretrained_encoder(object())


def test_fine_tuning_is_semi_supervised_on_top_when_given_unlabelled_images():
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(2, 8), nn.ReLU())
    x, y = _moons(80, 0)
    common = dict(encoder=encoder, epochs=2, batch_size=4, lr=1e-2, views=(_jitter(0.0), _jitter(0.05)),
                  unlabelled=x, threshold=0.0, ratio=2, steps_per_epoch=5, device="cpu")
    semi = FineTunedClassifier(**common).fit(x[:8], y[:8])
    twin = FineTunedClassifier(**common, unlabelled_weight=0.0).fit(x[:8], y[:8])
    assert not np.allclose(semi.predict_proba(x), twin.predict_proba(x))
    assert len(semi.history_["loss"]) == 2


def test_ema_gives_the_fitted_model_the_weights_average():
    x, y = _moons(40, 0)
    common = dict(epochs=2, batch_size=4, lr=1e-2, unlabelled=x, views=(_jitter(0.0), _jitter(0.1)),
                  steps_per_epoch=5, device="cpu")
    last = SemiSupervisedClassifier(network=_mlp(), **common).fit(x[:10], y[:10])
    averaged = SemiSupervisedClassifier(network=_mlp(), **common, ema=0.9).fit(x[:10], y[:10])
    assert clone(averaged).get_params()["ema"] == 0.9 and last.get_params()["ema"] == 0.0
    w_last, w_avg = last.model_[-1].weight.detach(), averaged.model_[-1].weight.detach()
    assert not torch.allclose(w_last, w_avg)  # same seed, same steps: only the average differs
    assert averaged.predict(x).shape == (40,)
    with pytest.raises(ReplearnError, match="ema must be a weight-average decay"):
        SemiSupervisedClassifier(network=_mlp(), **{**common, "epochs": 1}, ema=1.0).fit(x[:10], y[:10])
    ft = FineTunedClassifier(encoder=nn.Sequential(nn.Flatten(), nn.Linear(2, 8), nn.ReLU()), ema=0.5)
    assert ft.get_params()["ema"] == 0.5


def test_alignment_aims_at_the_labelled_class_shares():
    x, y = _moons(40, 0)
    clf = SemiSupervisedClassifier(network=_mlp(), unlabelled=x, views=(_jitter(0.0), _jitter(0.1)), align=True,
                                   classes=[0, 1, 2])
    objective, _ = clf._objective((1, 1, 2), torch.tensor([0, 0, 0, 0, 0, 1, 1, 1]), 3)
    # 5, 3 and 0 labelled images, one added to each class: 6/11, 4/11, 1/11
    torch.testing.assert_close(objective.shares, torch.tensor([6.0, 4.0, 1.0]) / 11)
    assert objective.align
