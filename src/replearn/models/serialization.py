"""Save and load models as safetensors weights plus a JSON sidecar (no pickle).

``save_model(model, "run/model.safetensors", meta={...})`` writes
``model.safetensors`` (every parameter and buffer) and ``model.json`` (the
model's config, from which it is rebuilt, plus ``meta``: classes,
normalisation, training data ...). ``load_model`` rebuilds and loads both.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from replearn.errors import ReplearnError
from replearn.models.autoencoder import AutoEncoder
from replearn.models.network import Network
from replearn.utils.atomic import atomic_path, save_json

FORMAT = "replearn-model/1"
WEIGHTS_NAME = "model.safetensors"


def model_from_config(config: dict[str, Any]) -> nn.Module:
    """Rebuild an untrained model from ``model.config()``."""
    try:
        kind = config["type"]
        if kind == "network":
            return Network(
                config["spec"], config["input_shape"], config.get("bn_momentum", 0.1),
                config.get("bn_eps", 1e-5), config.get("init", "glorot"), names=config.get("names"),
            )
        if kind == "autoencoder":
            return AutoEncoder(model_from_config(config["encoder"]), model_from_config(config["decoder"]))
    except (KeyError, TypeError) as exc:
        raise ReplearnError(f"model description is incomplete or malformed ({exc})") from None
    raise ReplearnError(f"model description has unknown type {config.get('type')!r}")


def _weights_path(path: str | os.PathLike) -> Path:
    """Accept a run directory or a ``.safetensors`` file."""
    path = Path(path)
    if path.is_dir():
        path = path / WEIGHTS_NAME
    return path


def save_model(model: nn.Module, path: str | os.PathLike, meta: dict[str, Any] | None = None) -> Path:
    """Write ``path`` (safetensors; a directory gets ``model.safetensors``) and its ``.json`` sidecar atomically."""
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path / WEIGHTS_NAME
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"format": FORMAT})
    save_json(path.with_suffix(".json"), {"format": FORMAT, "model": model.config(), "meta": meta or {}})
    return path


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise ReplearnError(f"weights file {path} does not exist")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ReplearnError(f"weights file {path} is not a readable safetensors file ({exc})") from None


def load_weights(model: nn.Module, path: str | os.PathLike, prefix: str = "") -> nn.Module:
    """Load the weights at ``path`` into ``model`` (same architecture), in place.

    With ``prefix``, only the model's keys starting with it are expected in the
    file (the rest keep their values). A mismatch raises one line naming the
    first mismatched layer and the shapes.
    """
    path = _weights_path(path)
    state = _read_state(path)
    own = {k: v for k, v in model.state_dict().items() if k.startswith(prefix)}
    for key, tensor in own.items():
        if key not in state:
            raise ReplearnError(f"weights {path} do not fit this model: no entry for layer {key!r}")
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise ReplearnError(
                f"weights {path} do not fit this model: layer {key!r} has shape {tuple(state[key].shape)} "
                f"in the file but {tuple(tensor.shape)} in the model"
            )
    extra = [k for k in state if k.startswith(prefix) and k not in own]
    if extra:
        raise ReplearnError(f"weights {path} do not fit this model: the file has extra layer {extra[0]!r}")
    model.load_state_dict({k: state[k] for k in own}, strict=False)
    return model


def read_sidecar(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON sidecar of a weights file (or run directory)."""
    side = _weights_path(path).with_suffix(".json")
    if not side.is_file():
        raise ReplearnError(f"model description {side} does not exist (expected beside the weights)")
    try:
        data = json.loads(side.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReplearnError(f"model description {side} is not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or "model" not in data:
        raise ReplearnError(f"model description {side} is not a {FORMAT} file")
    return data


def load_model(path: str | os.PathLike) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a saved model and load its weights; return (model in eval mode, meta)."""
    side = read_sidecar(path)
    model = model_from_config(side["model"])
    load_weights(model, path)
    model.eval()
    return model, side.get("meta", {})
