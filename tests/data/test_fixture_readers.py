"""Every reader on a small fixture written in its real format (see fixtures/make_fixtures.py)."""

from __future__ import annotations

import numpy as np
import pytest

from lmbrain.data import load_dataset
from lmbrain.data.readers.brainscore import read_assembly
from lmbrain.data.readers.pereira_mat import load_pereira_mat
from lmbrain.data.textgrid import read_words

from .helpers import FIXTURES, fixture_spec


def load(name: str, **options):
    return load_dataset(fixture_spec(name), data_dir=FIXTURES, **options)


def test_brainscore_pereira_like_assembly() -> None:
    ds = load("fixture_pereira_assembly")
    assert ds.responses.shape == (12, 6)  # atlas 'language' kept 3 voxels of each of 2 subjects
    assert set(ds.responses["roi"].values) == {"LH_IFG", "LH_PostTemp", "LH_AntTemp"}
    assert ds.subjects == ["018", "288"]
    assert ds.stimuli["context_id"].nunique() == 3 and ds.stimuli["position"].tolist()[:5] == [0, 1, 2, 3, 0]
    assert ds.stimuli["text"].iloc[0] == "Sentence 0 about topic 0."
    raw = read_assembly(FIXTURES / "brainscore" / "Pereira2018_like.nc")
    assert raw.dims == ("sample", "neuroid")  # time_bin of size 1 squeezed
    np.testing.assert_allclose(ds.responses.values, raw.values[:, np.isin(raw["atlas"].values, ["language"])])


def test_brainscore_blank_like_assembly() -> None:
    ds = load("fixture_blank_assembly")
    assert ds.responses.shape == (9, 4) and ds.subjects == ["088", "085"]
    assert ds.responses["roi"].values.tolist()[:2] == ["01_LH_PostTemp", "03_LH_IFG"]
    assert ds.groups().tolist().count("Boar") == 5


def test_pereira_mat_roi_means_and_voxels() -> None:
    ds = load("fixture_pereira_mat")
    assert ds.responses.shape == (8, 6) and ds.subjects == ["P01", "M02"]
    assert ds.responses["roi"].values.tolist()[:3] == ["LH_IFG", "LH_PostTemp", "LH_AntTemp"]
    assert ds.responses["hemisphere"].values[0] == "left"
    assert ds.stimuli["passage_topic"].tolist() == ["musical_instrument"] * 4 + ["animal"] * 4
    assert ds.stimuli["passage_label"].iloc[-1] == "bear" and ds.stimuli["sentence_position"].max() == 4
    raw = load_pereira_mat(FIXTURES / "pereira_mat" / "P01" / "examples_384sentences.mat")
    np.testing.assert_allclose(ds.responses.values[:, 0], raw["examples"][:, :2].mean(axis=1))
    voxels = load("fixture_pereira_mat", atlas="gordon", rois=["Visual_2"], average_rois=False)
    assert voxels.responses.shape == (8, 4)  # 2 voxels of Visual_2 per subject (the NaN-labelled one is out)
    assert {"x", "y", "z"} <= set(voxels.responses.coords)
    everything = load("fixture_pereira_mat", atlas=None, average_rois=False)
    assert everything.responses.shape == (8, 24)


def test_tuckute_csv() -> None:
    ds = load("fixture_tuckute")
    assert ds.responses.shape == (3, 4) and ds.subjects == ["848", "853"]
    assert ds.stimuli["cond"].tolist() == ["B", "D", "S"]
    assert set(ds.responses["hemisphere"].values) == {"left", "right"}
    assert load("fixture_tuckute", rois=None).responses.shape == (3, 6)


def test_lebel_hdf5_and_textgrids() -> None:
    ds = load("fixture_lebel")
    assert ds.is_timeseries and ds.responses.shape == (26, 12) and ds.subjects == ["UTS01", "UTS02"]
    samples = ds.samples
    assert samples.groupby("run").size().to_dict() == {"alternateithicatom": 14, "souls": 12}
    # row k of a trimmed response is TR k + trim_start of the TextGrid clock
    assert samples["time"].iloc[0] == pytest.approx(2 * 2.0)
    assert ds.stimuli["run"].nunique() == 2 and ds.stimuli["onset"].iloc[0] == pytest.approx(1.0)


def test_lpp_nifti_atlas_and_voxels() -> None:
    ds = load("fixture_lpp")
    assert ds.responses.shape == (30, 4) and ds.subjects == ["01", "02"]
    assert ds.responses["roi"].values.tolist() == ["LH_IFG", "LH_pSTS"] * 2
    assert ds.groups().tolist().count("run-1") == 15
    assert ds.stimuli.groupby("run").size().to_dict() == {"run-1": 20, "run-2": 20}


def test_brennan_style_fixture_excludes_zero_subject_and_aligns() -> None:
    ds = load("fixture_brennan")
    assert ds.excluded.keys() == {"s02"} and "all-zero" in ds.excluded["s02"]
    assert ds.responses.shape == (40, 24)  # 2 subjects x 6 ROIs x 2 sizes
    assert set(ds.nuisance) == {"s01", "s03"}
    assert list(ds.nuisance["s01"].columns) == [
        "rate",
        "sndpwr",
        *[f"motion_{a}" for a in ("tx", "ty", "tz", "rx", "ry", "rz")],
    ]
    assert len(ds.nuisance["s01"]) == 40  # 50 motion rows minus 10 discarded volumes
    check = ds.meta["alignment"]
    assert check["best_lag_scans"] == 0 and check["correlations"][0] > 0.99
    assert ds.samples["block"].nunique() == 4 and ds.tr == 2.0


def test_textgrid_reader_drops_silences() -> None:
    words = read_words(FIXTURES / "lebel" / "TextGrids" / "souls.TextGrid")
    assert list(words.columns) == ["text", "onset", "offset"]
    assert "sp" not in set(words["text"]) and words["onset"].is_monotonic_increasing
