"""Load saved models as encoders (codes) or classifiers (probabilities), with one-line errors.

A model saved by replearn (:func:`replearn.models.save_model`) is a run folder
holding ``model.safetensors`` + ``model.json``, or such a pair of files under
any name. :func:`load_encoder` reads codes from it -- an autoencoder's encoder,
or any layer of a :class:`~replearn.models.Network` (``features`` by default),
flattened -- and :func:`load_classifier` reads class probabilities from a
network with a 1-D output. Every user mistake (a missing path, a folder without
weights, an autoencoder where a classifier is needed, an unknown layer) raises
:class:`~replearn.errors.ReplearnError` with one line that starts with the
option that named the model (``--model`` by default).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from replearn.data.tensors import to_tensor
from replearn.errors import ReplearnError
from replearn.evaluate.domain_shift import read_reference, shift_check
from replearn.models import AutoEncoder, Network, load_model
from replearn.models.serialization import WEIGHTS_NAME
from replearn.train import predict

ENCODER_BATCH = 512
CLASSIFIER_BATCH = 1024


def _a(kind: str) -> str:
    return ("an " if kind[0] in "aeiou" else "a ") + kind


def _to(module: nn.Module, device: Any) -> nn.Module:
    return module if device is None else module.to(device)


class LayerCodes(nn.Module):
    """``network``'s output at ``layer``, flattened: (N, C, H, W) -> (N, D).

    Shares the network's modules; built without creating layers, so it draws nothing from the RNGs.
    """

    def __init__(self, network: Network, layer: str) -> None:
        super().__init__()
        self.net = network
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) images -> (N, D) codes."""
        return self.net.forward_features(x, self.layer).flatten(1)


@dataclass
class LoadedEncoder:
    """A saved model and how to read codes from it.

    Attributes:
        model: the :class:`~replearn.models.AutoEncoder` or :class:`~replearn.models.Network` (eval mode).
        meta: the ``meta`` table saved with it.
        kind: ``"autoencoder"``, ``"classifier"`` (a network with a 1-D output of K > 1) or ``"network"``.
        input_shape: (C, H, W) the model takes.
        path: the weights file.
        layer: the layer the codes come from (``"features"`` for an autoencoder's code).
        description: e.g. ``"autoencoder encoder (16-D codes)"``, for printing.
        class_names: the K class names of a classifier (its metadata's, else ``"0"``..), else None.
    """

    model: Any
    meta: dict[str, Any]
    kind: str
    input_shape: tuple[int, int, int]
    path: Path
    layer: str
    description: str
    class_names: list[str] | None

    @property
    def code_dim(self) -> int:
        """Size D of the codes."""
        if self.kind == "autoencoder":
            return int(self.model.code_dim)
        return int(np.prod(self.model.layer_shapes[self.layer]))

    def module(self) -> nn.Module:
        """A module mapping images (N, C, H, W) to codes (N, D), sharing the model's weights."""
        if self.kind == "autoencoder":
            return self.model.encoder
        return LayerCodes(self.model, self.layer)

    def codes(self, images: np.ndarray | torch.Tensor, device: Any = None,
              batch_size: int = ENCODER_BATCH) -> np.ndarray:
        """Codes (N, D) float32 of images (N, H, W) or (N, 1, H, W) (uint8, or float in [0, 1])."""
        x = to_tensor(images)
        module = _to(self.module(), device)
        return predict(module, x, batch_size).numpy().astype(np.float32).reshape(len(x), -1)

    def probabilities(self, images: np.ndarray | torch.Tensor, device: Any = None,
                      batch_size: int = ENCODER_BATCH) -> np.ndarray:
        """Softmax outputs (N, K) float64 of a classifier for images (N, H, W)."""
        if self.kind != "classifier":
            raise ReplearnError(f"{self.path}: holds {_a(self.kind)}, not a classifier; it has no class probabilities")
        return _probabilities(self.model, images, device, batch_size)

    def reconstruct(self, images: np.ndarray | torch.Tensor, device: Any = None,
                    batch_size: int = ENCODER_BATCH) -> np.ndarray:
        """Reconstructions (N, H, W) float32 in [0, 1] of an autoencoder."""
        if self.kind != "autoencoder":
            raise ReplearnError(f"{self.path}: holds {_a(self.kind)}, not an autoencoder; it cannot reconstruct")
        model = _to(self.model, device)
        return predict(model, to_tensor(images), batch_size).numpy()[:, 0]


