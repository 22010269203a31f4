"""Reading the units to extract from a text/CSV file or a dataset name (for the command line)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lmbrain.errors import DataError


def _from_txt(path: Path) -> pd.DataFrame:
    rows, context, position = [], 0, 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if position:
                context, position = context + 1, 0
            continue
        rows.append({"text": line, "context_id": context, "position": position})
        position += 1
    if not rows:
        raise DataError(f"{path}: no text lines")
    return pd.DataFrame(rows)


def _from_table(path: Path) -> pd.DataFrame:
    sep = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    try:
        table = pd.read_csv(path, sep=sep, keep_default_na=False, na_values=[""], dtype={"text": str})
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise DataError(f"{path}: cannot be read as a table ({error})") from None
    if "text" not in table.columns:
        raise DataError(f"{path}: needs a 'text' column (columns are {list(table.columns)})")
    if "stimulus_id" in table.columns:
        ids = table["stimulus_id"].astype(str)
        repeated = ids[ids.duplicated(keep=False)]
        if len(repeated):
            first = repeated.iloc[0]
            rows = [int(i) + 2 for i in repeated.index[repeated == first]]  # file lines: 1 is the header
            raise DataError(
                f"{path}: stimulus_id {first!r} appears {len(rows)} times (lines {', '.join(map(str, rows))}); "
                f"every stimulus_id must be unique ({repeated.nunique()} repeated id(s) in all)"
            )
    if "context_id" not in table.columns:
        table["context_id"] = range(len(table))
    return table


def read_units(source: str) -> pd.DataFrame:
    """A table with ``text``, ``context_id`` and optionally ``position``/``stimulus_id`` columns.

    ``source``: a .txt file (one unit per line, a blank line between contexts), a .csv/.tsv file with a
    ``text`` column (``context_id``, ``position``, ``stimulus_id`` optional; without ``context_id`` each row
    is its own context), or the name of a dataset known to ``lmbrain.data.load_dataset``.
    """
    path = Path(source).expanduser()
    if path.is_file():
        return _from_txt(path) if path.suffix.lower() == ".txt" else _from_table(path)
    if path.suffix.lower() in (".txt", ".csv", ".tsv", ".tab") or "/" in source:
        raise DataError(f"no such file: {source}")
    try:
        from lmbrain.data import load_dataset  # type: ignore[attr-defined]
    except ImportError:
        raise DataError(f"{source!r} is not a file, and this lmbrain has no dataset loaders") from None
    return load_dataset(source).stimuli
