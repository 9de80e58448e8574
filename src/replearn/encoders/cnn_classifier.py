"""``CNNClassifier``: a convolutional image classifier as a scikit-learn estimator.

``fit(X, y)`` builds a network and trains it with :func:`replearn.train.fit`
(cross-entropy on class indices); ``predict`` / ``predict_proba`` read its
logits. It is the one way the workflows train a CNN classifier: the assignment
grid (``seeding="all"``, ``small_cnn`` or a layer spec), the Fashion-MNIST
recipe (``network="minivgg"``, ``seeding="torch"``, checkpoints and resumption)
and transfer learning (a prebuilt, partly frozen network)::

    clf = CNNClassifier(network_params={"depth": 2, "width": 8}, epochs=20, augment=CellAugment())
    clf.fit(crops, stages, validation_data=(val_crops, val_stages))
    clf.predict(new_crops)

Which network is trained is the ``network`` parameter:

* a registered builder name (``"small_cnn"``, ``"minivgg"``; None means
  ``"small_cnn"``), called with ``input_shape`` = the images' (C, H, W),
  ``n_classes`` = the number of classes and ``network_params``;
* with ``network_params={"spec": [...]}`` (and ``network=None``) a
  :class:`~replearn.models.Network` built from that layer spec, which must end
  in one output per class;
* a prebuilt ``nn.Module`` (e.g. a frozen base with a new head): trained as it
  is -- not rebuilt and not re-seeded -- as a copy, so the parameter itself never
  changes; the trained copy is ``model_``.

Right before building, the global RNGs are seeded with ``seed``:
``seeding="all"`` is :func:`~replearn.utils.runtime.seed_everything` (Python,
NumPy, PyTorch), ``"torch"`` is ``torch.manual_seed`` only. The training run
itself is seeded by ``seed`` through :class:`~replearn.train.TrainConfig`. With
the same settings, the numbers are bit-identical to calling the builder and
:func:`replearn.train.fit` by hand.

Sim-to-real transfer (the lecture's exercise 1): with ``pretrain="sim"`` or
``"widefield"``, ``fit`` first trains the freshly built network on
``pretrain_n`` SYNTHETIC crops from :func:`replearn.data.synthetic_aureus`
with that preset (stages 0/1/2 for free; the images' size; seeded with
``seed``) for ``pretrain_epochs`` epochs, then fine-tunes the *whole* network
on the given crops with the usual settings. Whole-network fine-tuning was
chosen by a measurement (60 labelled ``widefield`` crops, 600 held out, 2
seeds, ``small_cnn`` d4 w16, 2,000 generated crops x 5 epochs, 30 epochs of
fine-tuning): on the preset before it was fitted to real crops, held-out
accuracy 0.46 without pretraining, 0.60 (pretrain sim) / 0.69 (widefield)
fine-tuning everything, 0.51 / 0.67 training the head alone for 10 epochs
first; on the fitted preset 0.46, 0.58 / 0.70 and 0.59 / 0.73 (a tie within
the seeds' spread). ``pretrain=None`` (the default) trains exactly as before.

Images are (N, H, W) or (N, C, H, W) arrays or tensors (uint8 0..255 or float
in [0, 1]), or with ``image_shape`` flattened rows (N, C*H*W); labels are any
values (``classes_`` holds them sorted, or in the order of ``classes``).
"""

from __future__ import annotations

import copy
import dataclasses
import os
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import NotFittedError
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, column_or_1d
from torch import nn

from replearn.data.synthetic import PRESETS as SYNTHETIC_PRESETS
from replearn.data.synthetic import synthetic_aureus
from replearn.data.tensors import to_tensor
from replearn.encoders._inputs import (
    ImageArray, ImageInputError, ImageInputTypeError, as_images, image_tags, normalise_image_shape, one_line,
)
from replearn.errors import ReplearnError
from replearn.models import Network, create_model
from replearn.train import History, TrainConfig, fit, predict
from replearn.utils.runtime import seed_everything

DEFAULT_NETWORK = "small_cnn"
SEEDINGS = ("all", "torch")
Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
LabelledSet = tuple[Any, Any]


def _plain(value: Any) -> Any:
    """NumPy scalars -> Python numbers (TrainConfig checks ``isinstance(v, int)``); anything else unchanged."""
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


