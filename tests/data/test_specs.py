"""Every shipped spec validates, names a known reader, and checksums every file; list_datasets works."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmbrain.data import list_datasets
from lmbrain.data.checks import check_files
from lmbrain.data.registry import get_reader
from lmbrain.data.specs import find_spec

REAL = [
    "brennan2016_alice",
    "fedorenko2016",
    "frank2015_eeg",
    "frank2015_et",
    "naturalstories",
    "pereira2018_langnet",
]


def test_list_datasets() -> None:
    assert set(REAL) <= set(list_datasets())


@pytest.mark.parametrize("name", REAL)
def test_spec_is_complete(name: str) -> None:
    spec = find_spec(name)
    get_reader(spec.reader)
    assert spec.citation and spec.licence and spec.split_description
    assert spec.files and all(f.sha256 for f in spec.files)
    if spec.modality == "fmri_timeseries":
        assert spec.timing is not None and spec.timing.tr > 0


@pytest.mark.parametrize("name", REAL)
def test_real_files_match_their_checksums(name: str, real_data_dir: Path) -> None:
    spec = find_spec(name)
    statuses = check_files(spec, spec.root_dir(real_data_dir))
    assert {s.status for s in statuses} == {"ok"}, [s.detail for s in statuses if s.status != "ok"]


def test_extra_spec_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (Path(__file__).parent / "fixtures" / "specs" / "fixture_tuckute.yaml").read_text()
    (tmp_path / "my_lab_data.yaml").write_text(text.replace("name: fixture_tuckute", "name: my_lab_data"))
    monkeypatch.setenv("LMBRAIN_SPECS_DIR", str(tmp_path))
    assert "my_lab_data" in list_datasets()
    assert find_spec("my_lab_data").reader == "tuckute2024_csv"
