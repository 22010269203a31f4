"""Small helpers for reading delimited text tables faithfully (words like "null" stay words)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from lmbrain.errors import DataError


def read_table(path: Path, *, sep: str = ",", required: Iterable[str] = (), quoting: int = 0) -> pd.DataFrame:
    """Read a CSV/TSV keeping literal strings; a DataError naming the file and any missing column."""
    try:
        table = pd.read_csv(path, sep=sep, keep_default_na=False, na_values=[""], quoting=quoting)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        raise DataError(
            f"{path}: cannot parse as a {'tab' if sep == chr(9) else repr(sep)}-separated table ({err})"
        ) from None
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing} (columns: {list(table.columns)})")
    return table


def first_nan_row(table: pd.DataFrame, columns: Iterable[str]) -> tuple[int, str] | None:
    """The first (row, column) with a missing value among ``columns``, or None."""
    for col in columns:
        bad = table[col].isna().to_numpy()
        if bad.any():
            return int(bad.argmax()), col
    return None
