"""The generic ``table`` reader: a word- or sentence-level table (CSV, TSV or parquet) with response columns.

The spec's options map the user's columns onto the stimulus table (text, context, position, sentence, split
group) and the responses (one or more numeric columns, one row per stimulus — wide — or one row per stimulus and
subject — long, with a ``subject`` column). Missing responses are kept as NaN per target (a row missing one
response keeps its other responses), counted in ``dataset.missing`` and left out where that target is fitted.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lmbrain.data.dataset import Dataset
from lmbrain.data.readers.common import event_responses, neuroid_table
from lmbrain.data.registry import ReadContext, register_reader
from lmbrain.data.specs import DataSpec
from lmbrain.errors import DataError

#: cells read as a missing response (never applied to the text column: a word "NA" stays a word)
DEFAULT_NA = ("", "NA", "NaN", "nan", "N/A", "NULL", "null", "None", ".")
_SEPARATORS = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".txt": "\t"}

OPTIONS: dict[str, Any] = {
    "text": None,  # column with the word or sentence as presented (required)
    "context": None,  # column naming the text each unit is read in (its story, passage or sentence)
    "position": None,  # column giving the order within the context (default: the file's row order)
    "sentence": None,  # column naming the sentence of each word (gives sentence_id, word_position, ...)
    "split": None,  # column whose values are the cross-validation groups (default: the context column)
    "subject": None,  # long format: column naming the subject of each row
    "item": None,  # long format: column identifying a stimulus across subjects (default: context + position)
    "responses": None,  # response column(s): a name or a list
    "sep": None,  # field separator (default: from the suffix: .csv ',', .tsv/.txt '\t')
    "na_values": list(DEFAULT_NA),  # response cells read as missing
    "missing": "allow",  # "allow" (NaN kept per target, reported) or "error" (refuse any missing response)
}


def read_any(path: Path, sep: str | None = None) -> pd.DataFrame:
    """A CSV/TSV (every cell kept as a string) or parquet table; a DataError naming the file otherwise."""
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        try:
            return pd.read_parquet(path)
        except Exception as err:  # pyarrow raises several types
            raise DataError(f"{path}: cannot read as parquet ({err})") from None
    sep = sep or _SEPARATORS.get(suffix)
    if sep is None:
        raise DataError(f"{path}: unknown table suffix {suffix!r}; use .csv, .tsv, .txt or .parquet, or set sep")
    try:
        return pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, quoting=csv.QUOTE_MINIMAL)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as err:
        raise DataError(f"{path}: cannot parse as a {sep!r}-separated table ({err})") from None


def _names(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in ([value] if isinstance(value, str) else value)]


def numeric(table: pd.DataFrame, column: str, path: Path, na_values: list[str], *, allow_nan: bool) -> np.ndarray:
    """A column as floats (listed NA strings → NaN); a DataError naming the first unreadable cell's row."""
    raw = table[column]
    if raw.dtype.kind in "fiub":
        values = raw.to_numpy(float)
    else:
        text = raw.astype(str).str.strip()
        text = text.where(~text.isin(na_values) & raw.notna(), None)
        values = pd.to_numeric(text, errors="coerce").to_numpy(float)
        bad = np.isnan(values) & text.notna().to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"{path}: row {row + 2}: column {column!r} is {raw.iloc[row]!r}, not a number "
                            f"(missing values may be written as {sorted(set(na_values) - {''})} or left empty)")
    if not allow_nan and not np.isfinite(values).all():
        row = int(np.flatnonzero(~np.isfinite(values))[0])
        what = "missing value" if np.isnan(values[row]) else f"infinite value {values[row]:g}"
        raise DataError(f"{path}: row {row + 2}: {what} in column {column!r}")
    return values


def _typed(values: pd.Series) -> pd.Series:
    """A column read as text, as numbers when every cell is one (story 3 read from CSV or parquet alike)."""
    if pd.api.types.is_numeric_dtype(values):
        return values
    try:
        return pd.to_numeric(values)
    except (ValueError, TypeError):
        return values


