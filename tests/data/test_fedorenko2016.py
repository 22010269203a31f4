"""Fedorenko2016 ECoG through its spec: shape, subjects, texts verified against the assembly."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from lmbrain.data import check_n_groups, load_dataset
from lmbrain.errors import DataError


@pytest.fixture(scope="module")
def fed(real_data_dir: Path):
    return load_dataset("fedorenko2016", data_dir=real_data_dir)


def test_shape_and_subjects(fed) -> None:
    assert fed.modality == "ecog_words" and fed.stimulus_unit == "word"
    assert fed.responses.shape == (416, 97)
    assert fed.subjects == ["1", "2", "3", "4", "5"]
    counts = [int((fed.responses["subject"].values == s).sum()) for s in fed.subjects]
    assert counts == [47, 8, 9, 15, 18]
    assert not fed.excluded and not fed.masked


def test_stimuli_structure(fed) -> None:
    st = fed.stimuli
    assert list(st.columns[:4]) == ["stimulus_id", "text", "context_id", "position"]
    assert st["stimulus_id"].is_unique
    assert st["sentence_id"].nunique() == 52 and st["context_id"].nunique() == 52
    assert (st.groupby("sentence_id")["position"].apply(list) == [list(range(8))] * 52).all()
    assert st["text"].iloc[:8].tolist() == "Alex was tired so he took a nap.".split()
    assert "mom's" in st["text"].tolist()
    assert fed.split_unit == "sentence_id" and check_n_groups(fed.groups(), 10) == 52
    np.testing.assert_array_equal(fed.responses["stimulus_id"].values, st["stimulus_id"].to_numpy())


def test_word_mismatch_names_the_row(real_data_dir: Path, tmp_path: Path) -> None:
    root = tmp_path / "fedorenko2016"
    root.mkdir()
    shutil.copy(real_data_dir / "fedorenko2016" / "fedorenko2016.nc", root / "fedorenko2016.nc")
    lines = (real_data_dir / "fedorenko2016" / "stimulus_set.csv").read_text().splitlines()
    lines[2] = lines[2].replace("wool", "cotton")
    (root / "stimulus_set.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"row 11 .*'WOOL'.*'cotton'"):
        load_dataset("fedorenko2016", data_dir=tmp_path, verify=False)
    with pytest.raises(DataError, match=r"checksum mismatch .*stimulus_set\.csv"):
        load_dataset("fedorenko2016", data_dir=tmp_path)


def test_subject_selection(real_data_dir: Path) -> None:
    ds = load_dataset("fedorenko2016", subjects=["2", "3"], data_dir=real_data_dir)
    assert ds.subjects == ["2", "3"] and ds.responses.shape == (416, 17)
    with pytest.raises(DataError, match="unknown subject"):
        load_dataset("fedorenko2016", subjects=["9"], data_dir=real_data_dir)
