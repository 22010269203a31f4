"""CV splitters: grouping, contiguity, gaps, and the leaky audit splitter."""

from __future__ import annotations

import numpy as np
import pytest
import sklearn.model_selection

from lmbrain.encoding import (
    ContiguousBlockSplit,
    GroupedKFold,
    LeaveOneGroupOut,
    ShuffledSplit,
    SplitError,
    check_splits,
)
from lmbrain.errors import LmbrainError


def _assert_partition(splits, n):
    tested = np.concatenate([te for _, te in splits])
    assert np.array_equal(np.sort(tested), np.arange(n)), "every sample tested exactly once"
    for tr, te in splits:
        assert not np.intersect1d(tr, te).size


def test_grouped_kfold_never_shares_a_group():
    groups = np.repeat(np.arange(13), np.arange(1, 14))  # unequal group sizes
    X = np.zeros((len(groups), 2))
    for shuffle in (False, True):
        splitter = GroupedKFold(5, shuffle=shuffle, random_state=0 if shuffle else None)
        splits = list(splitter.split(X, None, groups))
        assert len(splits) == 5
        _assert_partition(splits, len(groups))
        for tr, te in splits:
            assert not set(groups[tr]) & set(groups[te])


def test_grouped_kfold_errors_name_groups_and_folds():
    X = np.zeros((10, 1))
    with pytest.raises(LmbrainError, match=r"5 grouped folds from 3 groups"):
        list(GroupedKFold(5).split(X, None, np.arange(10) % 3))
    with pytest.raises(ValueError, match="needs groups"):  # SplitError is also a ValueError
        list(GroupedKFold(2).split(X))
    with pytest.raises(SplitError, match="9 values for 10 samples"):
        list(GroupedKFold(2).split(X, None, np.arange(9)))


def test_contiguous_blocks_single_run_with_gap():
    n, gap = 103, 4
    splitter = ContiguousBlockSplit(n_splits=5, gap=gap)
    splits = list(splitter.split(np.zeros((n, 1))))
    _assert_partition(splits, n)
    for tr, te in splits:
        assert np.all(np.diff(te) == 1), "test block is contiguous"
        near = np.arange(max(0, te[0] - gap), min(n, te[-1] + gap + 1))
        assert not np.intersect1d(tr, near).size, "no training sample within gap of the test block"
        n_gap = (te[0] - max(0, te[0] - gap)) + (min(n, te[-1] + 1 + gap) - te[-1] - 1)
        assert len(tr) == n - len(te) - n_gap


def test_contiguous_blocks_never_straddle_runs_and_gap_stays_in_run():
    runs = np.repeat(["a", "b"], [50, 30])
    gap = 3
    splits = list(ContiguousBlockSplit(n_splits=4, gap=gap).split(np.zeros((80, 1)), groups=runs))
    _assert_partition(splits, 80)
    for tr, te in splits:
        assert len(set(runs[te])) == 1, "a test block lies within one run"
        run = runs[te[0]]
        in_run = np.flatnonzero(runs == run)
        removed = np.setdiff1d(np.arange(80), np.concatenate([tr, te]))
        assert set(runs[removed]) <= {run}, "the gap never removes samples of another run"
        lo, hi = max(in_run[0], te[0] - gap), min(in_run[-1] + 1, te[-1] + 1 + gap)
        assert np.array_equal(removed, np.setdiff1d(np.arange(lo, hi), te))


def test_contiguous_blocks_whole_runs_when_enough_runs():
    runs = np.repeat(np.arange(6), 10)
    splits = list(ContiguousBlockSplit(n_splits=3, gap=5).split(np.zeros((60, 1)), groups=runs))
    _assert_partition(splits, 60)
    for tr, te in splits:
        assert not set(runs[tr]) & set(runs[te]), "test folds are whole runs"
        assert len(tr) + len(te) == 60


def test_contiguous_blocks_reject_interleaved_runs():
    with pytest.raises(SplitError, match="contiguous"):
        list(ContiguousBlockSplit(2).split(np.zeros((6, 1)), groups=[0, 0, 1, 1, 0, 0]))


def test_shuffled_split_is_leaky_and_documented():
    groups = np.repeat(np.arange(10), 10)
    splits = list(ShuffledSplit(5, random_state=0).split(np.zeros((100, 1)), None, groups))
    _assert_partition(splits, 100)
    assert any(set(groups[tr]) & set(groups[te]) for tr, te in splits), "groups are ignored"
    assert "LEAKY" in ShuffledSplit.__doc__
    again = list(ShuffledSplit(5, random_state=0).split(np.zeros((100, 1))))
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(splits, again, strict=True)), "seeded"


def test_leave_one_group_out_is_sklearns():
    assert LeaveOneGroupOut is sklearn.model_selection.LeaveOneGroupOut


def test_check_splits_defaults_and_errors():
    groups = np.repeat(np.arange(6), 5)
    X = np.zeros((30, 1))
    splits = check_splits(3, X, None, groups)
    for tr, te in splits:
        assert not set(groups[tr]) & set(groups[te])
    contiguous = check_splits(3, X)  # no groups: contiguous KFold
    assert all(np.all(np.diff(te) == 1) for _, te in contiguous)
    with pytest.raises(SplitError, match="both training and test"):
        check_splits([(np.arange(10), np.arange(5, 15))], X)
    with pytest.raises(SplitError, match="0 training"):
        check_splits([(np.array([], int), np.arange(5))], X)
