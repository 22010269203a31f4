"""Natural Stories self-paced reading: mean reading time per token, joined on (item, zone)."""

from __future__ import annotations

import csv

import pandas as pd

from lmbrain.data.dataset import Dataset
from lmbrain.data.readers.common import event_responses, neuroid_table
from lmbrain.data.readers.tables import first_nan_row, read_table
from lmbrain.data.registry import ReadContext, register_reader
from lmbrain.errors import DataError


@register_reader("naturalstories", options={"measure": "meanItemRT"})
def read_naturalstories(ctx: ReadContext) -> Dataset:
    """10 stories, one token per row of the running text, one group-mean reading time per token (NaN allowed)."""
    tok_path, rt_path = ctx.role("tokens"), ctx.role("reading_times")
    measure = ctx.options["measure"]
    tokens = read_table(tok_path, sep="\t", required=("word", "zone", "item"), quoting=csv.QUOTE_NONE)
    rts = read_table(rt_path, sep="\t", required=("word", "zone", "item", measure), quoting=csv.QUOTE_NONE)
    for path, table in ((tok_path, tokens), (rt_path, rts)):
        dup = table.duplicated(["item", "zone"])
        if dup.any():
            row = int(dup.to_numpy().argmax())
            raise DataError(
                f"{path}: row {row + 2}: (item, zone) {tuple(table[['item', 'zone']].iloc[row])} repeated"
            )
    merged = tokens.merge(rts, on=["item", "zone"], how="outer", suffixes=("", "_rt"), indicator=True)
    unmatched = merged[merged["_merge"] != "both"]
    if len(unmatched):
        row = unmatched.iloc[0]
        side = tok_path if row["_merge"] == "left_only" else rt_path
        raise DataError(f"{side}: (item {row['item']}, zone {row['zone']}) has no partner in the other file")
    differ = merged["word"] != merged["word_rt"]
    if differ.any():
        row = merged[differ].iloc[0]
        raise DataError(
            f"{rt_path}: (item {row['item']}, zone {row['zone']}) word {row['word_rt']!r} differs from "
            f"{tok_path.name}'s {row['word']!r}"
        )
    merged = merged.sort_values(["item", "zone"]).reset_index(drop=True)
    bad = first_nan_row(merged, ("word",))
    if bad:
        raise DataError(
            f"{rt_path}: (item {merged['item'].iloc[bad[0]]}, zone {merged['zone'].iloc[bad[0]]}): "
            f"missing {bad[1]}"
        )
    # a missing reading time (no reader kept that token) stays NaN: counted in dataset.missing, left out of fits
    stimuli = pd.DataFrame(
        {
            "stimulus_id": merged["item"].astype(str) + "." + merged["zone"].astype(str),
            "text": merged["word"].astype(str),
            "context_id": [f"story_{i:02d}" for i in merged["item"]],
            "position": merged["zone"].astype(int) - 1,
            "story": merged["item"].astype(int),
            "zone": merged["zone"].astype(int),
            "n_readers": merged["nItem"].astype(int) if "nItem" in merged else 0,
        }
    )
    for story, pos in stimuli.groupby("story")["position"]:
        if list(pos) != list(range(len(pos))):
            raise DataError(f"{tok_path}: story {story}: zones are not 1..n without gaps")
    neuroids = neuroid_table(ctx.spec, [measure], ["group"])
    responses = event_responses(merged[[measure]].to_numpy(float), stimuli["stimulus_id"], neuroids)
    return ctx.dataset(stimuli, responses)
