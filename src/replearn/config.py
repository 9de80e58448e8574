"""Configuration resolved once: defaults, then a TOML file, then command-line overrides.

Unknown keys fail fast with a did-you-mean suggestion; values are checked
against the type of their default. The resolved config is saved beside every
run's outputs.
"""

from __future__ import annotations

import copy
import difflib
import os
import reprlib
import tomllib
from pathlib import Path
from typing import Any, Mapping

from replearn.errors import ReplearnError

#: The largest config file read (bytes); real ones are well under 10 KiB.
MAX_CONFIG_BYTES = 1 << 20

_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother, _SHORT.maxlong = 3, 60, 60, 40
_SHORT.maxlist = _SHORT.maxtuple = _SHORT.maxdict = 6


def show(value: Any) -> str:
    """A short ``repr`` for messages: long strings, big numbers and deep or long lists are cut."""
    try:
        return _SHORT.repr(value)
    except Exception:  # e.g. an int too long to print
        return f"<{type(value).__name__}>"


def did_you_mean(key: str, allowed: list[str]) -> str:
    """``"; did you mean 'x'? Allowed keys: ..."`` for an unknown ``key``."""
    close = difflib.get_close_matches(key, allowed, n=1) if len(key) <= 200 else []
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{hint} Allowed keys: {', '.join(sorted(allowed))}"


def _check_value(key: str, value: Any, default: Any, source: str) -> Any:
    """Check ``value`` against the type of ``default`` (ints are accepted for floats)."""
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ReplearnError(f"{source}: {key} must be true or false, got {show(value)}")
        return value
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            raise ReplearnError(f"{source}: {key} = {show(value)} is too large for a number") from None
    if isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            raise ReplearnError(f"{source}: {key} must be a list, got {show(value)}")
        return list(value)
    if not isinstance(value, type(default)) or isinstance(value, bool) and not isinstance(default, bool):
        raise ReplearnError(
            f"{source}: {key} must be {type(default).__name__} (like {show(default)}), got {show(value)}"
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
            raise ReplearnError(f"{source}: unknown key {show(key)}{did_you_mean(str(key), list(defaults))}")
        default = defaults[key]
        if isinstance(default, Mapping):
            if not isinstance(value, Mapping):
                raise ReplearnError(f"{source}: {key} must be a table, got {show(value)}")
            out[key] = merge(default, value, f"{source} [{key}]")
        else:
            out[key] = _check_value(key, value, default, source)
    return out


def load_toml(path: str | os.PathLike, max_bytes: int = MAX_CONFIG_BYTES) -> dict[str, Any]:
    """Read a TOML file; a missing, unreadable, oversized or malformed file gives one line.

    Any content either loads or raises :class:`ReplearnError`: also bytes that are not UTF-8,
    integers too long to convert, nesting too deep for the parser, and files over
    ``max_bytes`` (1 MiB).
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            raw = fh.read(max_bytes + 1)
    except FileNotFoundError:
        raise ReplearnError(f"config file {path} does not exist") from None
    except IsADirectoryError:
        raise ReplearnError(f"config file {path} is a folder, not a file") from None
    except OSError as exc:
        raise ReplearnError(f"cannot read config file {path}: {exc.strerror or exc}") from None
    if len(raw) > max_bytes:
        raise ReplearnError(f"config file {path} is larger than {max_bytes // 1024} KiB; a config file is a few lines")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReplearnError(
            f"config file {path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at position {exc.start})"
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ReplearnError(f"config file {path} is not valid TOML: {_one_line(exc)}") from None
    except RecursionError:
        raise ReplearnError(f"config file {path} is not valid TOML: nested too deeply") from None
    except (ValueError, OverflowError, MemoryError) as exc:  # e.g. an integer of more than 4300 digits
        raise ReplearnError(f"config file {path} is not valid TOML: {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:197] + "..."


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
