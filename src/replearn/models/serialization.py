"""Save and load models as safetensors weights plus a JSON sidecar (no pickle).

``save_model(model, "run/model.safetensors", meta={...})`` writes
``model.safetensors`` (every parameter and buffer) and ``model.json`` (the
model's config, from which it is rebuilt, plus ``meta``: classes,
normalisation, training data ...). ``load_model`` rebuilds and loads both.

The sidecar also records checksums (``"integrity"``): the SHA-256 of the
weights file's bytes and of a canonical JSON of ``model`` and of ``meta``; the
weights file's own metadata repeats the last two. Every loader here checks them,
so a sidecar edited after saving (another activation, a layer removed, another
BatchNorm epsilon, other class names) or a replaced weights file is refused with
one line instead of predicting something else. Files saved before the checksums
existed (a sidecar without ``"integrity"``, weights without the repeated
checksums) still load, unchecked. Weights holding NaN or infinite values are
refused on saving and on loading, and a sidecar that declares more than
:data:`MAX_PARAMETERS` values is refused before anything is allocated.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_bytes, save as save_bytes
from torch import nn

from replearn.errors import ReplearnError
from replearn.models.autoencoder import AutoEncoder
from replearn.models.network import Network
from replearn.models.spec import spec_size
from replearn.utils.atomic import save_json, to_jsonable, write_bytes

FORMAT = "replearn-model/1"
WEIGHTS_NAME = "model.safetensors"
MAX_SIDECAR_BYTES = 16 * 2**20
"""A model description larger than this is refused before it is parsed."""

MAX_PARAMETERS = 500_000_000
"""A model description declaring more values than this (weights, biases, BatchNorm statistics) is refused."""
INTEGRITY_KEYS = ("weights_sha256", "model_sha256", "meta_sha256")
#: A weights header longer than this is not peeked at for the checksums it repeats.
_MAX_HEADER = 100_000_000
_RESAVE = "re-save the model or restore the file"


# ---------------------------------------------------------------------------- checksums
def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json_sha256(obj: Any) -> str:
    """SHA-256 of a canonical JSON text of ``obj`` (sorted keys, no spaces): what the sidecar's JSON parses to."""
    return _sha256(json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))


def _plain(obj: Any) -> Any:
    """``obj`` as the JSON sidecar will read back (numpy values and paths converted, tuples as lists)."""
    return json.loads(json.dumps(obj, default=to_jsonable))


def _header_metadata(path: Path) -> dict[str, Any]:
    """The ``__metadata__`` of a safetensors file's header; ``{}`` when it cannot be read."""
    try:
        with open(path, "rb") as fh:
            (size,) = struct.unpack("<Q", fh.read(8))
            if size > _MAX_HEADER:
                return {}
            header = json.loads(fh.read(size))
    except (OSError, ValueError, struct.error):  # ValueError covers JSON and UTF-8 errors
        return {}
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    return meta if isinstance(meta, dict) else {}


def _non_finite(state: Mapping[str, torch.Tensor]) -> str | None:
    """The name of the first floating-point tensor holding NaN or infinity, else ``None``."""
    for key, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return key
    return None


# ---------------------------------------------------------------------------- rebuilding
def declared_size(config: Mapping[str, Any]) -> int:
    """The number of values (as :func:`~replearn.models.count_params` totals them) that ``config`` declares.

    Computed from the layer specs and input shapes alone; nothing is allocated.
    Raises ``KeyError``/``TypeError``/``ValueError`` for a malformed description.
    """
    kind = config["type"]
    if kind == "network":
        shape = config["input_shape"]
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0
                                                  for d in shape):
            raise ValueError(f"input_shape must be a list of positive integers, got {shape!r}")
        if not isinstance(config["spec"], list):
            raise TypeError(f"spec must be a list of layer strings, got {type(config['spec']).__name__}")
        return spec_size(config["spec"], shape)
    if kind == "autoencoder":
        return declared_size(config["encoder"]) + declared_size(config["decoder"])
    return 0  # unknown types are refused by model_from_config


