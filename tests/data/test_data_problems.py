"""Data problems are reported at load time, never silent: missing (NaN) responses are counted in the dataset,
its summary and the log; an empty or whitespace-only stimulus text is a DataError naming the stimulus and row."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from lmbrain.data import Dataset, load_dataset
from lmbrain.errors import DataError

from .helpers import copy_fixture

PARTICIPANT = "brain-lang-data_participant_{}.csv"


def _edit(tmp_path: Path, subject: str, edit) -> None:
    path = tmp_path / "tuckute" / PARTICIPANT.format(subject)
    table = pd.read_csv(path)
    edit(table)
    table.to_csv(path, index=False, na_rep="NaN")  # literal NaN cells, as some releases write them


def test_literal_nan_responses_are_counted_in_the_summary_and_the_log(tmp_path, caplog):
    spec = copy_fixture("fixture_tuckute", tmp_path, drop_checksums=True)

    def reject(table: pd.DataFrame) -> None:  # item 2 of the left network, item 3 of both networks
        rows = (table["item_id"] == 2) & (table["roi"] == "lang_LH_netw") | (table["item_id"] == 3) & (
            table["roi"] != "lang_LH_IFG"
        )
        table.loc[rows, "response_target"] = np.nan

    _edit(tmp_path, "848", reject)
    assert "NaN" in (tmp_path / "tuckute" / PARTICIPANT.format("848")).read_text()
    with caplog.at_level(logging.WARNING, logger="lmbrain"):
        ds = load_dataset(spec, data_dir=tmp_path)
    missing = ds.missing
    assert (missing.n_values, missing.n_total) == (3, 12)
    assert missing.by_subject == {"848": 3}
    assert missing.by_neuroid == {"848.lang_LH_netw": 2, "848.lang_RH_netw": 1}
    assert missing.rows == {"848": [1, 2]} and missing.n_rows == 2
    assert missing.as_dict()["by_subject"] == {"848": 3}
    assert not ds.masked  # nothing masked: the neuroids still have values
    summary = ds.summary()
    assert "3 missing (NaN) response value(s) (25.0%) in 1 subject(s), 2 neuroid(s) and 2 sample row(s)" in summary
    assert "subject 848: 3 in sample row(s) 2, 3 (1-based)" in summary  # no file lines from this reader
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and r.name.startswith("lmbrain")]
    assert any("fixture_tuckute" in r.getMessage() and "3 missing (NaN)" in r.getMessage() for r in warnings)


def test_a_clean_dataset_reports_no_missing_values(tmp_path, caplog):
    spec = copy_fixture("fixture_tuckute", tmp_path)
    with caplog.at_level(logging.WARNING, logger="lmbrain"):
        ds = load_dataset(spec, data_dir=tmp_path)
    assert not ds.missing and ds.missing.n_values == 0 and ds.missing.n_total == 12
    assert "missing" not in ds.summary()
    assert not any("missing" in r.getMessage() for r in caplog.records)


def test_masked_neuroids_are_not_counted_again_as_missing(tmp_path):
    spec = copy_fixture("fixture_tuckute", tmp_path, drop_checksums=True)

    def drop_right(table: pd.DataFrame) -> None:
        table.loc[table["roi"] == "lang_RH_netw", "response_target"] = np.nan

    _edit(tmp_path, "853", drop_right)
    ds = load_dataset(spec, data_dir=tmp_path)
    assert ds.masked == {"853.lang_RH_netw": "all values missing (NaN)"}
    assert not ds.missing


@pytest.mark.parametrize("blank", ["   ", "\t"])
def test_a_whitespace_only_sentence_is_named_at_load(tmp_path, blank):
    spec = copy_fixture("fixture_tuckute", tmp_path, drop_checksums=True)

    def blank_item_3(table: pd.DataFrame) -> None:
        table.loc[table["item_id"] == 3, "sentence"] = blank

    for subject in ("848", "853"):  # both participants saw the same (blank) sentence
        _edit(tmp_path, subject, blank_item_3)
    with pytest.raises(DataError, match=r"dataset fixture_tuckute: stimulus '3' \(row 2 of the stimulus table\) "
                                        r"has an empty text ''"):
        load_dataset(spec, data_dir=tmp_path)


def _dataset(texts: list) -> Dataset:
    n = len(texts)
    stimuli = pd.DataFrame({"stimulus_id": [f"s{i}" for i in range(n)], "text": texts, "context_id": "c",
                            "position": range(n)})
    responses = xr.DataArray(np.zeros((n, 1)), dims=("sample", "neuroid"),
                             coords={"neuroid_id": ("neuroid", ["n"]), "subject": ("neuroid", ["a"])})
    return Dataset("toy", "fmri_sentences", "sentence", "context_id", stimuli, responses)


def test_every_blank_or_missing_text_is_refused_with_its_rows():
    assert _dataset(["one.", "two."]).summary().startswith("toy (fmri_sentences): 2 sentence stimuli")
    with pytest.raises(DataError, match=r"stimulus 's1' \(row 1 of the stimulus table\) has an empty text ' '; "
                                        r"also row\(s\) 3"):
        _dataset(["one.", " ", "three.", ""])
    with pytest.raises(DataError, match=r"stimulus 's0' \(row 0 of the stimulus table\) has no text \(missing value\)"):
        _dataset([None, "two."])
