"""Shared test fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATASETS = Path(os.environ.get("REPLEARN_TEST_DATASETS")  # a checkout elsewhere (a git worktree) names them
                       or Path(__file__).resolve().parents[1].parent / "shared" / "datasets")


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """The read-only reference data sets beside the checkout (``../shared/datasets``)."""
    if not SHARED_DATASETS.is_dir():
        pytest.skip(f"reference data sets not found at {SHARED_DATASETS}")
    return SHARED_DATASETS
