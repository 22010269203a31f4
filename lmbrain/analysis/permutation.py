"""Permutation nulls that respect the data's structure, cheap enough for 1,000 permutations.

Two nulls for the out-of-fold scores of a cross-validated ridge:

- ``refit`` (:func:`permutation_test`, exact): the whole cross-validated fit is redone on permuted
  responses. Cost per permutation ~ n² x targets (one product per fold), ~100x one fit for 1,000
  permutations of 10,000 targets; a naive refit loop costs ~1,000x.
- ``predictions`` (:func:`prediction_permutation_test`, the block permutation used for test-set
  correlations in the naturalistic-fMRI literature): the out-of-fold predictions are permuted against the
  responses, whole groups (or circular shifts) *within each outer test fold*, so that a response is only
  paired with predictions of a model that never saw its fold (permuting across folds makes the test
  conservative: every other fold's model was trained on the response's group). Cost per permutation
  ~ n x targets (about 1-2x one fit for 1,000 permutations). Measured on null data with per-target
  penalties: a false-positive rate of 0.03-0.045 at a nominal 0.05 (valid, slightly conservative).

The refit null:  the cross-validated ridge on permuted responses. With the ridge penalty of every target
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


def group_permutations(
    groups: np.ndarray, n_permutations: int, seed: int = 0, strata: np.ndarray | None = None
) -> Iterator[np.ndarray]:
    """Row orders that move whole groups onto other groups of the same size (order kept inside a group),
    only within a stratum when ``strata`` is given (e.g. the outer test fold of every sample)."""
    groups = np.asarray(groups)
    labels, first = np.unique(groups, return_index=True)
    labels = labels[np.argsort(first)]
    members = [np.flatnonzero(groups == label) for label in labels]
    sizes = np.array([len(m) for m in members])
    strata = np.zeros(len(groups), dtype=int) if strata is None else np.asarray(strata)
    stratum = np.array([strata[m[0]] for m in members])
    classes = [np.flatnonzero((sizes == size) & (stratum == st))
               for size in np.unique(sizes) for st in np.unique(stratum)]
    rng = np.random.default_rng(seed)
    for _ in range(n_permutations):
        order = np.arange(len(groups))
        for same in classes:
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
    standardize: bool | np.ndarray = True,
) -> list[dict[float, np.ndarray]]:
    """Per fold, the linear map ``B_α`` from training responses to test predictions for each penalty used.

    ``X`` is one feature matrix, or a list with the matrix of each fold (e.g. its in-fold chosen layer);
    ``standardize`` (a bool or one flag per feature) as in :class:`lmbrain.encoding.RidgeCV`, whose
    training-fold standardisation and decomposition (:mod:`lmbrain.encoding.ridge`, the one ridge core) are used here.
    """
    from lmbrain.encoding.backend import get_backend
    from lmbrain.encoding.ridge import decompose, prediction_operator, standardize_rows

    backend = get_backend("numpy")
    operators = []
    for fold, (train, test) in enumerate(splits):
        Xf = np.asarray(X[fold] if isinstance(X, list | tuple) else X, dtype=np.float64)
        Xtr, Xte, _, _ = standardize_rows(Xf, backend.index(train), backend.index(test), True, standardize)
        dec = decompose(Xtr, "auto", backend)
        n = len(train)
        ops = {}
        for alpha in np.unique(alphas[fold]):
            A = prediction_operator(dec, Xte, float(alpha), backend)
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
    standardize: bool | np.ndarray = True,
) -> PermutationResult:
    """p-values of out-of-fold r and R² against refits on permuted responses (penalties fixed per fold).

    ``alphas`` is ``(n_folds, n_targets)``: the penalty each target got in each outer fold. p-values are
    ``(1 + #{null >= observed}) / (1 + n_permutations)``. Products run in ``dtype`` (float32 by default:
    p-values need ranks, not the last digits); samples never tested (time-series gaps) are not scored.
    """
    Y = np.asarray(Y, dtype=dtype)
    alphas = np.asarray(alphas, dtype=float)
    operators = fold_operators(X, splits, alphas, dtype=dtype, standardize=standardize)
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


def prediction_permutation_test(
    Y: np.ndarray,
    predictions: np.ndarray,
    baseline: np.ndarray,
    permutations: Iterator[np.ndarray] | Sequence[np.ndarray],
    tested: np.ndarray | None = None,
    dtype=np.float32,
) -> PermutationResult:
    """p-values of out-of-fold r and R² against out-of-fold predictions permuted relative to the responses.

    ``permutations`` are row orders over the tested samples (``tested``: boolean mask, default all); both
    statistics need only the cross-product ``Σ y · ŷ[order]`` per target (a permutation keeps ``Σ ŷ`` and
    ``Σ ŷ²``), so one permutation costs one pass over the data.
    """
    keep = np.ones(len(Y), dtype=bool) if tested is None else np.asarray(tested, dtype=bool)
    Y = np.asarray(Y, dtype=np.float64)[keep]
    P = np.asarray(predictions, dtype=np.float64)[keep]
    B = np.asarray(baseline, dtype=np.float64)[keep]
    n = len(Y)
    Yc = Y - Y.mean(0)
    Pc = P - P.mean(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = 1.0 / (np.sqrt((Yc**2).sum(0)) * np.sqrt((Pc**2).sum(0)))
        sse_base = ((Y - B) ** 2).sum(0)
        r = (Yc * Pc).sum(0) * scale
        r2 = 1.0 - ((Y - P) ** 2).sum(0) / sse_base
    # r2 of a permuted prediction: 1 - (Σy² - 2 Σ y ŷ[o] + Σ ŷ²) / sse_base; r: Σ yc ŷ[o] x scale
    y2, p2, y_mean_p_sum = (Y**2).sum(0), (P**2).sum(0), Y.mean(0) * P.sum(0)
    Yc32, P32 = Yc.astype(dtype), P.astype(dtype)
    exceed_r = np.zeros(Y.shape[1])
    exceed_r2 = np.zeros(Y.shape[1])
    total = np.zeros(Y.shape[1])
    total_sq = np.zeros(Y.shape[1])
    count = 0
    for order in permutations:
        order = np.asarray(order)
        if len(order) != n:
            raise ValueError(f"a permutation has {len(order)} rows; {n} samples are tested")
        Pp = P32[order]
        cross_c = np.einsum("ij,ij->j", Yc32, Pp, dtype=np.float64)  # Σ yc ŷ[o]  (Σ yc = 0)
        cross = cross_c + y_mean_p_sum
        with np.errstate(divide="ignore", invalid="ignore"):
            null_r = cross_c * scale
            null_r2 = 1.0 - (y2 - 2 * cross + p2) / sse_base
        exceed_r += null_r >= r
        exceed_r2 += null_r2 >= r2
        total += null_r
        total_sq += null_r**2
        count += 1
    mean = total / max(count, 1)
    return PermutationResult(
        r=r, r2=r2, p_r=(1 + exceed_r) / (1 + count), p_r2=(1 + exceed_r2) / (1 + count),
        null_r_mean=mean, null_r_std=np.sqrt(np.maximum(total_sq / max(count, 1) - mean**2, 0)),
        n_permutations=count,
    )



# -- is a fuller model better than a reduced one? (unique variance) ----------------------------------


@dataclass
class PairedResult:
    """Per target: the gain in out-of-sample R² of a full model over a reduced one, and its p-value."""

    delta_r2: np.ndarray
    p: np.ndarray
    n_permutations: int
    n_blocks: int


def group_sums(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Sums of the rows of ``values`` (samples on axis -2) within each group, groups in sorted order."""
    _, index = np.unique(np.asarray(groups), return_inverse=True)
    sums = np.zeros((*values.shape[:-2], int(index.max()) + 1, values.shape[-1]))
    np.add.at(sums, (..., index, slice(None)), values)
    return sums


