"""``SemiSupervisedClassifier``: a CNN trained on labelled and unlabelled images together (FixMatch-style).

The same estimator as :class:`~replearn.encoders.CNNClassifier` (same network
choices, training settings, ``fit``/``predict``/``predict_proba``), plus the
unlabelled images and the semi-supervised settings; every training step mixes
a labelled batch with ``ratio`` times as many unlabelled images through
:class:`~replearn.train.semisup.FixMatchObjective` and the one engine
:func:`replearn.train.fit`::

    clf = SemiSupervisedClassifier(unlabelled=train_images, views="digits", network_params={"width": 32})
    clf.fit(labelled_images, labels).predict(test_images)

The unlabelled images are a constructor parameter (as ``validation_data`` of
:class:`~replearn.encoders.AutoEncoderEmbedding`), so ``fit(X, y)`` keeps the
classifier contract and grid/protocol code that calls ``fit(x[train], y[train])``
works unchanged. Labelled batches get the weak view unless ``augment`` is given.
With few labels, an "epoch" repeats the labelled images so that it has
``steps_per_epoch`` steps (default: enough steps for the unlabelled images to be seen about once).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from replearn.encoders.cnn_classifier import Augment, CNNClassifier, LabelledSet
from replearn.encoders._inputs import ImageArray, ImageInputError, normalise_image_shape
from replearn.errors import ReplearnError
from replearn.train import History, fit
from replearn.train.ema import WeightAverage, check_decay
from replearn.train.neighbour_graph import nearest_images
from replearn.train.semisup import VIEW_KINDS, FixMatchObjective, check_fixmatch_settings, fixmatch_views

#: CNNClassifier's parameters, in its order (the subclasses list them again: scikit-learn reads ``__init__``).
_CNN_PARAMS = ("network", "network_params", "epochs", "batch_size", "optimizer", "lr", "momentum", "nesterov",
               "weight_decay", "label_smoothing", "schedule", "bf16", "channels_last", "augment", "seed", "seeding",
               "classes", "device", "progress", "batch_size_predict", "image_shape")


class SemiSupervisedClassifier(CNNClassifier):
    """A CNN classifier trained with FixMatch-style pseudo-labels on unlabelled images.

    Args:
        unlabelled: images (M, H, W) or (M, C, H, W) without labels (never the test set).
        threshold: confidence a weak view's prediction needs to become a pseudo-label.
        ratio: unlabelled images per labelled image in every step.
        unlabelled_weight: weight of the unlabelled loss.
        strength: 0..1, magnitude of the strong view.
        views: ``"digits"``, ``"fashion"`` or ``"cells"`` (:func:`~replearn.train.semisup.fixmatch_views`),
            or a pair ``(weak, strong)`` of ``f(x, generator) -> x`` callables.
        steps_per_epoch: steps of one epoch (the labelled images are repeated to fill it); None: about
            one pass over the unlabelled images.
        ema: decay of an exponential moving average of the weights (:class:`~replearn.train.ema.WeightAverage`,
            FixMatch: 0.999); the fitted model holds the average. 0: the last step's weights.
        align: distribution alignment of the pseudo-labels (:func:`~replearn.train.semisup.align_distribution`)
            towards the class shares of the labelled images (smoothed by one image per class).
        neighbours: k > 0 makes each unlabelled image's strong view from one of its k nearest unlabelled images
            (Euclidean, in 50 principal components of the pixels) instead of from the image itself; 0: off.
        The other parameters are :class:`~replearn.encoders.CNNClassifier`'s.

    Attributes: those of :class:`~replearn.encoders.CNNClassifier`.
    """

    def __init__(self, network: str | nn.Module | None = None, network_params: Mapping[str, Any] | None = None,
                 epochs: int = 10, batch_size: int = 32, optimizer: str = "adam", lr: float = 1e-3,
                 momentum: float = 0.9, nesterov: bool = False, weight_decay: float = 0.0,
                 label_smoothing: float = 0.0, schedule: str | None = None, bf16: bool = False,
                 channels_last: bool = False, augment: Augment | None = None, seed: int = 0, seeding: str = "all",
                 classes: Sequence[Any] | None = None, device: str = "auto", progress: bool = False,
                 batch_size_predict: int = 256, image_shape: Sequence[int] | None = None,
                 unlabelled: ImageArray | None = None, threshold: float = 0.95, ratio: int = 7,
                 unlabelled_weight: float = 1.0, strength: float = 1.0, views: str | tuple = "digits",
                 steps_per_epoch: int | None = None, ema: float = 0.0, align: bool = False,
                 neighbours: int = 0) -> None:
        kw = dict(locals())
        super().__init__(**{k: kw[k] for k in _CNN_PARAMS})
        self.unlabelled = unlabelled
        self.threshold = threshold
        self.ratio = ratio
        self.unlabelled_weight = unlabelled_weight
        self.strength = strength
        self.views = views
        self.steps_per_epoch = steps_per_epoch
        self.ema = ema
        self.align = align
        self.neighbours = neighbours

    # ------------------------------------------------------------------ hooks of the subclasses
    def _needs_unlabelled(self) -> bool:
        return True

    def _lr_scales(self) -> dict[str, float] | None:
        return None

    def _check_semisup(self) -> None:
        name = type(self).__name__
        if self.unlabelled is None and self._needs_unlabelled():
            raise ReplearnError(f"{name}: unlabelled images are needed (unlabelled=None)")
        if isinstance(self.views, (tuple, list)):
            if len(self.views) != 2 or not all(callable(v) for v in self.views):
                raise ReplearnError(f"{name}: views must be a kind or a pair (weak, strong) of callables")
        elif self.views not in VIEW_KINDS:
            raise ReplearnError(f"{name}: views {self.views!r} is not known; choose one of: {', '.join(VIEW_KINDS)}")
        else:
            fixmatch_views(self.views, self.strength)  # checks strength
        spe = self.steps_per_epoch
        if spe is not None and (isinstance(spe, bool) or int(spe) != spe or spe < 1):
            raise ReplearnError(f"{name}: steps_per_epoch must be an integer >= 1 or None, got {spe!r}")
        check_fixmatch_settings(self.threshold, self.ratio, self.unlabelled_weight)
        check_decay(self.ema, f"{name}: ema")
        k = self.neighbours
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
            raise ReplearnError(f"{name}: neighbours must be an integer >= 0, got {k!r}")

    def _objective(self, shape: tuple[int, ...], y: torch.Tensor,
                   n_classes: int) -> tuple[FixMatchObjective | None, Augment]:
        """The objective (None without unlabelled images) and the labelled batches' augmentation.

        ``y`` (N,) are the labelled images' class indices: their shares (plus one image per class, so that no
        class is aligned away) are what distribution alignment aims at.
        """
        views = self.views
        weak, strong = tuple(views) if isinstance(views, (tuple, list)) else fixmatch_views(views, float(self.strength))
        augment = self.augment if self.augment is not None else weak
        if self.unlabelled is None:
            return None, augment
        u = self._images(self.unlabelled, "unlabelled", shape=shape)
        counts = torch.bincount(y, minlength=n_classes).float() + 1.0
        neighbours = None
        if self.neighbours:
            if int(self.neighbours) >= len(u):
                raise ReplearnError(f"{type(self).__name__}: neighbours={self.neighbours} needs more than that many "
                                    f"unlabelled images, got {len(u)}")
            neighbours = torch.from_numpy(nearest_images(u.float().cpu().numpy(), int(self.neighbours),
                                                         seed=int(self.seed))[0])
        return FixMatchObjective(u, weak, strong, float(self.threshold), int(self.ratio), float(self.unlabelled_weight),
                                 bool(self.align), counts / counts.sum(), neighbours), augment

    def _repeats(self, n: int, objective: FixMatchObjective | None) -> int:
        """How many times the labelled images are repeated in one epoch."""
        batch = int(self.batch_size)
        if self.steps_per_epoch is not None:
            steps = int(self.steps_per_epoch)
        elif objective is not None:
            steps = math.ceil(objective.unlabelled.shape[0] / (objective.ratio * batch))
        else:
            return 1
        return max(1, math.ceil(steps * batch / n))

    # ------------------------------------------------------------------ sklearn API
    def fit(self, X: ImageArray, y: Any, validation_data: LabelledSet | None = None,
            eval_sets: Mapping[str, LabelledSet] | None = None, checkpoint_dir: Any = None,
            resume: bool = False) -> "SemiSupervisedClassifier":
        """Train on labelled images ``X`` (N, H, W) / (N, C, H, W) with labels ``y`` (N,) and ``unlabelled``.

        ``validation_data`` / ``eval_sets`` / ``checkpoint_dir`` / ``resume`` as in
        :meth:`CNNClassifier.fit <replearn.encoders.CNNClassifier.fit>`. Returns ``self``.
        """
        self._check_settings()
        self._check_semisup()
        for attr in ("model_", "history_", "classes_", "input_shape_"):
            self.__dict__.pop(attr, None)
        labels = self._labels(y)
        classes = np.unique(labels) if self.classes is None else np.asarray(self.classes)
        if classes.ndim != 1 or len(np.unique(classes)) != len(classes) or len(classes) < 2:
            raise ImageInputError(f"{type(self).__name__}: need at least 2 distinct classes, got {classes.tolist()}")
        self.classes_ = classes
        y_idx = self._indices(labels, "y")
        x = self._images(X, reset=True, shape=normalise_image_shape(self.image_shape, type(self).__name__))
        if len(x) != len(y_idx):
            raise ImageInputError(f"{type(self).__name__}: X has {len(x)} images but y has {len(y_idx)} labels")
        input_shape = tuple(int(d) for d in x.shape[1:])
        self.input_shape_ = input_shape
        val = None if validation_data is None else self._labelled(validation_data, "validation_data")
        named = {str(k): self._labelled(v, f"eval_sets[{k!r}]") for k, v in (eval_sets or {}).items()}
        objective, augment = self._objective(input_shape, y_idx, len(classes))
        reps = self._repeats(len(x), objective)
        model = self._build(input_shape, len(classes))
        self._check_network(model, input_shape, len(classes))
        history = fit(model, (x.repeat(reps, 1, 1, 1), y_idx.repeat(reps)), val, self.train_config(),
                      augment=augment, checkpoint_dir=checkpoint_dir, resume=bool(resume),
                      progress=bool(self.progress), eval_sets=named or None, objective=objective,
                      lr_scales=self._lr_scales(), callbacks=[WeightAverage(float(self.ema))] if self.ema else None)
        self.model_ = model
        self.history_: History = history
        return self