class CNNClassifier(ClassifierMixin, BaseEstimator):
    """Train a CNN on labelled images; predict classes and probabilities.

    Args:
        network: a registered model name (None: ``"small_cnn"``) or a prebuilt ``nn.Module``
            mapping (N, C, H, W) to logits (N, n_classes), trained as a copy.
        network_params: keyword arguments of the builder (e.g. ``depth``, ``width``, ``dropout``,
            ``dense`` for ``small_cnn``; ``bn_momentum`` for ``minivgg``), or ``{"spec": [...]}``
            (plus ``bn_momentum``/``bn_eps``/``init``) for a :class:`~replearn.models.Network`.
            ``input_shape`` and ``n_classes`` may be given; they must then agree with the data.
        epochs, batch_size, optimizer, lr, momentum, nesterov, weight_decay, label_smoothing,
            schedule, bf16, channels_last: the training settings (see :class:`~replearn.train.TrainConfig`).
        augment: optional ``f(x_batch, generator) -> x_batch`` applied to training batches.
        seed: seeds the initial weights (see ``seeding``), the shuffling, augmentation and dropout.
        seeding: ``"all"`` (seed Python, NumPy and PyTorch before building, as the assignment grid
            does) or ``"torch"`` (``torch.manual_seed`` only, as the Fashion-MNIST recipe does).
        classes: all class labels, in output order (default: the sorted labels found in ``y``);
            give it when a training set may lack a class.
        device: ``"auto"``, ``"cpu"`` or ``"cuda[:N]"``.
        progress: tqdm bars during training.
        batch_size_predict: images per forward pass in ``predict``/``predict_proba``.
        image_shape: (H, W) or (C, H, W) of flattened input rows (N, C*H*W); None: images only
            (or rows in a prebuilt Network's input size).
        pretrain: None (no pretraining), or the :data:`~replearn.data.synthetic.PRESETS` name
            (``"sim"``, ``"widefield"``, ``"widefield-septa"``) of the generated crops to pretrain on before fine-tuning
            the whole network on ``X``; needs square grayscale images of at least 16 px and 3 classes.
        pretrain_n: generated labelled crops to pretrain on, (pretrain_n, 1, H, H).
        pretrain_epochs: epochs of pretraining (the other settings are the fine-tuning ones).

    Attributes:
        model_: the trained network, on the training device, as :func:`~replearn.train.fit` left it.
        history_: the run's :class:`~replearn.train.History` (``loss``, ``accuracy``, ``val_*``,
            ``<eval set>_*``, ``lr``, ``time`` per epoch).
        pretrain_history_: the pretraining run's History (only with ``pretrain``).
        classes_: the class labels (K,); output i of the network is ``classes_[i]``.
        input_shape_: (C, H, W) the network takes.
        n_features_in_: pixel values per image, C*H*W (scikit-learn's feature count).
    """

    def __init__(
        self,
        network: str | nn.Module | None = None,
        network_params: Mapping[str, Any] | None = None,
        epochs: int = 10,
        batch_size: int = 32,
        optimizer: str = "adam",
        lr: float = 1e-3,
        momentum: float = 0.9,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        label_smoothing: float = 0.0,
        schedule: str | None = None,
        bf16: bool = False,
        channels_last: bool = False,
        augment: Augment | None = None,
        seed: int = 0,
        seeding: str = "all",
        classes: Sequence[Any] | None = None,
        device: str = "auto",
        progress: bool = False,
        batch_size_predict: int = 256,
        image_shape: Sequence[int] | None = None,
        pretrain: str | None = None,
        pretrain_n: int = 2000,
        pretrain_epochs: int = 5,
    ) -> None:
        self.network = network
        self.network_params = network_params
        self.epochs = epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.nesterov = nesterov
        self.weight_decay = weight_decay
        self.label_smoothing = label_smoothing
        self.schedule = schedule
        self.bf16 = bf16
        self.channels_last = channels_last
        self.augment = augment
        self.seed = seed
        self.seeding = seeding
        self.classes = classes
        self.device = device
        self.progress = progress
        self.batch_size_predict = batch_size_predict
        self.image_shape = image_shape
        self.pretrain = pretrain
        self.pretrain_n = pretrain_n
        self.pretrain_epochs = pretrain_epochs

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's tags: non-negative pixels, images or flattened rows."""
        return image_tags(super().__sklearn_tags__())

    # ------------------------------------------------------------------ settings
    def train_config(self) -> TrainConfig:
        """The :class:`~replearn.train.TrainConfig` of ``fit`` (raises :class:`ReplearnError` on a bad setting)."""
        return TrainConfig(
            epochs=_plain(self.epochs), batch_size=_plain(self.batch_size), optimizer=self.optimizer,
            lr=_plain(self.lr), momentum=_plain(self.momentum), nesterov=_plain(self.nesterov),
            weight_decay=_plain(self.weight_decay), loss="cross_entropy", label_smoothing=_plain(self.label_smoothing),
            schedule=self.schedule, bf16=_plain(self.bf16), channels_last=_plain(self.channels_last),
            seed=_plain(self.seed), device=self.device,
        )

    _train_config = train_config

    def _params(self) -> dict[str, Any]:
        params = self.network_params
        if params is None:
            return {}
        if not isinstance(params, Mapping):
            raise ReplearnError(f"CNNClassifier: network_params must be a dict or None, got {type(params).__name__}")
        return dict(params)

    def _check_settings(self) -> None:
        """Everything about the parameters that can be checked before seeing data."""
        if self.seeding not in SEEDINGS:
            raise ReplearnError(f"CNNClassifier: seeding {self.seeding!r} is not allowed; use 'all' or 'torch'")
        if self.augment is not None and not callable(self.augment):
            raise ReplearnError(f"CNNClassifier: augment must be a callable f(x, generator) or None, "
                                f"got {type(self.augment).__name__}")
        net, params = self.network, self._params()
        if isinstance(net, nn.Module):
            if params:
                raise ReplearnError("CNNClassifier: network_params apply to a network that is built; "
                                    f"the prebuilt network takes none, got {sorted(params)}")
        elif net is not None and not isinstance(net, str):
            raise ReplearnError(f"CNNClassifier: network must be a registered model name, an nn.Module or None, "
                                f"got {type(net).__name__}")
        elif "spec" in params and net is not None:
            raise ReplearnError(f"CNNClassifier: network_params has a layer spec, so network must be None, got {net!r}")
        if self.pretrain is not None:
            if self.pretrain not in SYNTHETIC_PRESETS:
                raise ReplearnError(f"CNNClassifier: pretrain {self.pretrain!r} is not allowed; use None or one of "
                                    f"{', '.join(repr(k) for k in SYNTHETIC_PRESETS)}")
            for name, low in (("pretrain_n", 6), ("pretrain_epochs", 1)):
                value = getattr(self, name)
                if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                    raise ReplearnError(f"CNNClassifier: {name} must be an integer >= {low}, got {value!r}")
        self.train_config()

    # ------------------------------------------------------------------ data
    def _labels(self, y: Any, name: str = "y") -> np.ndarray:
        """Labels (N,) -> validated 1-D array (a column vector gives scikit-learn's DataConversionWarning)."""
        if y is None:
            raise ImageInputError(f"This CNNClassifier estimator requires y to be passed, but the target y is None "
                                  f"({name})")
        if isinstance(y, torch.Tensor):
            y = y.detach().cpu().numpy()
        try:
            arr = check_array(y, ensure_2d=False, dtype=None, input_name="y", estimator=self)
            arr = column_or_1d(arr, warn=True)
            check_classification_targets(arr)
        except TypeError as exc:
            raise ImageInputTypeError(f"CNNClassifier: {name}: {one_line(exc)}") from None
        except ValueError as exc:
            raise ImageInputError(f"CNNClassifier: {name}: {one_line(exc)}") from None
        return arr

    def _indices(self, labels: np.ndarray, name: str) -> torch.Tensor:
        """Labels -> int64 class indices (N,) into ``classes_``; unknown labels are refused."""
        classes = self.classes_
        sorter = np.argsort(classes, kind="stable")
        pos = np.clip(np.searchsorted(classes, labels, sorter=sorter), 0, len(classes) - 1)
        idx = sorter[pos]
        unknown = classes[idx] != labels
        if np.any(unknown):
            found = labels[unknown][0].item()
            raise ImageInputError(
                f"CNNClassifier: {name} has label {found!r}, which is not one of the classes {self.classes_.tolist()}"
            )
        return torch.from_numpy(idx.astype(np.int64))

    def _images(self, X: Any, name: str = "X", reset: bool = False, shape: Sequence[int] | None = None,
                source: str | None = None) -> torch.Tensor:
        fitted = shape is None and hasattr(self, "input_shape_")
        x, _ = as_images(self, X, name=name, reset=reset, shape=self.input_shape_ if fitted else shape,
                         fitted=fitted, source=source, min_samples=2 if reset else 1,
                         min_reason="a classifier needs at least 2 training images")
        return x

    def _labelled(self, pair: Any, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ImageInputError(f"CNNClassifier: {name} must be a pair (X, y), got {type(pair).__name__}")
        x = self._images(pair[0], name)
        y = self._indices(self._labels(pair[1], f"{name} y"), name)
        if len(x) != len(y):
            raise ImageInputError(f"CNNClassifier: {name} has {len(x)} images but {len(y)} labels")
        return x, y

    # ------------------------------------------------------------------ building
    def _build(self, input_shape: tuple[int, int, int], n_classes: int) -> nn.Module:
        net, params = self.network, self._params()
        if isinstance(net, nn.Module):
            return copy.deepcopy(net)
        for key, value in (("input_shape", input_shape), ("n_classes", n_classes)):
            if key in params and tuple(np.atleast_1d(params[key]).tolist()) != tuple(np.atleast_1d(value).tolist()):
                raise ImageInputError(f"CNNClassifier: network_params {key}={params[key]!r} but the data have "
                                      f"{key}={value!r}")
        if self.seeding == "all":
            seed_everything(self.seed)
        else:
            torch.manual_seed(self.seed)
        if "spec" in params:
            spec = params.pop("spec")
            params.pop("input_shape", None)
            params.pop("n_classes", None)
            try:
                model: nn.Module = Network(list(spec), input_shape, **params)
            except TypeError as exc:
                raise ReplearnError(f"CNNClassifier: network_params for a layer spec: {exc}") from None
        else:
            params.update(input_shape=input_shape, n_classes=n_classes)
            model = create_model(net or DEFAULT_NETWORK, **params)
        return model

    def _check_network(self, model: nn.Module, shape: tuple[int, int, int], n_classes: int) -> None:
        """A Network must take the images' (C, H, W) and end in one output per class."""
        if not isinstance(model, Network):
            return  # other modules are checked by replearn.train.fit's probe
        if tuple(model.input_shape) != shape:
            c, h, w = (tuple(model.input_shape) + (0, 0, 0))[:3]
            raise ImageInputError(f"CNNClassifier: X images are {shape[1]}x{shape[2]} with {shape[0]} channel(s); "
                                  f"the network takes {h}x{w} with {c} channel(s)")
        if tuple(model.output_shape) != (n_classes,):
            raise ImageInputError(f"CNNClassifier: the network has outputs {tuple(model.output_shape)} but y has "
                                  f"{n_classes} classes; it must end in {n_classes} outputs")

    # ------------------------------------------------------------------ sklearn API
    def fit(
        self,
        X: ImageArray,
        y: Any,
        validation_data: LabelledSet | None = None,
        eval_sets: Mapping[str, LabelledSet] | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        resume: bool = False,
    ) -> "CNNClassifier":
        """Train on images ``X`` (N, H, W), (N, C, H, W) or rows (N, C*H*W) with labels ``y`` (N,).

        Args:
            validation_data: optional ``(X_val, y_val)`` evaluated every epoch (``val_loss``, ``val_accuracy``).
            eval_sets: name -> ``(X, y)`` also evaluated every epoch (``<name>_loss``, ``<name>_accuracy``).
            checkpoint_dir: folder for the training checkpoint, rewritten after every epoch.
            resume: continue from ``checkpoint_dir``'s checkpoint (same result as an uninterrupted run).

        Returns:
            ``self``, with ``model_``, ``history_``, ``classes_``, ``input_shape_``, ``n_features_in_``.
        """
        self._check_settings()
        for attr in ("model_", "history_", "pretrain_history_", "classes_", "input_shape_"):  # a refit starts from scratch
            self.__dict__.pop(attr, None)
        labels = self._labels(y)
        classes = np.unique(labels) if self.classes is None else np.asarray(self.classes)
        if classes.ndim != 1 or len(np.unique(classes)) != len(classes):
            raise ReplearnError(f"CNNClassifier: classes must be distinct labels, got {classes.tolist()}")
        if len(classes) < 2:
            raise ImageInputError(f"CNNClassifier: y holds {len(classes)} class; a classifier needs at least 2 classes")
        self.classes_ = classes
        y_idx = self._indices(labels, "y")
        shape, source = normalise_image_shape(self.image_shape, "CNNClassifier"), None
        if shape is None and isinstance(self.network, Network) and len(self.network.input_shape) == 3:
            shape, source = tuple(int(d) for d in self.network.input_shape), "the prebuilt network"
        x = self._images(X, reset=True, shape=shape, source=source)
        if len(x) != len(y_idx):
            raise ImageInputError(f"CNNClassifier: X has {len(x)} images but y has {len(y_idx)} labels")
        input_shape = tuple(int(d) for d in x.shape[1:])
        self.input_shape_ = input_shape
        val = None if validation_data is None else self._labelled(validation_data, "validation_data")
        named = {}
        if eval_sets is not None:
            if not isinstance(eval_sets, Mapping):
                raise ReplearnError(f"CNNClassifier: eval_sets must be a dict name -> (X, y), "
                                    f"got {type(eval_sets).__name__}")
            named = {str(k): self._labelled(v, f"eval_sets[{k!r}]") for k, v in eval_sets.items()}
        config = self.train_config()
        model = self._build(input_shape, len(classes))
        self._check_network(model, input_shape, len(classes))
        if self.pretrain is not None:
            self.pretrain_history_ = self._pretrain(model, input_shape, len(classes), config)
        history = fit(model, (x, y_idx), val, config, augment=self.augment, checkpoint_dir=checkpoint_dir,
                      resume=bool(resume), progress=bool(self.progress), eval_sets=named or None)
        self.model_ = model
        self.history_: History = history
        return self

    def _pretrain(self, model: nn.Module, input_shape: tuple[int, int, int], n_classes: int,
                  config: TrainConfig) -> History:
        """Train ``model`` in place on ``pretrain_n`` generated crops of preset ``pretrain`` (stages 0/1/2).

        The crops are :func:`~replearn.data.synthetic_aureus` (SYNTHETIC, seed ``seed``) of the images'
        size, (pretrain_n, 1, H, H); the settings are the fine-tuning ones with ``pretrain_epochs`` epochs.
        """
        c, h, w = input_shape
        if c != 1 or h != w or h < 16:
            raise ImageInputError(f"CNNClassifier: pretrain={self.pretrain!r} generates square grayscale crops of at "
                                  f"least 16 px; X images are {h}x{w} with {c} channel(s)")
        if n_classes != 3:
            raise ImageInputError(f"CNNClassifier: pretrain={self.pretrain!r} generates crops of 3 division stages; "
                                  f"y has {n_classes} classes")
        data = synthetic_aureus(int(self.pretrain_n), 0, seed=int(self.seed), preset=self.pretrain, size=int(h))
        xs, ys = to_tensor(data.labelled), torch.from_numpy(data.labels)
        pre_config = dataclasses.replace(config, epochs=int(self.pretrain_epochs))
        return fit(model, (xs, ys), None, pre_config, augment=self.augment, progress=bool(self.progress))

    def _fitted(self) -> nn.Module:
        if not hasattr(self, "model_"):
            raise NotFittedError("This CNNClassifier is not fitted yet; call fit(X, y) first")
        return self.model_

    def predict_logits(self, X: ImageArray) -> np.ndarray:
        """Network outputs (logits) for images ``X``: float32 (N, K)."""
        model = self._fitted()
        x = self._images(X)
        return predict(model, x, int(self.batch_size_predict)).numpy()

    def predict_proba(self, X: ImageArray) -> np.ndarray:
        """Softmax class probabilities of images ``X``: float64 (N, K), columns in ``classes_`` order."""
        logits = torch.from_numpy(self.predict_logits(X))
        return torch.softmax(logits.double(), dim=1).numpy()

    def predict(self, X: ImageArray) -> np.ndarray:
        """Most probable class of each image in ``X``: (N,) labels from ``classes_``."""
        logits = torch.from_numpy(self.predict_logits(X))
        return self.classes_[logits.argmax(dim=1).numpy()]
