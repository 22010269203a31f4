"""Pereira2018 (language network), Frank2015 (EEG, eye tracking), Natural Stories: structural facts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lmbrain.data import check_n_groups, load_dataset


@pytest.fixture(scope="module")
def pereira(real_data_dir: Path):
    return load_dataset("pereira2018_langnet", data_dir=real_data_dir)


@pytest.fixture(scope="module")
def frank_eeg(real_data_dir: Path):
    return load_dataset("frank2015_eeg", data_dir=real_data_dir)


@pytest.fixture(scope="module")
def frank_et(real_data_dir: Path):
    return load_dataset("frank2015_et", data_dir=real_data_dir)


@pytest.fixture(scope="module")
def stories(real_data_dir: Path):
    return load_dataset("naturalstories", data_dir=real_data_dir)


def test_pereira_structure(pereira) -> None:
    st = pereira.stimuli
    assert len(st) == 627 and pereira.responses.shape == (627, 1)
    assert st["experiment"].value_counts().to_dict() == {384: 384, 243: 243}
    assert st["passage_id"].nunique() == 168 and pereira.split_unit == "passage_id"
    assert sorted(st["sentence_position"].unique()) == [1, 2, 3, 4]
    sizes = st.groupby("passage_id").size()
    assert (sizes[sizes.index.str.startswith("384")] == 4).all()
    assert sorted(sizes[sizes.index.str.startswith("243")].value_counts().to_dict().items()) == [
        (3, 45),
        (4, 27),
    ]
    # presentation order: passages contiguous, positions 0..n-1 inside each
    assert (
        st.groupby("context_id", sort=False)["position"].apply(lambda p: list(p) == list(range(len(p))))
    ).all()
    assert st["passage_id"].ne(st["passage_id"].shift()).sum() == 168
    assert check_n_groups(pereira.groups(), 5) == 168
    assert not st["text"].str.contains("  ").any() and not st["text"].str.endswith(" ").any()


def test_pereira_is_real(pereira) -> None:
    """The README's facts: r ~ 0.38 with sentence length, rising means over sentence positions."""
    y = pereira.responses.values[:, 0]
    length = pereira.stimuli["text"].str.split().str.len().to_numpy()
    r = np.corrcoef(y, length)[0, 1]
    assert 0.3 < r < 0.45
    means = pereira.stimuli.assign(y=y).groupby("sentence_position")["y"].mean().to_numpy()
    assert np.all(np.diff(means) > 0)


def test_frank_eeg_structure(frank_eeg) -> None:
    st = frank_eeg.stimuli
    assert frank_eeg.responses.shape == (1931, 24) and len(frank_eeg.subjects) == 24
    assert st["sentence_id"].nunique() == 205 and check_n_groups(frank_eeg.groups(), 10) == 205
    first = " ".join(st.loc[st["sentence_id"] == st["sentence_id"].iloc[0], "text"])
    assert first.endswith(".") and first[0].isupper()  # punctuation kept
    y = frank_eeg.responses.values
    # rejected words are NaN for everyone; kept words have data for most participants
    assert np.isnan(y[st["reject_word"].to_numpy()]).all()
    kept = y[~st["reject_word"].to_numpy()]
    assert 0.8 < np.isfinite(kept).mean() < 1.0
    assert not frank_eeg.excluded


def test_frank_et_structure(frank_et) -> None:
    assert frank_et.responses.shape == (1931, 35)
    assert sorted(frank_et.excluded, key=int) == ["6", "22", "24", "26", "27", "34", "35", "36"]
    y = frank_et.responses.values
    finite = y[np.isfinite(y)]
    assert finite.min() >= 50 and finite.max() <= 3000  # reject_data honoured (RT outside 50-3000 ms)
    # reading times grow with word length (shows these are real first-pass times)
    ok = np.isfinite(y).any(axis=1)
    mean_rt = np.nanmean(y[ok], axis=1)
    assert np.corrcoef(mean_rt, frank_et.stimuli["nr_char"].to_numpy()[ok])[0, 1] > 0.2


def test_naturalstories_structure(stories) -> None:
    st = stories.stimuli
    assert len(st) == 10256 and stories.responses.shape == (10256, 1)
    assert st["story"].nunique() == 10 and check_n_groups(stories.groups(), 10) == 10
    assert st["text"].iloc[:10].tolist()[-1] == "England,"
    rt = stories.responses.values[:, 0]
    assert np.isfinite(rt).all() and 200 < rt.mean() < 500
    # longer tokens take longer to read
    assert np.corrcoef(rt, st["text"].str.len())[0, 1] > 0.1
