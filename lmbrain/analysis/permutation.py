"""Significance tests of cross-validated encoding scores that respect the data's structure.

What each p-value tests (``statistics.permutation_method``; docs/statistics.md, "Permutation nulls and
calibration"):

- ``auto`` (the default): ``p_r`` -- is the fold-mean r above chance (the feature set is associated with the
  held-out responses)? -- against the cross-validated ridge refitted on responses flipped in sign about their
  mean a whole sentence / passage at a time (:func:`block_sign_flips`; event data) or circularly shifted
  within runs (:func:`circular_shifts`; time series). ``p_r2`` -- does the model predict held-out responses
  better than the training-fold mean (out-of-sample R² > 0)? -- by block sign flips of the per-sample gains
  over the intercept-only model (:func:`sign_flip_test`).
- ``refit`` (the former default, for comparison): whole groups permuted among groups of the same size, each
  keeping its internal order (event data), or circular shifts (time series), then refitted; both p-values
  against that null. Anything locked to word or sentence position is the same in every permuted data set, so
  it survives the permutation: the null mean r of a word-position model is its observed r.
- ``predictions`` (cheap): the out-of-fold predictions permuted against the responses, whole groups (or
  circular shifts) *within each outer test fold* (:func:`prediction_permutation_test`). Cost per permutation
  ~ n x targets; it keeps position-locked structure like ``refit``.

Unique variance (R²(joint) − R²(controls) > 0) is tested by :func:`paired_sign_flip_test` under every method.

The refit null: with the ridge penalty of every target fixed at the value chosen for it in each outer fold, a
fold's test predictions are linear in the training responses: ``Ŷ_test = B_α · Y_train`` with
``B_α = A_α (I − 11ᵀ/n) + 11ᵀ/n`` and ``A_α = X̃_test V diag(s / (s² + α)) Uᵀ`` from the SVD of the
standardised training features. The decomposition and ``B_α`` are computed once per fold and penalty; each
resample then costs one matrix product per fold instead of a refit (~100x one fit for 1,000 resamples of
10,000 targets; a naive refit loop costs ~1,000x). Sign flips of whole blocks (the default for event data) cost
less again: a fold's predictions of the flipped responses are ``C s``, with ``C`` every training block's
contribution ``B_α[:, block] · Y[block]`` summed once, so a draw costs a (test rows x training blocks) product
instead of (test rows x training rows) (``flip_blocks``). The penalty is not re-selected under the null: the test is
conditional on the chosen penalties.

Why refits for ``p_r`` but sign flips of out-of-fold gains for ``p_r2``: a response is used twice by
cross-validation, as a test sample and as training data of the other folds' models, so the out-of-fold terms
of two groups in different folds are dependent. Flipping the per-group terms of the fold-mean r after the fact
sees only the test role and rejects 12 % of no-signal word-position targets at α = 0.05; flipping the
responses and refitting moves both roles together (exact for symmetric, independent groups). The null of R²
> 0 is not "no association" (a model with signal can still predict worse than the training mean), so no
resampling of the responses reaches its boundary; the flipped gains are centred on it. The flips of gains still
see only the test role of a response, so they understate the variance of the summed gain -- most for
high-dimensional models that lean on every training group, and for time series with few blocks per fold. The
refits of the null measure by how much (:func:`gain_inflation`: κ = the variance of the summed gain across
refits over the variance the flips assume), and ``p_r2`` / ``p_unique`` widen their flips by √max(κ, 1).
Calibration at α = 0.05: docs/statistics.md (``benchmarks/calibrate_nulls.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from lmbrain.analysis.resamples import block_signs, resampled_responses
from lmbrain.encoding.metrics import mean_fold_r, pearson_r


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
    from lmbrain.encoding.ridge import prediction_operator, standardized_decomposition

    backend = get_backend("numpy")
    operators = []
    for fold, (train, test) in enumerate(splits):
        Xf = np.asarray(X[fold] if isinstance(X, list | tuple) else X)
        # the training fold's decomposition (float64): the one the refit of the score used (memoised by content)
        mean, scale, dec = standardized_decomposition(Xf[train], True, standardize, "auto", backend)
        Xte = np.asarray(Xf[test], dtype=np.float64) - mean
        if scale is not None:
            Xte = Xte / scale
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
    null_r2_mean: np.ndarray | None = None
    gain_inflation: np.ndarray | None = None


#: two predictions of a sample closer than this, relative to their size and the target's, are the same prediction
#: built in another order (a stacked joint model that gave the LLM no weight, a model that predicts the training mean):
#: their squared-error difference is then 0, not float64 rounding noise for the sign flips to rank
SAME_PREDICTION_RTOL = 1e-10


def _fold_mean_r(Y: np.ndarray, pred: np.ndarray, splits: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Pearson r within every test fold, averaged over the folds with a finite r (:attr:`EncodingResult.r`)."""
    return mean_fold_r(np.stack([pearson_r(Y[test], pred[test]) for _, test in splits]))


