"""Shared fixtures: the real-data folder and fixture paths."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="session")
def real_data_dir(data_dir: Path) -> Path:
    """The real datasets folder named by LMBRAIN_DATA_DIR (a test needing it fails when it is missing)."""
    return data_dir
