"""Brennan2016 Alice through its spec: shapes, s33 excluded, nuisance, blocks, verified TextGrid alignment."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lmbrain.data import check_n_groups, load_dataset
from lmbrain.data.alignment import check_lag


@pytest.fixture(scope="module")
def alice(real_data_dir: Path):
    return load_dataset("brennan2016_alice", data_dir=real_data_dir)


def test_shape_subjects_and_exclusion(alice) -> None:
    assert alice.is_timeseries and alice.tr == 2.0
    assert alice.responses.shape == (362, 27 * 6)
    assert len(alice.subjects) == 27 and "s33" not in alice.subjects
    assert list(alice.excluded) == ["s33"] and "all-zero" in alice.excluded["s33"]
    assert sorted(set(alice.responses["roi"].values)) == sorted(
        ["LATL", "RATL", "LPTL", "LIPL", "LPreM", "LIFG"]
    )
    assert set(alice.responses["hemisphere"].values[alice.responses["roi"].values == "RATL"]) == {"right"}
    assert not alice.masked


def test_scans_blocks_and_nuisance(alice) -> None:
    samples = alice.samples
    np.testing.assert_allclose(samples["time"].to_numpy(), np.arange(362) * 2.0)
    sizes = samples.groupby("block").size()
    assert len(sizes) == 10 and set(sizes) == {36, 37}
    assert (np.diff(samples["block"].to_numpy()) >= 0).all()  # contiguous
    assert check_n_groups(alice.groups(), 5) == 10
    assert set(alice.nuisance) == set(alice.subjects)
    nuis = alice.nuisance["s18"]
    assert nuis.shape == (362, 8) and list(nuis.columns[:2]) == ["rate", "sndpwr"]


def test_words_on_the_scan_clock(alice) -> None:
    st = alice.stimuli
    assert len(st) == 2127 and st["text"].iloc[0] == "Alice"
    assert st["onset"].iloc[0] == pytest.approx(20.0589 - 20.0, abs=1e-3)
    assert st["onset"].min() >= 0 and st["offset"].max() <= 362 * 2.0
    assert st["onset"].is_monotonic_increasing


def test_alignment_lag_is_verified(alice) -> None:
    check = alice.meta["alignment"]
    corr = check["correlations"]
    assert check["chosen_lag_scans"] == check["best_lag_scans"] == 0
    assert corr[0] > 0.95 and corr[0] - max(corr[-1], corr[1]) > 0.1


def test_brain_data_follow_the_words(alice) -> None:
    """The grand-mean ROI signal also peaks at lag 0 against the TextGrid word rate (the data are real)."""
    y = alice.responses.values
    y = (y - y.mean(0)) / y.std(0)
    check = check_lag(alice.stimuli["onset"].to_numpy(), y.mean(axis=1), alice.tr, lags=range(-3, 4))
    assert check.best_lag == 0 and check.correlations[0] > 0.3


def test_ten_mm_and_both_sizes(real_data_dir: Path) -> None:
    both = load_dataset("brennan2016_alice", data_dir=real_data_dir, roi_size="both", subjects=["s18", "s33"])
    assert both.responses.shape == (362, 12) and both.subjects == ["s18"] and list(both.excluded) == ["s33"]
    assert set(both.responses["roi_size"].values) == {"6mm", "10mm"}
