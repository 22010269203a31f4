"""Cross-validation splitters with scikit-learn's ``split(X, y, groups)`` API.

* :class:`GroupedKFold` -- K-fold over the dataset's split unit (passage, story, sentence): no group is
  ever in both a training and a test fold. The default everywhere.
* :class:`ContiguousBlockSplit` -- time series: contiguous test blocks that never straddle a run, with
  ``gap`` samples dropped from training on each side of the test block so the HRF does not leak.
* :class:`LeaveOneGroupOut` -- scikit-learn's, e.g. leave-one-story-out or leave-one-run-out.
* :class:`ShuffledSplit` -- LEAKY shuffled K-fold ignoring groups, for audits only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.model_selection import GroupKFold, KFold, LeaveOneGroupOut
from sklearn.model_selection._split import BaseCrossValidator

from lmbrain.errors import LmbrainError

__all__ = ["ContiguousBlockSplit", "GroupedKFold", "LeaveOneGroupOut", "ShuffledSplit", "SplitError",
           "check_splits"]

Split = tuple[np.ndarray, np.ndarray]


class SplitError(LmbrainError, ValueError):
    """Cross-validation cannot be set up as asked (too few groups, missing groups...)."""


def _n_samples(X: ArrayLike) -> int:
    return X.shape[0] if hasattr(X, "shape") else len(X)


class GroupedKFold(GroupKFold):
    """K-fold over groups (scikit-learn's GroupKFold) with one clear error for too few groups.

    Parameters
    ----------
    n_splits : int
        Number of folds; no group is on both sides of a fold.
    shuffle, random_state
        As in scikit-learn's ``GroupKFold``.
    """

    def __init__(self, n_splits: int = 5, shuffle: bool = False, random_state: int | None = None) -> None:
        super().__init__(n_splits=n_splits, shuffle=shuffle, random_state=random_state)

    def split(self, X: ArrayLike, y: ArrayLike | None = None, groups: ArrayLike | None = None) -> Iterator[Split]:
        """Yield (train, test) index arrays; ``groups`` (one value per sample) is required."""
        if groups is None:
            raise SplitError(
                "GroupedKFold needs groups (the dataset's split unit, one value per sample); "
                "use ShuffledSplit only for a leakage audit"
            )
        groups = np.asarray(groups)
        if len(groups) != _n_samples(X):
            raise SplitError(f"groups has {len(groups)} values for {_n_samples(X)} samples")
        n_groups = len(np.unique(groups))
        if n_groups < self.n_splits:
            raise SplitError(
                f"cannot make {self.n_splits} grouped folds from {n_groups} groups: "
                f"need at least as many groups as folds"
            )
        yield from super().split(X, y, groups)


class ContiguousBlockSplit(BaseCrossValidator):
    """Contiguous test blocks for time series, with a training gap around each block.

    Samples are taken in the given order. Without ``groups`` the series is cut into ``n_splits`` equal
    contiguous blocks. With ``groups`` (run labels, each run one contiguous stretch) no test block
    straddles a run: when there are at least ``n_splits`` runs each test fold is a stretch of whole,
    consecutive runs; otherwise each run is cut into blocks, the ``n_splits`` blocks being allotted to runs
    in proportion to their length. ``gap`` samples before and after a test block, within its run, are
    removed from training (use the HRF length in scans, e.g. 5 for 2 s TR).

    Parameters
    ----------
    n_splits : int
        Number of contiguous test blocks (folds).
    gap : int
        Samples dropped from training on each side of a test block, within its run.
    """

    def __init__(self, n_splits: int = 5, gap: int = 0) -> None:
        self.n_splits = n_splits
        self.gap = gap

    def get_n_splits(self, X: ArrayLike | None = None, y: ArrayLike | None = None,
                     groups: ArrayLike | None = None) -> int:
        """Number of folds."""
        return self.n_splits

    def _runs(self, n: int, groups: ArrayLike) -> list[tuple[int, int]]:
        """(start, stop) of every run, in order."""
        if groups is None:
            return [(0, n)]
        groups = np.asarray(groups)
        if len(groups) != n:
            raise SplitError(f"groups has {len(groups)} values for {n} samples")
        change = np.flatnonzero(groups[1:] != groups[:-1]) + 1
        starts = np.concatenate([[0], change])
        stops = np.concatenate([change, [n]])
        labels = groups[starts]
        if len(np.unique(labels)) != len(labels):
            raise SplitError("ContiguousBlockSplit: each run (group) must be one contiguous stretch")
        return list(zip(starts.tolist(), stops.tolist(), strict=True))

    def _blocks(self, n: int, groups: ArrayLike) -> list[list[tuple[int, int, int, int]]]:
        """Per fold, the test blocks as (start, stop, run_start, run_stop)."""
        if self.n_splits < 2:
            raise SplitError(f"ContiguousBlockSplit needs n_splits >= 2, got {self.n_splits}")
        if self.gap < 0:
            raise SplitError(f"gap must be >= 0, got {self.gap}")
        runs = self._runs(n, groups)
        if len(runs) >= self.n_splits:
            folds = np.array_split(np.arange(len(runs)), self.n_splits)
            return [[(*runs[r], *runs[r]) for r in fold] for fold in folds]
        lengths = np.array([b - a for a, b in runs], dtype=float)
        share = lengths / lengths.sum() * self.n_splits
        counts = np.maximum(1, np.floor(share)).astype(int)
        while counts.sum() < self.n_splits:  # largest remainders first
            counts[np.argmax(share - counts)] += 1
        while counts.sum() > self.n_splits:
            counts[np.argmax(np.where(counts > 1, counts - share, -np.inf))] -= 1
        blocks = []
        for (a, b), k in zip(runs, counts, strict=True):
            if b - a < k:
                raise SplitError(f"run of {b - a} samples cannot hold {k} test blocks")
            for idx in np.array_split(np.arange(a, b), k):
                blocks.append([(int(idx[0]), int(idx[-1]) + 1, a, b)])
        return blocks

    def _iter_test_indices(self, X: ArrayLike | None = None, y: ArrayLike | None = None,
                           groups: ArrayLike | None = None) -> Iterator[np.ndarray]:
        for fold in self._blocks(_n_samples(X), groups):
            yield np.concatenate([np.arange(a, b) for a, b, _, _ in fold])

    def split(self, X: ArrayLike, y: ArrayLike | None = None, groups: ArrayLike | None = None) -> Iterator[Split]:
        """Yield (train, test) index arrays; training excludes ``gap`` samples around each test block."""
        n = _n_samples(X)
        for fold in self._blocks(n, groups):
            train = np.ones(n, dtype=bool)
            test = np.zeros(n, dtype=bool)
            for a, b, run_a, run_b in fold:
                test[a:b] = True
                train[max(run_a, a - self.gap) : min(run_b, b + self.gap)] = False
            if not train.any():
                raise SplitError("ContiguousBlockSplit: a fold has no training samples left; reduce gap")
            yield np.flatnonzero(train), np.flatnonzero(test)


class ShuffledSplit(KFold):
    """LEAKY: shuffled K-fold that ignores groups. For leakage audits only, never for reported scores.

    Samples of one passage/story/run land in both training and test folds, so scores are inflated by
    shared context and autocorrelation; compare against :class:`GroupedKFold` to measure that leak.
    """

    def __init__(self, n_splits: int = 5, random_state: int | None = 0) -> None:
        super().__init__(n_splits=n_splits, shuffle=True, random_state=random_state)

    def split(self, X: ArrayLike, y: ArrayLike | None = None, groups: ArrayLike | None = None) -> Iterator[Split]:
        """Yield shuffled (train, test) index arrays; ``groups`` is ignored (that is the leak)."""
        yield from super().split(X, y)


def check_splits(cv: Any, X: ArrayLike, y: ArrayLike | None = None, groups: ArrayLike | None = None) -> list[Split]:
    """Materialise ``cv`` (int -> GroupedKFold, or contiguous KFold when groups is None) into a list.

    Every sample must be in some test fold at most once; no fold may be empty.
    """
    if isinstance(cv, int | np.integer):
        cv = GroupedKFold(int(cv)) if groups is not None else KFold(int(cv))
    if hasattr(cv, "split"):
        splits = list(cv.split(X, y, groups))
    else:
        splits = list(cv)
    if not splits:
        raise SplitError("cross-validation produced no folds")
    for k, (train, test) in enumerate(splits):
        if len(train) == 0 or len(test) == 0:
            raise SplitError(f"fold {k} has {len(train)} training and {len(test)} test samples")
        if np.intersect1d(train, test).size:
            raise SplitError(f"fold {k}: some samples are in both training and test")
    return [(np.asarray(tr, dtype=np.intp), np.asarray(te, dtype=np.intp)) for tr, te in splits]