class _Classifier(NamedTuple):
    model: Network
    meta: dict[str, Any]
    class_names: list[str]


class LoadedClassifier(_Classifier):
    """A saved classifier: ``model, meta, class_names = load_classifier(path)``.

    Attributes:
        model: the :class:`~replearn.models.Network` mapping (N, C, H, W) to logits (N, K) (eval mode).
        meta: the ``meta`` table saved with it.
        class_names: K names (the metadata's ``class_names``, else ``"0"``, ``"1"``, ...).
        members: the other models of a fold ensemble (the sidecar's ``ensemble``), beside ``model``;
            not part of the tuple, so ``model, meta, class_names = load_classifier(path)`` still unpacks.
    """

    members: tuple[Network, ...] = ()

    @property
    def input_shape(self) -> tuple[int, ...]:
        """(C, H, W) the network takes."""
        return tuple(int(s) for s in self.model.input_shape)

    def probabilities(self, images: np.ndarray | torch.Tensor, device: Any = None,
                      batch_size: int = CLASSIFIER_BATCH) -> np.ndarray:
        """Softmax class probabilities (N, K) float64 of images (N, H, W): the mean over the ensemble's models
        and, when the sidecar says ``"tta": "d4"``, over the 8 symmetries of each crop."""
        from replearn.evaluate.tta import tta_average

        x = to_tensor(images)
        out = []
        for model in (self.model, *self.members):
            if self.meta.get("tta") == "d4" and x.shape[-1] == x.shape[-2]:
                out.append(tta_average(lambda v, m=model: _probabilities(m, v, device, batch_size), x))
            else:
                out.append(_probabilities(model, x, device, batch_size))
        return np.mean(out, axis=0)


def _probabilities(model: nn.Module, images: np.ndarray | torch.Tensor, device: Any, batch_size: int) -> np.ndarray:
    logits = predict(_to(model, device), to_tensor(images), batch_size)
    return torch.softmax(logits.double(), dim=1).numpy()


def _class_names(meta: dict[str, Any], k: int) -> list[str]:
    names = [str(n) for n in meta.get("class_names", [])]
    return names if len(names) == k else [str(i) for i in range(k)]


def weights_file(path: str | os.PathLike, option: str = "--model") -> Path:
    """The weights file of ``path`` (a run folder's ``model.safetensors``, or a ``.safetensors`` file).

    Raises:
        ReplearnError: ``{option} {path}: ...`` -- no such path, a folder without ``model.safetensors``
            (naming the ``.safetensors`` files it does hold), or a file of another kind.
    """
    p = Path(path)
    if not p.exists():
        raise ReplearnError(f"{option} {path}: no such run folder or weights file")
    if p.is_dir() and not (p / WEIGHTS_NAME).is_file():
        found = sorted(f.name for f in p.glob("*.safetensors"))
        hint = f"; it holds {', '.join(found)}: name one of them" if found else "; it holds no .safetensors file"
        raise ReplearnError(f"{option} {path}: folder has no {WEIGHTS_NAME}{hint}")
    if p.is_file() and p.suffix != ".safetensors":
        raise ReplearnError(
            f"{option} {path}: expected a run folder or a .safetensors file, got a {p.suffix or 'plain'} file"
        )
    return p / WEIGHTS_NAME if p.is_dir() else p


def load_encoder(path: str | os.PathLike, layer: str = "features", option: str = "--model") -> LoadedEncoder:
    """The model saved at ``path`` (run folder or ``.safetensors``) as a :class:`LoadedEncoder`.

    An autoencoder gives its encoder's codes; a :class:`~replearn.models.Network` taking
    images (C, H, W) gives its ``layer`` output, flattened. ``option`` starts every error line.
    """
    weights = weights_file(path, option)
    model, meta = load_model(weights)
    if isinstance(model, AutoEncoder):
        shape = tuple(int(s) for s in model.input_shape)
        return LoadedEncoder(model, meta, "autoencoder", shape, weights, "features",
                             f"autoencoder encoder ({model.code_dim}-D codes)", None)
    if not isinstance(model, Network):
        raise ReplearnError(f"{option} {path}: holds a {type(model).__name__}; an autoencoder or a Network is needed")
    if layer not in model.layer_names:
        raise ReplearnError(
            f"{option} {path}: the network has no layer {layer!r} to read codes from; "
            f"its layers are {', '.join(model.layer_names)} (choose one with --layer)"
        )
    if len(model.input_shape) != 3:
        raise ReplearnError(
            f"{option} {path}: takes inputs of shape {tuple(model.input_shape)}, not images (C, H, W)"
        )
    dim = int(np.prod(model.layer_shapes[layer]))
    shape = tuple(int(s) for s in model.input_shape)
    if len(model.output_shape) == 1 and model.output_shape[0] > 1:
        names = _class_names(meta, int(model.output_shape[0]))
        return LoadedEncoder(model, meta, "classifier", shape, weights, layer,
                             f"classifier network, layer {layer!r} ({dim}-D codes)", names)
    return LoadedEncoder(model, meta, "network", shape, weights, layer,
                         f"network layer {layer!r} ({dim}-D codes)", None)