def model_from_config(config: dict[str, Any], source: str | os.PathLike | None = None) -> nn.Module:
    """Rebuild an untrained model from ``model.config()``.

    ``source`` (the sidecar's path) starts the error lines. A description declaring more
    than :data:`MAX_PARAMETERS` values is refused before any layer is built.
    """
    where = f"{source}: " if source is not None else ""
    if not isinstance(config, dict):
        raise ReplearnError(f"{where}model description must be a JSON object, got {type(config).__name__}")
    try:
        size = declared_size(config)
    except (KeyError, TypeError, ValueError) as exc:
        raise ReplearnError(f"{where}model description is incomplete or malformed ({exc})") from None
    except ReplearnError as exc:
        raise ReplearnError(f"{where}{exc}") from None
    if size > MAX_PARAMETERS:
        raise ReplearnError(
            f"{where}the model description declares {size:,} parameters, more than the limit of "
            f"{MAX_PARAMETERS:,}; refusing to build it (is the file damaged or not from replearn?)"
        )
    try:
        return _build(config)
    except (KeyError, TypeError, ValueError) as exc:
        raise ReplearnError(f"{where}model description is incomplete or malformed ({exc})") from None
    except ReplearnError as exc:
        if not where:
            raise
        raise ReplearnError(f"{where}{exc}") from None


def _build(config: dict[str, Any]) -> nn.Module:
    kind = config["type"]
    if kind == "network":
        return Network(
            config["spec"], config["input_shape"], config.get("bn_momentum", 0.1),
            config.get("bn_eps", 1e-5), config.get("init", "glorot"), names=config.get("names"),
        )
    if kind == "autoencoder":
        return AutoEncoder(_build(config["encoder"]), _build(config["decoder"]))
    raise ReplearnError(f"model description has unknown type {config.get('type')!r}")


# ---------------------------------------------------------------------------- saving
def _weights_path(path: str | os.PathLike) -> Path:
    """Accept a run directory or a ``.safetensors`` file."""
    path = Path(path)
    if path.is_dir():
        path = path / WEIGHTS_NAME
    return path


def save_model(model: nn.Module, path: str | os.PathLike, meta: dict[str, Any] | None = None) -> Path:
    """Write ``path`` (safetensors; a directory gets ``model.safetensors``) and its ``.json`` sidecar atomically.

    The sidecar holds ``format``, ``model`` (``model.config()``), ``meta`` and ``integrity``
    (the checksums the loaders verify). Both files follow the user's umask.

    Raises:
        ReplearnError: a weight or buffer holds NaN or infinite values (nothing is written).
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        path = path / WEIGHTS_NAME
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    bad = _non_finite(state)
    if bad is not None:
        raise ReplearnError(
            f"save_model {path}: tensor {bad!r} holds NaN or infinite values; refusing to save weights "
            "that cannot predict (did training diverge?)"
        )
    description, extra = _plain(model.config()), _plain(meta or {})
    model_sha, meta_sha = _json_sha256(description), _json_sha256(extra)
    # serialised in memory and written by write_bytes (not safetensors' save_file, which leaves mode 0600)
    data = save_bytes(state, metadata={"format": FORMAT, "model_sha256": model_sha, "meta_sha256": meta_sha})
    write_bytes(path, data)
    save_json(path.with_suffix(".json"), {
        "format": FORMAT, "model": description, "meta": extra,
        "integrity": {"weights_sha256": _sha256(data), "model_sha256": model_sha, "meta_sha256": meta_sha},
    })
    return path


# ---------------------------------------------------------------------------- loading
def _read_state(path: Path) -> tuple[bytes, dict[str, torch.Tensor]]:
    """The weights file's bytes and its tensors."""
    if not path.is_file():
        raise ReplearnError(f"weights file {path} does not exist")
    try:
        raw = path.read_bytes()
        return raw, load_bytes(raw)
    except (SafetensorError, OSError, ValueError) as exc:
        raise ReplearnError(f"weights file {path} is not a readable safetensors file ({exc})") from None


