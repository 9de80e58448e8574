"""Semi-supervised training in the FixMatch family: labelled and unlabelled images in every step.

Beyond the lecture's "unsupervised learning can help find the right features":
Sohn et al. 2020 ("FixMatch: Simplifying Semi-Supervised Learning with
Consistency and Confidence") train one classifier on a batch of B labelled
images and ``ratio * B`` unlabelled ones. Each unlabelled image is seen twice:
a weakly augmented view gives a pseudo-label (the predicted class), kept only
where the prediction's confidence reaches ``threshold``; the strongly
augmented view must predict that pseudo-label (cross-entropy). The step's loss
is the labelled cross-entropy plus ``weight`` times the unlabelled one, the
latter averaged over all ``ratio * B`` unlabelled images (a low-confidence
image contributes 0).

:class:`FixMatchObjective` is an ``objective`` for :func:`replearn.train.fit`:
``fit`` slices, shuffles and (weakly) augments the labelled batches as usual;
the objective draws the unlabelled images of each step from the epoch's seeded
generator, so a run is reproducible and a resumed run identical.
:func:`fixmatch_views` gives the weak/strong pairs for digits, clothes and cell crops.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from replearn.data.augment import gaussian_noise, random_hflip, random_shift
from replearn.data.cell_augment import CellAugment
from replearn.data.digit_augment import DigitAugment
from replearn.errors import ReplearnError

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]

#: Momentum of the running mean of the predictions that distribution alignment divides by (about 100 steps).
ALIGN_MOMENTUM = 0.99
#: Kinds of images :func:`fixmatch_views` knows.
VIEW_KINDS = ("digits", "fashion", "cells")


def pseudo_labels(logits_weak: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Pseudo-labels and their mask from logits (N, K) of the weak views: int64 (N,), bool (N,).

    The mask keeps the images whose largest softmax probability is at least ``threshold``.
    """
    with torch.no_grad():
        conf, label = torch.softmax(logits_weak.detach().float(), dim=1).max(dim=1)
        return label, conf >= threshold


def unlabelled_loss(logits_strong: torch.Tensor, logits_weak: torch.Tensor, threshold: float) -> torch.Tensor:
    """FixMatch's unlabelled loss: (N, K), (N, K) -> scalar.

    Cross-entropy of the strong views' logits against the weak views' pseudo-labels, masked by
    confidence >= ``threshold`` and averaged over all N images (exactly 0 when none passes).
    """
    label, mask = pseudo_labels(logits_weak, threshold)
    per = F.cross_entropy(logits_strong.float(), label, reduction="none")
    return (per * mask.to(per.dtype)).mean()


def align_distribution(probs: torch.Tensor, running_mean: torch.Tensor,
                       shares: torch.Tensor | None = None) -> torch.Tensor:
    """Distribution alignment (Berthelot et al. 2020, "ReMixMatch"): probs (N, K) -> aligned probs (N, K).

    Each row is multiplied by ``shares / running_mean`` and renormalised: ``running_mean`` (K,) is the model's
    recent average prediction on unlabelled images, ``shares`` (K,) the class shares to aim at (the labelled
    images' shares; None: balanced classes). A model that over-predicts a class is pulled back towards them.
    """
    aligned = probs / running_mean.clamp_min(1e-6)
    if shares is not None:
        aligned = aligned * shares.to(aligned.device, aligned.dtype)
    return aligned / aligned.sum(dim=1, keepdim=True)


