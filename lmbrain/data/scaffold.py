"""``lmbrain data init`` and ``lmbrain data check``: a spec scaffolded from a table, and a summary to eyeball.

:func:`guess_columns` reads a table's header and values and guesses which column is the text, the context, the
position, the sentence, the subject and the responses; :func:`scaffold_spec` turns that (and any column the
user named) into a ``table``-reader spec with the file's sha256, size and role; :func:`check_summary` describes
a loaded dataset: counts, groups, missing values per target and a few rows with their responses side by side.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lmbrain import config
from lmbrain.data.dataset import Dataset
from lmbrain.data.readers.table import DEFAULT_NA, read_any
from lmbrain.errors import DataError
from lmbrain.io import sha256_file

#: name patterns tried in order (case-insensitive, whole name) for each role of a column
PATTERNS: dict[str, tuple[str, ...]] = {
    "text": (r"words?", r"text", r"tokens?", r"sentences?", r"stimulus", r"stim", r"form"),
    "context": (r"(text|story|passage|doc|document|context|article|paragraph)(_?(id|nr|num|no))?", r"item",
                r"sent(ence)?_?(id|nr|num|no)"),
    "position": (r"(w|word)?_?(pos|position|idx|index|num|nr|no)", r"zone", r"wnum", r"word_?in_?(text|story)",
                 r"order"),
    "sentence": (r"sent(ence)?(_?(id|nr|num|no))?",),
    "subject": (r"subj(ect)?(_?(id|nr|num|no))?", r"participant(_?id)?", r"worker(_?id)?", r"reader", r"sub"),
    "responses": (r".*rt.*", r".*(time|reading|dur|duration|fix|gaze|ffd|gd|trt|n400|p600|erp|amp|bold|resp).*"),
}


@dataclass
class Guess:
    """Columns assigned to each role, and one line per assumption made."""

    columns: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def _match(columns: list[str], patterns: tuple[str, ...], taken: set[str]) -> str | None:
    for pattern in patterns:
        for column in columns:
            if column not in taken and re.fullmatch(pattern, column.strip(), flags=re.IGNORECASE):
                return column
    return None


def _numeric_share(values: pd.Series) -> float:
    text = values.astype(str).str.strip()
    text = text[~text.isin(DEFAULT_NA)]
    return float(pd.to_numeric(text, errors="coerce").notna().mean()) if len(text) else 0.0


def guess_columns(table: pd.DataFrame, given: dict[str, Any]) -> Guess:
    """Which column plays which role: the given ones, else a guess from the names and values."""
    columns = [str(c) for c in table.columns]
    numeric = {c: _numeric_share(table[c]) > 0.95 for c in columns}
    out: dict[str, Any] = {}
    notes: list[str] = []
    taken: set[str] = {c for k, v in given.items() if k != "responses" and v for c in [v]}
    taken |= set(given.get("responses") or [])
    for role in ("text", "context", "sentence", "position", "subject"):
        if given.get(role):
            out[role] = given[role]
            continue
        pool = [c for c in columns if (role == "text") != numeric[c] or role in ("context", "sentence", "subject")]
        found = _match(pool, PATTERNS[role], taken)
        if role == "text" and found is None:
            texts = [c for c in columns if not numeric[c] and c not in taken]
            found = texts[0] if texts else None
        out[role] = found
        if found is not None:
            taken.add(found)
            notes.append(f"{role}: column {found!r} (guessed from its name{'/values' if role == 'text' else ''})")
    if given.get("responses"):
        out["responses"] = list(given["responses"])
    else:
        rest = [c for c in columns if numeric[c] and c not in taken]
        named = [c for c in rest if _match([c], PATTERNS["responses"], set())]
        out["responses"] = named or rest
        if out["responses"]:
            how = "their names" if named else "being the numeric columns left"
            notes.append(f"responses: {out['responses']} (guessed from {how})")
    missing = [role for role in ("text", "context", "responses") if not out.get(role)]
    if missing:
        raise DataError(f"cannot tell which column is the {', '.join(missing)} among {columns}: name them with "
                        + " ".join(f"--{m.rstrip('s')}" for m in missing))
    if out.get("subject") is None:
        notes.append("no subject column: each response column is one target series (wide format)")
    if out.get("position") is None:
        notes.append("no position column: units are read in the file's row order within each context")
    return Guess(out, notes)


def spec_root(path: Path, data_dir: Path | None = None) -> str:
    """The ``root`` of a spec for a file: its folder relative to the data directory; a DataError when the file is
    not in a folder under it."""
    base = Path(data_dir) if data_dir is not None else config.data_dir()
    base = Path(os.path.normpath(base.expanduser().absolute()))
    folder = Path(os.path.normpath(Path(path).expanduser().absolute())).parent
    where = f"the data directory {base} ({'--data-dir' if data_dir is not None else config.DATA_DIR_VAR})"
    try:
        root = folder.relative_to(base)
    except ValueError:
        raise DataError(f"{path} is not under {where}: a spec's files lie in a folder under the data directory; "
                        f"move the table to {base}/<name>/ (or give --data-dir)") from None
    if not root.parts:
        raise DataError(f"{path} lies directly in {where}: put it in a folder of its own, e.g. "
                        f"{base}/{path.stem}/{path.name}")
    return root.as_posix()


def scaffold_spec(
    path: Path,
    *,
    name: str,
    modality: str = "reading_times",
    unit: str | None = None,
    given: dict[str, Any] | None = None,
    citation: str = "TODO: cite the corpus",
    licence: str = "TODO: the corpus licence",
    data_dir: Path | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """A ``table``-reader spec for one file (checksummed, role ``data``) and the assumptions made.

    The file must lie in a folder under ``data_dir`` (default ``$LMBRAIN_DATA_DIR``): the spec's ``root`` is that
    folder, relative to the data directory (a spec never points outside it)."""
    path = Path(os.path.normpath(Path(path).expanduser().absolute()))
    if not path.is_file():
        raise DataError(f"{path} does not exist" if not path.exists() else f"{path} is not a file")
    root = spec_root(path, data_dir)
    table = read_any(path)
    if table.empty:
        raise DataError(f"{path}: the table has no rows")
    given = {k: v for k, v in (given or {}).items() if v}
    for role, value in given.items():
        for column in [value] if isinstance(value, str) else list(value):
            if column not in table.columns:
                flag = "--response" if role == "responses" else f"--{role}"
                raise DataError(f"{flag} {column!r}: {path} has no such column (columns: {list(table.columns)})")
    guess = guess_columns(table, given)
    cols, notes = guess.columns, guess.notes
    if unit is None:
        words = table[cols["text"]].astype(str).str.split().str.len().mean()
        unit = "sentence" if words > 1.5 else "word"
        notes.append(f"stimulus_unit: {unit} ({words:.1f} whitespace-separated words per {cols['text']!r} cell)")
    split = cols.get("split") or cols["context"]
    n_groups = table[split].nunique()
    notes.append(f"split_unit: {split!r} ({n_groups} groups: no group is ever in both training and test folds)")
    options = {k: cols.get(k) for k in ("text", "context", "position", "sentence", "subject")}
    options["responses"] = cols["responses"]
    if cols.get("split"):
        options["split"] = cols["split"]
    spec = {
        "name": name,
        "description": f"{path.name}: {len(table)} rows, scaffolded by `lmbrain data init`",
        "citation": citation,
        "licence": licence,
        "modality": modality,
        "reader": "table",
        "stimulus_unit": unit,
        "split_unit": split,
        "split_description": f"whole {split!r} groups held out together",
        "root": root,
        "files": [{"path": path.name, "sha256": sha256_file(path), "size": path.stat().st_size, "role": "data"}],
        "options": {k: v for k, v in options.items() if v is not None},
    }
    return spec, notes


def trial_load(spec: dict[str, Any], data_dir: Path | None = None, *, source: str = "the new spec") -> Dataset:
    """Load a scaffolded spec as ``load_dataset`` would, without writing it: everything the reader refuses
    (a response that is not a number, a position given twice, no usable target) is refused before the spec is
    written."""
    from lmbrain.data.registry import ReadContext, finalize, get_reader, resolve_options
    from lmbrain.data.specs import parse_spec

    parsed = parse_spec(spec, source=source)
    reader = get_reader(parsed.reader)
    root = parsed.root_dir(Path(data_dir) if data_dir is not None else config.data_dir())
    dataset = reader.fn(ReadContext(parsed, root, None, resolve_options(parsed, reader, {})))
    return finalize(dataset, parsed, None)


def _spread(counts: pd.Series) -> str:
    return f"min {counts.min()}, median {counts.median():g}, max {counts.max()}"


def check_summary(dataset: Dataset, n_rows: int = 5) -> str:
    """What a user should eyeball after loading a dataset: counts, groups, missing values, aligned rows."""
    stimuli = dataset.stimuli
    lines = [dataset.summary().split("; ")[0]]
    groups = pd.Series(dataset.groups())
    lines.append(f"split unit {dataset.split_unit!r}: {groups.nunique()} groups, samples per group "
                 f"{_spread(groups.value_counts())}")
    contexts = stimuli["context_id"].value_counts()
    lines.append(f"contexts: {len(contexts)}, units per context {_spread(contexts)}")
    if dataset.stimulus_unit == "word":
        words = stimuli["text"].astype(str)
        lines.append(f"words: {len(words)} ({words.nunique()} distinct), e.g. "
                     + " ".join(words.iloc[: min(12, len(words))]))
    values = np.asarray(dataset.responses.values, dtype=float)
    ids = [str(v) for v in dataset.responses["neuroid_id"].values]
    subjects = [str(v) for v in dataset.responses["subject"].values]
    lines.append(f"targets: {len(ids)} (subjects: {len(set(subjects))})")
    for j, nid in enumerate(ids[:8]):
        col = values[:, j]
        finite = col[np.isfinite(col)]
        stats = (f"mean {finite.mean():.4g}, sd {finite.std():.4g}, range {finite.min():.4g}..{finite.max():.4g}"
                 if finite.size else "no values")
        lines.append(f"  {nid} (subject {subjects[j]}): {finite.size} values, {len(col) - finite.size} missing; "
                     + stats)
    if len(ids) > 8:
        lines.append(f"  ... {len(ids) - 8} more targets")
    missing = dataset.missing
    lines.append(f"missing: {missing.describe()}" if missing else "missing: none")
    if missing.empty_rows:
        shown = []
        for k, row in enumerate(missing.empty_rows[:5]):
            line = missing.empty_lines[k] if k < len(missing.empty_lines) else 0
            at = f"line {line}" if line > 0 else f"sample row {row + 1}"
            shown.append(f"{at}: {stimuli['stimulus_id'].iloc[row]} {str(stimuli['text'].iloc[row])!r}"
                         if not dataset.is_timeseries else at)
        more = len(missing.empty_rows) - len(shown)
        lines.append(f"samples with no response at all (used by no fit): {len(missing.empty_rows)}, e.g. "
                     + "; ".join(shown) + (f"; ... {more} more" if more > 0 else ""))
    if dataset.excluded:
        lines.append(f"excluded subjects: {dataset.excluded}")
    if dataset.masked:
        lines.append(f"masked targets: {dataset.masked}")
    shown = stimuli.head(n_rows)[["stimulus_id", "context_id", "position", "text"]].copy()
    if not dataset.is_timeseries:
        for j, nid in enumerate(ids[:4]):
            shown[nid] = values[: len(shown), j]
    lines.append("first rows (stimuli with their responses):")
    lines.append(shown.to_string(index=False))
    return "\n".join(lines)
