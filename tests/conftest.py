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


def require_tool(*names: str, install: str) -> str:
    """The path of the first of ``names`` on PATH; else skip, or fail where LMBRAIN_REQUIRE_RENDER is set (CI
    installs the browser and TeX, so a missing one there is a broken setup, not a reason to skip)."""
    import shutil

    found = next((path for name in names if (path := shutil.which(name))), None)
    if found is None:
        message = f"{names[0]} not installed (Debian: apt-get install {install})"
        if os.environ.get("LMBRAIN_REQUIRE_RENDER"):
            pytest.fail(message + "; LMBRAIN_REQUIRE_RENDER is set")
        pytest.skip(message)
    return found


@pytest.fixture(scope="session")
def chromium() -> str:
    """Headless Chromium for layout tests (:func:`require_tool`)."""
    return require_tool("chromium", "chromium-browser", install="chromium")


@pytest.fixture(scope="session")
def pdflatex() -> str:
    """pdflatex with booktabs, longtable, siunitx and pdflscape (:func:`require_tool`)."""
    return require_tool("pdflatex", install="texlive-latex-recommended texlive-latex-extra texlive-science")


@pytest.fixture(scope="session")
def pdftoppm() -> str:
    """poppler's PDF-to-PNG renderer (:func:`require_tool`)."""
    return require_tool("pdftoppm", install="poppler-utils")


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