def load_classifier(path: str | os.PathLike, option: str = "--model") -> LoadedClassifier:
    """The classifier saved at ``path`` (run folder or ``.safetensors``): a network with a 1-D output.

    Raises:
        ReplearnError: as :func:`weights_file`, or ``... holds an autoencoder, not a classifier ...``.
    """
    weights = weights_file(path, option)
    model, meta = load_model(weights)
    if not isinstance(model, Network) or len(model.output_shape) != 1:
        kind = "an autoencoder" if meta.get("task") == "autoencoder" or not isinstance(model, Network) else \
            f"a network with outputs {tuple(model.output_shape)}"
        raise ReplearnError(f"{option} {path}: holds {kind}, not a classifier (use `replearn embed` for codes)")
    if len(model.input_shape) != 3:
        raise ReplearnError(
            f"{option} {path}: takes inputs of shape {tuple(model.input_shape)}, not images (C, H, W)"
        )
    members = []
    ensemble = meta.get("ensemble")
    first = isinstance(ensemble, list) and bool(ensemble) and ensemble[0] == weights.name  # a member alone: itself only
    for name in ensemble[1:] if first else []:
        other = weights.parent / str(name)
        if Path(name).name != name or not other.is_file():
            raise ReplearnError(f"{option} {path}: the fold ensemble's {name} is missing beside {weights.name}")
        member, _ = load_model(other)
        if not isinstance(member, Network) or tuple(member.output_shape) != tuple(model.output_shape) \
                or tuple(member.input_shape) != tuple(model.input_shape):
            raise ReplearnError(f"{option} {path}: the fold ensemble's {name} does not match {weights.name}")
        members.append(member)
    loaded = LoadedClassifier(model, meta, _class_names(meta, int(model.output_shape[0])))
    loaded.members = tuple(members)
    return loaded


def domain_check(model: LoadedEncoder | LoadedClassifier, images: np.ndarray, codes: np.ndarray | None = None,
                 device: Any = None, seed: int = 0) -> dict[str, Any] | None:
    """Do ``images`` (N, H, W) look like the model's training crops? :func:`~replearn.evaluate.domain_shift.shift_check`.

    The reference crops are the sample stored in the model's meta
    (:func:`~replearn.evaluate.domain_shift.reference_meta`); both sets are encoded by the model: an encoder's
    codes (``codes`` of ``images`` when already computed), a classifier network's ``features`` layer (its logits
    when it has none). Returns None when the model was saved without a reference.
    """
    reference = read_reference(model.meta)
    if reference is None:
        return None
    if isinstance(model, LoadedEncoder):
        ref_codes = model.codes(reference, device)
        new_codes = model.codes(images, device) if codes is None else codes
    else:
        net = model.model
        module = LayerCodes(net, "features") if "features" in net.layer_names else net
        ref_codes = predict(_to(module, device), to_tensor(reference), ENCODER_BATCH).numpy().reshape(len(reference), -1)
        new_codes = predict(_to(module, device), to_tensor(images), ENCODER_BATCH).numpy().reshape(len(images), -1)
    return shift_check(ref_codes, new_codes, seed=seed)


def other_models(weights: Path) -> list[str]:
    """The other ``.safetensors`` files beside ``weights`` (e.g. a run's autoencoders), sorted by name."""
    return sorted(f.name for f in Path(weights).parent.glob("*.safetensors") if f.name != Path(weights).name)


def model_choice(model: LoadedEncoder) -> str:
    """One line: the weights file used (``model.path``) and the other models saved beside it, to choose from."""
    path = Path(model.path)
    line = f"model: {path} ({model.description})"
    others = other_models(path)
    if others:
        line += f"; {path.parent} also holds {', '.join(others)}: choose one with --model {path.parent / others[0]}"
    return line
