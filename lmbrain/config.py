"""Locations lmbrain reads and writes: the data directory and the feature cache."""

from __future__ import annotations

import os
from pathlib import Path

from lmbrain.errors import DataError

DATA_DIR_VAR = "LMBRAIN_DATA_DIR"
CACHE_DIR_VAR = "LMBRAIN_CACHE_DIR"


def data_dir() -> Path:
    """The root folder that holds one sub-folder per dataset (``$LMBRAIN_DATA_DIR``)."""
    value = os.environ.get(DATA_DIR_VAR)
    if not value:
        raise DataError(
            f"{DATA_DIR_VAR} is not set: point it at the folder that holds the datasets "
            f"(e.g. export {DATA_DIR_VAR}=../shared/datasets)"
        )
    path = Path(value).expanduser()
    if not path.is_dir():
        raise DataError(f"{DATA_DIR_VAR}={value} is not a directory")
    return path


def data_file(relative: str | Path) -> Path:
    """Path of a dataset file under the data directory; a clear error if it is missing."""
    path = data_dir() / relative
    if not path.exists():
        raise DataError(f"missing data file {path} (looked under {DATA_DIR_VAR}={os.environ[DATA_DIR_VAR]})")
    return path


def cache_dir() -> Path:
    """The feature cache folder (``$LMBRAIN_CACHE_DIR``, default ``~/.cache/lmbrain``)."""
    value = os.environ.get(CACHE_DIR_VAR)
    path = Path(value).expanduser() if value else Path.home() / ".cache" / "lmbrain"
    path.mkdir(parents=True, exist_ok=True)
    return path
