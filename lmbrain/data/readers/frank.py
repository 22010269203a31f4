"""Frank et al. UCL corpus: EEG (N400) and eye-tracking per word x participant (tab-separated)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmbrain.data.dataset import Dataset
from lmbrain.data.readers.common import event_responses, neuroid_table
from lmbrain.data.readers.tables import first_nan_row, read_table
from lmbrain.data.registry import ReadContext, register_reader
from lmbrain.errors import DataError

_KEYS = ("subj_nr", "sent_nr", "word_pos", "item", "word", "reject_data", "reject_word")


def _as_bool(series: pd.Series, path: object, column: str) -> np.ndarray:
    if series.dtype == bool:
        return series.to_numpy()
    text = series.astype(str).str.lower()
    bad = ~text.isin(["true", "false"])
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise DataError(
            f"{path}: row {row + 2}: column {column!r} is {series.iloc[row]!r}, expected true/false"
        )
    return (text == "true").to_numpy()


@register_reader("frank2015", options={"measure": "N400", "reject_word": True})
def read_frank2015(ctx: ReadContext) -> Dataset:
    """1931 words of 205 sentences x participants; rejected data points and words become NaN."""
    path = ctx.role("data")
    measure = ctx.options["measure"]
    table = read_table(path, sep="\t", required=(*_KEYS, measure), quoting=3)
    bad = first_nan_row(table, _KEYS)
    if bad:
        raise DataError(f"{path}: row {bad[0] + 2}: missing value in column {bad[1]!r}")
    reject_data = _as_bool(table["reject_data"], path, "reject_data")
    reject_word = _as_bool(table["reject_word"], path, "reject_word")
    table = table.assign(reject_data=reject_data, reject_word=reject_word)
    dup = table.duplicated(["subj_nr", "item"])
    if dup.any():
        row = int(dup.to_numpy().argmax())
        raise DataError(
            f"{path}: row {row + 2}: participant {table['subj_nr'].iloc[row]} has item "
            f"{table['item'].iloc[row]} twice"
        )
    words = table.drop_duplicates(["item", "word", "sent_nr", "word_pos", "reject_word"])
    clash = words["item"].duplicated(keep=False)
    if clash.any():
        item = words["item"][clash].iloc[0]
        rows = (np.flatnonzero((table["item"] == item).to_numpy())[:2] + 2).tolist()
        raise DataError(
            f"{path}: item {item} has inconsistent word/sentence/position/reject_word (rows {rows})"
        )
    words = words.sort_values(["sent_nr", "word_pos"]).reset_index(drop=True)
    stimuli = pd.DataFrame(
        {
            "stimulus_id": words["item"].astype(str),
            "text": words["word"].astype(str),
            "context_id": [f"sentence_{s:03d}" for s in words["sent_nr"]],
            "position": words["word_pos"].astype(int) - 1,
            "sentence_id": words["sent_nr"].astype(int),
            "word_position": words["word_pos"].astype(int) - 1,
            "reject_word": words["reject_word"].astype(bool),
            "nr_char": words["nr_char"].astype(int) if "nr_char" in words else np.nan,
        }
    )
    for sid, pos in stimuli.groupby("sentence_id")["position"]:
        if list(pos) != list(range(len(pos))):
            raise DataError(f"{path}: sentence {sid}: word positions {[p + 1 for p in pos]} are not 1..n")
    excluded = _rejected_subjects(ctx, measure)
    values = table[measure].astype(float).where(~table["reject_data"])
    if ctx.options["reject_word"]:
        values = values.where(~table["reject_word"])
    wide = (
        table.assign(value=values)
        .pivot(index="item", columns="subj_nr", values="value")
        .reindex(index=words["item"].to_numpy())
    )
    subjects = [s for s in sorted(wide.columns) if ctx.wants(str(s)) and str(s) not in excluded]
    neuroids = neuroid_table(ctx.spec, [f"{measure}_s{s:02d}" for s in subjects], [str(s) for s in subjects])
    responses = event_responses(wide[subjects].to_numpy(), stimuli["stimulus_id"], neuroids)
    return ctx.dataset(stimuli, responses, excluded={s: r for s, r in excluded.items() if ctx.wants(s)})


def _rejected_subjects(ctx: ReadContext, measure: str) -> dict[str, str]:
    """Participants the authors excluded (subjects.csv ``reject``) for this data set's experiment."""
    if not any(f.role == "subjects" for f in ctx.spec.files):
        return {}
    path = ctx.role("subjects")
    experiment = {"N400": "EEG", "baseline": "EEG", "RTfirstpass": "ET", "RT": "SPR"}.get(measure)
    table = read_table(path, sep="\t", required=("experiment", "subj_nr", "reject"))
    table = table[table["experiment"] == experiment]
    reject = _as_bool(table["reject"], path, "reject")
    return {
        str(s): f"rejected by the authors in {path.name} (non-native speaker or high error rate)"
        for s in table["subj_nr"][reject]
    }