def _ranks(keys: pd.Series, order: pd.Series) -> np.ndarray:
    """0-based rank of ``order`` within each value of ``keys`` (row order: already sorted)."""
    return keys.groupby(keys, sort=False).cumcount().to_numpy() if order is None else (
        order.groupby(keys, sort=False).rank(method="first").to_numpy(int) - 1)


def _checked_columns(ctx: ReadContext, table: pd.DataFrame, path: Path) -> tuple[dict[str, Any], list[str]]:
    """The option → column map and the response columns, each checked to be given (if required) and present."""
    opts, spec = ctx.options, ctx.spec
    text_col, context_col = opts["text"], opts["context"]
    responses = _names(opts["responses"])
    for option, value in (("text", text_col), ("context", context_col), ("responses", responses)):
        if not value:
            raise DataError(f"dataset {spec.name}: option {option!r} is required by the table reader "
                            f"(columns of {path.name}: {list(table.columns)})")
    named = {"text": text_col, "context": context_col, "position": opts["position"], "sentence": opts["sentence"],
             "split": opts["split"], "subject": opts["subject"], "item": opts["item"]}
    for option, column in [*named.items(), *(("responses", r) for r in responses)]:
        if column is not None and column not in table.columns:
            raise DataError(f"dataset {spec.name}: option {option}: no column {column!r} in {path} "
                            f"(columns: {list(table.columns)})")
    if opts["missing"] not in ("allow", "error"):
        raise DataError(f"dataset {spec.name}: option missing must be 'allow' or 'error', got {opts['missing']!r}")
    return named, responses


def _check_key_cells(table: pd.DataFrame, named: dict[str, Any], path: Path) -> None:
    """Refuse an empty cell in a key column (context, sentence, split, subject, item; the text may be empty)."""
    for option in ("text", "context", "sentence", "split", "subject", "item"):
        column = named[option]
        if column is None:
            continue
        cells = table[column]
        absent = cells.isna() | cells.astype(str).str.strip().eq("")
        if option != "text" and absent.any():
            row = int(np.flatnonzero(absent.to_numpy())[0])
            raise DataError(f"{path}: row {row + 2}: column {column!r} ({option}) is empty")


def _with_row_and_position(table: pd.DataFrame, position: str | None, path: Path, na_values: list[str]) -> pd.DataFrame:
    """The table with ``_row`` (file row order) and ``_pos`` (the integer position column, NaN without one)."""
    table = table.assign(_row=np.arange(len(table)))
    if position is not None:
        table["_pos"] = numeric(table, position, path, na_values, allow_nan=False)
        if not np.all(table["_pos"] == np.round(table["_pos"])):
            row = int(np.flatnonzero(table["_pos"] != np.round(table["_pos"]))[0])
            raise DataError(f"{path}: row {row + 2}: position {table[position].iloc[row]!r} is not an "
                            "integer")
    else:
        table["_pos"] = np.nan
    return table


def _item_columns(table: pd.DataFrame, named: dict[str, Any], name: str, path: Path) -> list[str]:
    """The columns identifying a stimulus; refuses a long table without them and a wide one repeating one."""
    context_col = named["context"]
    item_cols = [named["item"]] if named["item"] else [context_col, "_pos" if named["position"] else "_row"]
    if named["subject"] is not None and named["position"] is None and named["item"] is None:
        raise DataError(f"dataset {name}: long format (option subject) needs option position or item to know "
                        "which rows of different subjects are the same stimulus")
    if named["subject"] is None and table.duplicated(item_cols).any():
        row = int(np.flatnonzero(table.duplicated(item_cols).to_numpy())[0])
        where = (f"has position {table[named['position']].iloc[row]} twice" if named["position"] else
                 f"has item {table[named['item']].iloc[row]!r} twice")
        raise DataError(f"{path}: row {row + 2}: context {table[context_col].iloc[row]!r} {where} (a table with one "
                        "row per subject and stimulus needs option subject)")
    return item_cols


