"""Shared fixtures: the real-data folder (skip when absent) and fixture paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The real datasets folder named by LMBRAIN_DATA_DIR (tests needing it skip when it is unset)."""
    value = os.environ.get("LMBRAIN_DATA_DIR")
    if not value or not Path(value).is_dir():
        pytest.skip("LMBRAIN_DATA_DIR is not set to the real datasets folder")
    return Path(value)
