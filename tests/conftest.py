"""Shared test configuration: real data from LMBRAIN_DATA_DIR, caches in a per-session folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Tests that need real data read LMBRAIN_DATA_DIR (the Makefile and .ci/run set it); default to the
# layout of this project's checkout so a bare `pytest` works too.
os.environ.setdefault("LMBRAIN_DATA_DIR", str((REPO.parent / "shared" / "datasets").resolve()))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Feature cache shared by the test session (and by reruns): the repo's .cache unless set.
os.environ.setdefault("LMBRAIN_CACHE_DIR", str(REPO / ".cache"))




def pytest_configure(config: pytest.Config) -> None:
    """One BLAS/torch thread per test process: xdist runs several, and oversubscribed OpenBLAS threads
    spin-wait (LAPACK calls become 20-100x slower on a busy 2-core machine)."""
    from threadpoolctl import threadpool_limits

    config._lmbrain_blas_limit = threadpool_limits(1)  # kept alive for the session
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real-data directory; a test needing it fails (not skips) when it is missing."""
    path = Path(os.environ["LMBRAIN_DATA_DIR"])
    assert path.is_dir(), f"LMBRAIN_DATA_DIR={path} does not exist: real-data tests need it"
    return path