def _sorted_items(table: pd.DataFrame, named: dict[str, Any], item_cols: list[str], path: Path) -> pd.DataFrame:
    """One row per stimulus, contexts in first-seen order, by position (or row order) within each."""
    context_col = named["context"]
    first = table.drop_duplicates(item_cols)
    items = first.copy()
    context_order = {c: i for i, c in enumerate(dict.fromkeys(table[context_col].astype(str)))}
    items["_ctx"] = items[context_col].astype(str).map(context_order)
    sort_key = ["_ctx", "_pos" if named["position"] else "_row"]
    items = items.sort_values(sort_key, kind="stable").reset_index(drop=True)
    dup = items.duplicated(["_ctx", "_pos"]) if named["position"] else pd.Series(False, index=items.index)
    if dup.any():
        row = int(items["_row"][dup].iloc[0])
        raise DataError(f"{path}: row {row + 2}: context {items[context_col][dup].iloc[0]!r} has position "
                        f"{items[named['position']][dup].iloc[0]!r} twice"
                        + (" (long format: set option item if one position holds several stimuli)"
                           if named["subject"] else ""))
    return items


def _stimulus_table(items: pd.DataFrame, named: dict[str, Any]) -> pd.DataFrame:
    """The stimulus table of the sorted items, with the sentence columns and the user's key columns."""
    context_col = named["context"]
    contexts = items[context_col].astype(str)
    order = items["_pos"] if named["position"] else None
    stimuli = pd.DataFrame({
        "stimulus_id": (items[named["item"]].astype(str) if named["item"] else
                        contexts + "." + (items["_pos"].astype(int).astype(str) if named["position"] else
                                          pd.Series(_ranks(contexts, None)).astype(str))),
        "text": items[named["text"]].astype(str),
        "context_id": contexts,
        "position": _ranks(contexts, order),
    })
    if named["sentence"] is not None:
        _add_sentence_columns(stimuli, contexts + "/" + items[named["sentence"]].astype(str))
    split_col = named["split"] or context_col
    for column in (context_col, named["sentence"], split_col, named["item"], named["position"]):
        if column is not None and column not in stimuli.columns:
            stimuli[column] = _typed(items[column]).to_numpy()
    return stimuli


def _add_sentence_columns(stimuli: pd.DataFrame, sentence: pd.Series) -> None:
    """Add sentence_id, word_position and sentence_position (within the context) to the stimulus table."""
    stimuli["sentence_id"] = sentence.to_numpy()
    stimuli["word_position"] = stimuli.groupby("sentence_id", sort=False).cumcount().to_numpy()
    firsts = stimuli.drop_duplicates("sentence_id")
    sentence_rank = firsts.groupby("context_id", sort=False).cumcount()
    stimuli["sentence_position"] = stimuli["sentence_id"].map(
        dict(zip(firsts["sentence_id"], sentence_rank, strict=True))).to_numpy()


def _check_stimulus_table(
    stimuli: pd.DataFrame, table: pd.DataFrame, named: dict[str, Any], spec: DataSpec, path: Path
) -> None:
    """Refuse a split_unit that is no stimulus column and an item given different texts."""
    split_col = named["split"] or named["context"]
    if spec.split_unit not in stimuli.columns:
        raise DataError(f"dataset {spec.name}: split_unit {spec.split_unit!r} is not a column of the stimulus "
                        f"table (columns: {list(stimuli.columns)}); with the table reader it is usually the "
                        f"split (or context) column, here {split_col!r}")
    if named["item"] is not None:
        clash = table.groupby(named["item"], sort=False)[named["text"]].nunique() > 1
        if clash.any():
            item = clash.index[clash.to_numpy()][0]
            rows = (np.flatnonzero((table[named["item"]] == item).to_numpy())[:2] + 2).tolist()
            raise DataError(f"{path}: item {item!r} has different texts (rows {rows})")


def _sample_of_rows(table: pd.DataFrame, items: pd.DataFrame, item_cols: list[str]) -> np.ndarray:
    """The stimulus (item) index of every table row."""
    key_of_row = table[item_cols].astype(str).agg("\x1f".join, axis=1)
    key_of_item = items[item_cols].astype(str).agg("\x1f".join, axis=1)
    index = pd.Series(np.arange(len(items)), index=key_of_item.to_numpy())
    return index.reindex(key_of_row.to_numpy()).to_numpy()


