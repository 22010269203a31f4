"""Permutation nulls that respect the data's structure, cheap enough for 1,000 permutations.

The null refits the cross-validated ridge on permuted responses. With the ridge penalty of every target
fixed at the value chosen for it in each outer fold, a fold's test predictions are linear in the training
responses: ``Ŷ_test = B_α · Y_train`` with ``B_α = A_α (I − 11ᵀ/n) + 11ᵀ/n`` and
``A_α = X̃_test V diag(s / (s² + α)) Uᵀ`` from the SVD of the standardised training features. The
decomposition and ``B_α`` are computed once per fold and penalty; each permutation then costs one
matrix product per fold instead of a refit. (The penalty is not re-selected under the null: the test is
conditional on the chosen penalties.)

Permutations respect the structure that cross-validation respects:

- event data: whole groups (sentences, passages) are permuted among groups of the same size, each keeping
  its internal order;
- time series: circular shifts within each run, at least ``min_shift`` samples.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from lmbrain.encoding.metrics import pearson_r


def group_permutations(groups: np.ndarray, n_permutations: int, seed: int = 0) -> Iterator[np.ndarray]:
    """Row orders that move whole groups onto other groups of the same size (order kept inside a group)."""
    groups = np.asarray(groups)
    labels, first = np.unique(groups, return_index=True)
    labels = labels[np.argsort(first)]
    members = [np.flatnonzero(groups == label) for label in labels]
    sizes = np.array([len(m) for m in members])
    rng = np.random.default_rng(seed)
    for _ in range(n_permutations):
        order = np.arange(len(groups))
        for size in np.unique(sizes):
            same = np.flatnonzero(sizes == size)
            for target, source in zip(same, rng.permutation(same), strict=True):
                order[members[target]] = members[source]
        yield order


def circular_shifts(
    n_samples: int, n_permutations: int, runs: np.ndarray | None = None, min_shift: int = 10, seed: int = 0
) -> Iterator[np.ndarray]:
    """Row orders that circularly shift each run by a random offset of at least ``min_shift`` samples."""
    runs = np.zeros(n_samples, dtype=int) if runs is None else np.asarray(runs)
    blocks = [np.flatnonzero(runs == r) for r in np.unique(runs)]
    rng = np.random.default_rng(seed)
    for _ in range(n_permutations):
        order = np.arange(n_samples)
        for idx in blocks:
            n = len(idx)
            low = min(min_shift, max(n // 2, 1))
            shift = int(rng.integers(low, max(n - low, low + 1)))
            order[idx] = idx[(np.arange(n) + shift) % n]
        yield order


def fold_operators(
    X: np.ndarray | Sequence[np.ndarray],
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    alphas: np.ndarray,
    dtype=np.float64,
) -> list[dict[float, np.ndarray]]:
    """Per fold, the linear map ``B_α`` from training responses to test predictions for each penalty used.

    ``X`` is one feature matrix, or a list with the matrix of each fold (e.g. its in-fold chosen layer).
    """
    operators = []
    for fold, (train, test) in enumerate(splits):
        Xf = np.asarray(X[fold] if isinstance(X, list | tuple) else X, dtype=np.float64)
        mean = Xf[train].mean(axis=0)
        scale = Xf[train].std(axis=0)
        scale[scale == 0] = 1.0
        Xtr = (Xf[train] - mean) / scale
        Xte = (Xf[test] - mean) / scale
        U, s, Vt = np.linalg.svd(Xtr, full_matrices=False)
        XteV = Xte @ Vt.T
        n = len(train)
        ops = {}
        for alpha in np.unique(alphas[fold]):
            A = (XteV * (s / (s**2 + alpha))) @ U.T
            B = A - A.sum(axis=1, keepdims=True) / n + 1.0 / n
            ops[float(alpha)] = B.astype(dtype)
        operators.append(ops)
    return operators


FoldColumns = list[list[tuple[np.ndarray, np.ndarray]]]


def alpha_columns(alphas: np.ndarray, operators: list[dict[float, np.ndarray]]) -> FoldColumns:
    """Per fold, (operator, target columns) pairs: the targets that use each penalty."""
    return [
        [(B, np.flatnonzero(alphas[fold] == alpha)) for alpha, B in ops.items()]
        for fold, ops in enumerate(operators)
    ]


def cv_predictions(
    Y: np.ndarray,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    operators: list[dict[float, np.ndarray]],
    alphas: np.ndarray,
    columns: FoldColumns | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold predictions and training-mean baselines for responses ``Y`` through the fold operators."""
    columns = alpha_columns(alphas, operators) if columns is None else columns
    pred = np.full_like(Y, np.nan)
    base = np.full_like(Y, np.nan)
    for fold, (train, test) in enumerate(splits):
        Ytr = Y[train]
        base[test] = Ytr.mean(axis=0)
        for B, cols in columns[fold]:
            if len(cols) == Y.shape[1]:
                pred[test] = B @ Ytr
            elif len(cols):
                pred[np.ix_(test, cols)] = B @ Ytr[:, cols]
    return pred, base


