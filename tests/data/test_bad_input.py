"""Bad input: one clear DataError naming the file, field or row; nothing half-written or silently dropped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io
import xarray as xr
import yaml
from praatio import textgrid as praat_textgrid

from lmbrain.data import Dataset, check_n_groups, load_dataset
from lmbrain.data.specs import read_spec
from lmbrain.errors import DataError

from .helpers import FIXTURES, copy_fixture, fixture_spec


def test_missing_file_is_named(tmp_path: Path) -> None:
    spec = copy_fixture("fixture_tuckute", tmp_path)
    target = tmp_path / "tuckute" / "brain-lang-data_participant_853.csv"
    target.unlink()
    with pytest.raises(DataError, match=r"missing data file .*brain-lang-data_participant_853\.csv"):
        load_dataset(spec, data_dir=tmp_path)


def test_missing_data_dir_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"folder .*tuckute does not exist"):
        load_dataset(fixture_spec("fixture_tuckute"), data_dir=tmp_path)


def test_checksum_mismatch_is_named(tmp_path: Path) -> None:
    spec = copy_fixture("fixture_tuckute", tmp_path)
    target = tmp_path / "tuckute" / "brain-lang-data_participant_848.csv"
    target.write_text(target.read_text().replace("The cat", "The dog"))
    with pytest.raises(DataError, match=r"checksum mismatch for .*participant_848\.csv"):
        load_dataset(spec, data_dir=tmp_path)
    # without the checksum the reader still refuses: the two participants now disagree on item 1
    with pytest.raises(DataError, match=r"item_id 1 has different sentences"):
        load_dataset(spec, data_dir=tmp_path, verify=False)


def test_stimulus_response_count_mismatch() -> None:
    stimuli = pd.DataFrame(
        {"stimulus_id": ["a", "b"], "text": ["x", "y"], "context_id": "c", "position": [0, 1]}
    )
    responses = xr.DataArray(
        np.zeros((3, 1)),
        dims=("sample", "neuroid"),
        coords={"neuroid_id": ("neuroid", ["n"]), "subject": ("neuroid", ["s"])},
    )
    with pytest.raises(DataError, match="2 stimuli but 3 response samples"):
        Dataset("bad", "fmri_sentences", "sentence", "context_id", stimuli, responses)


def test_pereira_mat_count_mismatch_names_file(tmp_path: Path) -> None:
    spec = copy_fixture("fixture_pereira_mat", tmp_path, drop_checksums=True)
    path = tmp_path / "pereira_mat" / "P01" / "examples_384sentences.mat"
    mat = scipy.io.loadmat(path)
    mat = {k: v for k, v in mat.items() if not k.startswith("__")}
    mat["examples"] = mat["examples"][:7]
    scipy.io.savemat(path, mat)
    with pytest.raises(
        DataError, match=r"P01/examples_384sentences\.mat: examples has 7 rows, keySentences 8"
    ):
        load_dataset(spec, data_dir=tmp_path)


def test_duplicate_stimulus_ids_name_the_row() -> None:
    stimuli = pd.DataFrame(
        {"stimulus_id": ["a", "b", "a"], "text": "x", "context_id": "c", "position": [0, 1, 2]}
    )
    responses = xr.DataArray(
        np.zeros((3, 1)),
        dims=("sample", "neuroid"),
        coords={"neuroid_id": ("neuroid", ["n"]), "subject": ("neuroid", ["s"])},
    )
    with pytest.raises(DataError, match="duplicate stimulus_id 'a' at row 2"):
        Dataset("bad", "fmri_sentences", "sentence", "context_id", stimuli, responses)


def test_duplicate_rows_in_a_csv_name_file_and_row(tmp_path: Path) -> None:
    spec = copy_fixture("fixture_tuckute", tmp_path, drop_checksums=True)
    path = tmp_path / "tuckute" / "brain-lang-data_participant_848.csv"
    table = pd.read_csv(path)
    pd.concat([table, table.iloc[[4]]]).to_csv(path, index=False)
    with pytest.raises(
        DataError, match=r"participant_848\.csv: row 11: \(item_id, target_UID, roi\) appears twice"
    ):
        load_dataset(spec, data_dir=tmp_path)


def test_nan_and_constant_neuroids_are_masked_and_reported(tmp_path: Path) -> None:
    spec = copy_fixture("fixture_tuckute", tmp_path, drop_checksums=True, options={"rois": None})
    path = tmp_path / "tuckute" / "brain-lang-data_participant_848.csv"
    table = pd.read_csv(path)
    table.loc[table["roi"] == "lang_LH_IFG", "response_target"] = 0.25  # constant
    table.loc[table["roi"] == "lang_RH_netw", "response_target"] = np.nan  # all missing
    table.to_csv(path, index=False)
    ds = load_dataset(spec, data_dir=tmp_path)
    assert ds.responses.sizes["neuroid"] == 6  # nothing dropped
    assert ds.masked == {
        "848.lang_LH_IFG": "constant value 0.25 over all 3 samples",
        "848.lang_RH_netw": "all values missing (NaN)",
    }
    ids = ds.responses["neuroid_id"].values.tolist()
    assert np.isnan(ds.responses.values[:, ids.index("848.lang_LH_IFG")]).all()
    assert "2 neuroid(s) masked" in ds.summary()


def test_subject_with_no_usable_neuroid_is_excluded(tmp_path: Path) -> None:
    spec = copy_fixture("fixture_tuckute", tmp_path, drop_checksums=True)
    path = tmp_path / "tuckute" / "brain-lang-data_participant_853.csv"
    table = pd.read_csv(path)
    table["response_target"] = 0.0
    table.to_csv(path, index=False)
    ds = load_dataset(spec, data_dir=tmp_path)
    assert ds.subjects == ["848"] and "every neuroid unusable" in ds.excluded["853"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"modality": "meg_words"}, r"unknown modality 'meg_words'"),
        ({"reader": "no_such_reader"}, r"unknown reader 'no_such_reader'; known: \["),
        ({"colour": "blue"}, r"colour: unknown key"),
        ({"timing": {"tr": 2.0, "slice_order": "asc"}}, r"timing\.slice_order: unknown key"),
        ({"stimulus_unit": "phoneme"}, r"stimulus_unit: Input should be"),
        ({"options": {"roi": ["x"]}}, r"unknown spec options \['roi'\] for reader 'tuckute2024_csv'"),
    ],
)
def test_bad_specs_are_named(tmp_path: Path, change: dict, message: str) -> None:
    spec = copy_fixture("fixture_tuckute", tmp_path, **change)
    with pytest.raises(DataError, match=message):
        load_dataset(spec, data_dir=tmp_path)


def test_spec_errors_name_the_file(tmp_path: Path) -> None:
    raw = yaml.safe_load(fixture_spec("fixture_tuckute").read_text())
    raw["files"][0]["sha256"] = "abc"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(DataError, match=r"bad\.yaml: files\.0\.sha256: .*64 lowercase hex"):
        read_spec(path)
    with pytest.raises(DataError, match="unknown load_dataset options"):
        load_dataset(fixture_spec("fixture_tuckute"), data_dir=FIXTURES, roi="x")


def test_textgrid_beyond_the_scans_is_an_error(tmp_path: Path) -> None:
    spec = copy_fixture("fixture_brennan", tmp_path, drop_checksums=True)
    path = tmp_path / "brennan_mini" / "alice_stim_shared" / "mini.TextGrid"
    tg = praat_textgrid.openTextgrid(str(path), includeEmptyIntervals=True)
    entries = [*tg.getTier("word").entries, (tg.maxTimestamp, 104.0, "late"), (104.0, 105.0, "sp")]
    new = praat_textgrid.Textgrid()
    new.addTier(praat_textgrid.IntervalTier("word", entries, 0.0, 105.0))
    new.save(str(path), format="long_textgrid", includeBlankSpaces=True)
    with pytest.raises(
        DataError, match=r"mini\.TextGrid: word \d+ \('late'\) .* outside the 40 scans x TR 2\.0 s"
    ):
        load_dataset(spec, data_dir=tmp_path)


def test_misaligned_timing_fails_the_lag_check(tmp_path: Path) -> None:
    raw = yaml.safe_load(fixture_spec("fixture_brennan").read_text())
    spec = copy_fixture("fixture_brennan", tmp_path, timing={**raw["timing"], "stimulus_start": 4.0})
    with pytest.raises(DataError, match=r"does not align .* best lag -2 scans"):
        load_dataset(spec, data_dir=tmp_path)


def test_fewer_groups_than_folds() -> None:
    assert check_n_groups(["a", "a", "b", "c"], 3) == 3
    with pytest.raises(DataError, match=r"passage_id has 3 distinct group\(s\) but 5 folds were requested"):
        check_n_groups(["a", "a", "b", "c"], 5, split_unit="passage_id")
    with pytest.raises(DataError, match="at least 2 folds"):
        check_n_groups(["a", "b"], 1)


def test_split_unit_must_be_a_column(tmp_path: Path) -> None:
    spec = copy_fixture("fixture_tuckute", tmp_path, split_unit="passage_id")
    with pytest.raises(DataError, match="split unit 'passage_id' is not a column"):
        load_dataset(spec, data_dir=tmp_path)
