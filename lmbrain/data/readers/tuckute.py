"""Tuckute et al. 2024 CSVs (``brain-lang-data_participant_*.csv``): row = sentence x participant x ROI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lmbrain.data.dataset import Dataset
from lmbrain.data.readers.common import event_responses, neuroid_table
from lmbrain.data.readers.tables import first_nan_row, read_table
from lmbrain.data.registry import ReadContext, register_reader
from lmbrain.errors import DataError

_REQUIRED = ("item_id", "sentence", "roi", "response_target", "target_UID")
_SENTENCE_COLUMNS = ("cond", "cond_approach")


@register_reader("tuckute2024_csv", options={"rois": None})
def read_tuckute2024(ctx: ReadContext) -> Dataset:
    """Sentences (by ``item_id``) x (participant, ROI) responses; option ``rois`` keeps some ROIs."""
    files = [Path(f.path) for f in ctx.spec.files if f.role == "participant"]
    if not files:
        raise DataError(f"spec {ctx.spec.name}: list the participant CSVs with role: participant")
    parts = []
    for rel in files:
        path = ctx.path(rel)
        table = read_table(path, required=_REQUIRED)
        bad = first_nan_row(table, [c for c in _REQUIRED if c != "response_target"])
        if bad:
            raise DataError(f"{path}: row {bad[0] + 2}: missing value in column {bad[1]!r}")
        dup = table.duplicated(["item_id", "target_UID", "roi"])
        if dup.any():
            row = int(dup.to_numpy().argmax())
            raise DataError(f"{path}: row {row + 2}: (item_id, target_UID, roi) appears twice")
        parts.append(table.assign(_file=str(path)))
    table = pd.concat(parts, ignore_index=True)
    table["target_UID"] = table["target_UID"].astype(str)
    table = table[[ctx.wants(s) for s in table["target_UID"]]]
    if ctx.options["rois"]:
        unknown = sorted(set(ctx.options["rois"]) - set(table["roi"]))
        if unknown:
            raise DataError(
                f"dataset {ctx.spec.name}: no ROI {unknown}; ROIs are {sorted(set(table['roi']))}"
            )
        table = table[table["roi"].isin(ctx.options["rois"])]
    keep_cols = ["item_id", "sentence", *[c for c in _SENTENCE_COLUMNS if c in table.columns]]
    sentences = table[keep_cols].drop_duplicates()
    clash = sentences["item_id"].duplicated(keep=False)
    if clash.any():
        item = sentences["item_id"][clash].iloc[0]
        files_with = sorted(set(table.loc[table["item_id"] == item, "_file"]))
        raise DataError(f"item_id {item} has different sentences/conditions across rows ({files_with})")
    sentences = sentences.sort_values("item_id").reset_index(drop=True)
    stimuli = pd.DataFrame(
        {
            "stimulus_id": sentences["item_id"].astype(str),
            "text": [" ".join(str(s).split()) for s in sentences["sentence"]],
            "context_id": sentences["item_id"].astype(str),
            "position": 0,
            "item_id": sentences["item_id"].to_numpy(),
        }
    )
    for col in _SENTENCE_COLUMNS:
        if col in sentences.columns:
            stimuli[col] = sentences[col].astype(str).to_numpy()
    wide = table.pivot(index="item_id", columns=["target_UID", "roi"], values="response_target")
    wide = wide.reindex(index=sentences["item_id"].to_numpy())
    subjects = [str(s) for s, _ in wide.columns]
    rois = [str(r) for _, r in wide.columns]
    neuroids = neuroid_table(ctx.spec, [f"{s}.{r}" for s, r in wide.columns], subjects, rois)
    values = wide.to_numpy(dtype=float)
    if np.isnan(values).all():
        raise DataError(f"dataset {ctx.spec.name}: no response values after selection")
    return ctx.dataset(stimuli, event_responses(values, stimuli["stimulus_id"], neuroids))
