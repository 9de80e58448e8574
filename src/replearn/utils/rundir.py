"""Run directories: every run writes to its own folder."""

from __future__ import annotations

import os
import time
from pathlib import Path

from replearn.errors import ReplearnError


def make_run_dir(out: str | os.PathLike | None, workflow: str, root: str | os.PathLike = "runs") -> Path:
    """Create and return the run directory.

    ``out`` when given (it may exist; files in it are replaced atomically),
    else ``<root>/<workflow>-<YYYYmmdd-HHMMSS>`` (with a suffix if taken).
    """
    if out is not None:
        path = Path(out)
        if path.exists() and not path.is_dir():
            raise ReplearnError(f"--out {path}: exists and is not a directory")
    else:
        path = new_run_dir_name(workflow, root)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ReplearnError(f"cannot create run directory {path}: {exc.strerror}") from exc
    return path


def new_run_dir_name(workflow: str, root: str | os.PathLike = "runs") -> Path:
    """``<root>/<workflow>-<YYYYmmdd-HHMMSS>`` (with a suffix if taken); not created."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = Path(root) / f"{workflow}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = Path(root) / f"{workflow}-{stamp}-{n}"
    return path
