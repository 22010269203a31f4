"""Readers that accept missing responses keep them as NaN per target and report them (docs/data.md, NaN policy)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from lmbrain.data import load_dataset


def test_naturalstories_keeps_a_missing_reading_time_as_nan(data_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "naturalstories"
    shutil.copytree(data_dir / "naturalstories", folder)
    path = folder / "processed_wordinfo.tsv"
    table = pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, keep_default_na=False, na_values=[""])
    first = table.index[(table["item"] == 1) & (table["zone"] == 1)][0]
    table.loc[first, "meanItemRT"] = np.nan
    table.to_csv(path, sep="\t", index=False, quoting=csv.QUOTE_NONE)
    dataset = load_dataset("naturalstories", data_dir=tmp_path, verify=False)
    values = dataset.responses.values[:, 0]
    row = int(np.flatnonzero(dataset.stimuli["stimulus_id"].to_numpy() == "1.1")[0])
    assert np.isnan(values[row]) and np.isfinite(np.delete(values, row)).all()
    assert dataset.missing.n_values == 1 and dataset.missing.rows == {"group": [row]}
