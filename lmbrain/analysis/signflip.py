"""Sign-flip tests on out-of-fold predictions, without refitting: does a model predict held-out responses better
than the training mean (``p_r2``), is a fuller model better than a reduced one (``p_unique``), and κ, how much
flips of out-of-fold gains understate their variance (the two roles of a response)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from lmbrain.analysis.permutation import (
    PermutationResult,
    _folds_of,
    _GainMoments,
    _resampled_batches,
    group_sums,
    squared_error_gain,
)
from lmbrain.analysis.smoothers import FoldSmoother, StackedSmoother
from lmbrain.encoding.metrics import pearson_r


def fold_r_contributions(Y: np.ndarray, predictions: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Every sample's share of the fold-mean r (:attr:`EncodingResult.r`): ``(y − ȳ_k)(ŷ − ŷ̄_k) / (‖y − ȳ_k‖
    ‖ŷ − ŷ̄_k‖ m)`` for a sample of fold k (m: the target's folds with a finite r), so that the shares of a target
    sum to its fold-mean r. Constant-prediction folds (r = 0) contribute 0, undefined folds nothing; NaN where
    a target has no finite fold r; samples with ``folds < 0`` contribute 0."""
    Y = np.asarray(Y, dtype=np.float64)
    P = np.asarray(predictions, dtype=np.float64)
    folds = np.asarray(folds)
    out = np.zeros_like(Y)
    finite = np.zeros(Y.shape[1])
    for k in np.unique(folds[folds >= 0]):
        rows = folds == k
        r_k = pearson_r(Y[rows], P[rows])
        yc, pc = Y[rows] - Y[rows].mean(0), P[rows] - P[rows].mean(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = yc * pc / np.sqrt((yc**2).sum(0) * (pc**2).sum(0))
        defined = np.isfinite(r_k)
        out[rows] = np.where(defined & (r_k != 0), share, 0.0)
        finite += defined
    with np.errstate(invalid="ignore", divide="ignore"):
        out /= finite
    out[:, finite == 0] = np.nan
    return out


def _flipped_sum_tally(sums: np.ndarray, tolerance: np.ndarray, n_permutations: int, seed: int
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Counts of sign-flipped totals of ``sums`` (2, blocks, targets) >= ``tolerance``, their sum and sum of squares."""
    rng = np.random.default_rng(seed)
    exceed = np.zeros_like(tolerance)
    total = np.zeros_like(tolerance)
    total_sq = np.zeros_like(tolerance)
    for start in range(0, n_permutations, 256):  # bounded memory: 256 sign vectors at a time
        signs = rng.choice([-1.0, 1.0], size=(min(256, n_permutations - start), sums.shape[1]))
        null = np.einsum("fb,sbt->sft", signs, sums)
        exceed += (null >= tolerance[:, None]).sum(1)
        total += null.sum(1)
        total_sq += (null**2).sum(1)
    return exceed, total, total_sq


def sign_flip_test(
    Y: np.ndarray,
    predictions: np.ndarray,
    baseline: np.ndarray,
    blocks: np.ndarray,
    folds: np.ndarray,
    n_permutations: int = 1000,
    seed: int = 0,
    inflation: np.ndarray | None = None,
) -> PermutationResult:
    """p-values of out-of-sample R² > 0 and of fold-mean r > 0 by block sign flips of out-of-fold predictions.

    R² (against the training-fold means ``baseline``) is ``Σ_i d_i / Σ_i (y_i − b_i)²`` with
    ``d_i = (y_i − b_i)² − (y_i − ŷ_i)²``, the per-sample gain over the intercept-only model. Under the null
    that the model predicts no better than the training mean, the sum of d over a block -- the split unit's
    group (sentence, passage) or consecutive scans, cut at fold boundaries -- has mean ≤ 0 (0 at the boundary
    of the null); blocks are the units that cross-validation already treats as independent, so their sums are
    flipped in sign at random. Nothing tied to word position or to the design survives a flip, unlike a
    permutation of whole groups among groups. ``p = (1 + #{null >= observed}) / (1 + n_permutations)``;
    samples with ``folds < 0`` (never tested) are dropped; ``null_r2_mean`` is the mean flipped R² (0 up to
    Monte-Carlo error). ``inflation`` (per target, >= 1; :func:`gain_inflation`) widens the R² null by its
    square root: the flips see only the test role of a response, not its role as training data of other folds.

    ``p_r`` flips the blocks' shares of the fold-mean r (:func:`fold_r_contributions`) the same way. It is kept
    as a diagnostic only: a response is also training data of the other folds' models, which flips of
    out-of-fold terms do not see, and it rejects ~12 % of no-signal targets at α = 0.05
    (``tests/analysis/test_null_calibration.py``); studies read ``p_r`` from :func:`permutation_test` on
    :func:`block_sign_flips`, which refits and so moves both roles of a response together.
    """
    folds = np.asarray(folds)
    keep = folds >= 0
    Y = np.asarray(Y, dtype=np.float64)
    Y2 = Y.reshape(len(Y), -1)[keep]
    P = np.asarray(predictions, dtype=np.float64).reshape(len(Y), -1)[keep]
    B = np.asarray(baseline, dtype=np.float64).reshape(len(Y), -1)[keep]
    folds = folds[keep]
    _, block_index = np.unique(np.asarray(blocks)[keep], return_inverse=True)
    cells = block_index * (int(folds.max()) + 1) + folds  # a block never straddles two folds
    ss = ((Y2 - B) ** 2).sum(0)
    sums = np.stack([group_sums(squared_error_gain(Y2, P, B), cells),
                     group_sums(fold_r_contributions(Y2, P, folds), cells)])  # (2, blocks, targets)
    observed = sums.sum(1)
    tolerance = observed - 1e-12 * np.abs(observed)
    if inflation is not None:  # observed / √κ against the flips = the flips widened by √κ
        tolerance[0] = tolerance[0] / np.sqrt(_at_least_one(inflation))
    exceed, total, total_sq = _flipped_sum_tally(sums, tolerance, n_permutations, seed)
    n = max(n_permutations, 1)
    mean = total / n
    with np.errstate(invalid="ignore", divide="ignore"):
        r2, null_r2 = observed[0] / ss, mean[0] / ss
    p = (1 + exceed) / (1 + n_permutations)
    p[~np.isfinite(observed)] = np.nan
    return PermutationResult(
        r=observed[1], r2=r2, p_r=p[1], p_r2=p[0], null_r_mean=mean[1],
        null_r_std=np.sqrt(np.maximum(total_sq[1] / n - mean[1] ** 2, 0)), n_permutations=n_permutations,
        null_r2_mean=null_r2,
    )


@dataclass
class PairedResult:
    """Per target: the gain in out-of-sample R² of a full model over a reduced one, and its p-value."""

    delta_r2: np.ndarray
    p: np.ndarray
    n_permutations: int
    n_blocks: int


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
    folds: np.ndarray | None = None,
    inflation: np.ndarray | None = None,
) -> PairedResult:
    """p-value of R²(full) − R²(reduced) > 0 from out-of-fold predictions, e.g. unique LLM variance:
    R²(LLM + controls) − R²(controls).

    Both R² share the denominator (squared errors of the training-fold means), so the gain is
    ``Σ_i d_i / SS`` with ``d_i = (y_i − reduced_i)² − (y_i − full_i)²``. Under the null that the two models
    predict equally well, swapping their predictions within a block leaves the distribution unchanged, so
    the block sums of ``d`` are flipped in sign at random (whole blocks: the dataset's split unit, or
    contiguous scans of a time series; with ``folds``, cut at the outer folds' boundaries). Cost: one
    (permutations x blocks) @ (blocks x targets) product. ``p = (1 + #{null >= observed}) / (1 + n_permutations)``.
    ``inflation`` (per target, >= 1; :func:`gain_inflation` of the joint and reduced models' refits) widens
    the null by its square root. Calibration: docs/statistics.md (``benchmarks/calibrate_nulls.py``).
    """
    keep = np.ones(len(Y), dtype=bool) if tested is None else np.asarray(tested, dtype=bool)
    if folds is not None:
        _, index = np.unique(np.asarray(blocks), return_inverse=True)
        blocks = index * (int(np.max(folds)) + 2) + np.asarray(folds) + 1
    Y = np.asarray(Y, dtype=np.float64)[keep]
    full = np.asarray(full, dtype=np.float64)[keep]
    reduced = np.asarray(reduced, dtype=np.float64)[keep]
    ss = ((Y - np.asarray(baseline, dtype=np.float64)[keep]) ** 2).sum(0)
    d = squared_error_gain(Y, full, reduced)
    sums = group_sums(d, np.asarray(blocks)[keep])
    observed = sums.sum(0)
    threshold = observed - 1e-12 * np.abs(observed)
    if inflation is not None:
        threshold = threshold / np.sqrt(_at_least_one(inflation))
    rng = np.random.default_rng(seed)
    exceed = np.zeros(Y.shape[1])
    for start in range(0, n_permutations, 256):  # bounded memory: 256 sign vectors at a time
        signs = rng.choice([-1.0, 1.0], size=(min(256, n_permutations - start), len(sums)))
        exceed += (signs @ sums >= threshold).sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = observed / ss
    return PairedResult(delta, (1 + exceed) / (1 + n_permutations), n_permutations, len(sums))


#: refits on resampled responses that estimate the unique-variance test's inflation (its relative SE ≈ √(2/n))
INFLATION_RESAMPLES = 200


def _at_least_one(inflation: np.ndarray) -> np.ndarray:
    """The inflation factors used: finite values >= 1, 1 elsewhere (the flips are never narrowed)."""
    kappa = np.asarray(inflation, dtype=np.float64)
    return np.where(np.isfinite(kappa) & (kappa > 1.0), kappa, 1.0)


def gain_inflation(
    Y: np.ndarray,
    full: FoldSmoother | StackedSmoother,
    reduced: FoldSmoother | StackedSmoother | None,
    blocks: np.ndarray,
    resamples: Iterator[np.ndarray] | Sequence[np.ndarray],
) -> np.ndarray:
    """κ per target: by how much block flips of out-of-fold gains understate the variance of their sum.

    Cross-validation uses every response twice -- as a test sample, and as training data of the other folds'
    models -- so the gains ``d = (y − reduced)² − (y − full)²`` of blocks in different folds are dependent, and
    flipping their block sums (:func:`sign_flip_test`, :func:`paired_sign_flip_test`) sees the test role only.
    On data sets with the pairing broken (``resamples``: :func:`block_sign_flips` or :func:`circular_shifts`,
    as the refit null of ``p_r`` draws them), both models are refitted with their penalties (and stacking
    weights) fixed, and κ = Var(Σ_b D_b) / mean(Σ_b D_b²) compares the true spread of the summed gain with the
    one the flips assume. ``reduced=None``: the training-fold mean (the R² test). Returns raw κ (NaN where
    undefined); the tests use max(κ, 1).
    """
    Y = np.asarray(Y, dtype=np.float64)
    moments = _GainMoments(blocks, _folds_of(full.splits, len(Y)))
    center = Y.mean(0)
    tiled: dict[int, tuple] = {}
    for k, Yp in _resampled_batches(Y, resamples, center):
        if k not in tiled:
            tiled[k] = (full.tile(k), None if reduced is None else reduced.tile(k))
        full_k, reduced_k = tiled[k]
        pred, base = full_k.predict(Yp)
        moments.add(Yp, pred, base if reduced_k is None else reduced_k.predict(Yp)[0], copies=k)
    return moments.inflation()
