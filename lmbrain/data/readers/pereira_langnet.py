"""Pereira et al. 2018, language-network average per sentence (one CSV row per sentence)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmbrain.data.dataset import Dataset
from lmbrain.data.readers.common import check_unique, event_responses, neuroid_table
from lmbrain.data.readers.tables import first_nan_row, read_table
from lmbrain.data.registry import ReadContext, register_reader
from lmbrain.errors import DataError

_COLUMNS = (
    "sentence",
    "experiment",
    "passage_id",
    "passage_topic",
    "sentence_position",
    "presentation_index",
    "langnet_effect_size",
)


@register_reader("pereira_langnet", options={"response": "langnet_effect_size"})
def read_pereira_langnet(ctx: ReadContext) -> Dataset:
    """627 sentences (experiments 2 and 3) in presentation order, one response value per sentence."""
    path = ctx.role("sentences")
    response_col = ctx.options["response"]
    table = read_table(path, required=(*_COLUMNS, response_col))
    bad = first_nan_row(table, (*_COLUMNS, response_col))
    if bad:
        raise DataError(f"{path}: row {bad[0] + 2}: missing value in column {bad[1]!r}")
    table = table.sort_values(["experiment", "presentation_index"], ascending=[False, True], kind="stable")
    stimulus_id = table["passage_id"].astype(str) + "." + table["sentence_position"].astype(str)
    stimuli = pd.DataFrame(
        {
            "stimulus_id": stimulus_id.to_numpy(),
            "text": [" ".join(str(s).split()) for s in table["sentence"]],
            "context_id": table["passage_id"].astype(str).to_numpy(),
            "position": table["sentence_position"].astype(int).to_numpy() - 1,
            "passage_id": table["passage_id"].astype(str).to_numpy(),
            "passage_topic": table["passage_topic"].astype(str).to_numpy(),
            "sentence_position": table["sentence_position"].astype(int).to_numpy(),
            "experiment": table["experiment"].astype(int).to_numpy(),
            "presentation_index": table["presentation_index"].astype(int).to_numpy(),
        }
    )
    if "sentence_dereferenced" in table.columns:
        stimuli["sentence_dereferenced"] = table["sentence_dereferenced"].astype(str).to_numpy()
    check_unique(stimuli["stimulus_id"], what="stimulus_id (passage_id.sentence_position)", where=str(path))
    for pid, positions in stimuli.groupby("passage_id", sort=False)["sentence_position"]:
        if list(positions) != list(range(1, len(positions) + 1)):
            raise DataError(
                f"{path}: passage {pid}: sentence positions {list(positions)} are not 1..n in order"
            )
    values = table[response_col].astype(float).to_numpy()
    _check_source(ctx, values)
    neuroids = neuroid_table(ctx.spec, ["langnet"], ["group"], ["langnet"])
    responses = event_responses(values[:, None], stimuli["stimulus_id"], neuroids)
    return ctx.dataset(stimuli, responses)


def _check_source(ctx: ReadContext, values: np.ndarray) -> None:
    """The response values must be exactly those of the source file (which is in another order)."""
    if not any(f.role == "source" for f in ctx.spec.files):
        return
    path = ctx.role("source")
    source = read_table(path, required=("EffectSize",))
    got, want = np.sort(values), np.sort(source["EffectSize"].astype(float).to_numpy())
    if got.shape != want.shape or not np.allclose(got, want, rtol=0, atol=1e-9):
        raise DataError(
            f"{path}: its {len(want)} EffectSize values differ from the sentence table's {len(got)}"
        )