def contiguous_blocks(n_samples: int, size: int, runs: np.ndarray | None = None) -> np.ndarray:
    """Block labels of consecutive samples (``size`` each, never crossing a run): exchangeable units of a
    time series, long enough to hold its autocorrelation."""
    runs = np.zeros(n_samples, dtype=int) if runs is None else np.asarray(runs)
    labels = np.empty(n_samples, dtype=np.int64)
    start = 0
    for run in dict.fromkeys(runs.tolist()):
        idx = np.flatnonzero(runs == run)
        labels[idx] = start + np.arange(len(idx)) // max(int(size), 1)
        start = int(labels[idx].max()) + 1
    return labels


def paired_sign_flip_test(
    Y: np.ndarray,
    full: np.ndarray,
    reduced: np.ndarray,
    baseline: np.ndarray,
    blocks: np.ndarray,
    n_permutations: int = 1000,
    seed: int = 0,
    tested: np.ndarray | None = None,
) -> PairedResult:
    """p-value of R²(full) − R²(reduced) > 0 from out-of-fold predictions, e.g. unique LLM variance:
    R²(LLM + controls) − R²(controls).

    Both R² share the denominator (squared errors of the training-fold means), so the gain is
    ``Σ_i d_i / SS`` with ``d_i = (y_i − reduced_i)² − (y_i − full_i)²``. Under the null that the two models
    predict equally well, swapping their predictions within a block leaves the distribution unchanged, so
    the block sums of ``d`` are flipped in sign at random (whole blocks: the dataset's split unit, or
    contiguous scans of a time series). Cost: one (permutations x blocks) @ (blocks x targets) product.
    ``p = (1 + #{null >= observed}) / (1 + n_permutations)``.
    """
    keep = np.ones(len(Y), dtype=bool) if tested is None else np.asarray(tested, dtype=bool)
    Y = np.asarray(Y, dtype=np.float64)[keep]
    full = np.asarray(full, dtype=np.float64)[keep]
    reduced = np.asarray(reduced, dtype=np.float64)[keep]
    ss = ((Y - np.asarray(baseline, dtype=np.float64)[keep]) ** 2).sum(0)
    d = (Y - reduced) ** 2 - (Y - full) ** 2
    sums = group_sums(d, np.asarray(blocks)[keep])
    observed = sums.sum(0)
    rng = np.random.default_rng(seed)
    exceed = np.zeros(Y.shape[1])
    for start in range(0, n_permutations, 256):  # bounded memory: 256 sign vectors at a time
        signs = rng.choice([-1.0, 1.0], size=(min(256, n_permutations - start), len(sums)))
        exceed += (signs @ sums >= observed - 1e-12 * np.abs(observed)).sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = observed / ss
    return PairedResult(delta, (1 + exceed) / (1 + n_permutations), n_permutations, len(sums))
