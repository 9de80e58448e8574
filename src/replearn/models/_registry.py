"""The model registry: small builder functions and one factory."""

from __future__ import annotations

import inspect
from typing import Any, Callable

from torch import nn

from replearn.errors import ReplearnError

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Decorator: register a builder under its function name."""
    if fn.__name__ in _MODELS:
        raise ValueError(f"model {fn.__name__!r} is registered twice")
    _MODELS[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    """Names of the registered models, sorted."""
    return sorted(_MODELS)


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name`` with keyword overrides (the only way in)."""
    if name not in _MODELS:
        raise ReplearnError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    builder = _MODELS[name]
    accepted = list(inspect.signature(builder).parameters)
    unknown = [k for k in kwargs if k not in accepted]
    if unknown:
        raise ReplearnError(f"model {name!r}: unknown keyword {unknown[0]!r}; it accepts: {', '.join(accepted)}")
    try:
        return builder(**kwargs)
    except TypeError as exc:
        raise ReplearnError(f"model {name!r}: {exc}") from None