def _check_description(data: dict[str, Any], side: Path, weights: Path) -> None:
    """Compare the sidecar's ``model`` and ``meta`` with the checksums recorded when saving."""
    integrity = data.get("integrity")
    if integrity is None:
        # saved before the checksums existed, or the record was removed: the weights repeat two of them
        recorded = _header_metadata(weights)
        expected = {k: recorded.get(k) for k in ("model_sha256", "meta_sha256")}
    elif not isinstance(integrity, dict) or not all(isinstance(integrity.get(k), str) for k in INTEGRITY_KEYS):
        raise ReplearnError(f"{side}: its integrity record is malformed (it needs {', '.join(INTEGRITY_KEYS)}); "
                            f"{_RESAVE}")
    else:
        expected = integrity
    if isinstance(expected.get("model_sha256"), str) and _json_sha256(data["model"]) != expected["model_sha256"]:
        raise ReplearnError(f"{side}: the architecture description was changed after saving "
                            f"(its checksum does not match); {_RESAVE}")
    if isinstance(expected.get("meta_sha256"), str) and _json_sha256(data.get("meta", {})) != expected["meta_sha256"]:
        raise ReplearnError(f"{side}: the meta data (class names, normalisation, training facts) were changed "
                            f"after saving (its checksum does not match); {_RESAVE}")


def read_sidecar(path: str | os.PathLike) -> dict[str, Any]:
    """The JSON sidecar of a weights file (or run directory), its checksums verified.

    A sidecar without an ``integrity`` record (saved by an older replearn) is returned unchecked.

    Raises:
        ReplearnError: missing, not JSON, not a replearn sidecar, or ``model``/``meta``
            changed after saving (one line naming the file and what does not match).
    """
    weights = _weights_path(path)
    side = weights.with_suffix(".json")
    if not side.is_file():
        raise ReplearnError(f"model description {side} does not exist (expected beside the weights)")
    if side.stat().st_size > MAX_SIDECAR_BYTES:
        raise ReplearnError(f"model description {side} is {side.stat().st_size:,} bytes; a replearn sidecar is far "
                            f"smaller (at most {MAX_SIDECAR_BYTES:,})")
    try:
        data = json.loads(side.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ReplearnError(f"model description {side} is not valid JSON ({exc})") from None
    except (RecursionError, ValueError):  # nesting too deep, or an integer of thousands of digits
        raise ReplearnError(f"model description {side} is not a {FORMAT} file (nested too deep or a number too "
                            "long)") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or "model" not in data:
        raise ReplearnError(f"model description {side} is not a {FORMAT} file")
    _check_description(data, side, weights)
    return data


def _load_weights(model: nn.Module, path: Path, prefix: str, sidecar: dict[str, Any] | None) -> nn.Module:
    raw, state = _read_state(path)
    integrity = sidecar.get("integrity") if sidecar is not None else None
    expected = integrity.get("weights_sha256") if isinstance(integrity, dict) else None
    if expected is not None and _sha256(raw) != expected:
        raise ReplearnError(
            f"{path}: the weights were changed after saving (their checksum does not match "
            f"{path.with_suffix('.json').name}); {_RESAVE}"
        )
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
    bad = _non_finite({k: state[k] for k in own})
    if bad is not None:
        raise ReplearnError(
            f"weights {path}: tensor {bad!r} holds NaN or infinite values, so the model cannot predict; "
            "retrain it (training that diverged needs a lower learning rate)"
        )
    model.load_state_dict({k: state[k] for k in own}, strict=False)
    return model


def load_weights(model: nn.Module, path: str | os.PathLike, prefix: str = "") -> nn.Module:
    """Load the weights at ``path`` into ``model`` (same architecture), in place.

    With ``prefix``, only the model's keys starting with it are expected in the
    file (the rest keep their values). A mismatch raises one line naming the
    first mismatched layer and the shapes. When the ``.json`` sidecar is beside the
    weights, it is read as :func:`read_sidecar` reads it and the weights must match the
    checksum it recorded (an older sidecar without one is not checked); NaN or
    infinite weights are refused, naming the tensor.
    """
    path = _weights_path(path)
    sidecar = read_sidecar(path) if path.with_suffix(".json").is_file() else None
    return _load_weights(model, path, prefix, sidecar)


def load_model(path: str | os.PathLike) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild a saved model and load its weights; return (model in eval mode, meta).

    Every check of :func:`read_sidecar`, :func:`model_from_config` (the size limit) and
    :func:`load_weights` applies; models saved before the checksums existed load unchecked.
    """
    weights = _weights_path(path)
    side = read_sidecar(weights)
    model = model_from_config(side["model"], source=weights.with_suffix(".json"))
    _load_weights(model, weights, "", side)
    model.eval()
    return model, side.get("meta", {})