def _strong_cells(strength: float) -> Augment:
    """Symmetries, stronger gain/offset, shifts and pixel noise of cell crops (no interpolation)."""
    cells = CellAugment(flips=True, rot90=True, scale=min(0.5 * strength, 0.9), offset=min(0.2 * strength, 0.9))
    pad, sigma = max(1, round(4 * strength)), 0.05 * strength

    def strong(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return gaussian_noise(random_shift(cells(x, generator), generator, pad), generator, sigma)

    return strong


def fixmatch_views(kind: str, strength: float = 1.0) -> tuple[Augment, Augment]:
    """The (weak, strong) augmentations for ``kind`` in :data:`VIEW_KINDS`; ``strength`` (0..1) scales the strong one.

    ``digits``: weak = shifts of up to 2 px; strong = :class:`~replearn.data.digit_augment.DigitAugment`
    (affine, elastic, intensity, cut-out). ``fashion``: the same plus left-right flips.
    ``cells``: weak = the symmetries of the square (:class:`~replearn.data.cell_augment.CellAugment`,
    mild intensity); strong = symmetries, larger gain/offset, shifts up to 4 px and pixel noise.
    """
    if kind not in VIEW_KINDS:
        raise ReplearnError(f"fixmatch_views: kind {kind!r} is not known; choose one of: {', '.join(VIEW_KINDS)}")
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0.0 <= strength <= 1.0:
        raise ReplearnError(f"fixmatch_views: strength must be a number in [0, 1], got {strength!r}")
    if kind == "cells":
        mild = CellAugment(flips=True, rot90=True, scale=0.05, offset=0.02)
        return mild, _strong_cells(float(strength))
    flip = kind == "fashion"
    warp = DigitAugment(float(strength))

    def weak(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x = random_shift(x, generator, 2)
        return random_hflip(x, generator) if flip else x

    def strong(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x = warp(x, generator)
        return random_hflip(x, generator) if flip else x

    return weak, strong


def check_fixmatch_settings(threshold: float, ratio: int, weight: float) -> None:
    """Raise one line for a confidence threshold outside [0, 1], a ratio below 1 or a negative weight."""
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
        raise ReplearnError(f"FixMatch: threshold must be in [0, 1], got {threshold!r}")
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or int(ratio) != ratio or ratio < 1:
        raise ReplearnError(f"FixMatch: ratio must be an integer >= 1, got {ratio!r}")
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight >= 0:
        raise ReplearnError(f"FixMatch: weight must be >= 0, got {weight!r}")


class FixMatchObjective:
    """A training step on a labelled batch plus ``ratio`` times as many unlabelled images.

    Args:
        unlabelled: images (M, C, H, W) float32 in [0, 1]; moved once to the training device.
        weak, strong: ``f(x, generator) -> x`` views of the unlabelled images.
        threshold: confidence a weak view's prediction needs to become a pseudo-label.
        ratio: unlabelled images per labelled image in a step (FixMatch's mu).
        weight: weight of the unlabelled loss (FixMatch's lambda_u).
        align: distribution alignment of the weak views' predictions (:func:`align_distribution`) before
            thresholding, against a running mean (momentum ``ALIGN_MOMENTUM`` per step) of the predictions.
        shares: the class shares (K,) that alignment aims at, e.g. the labelled images' (None: balanced).
        neighbours: optional (M, k) indices into ``unlabelled`` of each image's nearest unlabelled images
            (:func:`replearn.train.neighbour_graph.nearest_images`). With them the strong view of an image is made
            from one of its k neighbours, drawn at random: its prediction must match the image's pseudo-label, so
            that images close in pixel space share a class, as well as the views of one image.

    ``objective(model, x, y, generator) -> (loss, logits of x)`` for :func:`replearn.train.fit`.
    The weak views run without gradients; the labelled batch and the strong views share one
    forward pass (BatchNorm sees both). ``mask_rate`` (a 0-d tensor) holds the fraction of unlabelled images
    that passed the threshold in the last step (for logging). The running mean of ``align`` is not part of
    ``fit``'s checkpoint (a resumed run starts it again).
    """

    def __init__(self, unlabelled: torch.Tensor, weak: Augment, strong: Augment, threshold: float = 0.95,
                 ratio: int = 7, weight: float = 1.0, align: bool = False,
                 shares: torch.Tensor | None = None, neighbours: torch.Tensor | None = None) -> None:
        if not isinstance(unlabelled, torch.Tensor) or unlabelled.dim() != 4 or unlabelled.shape[0] < 1:
            shape = tuple(unlabelled.shape) if isinstance(unlabelled, torch.Tensor) else type(unlabelled).__name__
            raise ReplearnError(f"FixMatch: unlabelled must be images (M, C, H, W) with M >= 1, got {shape}")
        check_fixmatch_settings(threshold, ratio, weight)
        if neighbours is not None and (not isinstance(neighbours, torch.Tensor) or neighbours.dim() != 2
                                       or neighbours.shape[0] != unlabelled.shape[0] or neighbours.shape[1] < 1):
            shape = tuple(neighbours.shape) if isinstance(neighbours, torch.Tensor) else type(neighbours).__name__
            raise ReplearnError(f"FixMatch: neighbours must be indices ({unlabelled.shape[0]}, k), got {shape}")
        self.neighbours = None if neighbours is None else neighbours.long()
        self.unlabelled = unlabelled
        self.weak, self.strong = weak, strong
        self.threshold, self.ratio, self.weight = float(threshold), int(ratio), float(weight)
        self.mask_rate = torch.zeros(())
        self.align, self.prob_mean, self.shares = bool(align), None, shares

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss (scalar) and the labelled batch's logits (B, K) for images ``x`` (B, C, H, W), labels ``y`` (B,)."""
        if self.unlabelled.device != x.device:
            self.unlabelled = self.unlabelled.to(x.device)
        n = x.shape[0]
        idx = torch.randint(0, self.unlabelled.shape[0], (self.ratio * n,), generator=generator)
        u = self.unlabelled.index_select(0, idx.to(x.device))
        other = u
        if self.neighbours is not None:  # the strong view of a random one of each image's neighbours
            pick = torch.randint(0, self.neighbours.shape[1], (len(idx),), generator=generator)
            other = self.unlabelled.index_select(0, self.neighbours[idx, pick].to(x.device))
        weak, strong = self.weak(u, generator), self.strong(other, generator)
        with torch.no_grad():
            logits_weak = model(weak)
            if self.align:
                probs = torch.softmax(logits_weak.float(), dim=1)
                batch_mean = probs.mean(dim=0)
                self.prob_mean = batch_mean if self.prob_mean is None else torch.lerp(
                    self.prob_mean, batch_mean, 1.0 - ALIGN_MOMENTUM)
                logits_weak = align_distribution(probs, self.prob_mean, self.shares).clamp_min(1e-12).log()
        logits = model(torch.cat([x, strong]))
        logits_x, logits_s = logits[:n].float(), logits[n:].float()
        loss = F.cross_entropy(logits_x, y) + self.weight * unlabelled_loss(logits_s, logits_weak, self.threshold)
        self.mask_rate = pseudo_labels(logits_weak, self.threshold)[1].float().mean()  # a tensor: no device sync
        return loss, logits_x
