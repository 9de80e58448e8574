"""Configuration resolved once: defaults, then a TOML file, then command-line overrides.

Unknown keys fail fast with a did-you-mean suggestion; values are checked
against the type of their default. The resolved config is saved beside every
run's outputs.
"""

from __future__ import annotations

import copy
import difflib
import os
import tomllib
from pathlib import Path
from typing import Any, Mapping

from replearn.errors import ReplearnError


def _suggest(key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{hint} Allowed keys: {', '.join(sorted(allowed))}"


def _check_value(key: str, value: Any, default: Any, source: str) -> Any:
    """Check ``value`` against the type of ``default`` (ints are accepted for floats)."""
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ReplearnError(f"{source}: {key} must be true or false, got {value!r}")
        return value
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            raise ReplearnError(f"{source}: {key} must be a list, got {value!r}")
        return list(value)
    if not isinstance(value, type(default)) or isinstance(value, bool) and not isinstance(default, bool):
        raise ReplearnError(
            f"{source}: {key} must be {type(default).__name__} (like {default!r}), got {value!r}"
        )
    return value


def merge(defaults: Mapping[str, Any], updates: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Return ``defaults`` updated by ``updates``; nested tables merge recursively.

    Raises :class:`ReplearnError` naming ``source`` and the key for an unknown
    key or a value of the wrong type.
    """
    out = dict(defaults)
    for key, value in updates.items():
        if key not in defaults:
            raise ReplearnError(f"{source}: unknown key {key!r}{_suggest(key, list(defaults))}")
        default = defaults[key]
        if isinstance(default, Mapping):
            if not isinstance(value, Mapping):
                raise ReplearnError(f"{source}: {key} must be a table, got {value!r}")
            out[key] = merge(default, value, f"{source} [{key}]")
        else:
            out[key] = _check_value(key, value, default, source)
    return out


def load_toml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a TOML file; a missing or malformed file gives one line."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ReplearnError(f"config file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ReplearnError(f"config file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ReplearnError(f"cannot read config file {path}: {exc.strerror}") from None


def resolve(
    defaults: Mapping[str, Any],
    config_file: str | os.PathLike | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Resolve a config: ``defaults`` <- TOML ``config_file`` <- ``overrides`` (``None`` values skipped).

    The result is a deep copy: changing it never changes ``defaults``.
    """
    config = copy.deepcopy(dict(defaults))
    if config_file is not None:
        config = merge(config, load_toml(config_file), str(config_file))
    if overrides:
        config = merge(config, {k: v for k, v in overrides.items() if v is not None}, "command line")
    return config