def _wide_responses(
    spec: DataSpec, table: pd.DataFrame, values: dict[str, np.ndarray], responses: list[str], sample: np.ndarray
) -> tuple[np.ndarray, pd.DataFrame, np.ndarray]:
    """Wide format: the response matrix (a column per response), its neuroids and each cell's file line."""
    matrix = np.column_stack([values[r][np.argsort(sample)] for r in responses])
    neuroids = neuroid_table(spec, responses, responses, roi=responses)
    line = table["_row"].to_numpy()[np.argsort(sample)] + 2  # 1-based, after the header line
    lines = np.column_stack([line] * len(responses))
    return matrix, neuroids, lines


def _long_responses(
    ctx: ReadContext, table: pd.DataFrame, values: dict[str, np.ndarray], responses: list[str],
    sample: np.ndarray, stimuli: pd.DataFrame, subject_col: str, path: Path,
) -> tuple[np.ndarray, pd.DataFrame, np.ndarray]:
    """Long format: the response matrix (a column per response and subject), its neuroids, each cell's line."""
    subj = table[subject_col].astype(str)
    subjects = [s for s in dict.fromkeys(subj) if ctx.wants(s)]
    pair = pd.DataFrame({"s": subj, "i": sample}).duplicated()
    if pair.any():
        row = int(np.flatnonzero(pair.to_numpy())[0])
        raise DataError(f"{path}: row {row + 2}: subject {subj.iloc[row]!r} has stimulus "
                        f"{stimuli['stimulus_id'].iloc[sample[row]]!r} twice")
    col_of = {s: k for k, s in enumerate(subjects)}
    matrix = np.full((len(stimuli), len(subjects) * len(responses)), np.nan)
    lines = np.zeros(matrix.shape, dtype=np.int64)  # 0: no row of this subject for the stimulus
    ids, subs, rois = [], [], []
    for j, response in enumerate(responses):
        for s in subjects:
            ids.append(f"{response}_{s}" if len(responses) > 1 else f"s{s}")
            subs.append(s)
            rois.append(response)
        keep = subj.isin(subjects).to_numpy()
        cols = j * len(subjects) + np.asarray([col_of[s] for s in subj[keep]], dtype=int)
        matrix[sample[keep], cols] = values[response][keep]
        lines[sample[keep], cols] = table["_row"].to_numpy()[keep] + 2
    return matrix, neuroid_table(ctx.spec, ids, subs, roi=rois), lines


@register_reader("table", options=OPTIONS)
def read_table_dataset(ctx: ReadContext) -> Dataset:
    """Word or sentence rows with response columns (wide), or with a subject column too (long)."""
    opts, spec = ctx.options, ctx.spec
    path = ctx.role("data")
    if spec.modality == "fmri_timeseries":
        raise DataError(f"dataset {spec.name}: the table reader reads event data (one response per stimulus), "
                        "not time series")
    table = read_any(path, opts["sep"])
    if table.empty:
        raise DataError(f"{path}: the table has no rows (columns: {list(table.columns)})")
    named, responses = _checked_columns(ctx, table, path)
    na_values = [str(v) for v in opts["na_values"]]
    allow_nan = opts["missing"] == "allow"
    _check_key_cells(table, named, path)
    values = {r: numeric(table, r, path, na_values, allow_nan=allow_nan) for r in responses}
    table = _with_row_and_position(table, named["position"], path, na_values)
    item_cols = _item_columns(table, named, spec.name, path)
    items = _sorted_items(table, named, item_cols, path)
    stimuli = _stimulus_table(items, named)
    _check_stimulus_table(stimuli, table, named, spec, path)
    sample = _sample_of_rows(table, items, item_cols)
    if named["subject"] is None:
        matrix, neuroids, lines = _wide_responses(spec, table, values, responses, sample)
    else:
        matrix, neuroids, lines = _long_responses(ctx, table, values, responses, sample, stimuli,
                                                  named["subject"], path)
    responses_array = event_responses(matrix, stimuli["stimulus_id"], neuroids)
    line_table = None
    if path.suffix.lower() not in (".parquet", ".pq"):  # a text table: name missing values by their file line
        line_table = pd.DataFrame(lines, columns=[str(v) for v in responses_array["neuroid_id"].values])
    return ctx.dataset(stimuli, responses_array, lines=line_table)