def _r2(Y: np.ndarray, pred: np.ndarray, base: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return 1.0 - ((Y - pred) ** 2).sum(axis=0) / ((Y - base) ** 2).sum(axis=0)


@dataclass
class PermutationResult:
    """Observed scores, their permutation p-values and null summaries, per target."""

    r: np.ndarray
    r2: np.ndarray
    p_r: np.ndarray
    p_r2: np.ndarray
    null_r_mean: np.ndarray
    null_r_std: np.ndarray
    n_permutations: int


def permutation_test(
    X: np.ndarray | Sequence[np.ndarray],
    Y: np.ndarray,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    alphas: np.ndarray,
    permutations: Iterator[np.ndarray] | Sequence[np.ndarray],
    dtype=np.float32,
) -> PermutationResult:
    """p-values of out-of-fold r and R² against refits on permuted responses (penalties fixed per fold).

    ``alphas`` is ``(n_folds, n_targets)``: the penalty each target got in each outer fold. p-values are
    ``(1 + #{null >= observed}) / (1 + n_permutations)``. Products run in ``dtype`` (float32 by default:
    p-values need ranks, not the last digits); samples never tested (time-series gaps) are not scored.
    """
    Y = np.asarray(Y, dtype=dtype)
    alphas = np.asarray(alphas, dtype=float)
    operators = fold_operators(X, splits, alphas, dtype=dtype)
    columns = alpha_columns(alphas, operators)
    tested = np.zeros(len(Y), dtype=bool)
    for _, test in splits:
        tested[test] = True
    pred, base = cv_predictions(Y, splits, operators, alphas, columns)
    r, r2 = pearson_r(Y[tested], pred[tested]), _r2(Y[tested], pred[tested], base[tested])
    exceed_r = np.zeros(Y.shape[1])
    exceed_r2 = np.zeros(Y.shape[1])
    total = np.zeros(Y.shape[1])
    total_sq = np.zeros(Y.shape[1])
    n = 0
    for order in permutations:
        Yp = Y[order]
        pred_p, base_p = cv_predictions(Yp, splits, operators, alphas, columns)
        Yt, pred_t = Yp[tested], pred_p[tested]
        null_r = pearson_r(Yt, pred_t)
        exceed_r += null_r >= r
        exceed_r2 += _r2(Yt, pred_t, base_p[tested]) >= r2
        total += null_r
        total_sq += null_r**2
        n += 1
    mean = total / max(n, 1)
    return PermutationResult(
        r=r, r2=r2,
        p_r=(1 + exceed_r) / (1 + n), p_r2=(1 + exceed_r2) / (1 + n),
        null_r_mean=mean, null_r_std=np.sqrt(np.maximum(total_sq / max(n, 1) - mean**2, 0)),
        n_permutations=n,
    )