#: columns (targets x resamples) that :func:`permutation_test` refits in one product
RESAMPLE_COLUMNS = 2048


def _resampled_batches(Y: np.ndarray, resamples: Iterator[np.ndarray] | Sequence[np.ndarray], center: np.ndarray
                       ) -> Iterator[tuple[int, np.ndarray]]:
    """The responses under the null draws, ``RESAMPLE_COLUMNS // n_targets`` draws at a time side by side as
    columns (draw c, target j: column ``c * n_targets + j``): (number of draws, matrix)."""
    size = max(1, RESAMPLE_COLUMNS // max(Y.shape[1], 1))
    batch: list[np.ndarray] = []
    for resample in resamples:
        batch.append(resampled_responses(Y, resample, center))
        if len(batch) == size:
            yield len(batch), np.hstack(batch)
            batch = []
    if batch:
        yield len(batch), np.hstack(batch)


class _NullTally:
    """Running counts and moments of the refit null's r and R², per target (columns may be filled chunk by chunk)."""

    def __init__(self, r: np.ndarray, r2: np.ndarray) -> None:
        self.r, self.r2 = r, r2
        zeros = [np.zeros(len(r)) for _ in range(5)]
        self.exceed_r, self.exceed_r2, self.total, self.total_sq, self.total_r2 = zeros
        self.n = np.zeros(len(r), dtype=np.int64)

    def add(self, cols: slice, k: int, Yp: np.ndarray, pred: np.ndarray, base: np.ndarray,
            splits: Sequence[tuple[np.ndarray, np.ndarray]], tested: np.ndarray) -> None:
        """``k`` resampled data sets side by side (columns ``c * n_targets + j`` of the targets ``cols``)."""
        n_targets = Yp.shape[1] // k
        with np.errstate(invalid="ignore"):
            null_r = np.nan_to_num(_fold_mean_r(Yp, pred, splits), nan=0.0).reshape(k, n_targets)
            null_r2 = _r2(Yp[tested], pred[tested], base[tested]).reshape(k, n_targets)
        self.exceed_r[cols] += (null_r >= self.r[cols]).sum(0)
        self.exceed_r2[cols] += (null_r2 >= self.r2[cols]).sum(0)
        self.total[cols] += null_r.sum(0)
        self.total_sq[cols] += (null_r**2).sum(0)
        self.total_r2[cols] += null_r2.sum(0)
        self.n[cols] += k

    def result(self, inflation: np.ndarray | None) -> PermutationResult:
        """p-values ``(1 + #{null >= observed}) / (1 + n)`` and the null's moments."""
        n = int(self.n.max()) if len(self.n) else 0
        mean = self.total / max(n, 1)
        return PermutationResult(
            r=self.r, r2=self.r2,
            p_r=np.where(np.isfinite(self.r), (1 + self.exceed_r) / (1 + n), np.nan),
            p_r2=np.where(np.isfinite(self.r2), (1 + self.exceed_r2) / (1 + n), np.nan),
            null_r_mean=mean, null_r_std=np.sqrt(np.maximum(self.total_sq / max(n, 1) - mean**2, 0)),
            n_permutations=n, null_r2_mean=self.total_r2 / max(n, 1), gain_inflation=inflation,
        )


#: at least this many draws per product on the block-flip path (its per-fold tensor is reused by each of them)
FLIP_DRAWS = 64
#: elements of the (test rows x training rows x targets) products that build the block-flip tensors, at most
FLIP_PRODUCT_ELEMENTS = 2**23


def _flip_tensors(Yc: np.ndarray, splits: Sequence[tuple[np.ndarray, np.ndarray]], columns: FoldColumns,
                  index: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per fold, its training blocks and ``C`` (n_test, n_targets, n_blocks) with
    ``C[i, j, g] = Σ_{r in training block g} B_α(j)[i, r] · Yc[r, j]``: the fold's test predictions of the
    centred responses flipped by block signs ``s`` are then ``C s`` (one test-rows x blocks product per draw
    instead of test rows x training rows)."""
    out = []
    for fold, (train, test) in enumerate(splits):
        blocks, inverse = np.unique(index[train], return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(inverse[order]) != 0])
        Ytr = Yc[train][order]
        C = np.zeros((len(test), Yc.shape[1], len(blocks)), dtype=Yc.dtype)
        step = max(1, FLIP_PRODUCT_ELEMENTS // max(len(test) * len(train), 1))
        for B, cols in columns[fold]:
            Bo = B[:, order]
            for part in (cols[i:i + step] for i in range(0, len(cols), step)):
                products = Bo[:, :, None] * Ytr[:, part][None]  # (test, training rows by block, targets)
                C[:, part, :] = np.add.reduceat(products, starts, axis=1).transpose(0, 2, 1)
        out.append((blocks, C))
    return out


def _flipped_predictions(tensors: list[tuple[np.ndarray, np.ndarray]], signs: np.ndarray, center: np.ndarray,
                         splits: Sequence[tuple[np.ndarray, np.ndarray]], n: int) -> np.ndarray:
    """Out-of-fold predictions of ``len(signs)`` flipped data sets side by side (column ``c * n_targets + j``)."""
    k, n_targets = len(signs), len(center)
    pred = np.full((n, k * n_targets), np.nan, dtype=center.dtype)
    tiled = np.tile(center, k)
    for (blocks, C), (_, test) in zip(tensors, splits, strict=True):
        S = signs[:, blocks].astype(C.dtype)
        P = (C.reshape(-1, len(blocks)) @ S.T).reshape(len(test), n_targets, k)
        pred[test] = tiled + P.transpose(0, 2, 1).reshape(len(test), k * n_targets)
    return pred


def _tally_refits(tally: _NullTally, gains: _GainMoments | None, Y: np.ndarray,
                  splits: Sequence[tuple[np.ndarray, np.ndarray]], alphas: np.ndarray,
                  operators: list[dict[float, np.ndarray]], resamples: Iterator[np.ndarray] | Sequence[np.ndarray],
                  center: np.ndarray, tested: np.ndarray) -> None:
    """Refit every resampled data set through the fold operators and add it to ``tally`` (and ``gains``)."""
    batched: dict[int, tuple[np.ndarray, FoldColumns]] = {}
    # draws side by side as extra columns: one product per fold and penalty for a whole batch of them
    for k, Yp in _resampled_batches(Y, resamples, center):
        if k not in batched:
            tiled = np.tile(alphas, (1, k))
            batched[k] = (tiled, alpha_columns(tiled, operators))
        pred_p, base_p = cv_predictions(Yp, splits, operators, *batched[k])
        if gains is not None:
            gains.add(Yp, pred_p, base_p, copies=k)
        tally.add(slice(None), k, Yp, pred_p, base_p, splits, tested)


def _tally_block_flips(tally: _NullTally, gains: _GainMoments | None, Y: np.ndarray, cols: slice,
                       splits: Sequence[tuple[np.ndarray, np.ndarray]], columns: FoldColumns, signs: np.ndarray,
                       index: np.ndarray, center: np.ndarray, tested: np.ndarray, per_batch: int) -> None:
    """Refit the targets ``cols`` (``columns``: theirs) on ``per_batch`` block flips at a time, into ``tally``."""
    Yc = Y[:, cols] - center[cols]
    tensors = _flip_tensors(Yc, splits, columns, index)
    for first in range(0, len(signs), per_batch):
        batch = signs[first:first + per_batch]
        k = len(batch)
        Yp = np.tile(center[cols], k) + (batch[:, index].T.astype(Y.dtype)[:, :, None] * Yc[:, None, :]
                                         ).reshape(len(Y), -1)
        pred_p = _flipped_predictions(tensors, batch, center[cols], splits, len(Y))
        base_p = np.full_like(Yp, np.nan)
        for train, test in splits:
            base_p[test] = Yp[train].mean(0)
        if gains is not None:
            gains.add(Yp, pred_p, base_p, copies=k)
        tally.add(cols, k, Yp, pred_p, base_p, splits, tested)


def permutation_test(
    X: np.ndarray | Sequence[np.ndarray],
    Y: np.ndarray,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    alphas: np.ndarray,
    permutations: Iterator[np.ndarray] | Sequence[np.ndarray],
    dtype=np.float32,
    standardize: bool | np.ndarray = True,
    blocks: np.ndarray | None = None,
    flip_blocks: np.ndarray | None = None,
) -> PermutationResult:
    """p-values of out-of-fold r (fold mean) and R² against refits on resampled responses (penalties fixed per fold).

    ``permutations`` yields row orders (:func:`group_permutations`, :func:`circular_shifts`) or per-sample
    signs (:func:`block_sign_flips`: the responses flipped about their mean, whole blocks at a time).
    ``alphas`` is ``(n_folds, n_targets)``: the penalty each target got in each outer fold. p-values are
    ``(1 + #{null >= observed}) / (1 + n_permutations)``. Products run in ``dtype`` (float32 by default:
    p-values need ranks, not the last digits); samples never tested (time-series gaps) are not scored.
    ``blocks``: the cells of the two-role inflation κ (:func:`gain_inflation`), estimated on the same refits.
    ``flip_blocks``: the blocks the sign draws are constant on (those given to :func:`block_sign_flips`); a
    refit then sums each training block's contribution once and costs one (test rows x training blocks)
    product per draw instead of (test rows x training rows): the same null, a block size's factor cheaper.
    """
    # centred in float64 first: the refits reproduce a constant exactly (every operator's rows sum to 1), so r and R²
    # are unchanged, while float32 products of responses far from zero (raw BOLD) would lose the signal's digits
    Y = np.asarray(Y, dtype=np.float64)
    Y = (Y - Y.mean(0)).astype(dtype)
    alphas = np.asarray(alphas, dtype=float)
    operators = fold_operators(X, splits, alphas, dtype=dtype, standardize=standardize)
    columns = alpha_columns(alphas, operators)
    tested = np.zeros(len(Y), dtype=bool)
    for _, test in splits:
        tested[test] = True
    center = Y.mean(0)
    pred, base = cv_predictions(Y, splits, operators, alphas, columns)
    tally = _NullTally(_fold_mean_r(Y, pred, splits), _r2(Y[tested], pred[tested], base[tested]))
    folds = _folds_of(splits, len(Y))
    if flip_blocks is None:
        gains = None if blocks is None else _GainMoments(blocks, folds)
        _tally_refits(tally, gains, Y, splits, alphas, operators, permutations, center, tested)
        return tally.result(None if gains is None else gains.inflation())
    if len(flip_blocks) != len(Y):
        raise ValueError(f"flip_blocks has {len(flip_blocks)} entries for {len(Y)} samples")
    signs, index = block_signs(permutations, flip_blocks)
    # targets in chunks small enough that FLIP_DRAWS draws of all of them fit in one batch of columns
    n_targets = Y.shape[1]
    chunk = max(1, min(n_targets, RESAMPLE_COLUMNS // FLIP_DRAWS))
    per_batch = max(1, RESAMPLE_COLUMNS // chunk)
    inflation = []
    for start in range(0, n_targets, chunk):
        cols = slice(start, min(start + chunk, n_targets))
        sub_columns = [[(B, idx[(idx >= cols.start) & (idx < cols.stop)] - cols.start) for B, idx in fold]
                       for fold in columns]
        gains = None if blocks is None else _GainMoments(blocks, folds)
        _tally_block_flips(tally, gains, Y, cols, splits, sub_columns, signs, index, center, tested, per_batch)
        if gains is not None:
            inflation.append(gains.inflation())
    return tally.result(np.concatenate(inflation) if blocks is not None else None)


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
    total_r2 = np.zeros(Y.shape[1])
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
        total_r2 += null_r2
        count += 1
    mean = total / max(count, 1)
    return PermutationResult(
        r=r, r2=r2, p_r=(1 + exceed_r) / (1 + count), p_r2=(1 + exceed_r2) / (1 + count),
        null_r_mean=mean, null_r_std=np.sqrt(np.maximum(total_sq / max(count, 1) - mean**2, 0)),
        n_permutations=count, null_r2_mean=total_r2 / max(count, 1),
    )


# -- does a model predict held-out responses better than the training mean? (sign flips) --------------


# -- is a fuller model better than a reduced one? (unique variance) ----------------------------------


# -- the two roles of a response: how much do flips of out-of-fold gains understate their variance? ----------


def _folds_of(splits: Sequence[tuple[np.ndarray, np.ndarray]], n: int) -> np.ndarray:
    """Test-fold index of every sample (-1: never tested)."""
    folds = np.full(n, -1, dtype=np.intp)
    for k, (_, test) in enumerate(splits):
        folds[test] = k
    return folds


class _GainMoments:
    """Per target, the sum of block gains T = Σ_b D_b and its flip variance V = Σ_b D_b² over resampled data
    sets (blocks cut at fold boundaries, as the flip tests cut them)."""

    def __init__(self, blocks: np.ndarray, folds: np.ndarray) -> None:
        self.tested = np.asarray(folds) >= 0
        _, index = np.unique(np.asarray(blocks)[self.tested], return_inverse=True)
        self.cells = index * (int(np.max(folds)) + 1) + np.asarray(folds)[self.tested]
        self.sums: list[np.ndarray] = []
        self.squares: list[np.ndarray] = []

    def add(self, Y: np.ndarray, full: np.ndarray, reduced: np.ndarray, copies: int = 1) -> None:
        """One resampled data set (or ``copies`` of them side by side as columns): ``full`` and ``reduced``
        out-of-fold predictions of its responses ``Y``."""
        rows = slice(None) if self.tested.all() else self.tested
        D = group_sums(squared_error_gain(*(np.asarray(a)[rows] for a in (Y, full, reduced))), self.cells)
        self.sums.extend(D.sum(0).reshape(copies, -1))
        self.squares.extend((D**2).sum(0).reshape(copies, -1))

    def inflation(self) -> np.ndarray:
        """κ = Var(T) / mean(V) over the data sets (NaN with fewer than 2, or where V is 0)."""
        if len(self.sums) < 2:
            return np.full(len(self.sums[0]) if self.sums else 0, np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.var(self.sums, axis=0, ddof=1) / np.mean(self.squares, axis=0)


def squared_error_gain(Y: np.ndarray, full: np.ndarray, reduced: np.ndarray) -> np.ndarray:
    """Per sample ``(y − reduced)² − (y − full)²``, computed as ``(full − reduced)(2y − full − reduced)`` and exactly
    0 where the two predictions agree to rounding (:data:`SAME_PREDICTION_RTOL`)."""
    Y, full, reduced = (np.asarray(a, dtype=np.float64) for a in (Y, full, reduced))
    diff = full - reduced
    scale = np.abs(full) + np.abs(reduced) + np.nanmax(np.abs(Y), axis=0, initial=0.0)
    diff[np.abs(diff) <= SAME_PREDICTION_RTOL * scale] = 0.0
    return diff * (2 * Y - full - reduced)


def group_sums(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Sums of the rows of ``values`` (samples on axis -2) within each group, groups in sorted order."""
    _, index = np.unique(np.asarray(groups), return_inverse=True)
    order = np.argsort(index, kind="stable")  # rows of a group together, in their order: sums as np.add.at's
    starts = np.flatnonzero(np.r_[True, np.diff(index[order]) != 0])
    return np.add.reduceat(np.asarray(values, dtype=np.float64)[..., order, :], starts, axis=-2)
