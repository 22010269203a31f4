"""Joint encoding models of an LLM band next to control features, for variance partitioning.

A control analysis compares R²(joint) with R²(controls): unique LLM R² = R²(joint) − R²(controls). A
joint estimator that loses to its own parts biases that difference downward. The estimators here share
one contract: ``feature_slices`` lists the bands' columns (band 0 = LLM, band 1 = controls; more bands
where natural), ``fit(X, Y, groups)`` chooses every hyperparameter by inner (grouped) CV on the training
data only, ``standardize`` is a bool or a per-feature boolean mask (False = centre only: one-hot,
indicator, OASM columns), and every fitted model is linear (``coef_`` (n_features, n_targets),
``intercept_``), so ``predict`` is ``X @ coef_ + intercept_``.

* ``"banded"`` -- :class:`BandedRidgeCV` over 9 band-weight ratios 1e-3..1e3 × the alphas, per target.
* ``"banded_single"`` / ``"banded_single_scaled"`` -- :class:`SingleAlphaBandedRidge`: banded ridge with
  each band's penalty taken from its own single-space :class:`RidgeCV` (optionally × one common scale
  chosen by inner CV).
* ``"banded_conditional"`` -- :class:`ConditionalBandedRidge`: the controls' penalty from their own
  RidgeCV, the LLM's searched per target by inner CV of the joint model (grid extended so it can vanish).
* ``"stacked_simplex"`` / ``"stacked_nnls"`` -- :class:`StackedRidgeCV` (Lin et al., NeuroImage 2024):
  non-negative per-target weights (summing to 1, or free) of the bands' inner-CV out-of-fold predictions.
* ``"hierarchical"`` / ``"hierarchical_1se"`` / ``"hierarchical_orth"`` -- :class:`HierarchicalRidgeCV`:
  controls first, then the LLM on their residuals (its alpha grid extended so that it can vanish); "1se"
  chooses the LLM's penalty by the one-standard-error rule; "orth" also residualises the LLM features on the
  controls; "shared" shares one residual-stage penalty among a fit's targets, "alone" takes the LLM-alone
  penalty and "pooled" (the default) reads each target's penalty off its inner-CV curve pooled with the curves of
  the targets that want the stage (each kept per target only where inner CV prefers it to vanishing).
* ``"stacked_hierarchical"`` / ``"hierarchical_guarded"`` -- :class:`StackedHierarchicalRidgeCV`: stacking (or a
  per-target choice) over the controls, the LLM and the hierarchy.
* ``"hierarchical_pca"`` -- :class:`HierarchicalPCARidgeCV`: the LLM stage on the band's leading principal
  components, rank chosen by inner CV. ``"stacked_nested"``: stacking with nested out-of-fold predictions.

The comparison that chose :data:`DEFAULT_JOINT` is ``benchmarks/compare_joint.py`` (docs/statistics.md,
"Joint model: which estimator").
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

from lmbrain.encoding.banded import banded_cv_scores, banded_refit
from lmbrain.encoding.estimators import (
    DEFAULT_ALPHAS,
    BandedRidgeCV,
    RidgeCV,
    _band_indices,
    _check_groups,
    _linear_predict,
    _r2_per_target,
    check_xy,
)
from lmbrain.encoding.ridge import (
    _check_alphas,
    check_standardize,
    ridge_cv_predictions,
    ridge_cv_scores,
    select_alphas,
)
from lmbrain.encoding.splits import check_splits
from lmbrain.errors import LmbrainError

#: Names accepted by :func:`make_joint_estimator`.
JOINT_KINDS = ("banded", "banded_single", "banded_single_scaled", "banded_conditional", "stacked_simplex",
               "stacked_nnls", "hierarchical", "hierarchical_1se", "hierarchical_orth", "stacked_hierarchical",
               "hierarchical_guarded", "hierarchical_pca", "hierarchical_shared", "stacked_nested",
               "hierarchical_alone", "hierarchical_pooled")
#: The joint estimator of control analyses: controls first, then the LLM on their residuals (its penalty grid extended
#: so that it can vanish), each target's residual-stage penalty read off its inner-CV curve pooled with the curves of
#: the targets that want the stage (:func:`pooled_choice`). Of the estimators of ``benchmarks/compare_joint.py`` its
#: unique R² stays unbiased (within ±0.001) where the LLM adds nothing, and it recovers the most of a known unique R²
#: of 0.02 among those that do (80 % of the learnable limit on Fedorenko-like data, 68 % on Brennan-like data;
#: stacking: 63 % / 61 % with a bias of -0.002); docs/statistics.md.
DEFAULT_JOINT = "hierarchical_pooled"
#: Weight of a target's own inner-CV curve in :func:`pooled_choice` (the rest: the mean curve of the targets that want
#: the stage); recovery on the simulations of ``benchmarks/compare_joint.py`` is flat over 0.1..0.4.
POOLED_OWN_WEIGHT = 0.25
#: Rules of :class:`HierarchicalRidgeCV` for its later stages' penalties.
RULES = ("best", "1se", "shared", "alone", "pooled")
#: Common scale factors of the per-band penalties searched by ``"banded_single_scaled"``.
DEFAULT_SCALES = np.logspace(-1, 2, 7)
#: Decades added above the largest alpha for the later stages of :class:`HierarchicalRidgeCV`.
EXTRA_DECADES = 3


def band_weight_grid(n_bands: int, n_ratios: int = 9) -> np.ndarray | int:
    """Band weights searched by ``"banded"``: ratios 10^-3..10^3 for two bands; 20 Dirichlet draws for more."""
    if n_bands != 2:
        return 20
    ratios = np.logspace(-3, 3, n_ratios)
    return np.column_stack([1 / (1 + ratios), ratios / (1 + ratios)])


def band_mask(standardize: bool | np.ndarray, columns: np.ndarray) -> bool | np.ndarray:
    """The ``standardize`` setting of a band's columns (a bool stays a bool)."""
    if isinstance(standardize, bool):
        return standardize
    return check_standardize(np.asarray(standardize)[columns], len(columns))


class _JointRidge(RegressorMixin, BaseEstimator):
    """Shared checks and the linear prediction of the joint estimators."""

    def _setup(self, X: Any, Y: Any, groups: Any) -> tuple[np.ndarray, np.ndarray, bool, list, list, Any]:
        """(X, Y, ravel, splits, bands, standardize) after validation."""
        X, Y, ravel = check_xy(X, Y, getattr(self, "dtype", None))
        groups = _check_groups(groups, X.shape[0])
        splits = check_splits(self.cv, X, Y, groups)
        bands = _band_indices(self.feature_slices, X.shape[1])
        if len(bands) < 2:
            raise LmbrainError(f"{type(self).__name__} needs at least 2 bands, got {len(bands)}")
        self.llm_columns_ = bands[0]
        _check_alphas(self.alphas)
        return X, Y, ravel, splits, bands, check_standardize(self.standardize, X.shape[1])

    def _band_ridge(self, alphas: np.ndarray, splits: list, standardize: Any, columns: np.ndarray) -> RidgeCV:
        """The RidgeCV of one band; ``alpha_choice`` applies to the LLM band (band 0) only: the controls' few columns
        keep the best inner-CV mean (a one-SE controls fit under-fits them, and the LLM stage, whose features carry
        the controls, then takes their signal for unique variance: p_unique 0.13 without any, docs/statistics.md)."""
        llm = getattr(self, "llm_columns_", None)
        choice = getattr(self, "alpha_choice", "best") if llm is not None and np.array_equal(columns, llm) else "best"
        return RidgeCV(alphas=alphas, cv=splits, standardize=band_mask(standardize, columns),
                       backend=self.backend, cv_method=getattr(self, "cv_method", "leave_out"), alpha_choice=choice)

    def _store(self, X: np.ndarray, coef: np.ndarray, intercept: np.ndarray, ravel: bool) -> None:
        self.coef_ = (coef[:, 0] if ravel else coef).astype(X.dtype)
        self.intercept_ = (intercept[0] if ravel else intercept).astype(X.dtype)
        self.n_features_in_ = X.shape[1]
        self.dtype_ = X.dtype
        self._ravel = ravel

    def _squeeze(self, a: np.ndarray) -> np.ndarray:
        return a[..., 0] if self._ravel else a

    def predict(self, X: Any) -> np.ndarray:
        """Predictions (n_samples, n_targets), or (n_samples,) when fitted on 1-D Y."""
        return _linear_predict(self, X)

    def score(self, X: Any, Y: Any) -> np.ndarray:
        """R² per target (n_targets,)."""
        return _r2_per_target(Y, self.predict(X))


# -- banded ridge with the single-space penalties ---------------------------------------------------


class SingleAlphaBandedRidge(_JointRidge):
    """Banded ridge whose per-band penalties are the bands' own single-space RidgeCV alphas.

    Each band's alpha per target is chosen by its own inner CV (:class:`RidgeCV` on that band alone);
    the joint model is then ridge with penalty ``scale · alpha_b`` on band ``b``. ``scales=None`` fixes
    ``scale = 1``; an array searches it per target by inner CV of the joint model on the same folds (one
    common factor for all bands; ties go to the larger scale). Fitted: ``alpha_`` (n_bands, n_targets)
    penalties used, ``scale_`` (n_targets,).
    """

    def __init__(
        self,
        feature_slices: Sequence[Any],
        alphas: Sequence[float] | np.ndarray = DEFAULT_ALPHAS,
        cv: Any = 5,
        standardize: bool | np.ndarray = True,
        scales: Sequence[float] | np.ndarray | None = None,
        backend: str = "numpy",
        dtype: Any = None,
    ) -> None:
        self.feature_slices = feature_slices
        self.alphas = alphas
        self.cv = cv
        self.standardize = standardize
        self.scales = scales
        self.backend = backend
        self.dtype = dtype

    def fit(self, X: Any, Y: Any, groups: Any = None) -> SingleAlphaBandedRidge:
        """Single-space alphas by inner CV, the common scale by inner CV (if searched), then refit."""
        X, Y, ravel, splits, bands, standardize = self._setup(X, Y, groups)
        band_alphas = self._single_alphas(X, Y, bands, splits, standardize)
        scales = np.array([1.0]) if self.scales is None else np.sort(_check_alphas(self.scales))
        candidates = scales[:, None, None] * band_alphas[None]
        coef, intercept, best = fit_penalty_candidates(X, Y, bands, splits, candidates, standardize=standardize,
                                                       backend=self.backend)
        self._store(X, coef, intercept, ravel)
        self.alpha_ = self._squeeze(candidates[best, :, np.arange(Y.shape[1])].T)
        self.scale_ = self._squeeze(scales[best])
        return self

    def _single_alphas(self, X: np.ndarray, Y: np.ndarray, bands: list, splits: list, standardize: Any,
                       skip: int | None = None) -> np.ndarray:
        """Each band's alpha per target from its own RidgeCV (n_bands, n_targets); band ``skip`` left at 1."""
        alphas = np.asarray(self.alphas, dtype=np.float64)
        out = np.ones((len(bands), Y.shape[1]))
        for b, cols in enumerate(bands):
            if b != skip:
                scores = self._band_ridge(alphas, splits, standardize, cols).inner_cv_scores(X[:, cols], Y)
                out[b] = alphas[select_alphas(scores, alphas)]
        return out


class ConditionalBandedRidge(SingleAlphaBandedRidge):
    """Banded ridge with the controls' penalty fixed by their own RidgeCV and the LLM's searched jointly.

    Every band but ``free_band`` (default 0, the LLM) takes the penalty its single-space :class:`RidgeCV`
    chooses per target; the free band's penalty is chosen per target by inner CV of the joint model over
    ``free_alphas`` (default :func:`extended_alphas`: the grid plus a few larger decades, at which the band
    vanishes and the model is the controls alone). A one-dimensional search instead of the ratio × alpha
    grid of ``"banded"``; ties go to the larger penalty. Fitted: ``alpha_`` (n_bands, n_targets).
    """

    def __init__(
        self,
        feature_slices: Sequence[Any],
        alphas: Sequence[float] | np.ndarray = DEFAULT_ALPHAS,
        cv: Any = 5,
        standardize: bool | np.ndarray = True,
        free_band: int = 0,
        free_alphas: Sequence[float] | np.ndarray | None = None,
        backend: str = "numpy",
        dtype: Any = None,
    ) -> None:
        super().__init__(feature_slices, alphas=alphas, cv=cv, standardize=standardize, backend=backend, dtype=dtype)
        self.free_band = free_band
        self.free_alphas = free_alphas

    def fit(self, X: Any, Y: Any, groups: Any = None) -> ConditionalBandedRidge:
        """The fixed bands' alphas by their own inner CV, the free band's by inner CV of the joint model."""
        X, Y, ravel, splits, bands, standardize = self._setup(X, Y, groups)
        if not 0 <= self.free_band < len(bands):
            raise LmbrainError(f"free_band must index one of the {len(bands)} bands, got {self.free_band}")
        band_alphas = self._single_alphas(X, Y, bands, splits, standardize, skip=self.free_band)
        free = np.sort(extended_alphas(self.alphas) if self.free_alphas is None else _check_alphas(self.free_alphas))
        candidates = np.repeat(band_alphas[None], len(free), axis=0)
        candidates[:, self.free_band] = free[:, None]
        coef, intercept, best = fit_penalty_candidates(X, Y, bands, splits, candidates, standardize=standardize,
                                                       backend=self.backend)
        self._store(X, coef, intercept, ravel)
        self.alpha_ = self._squeeze(candidates[best, :, np.arange(Y.shape[1])].T)
        return self


def fit_penalty_candidates(
    X: np.ndarray, Y: np.ndarray, bands: list[np.ndarray], splits: list, candidates: np.ndarray, *,
    standardize: bool | np.ndarray = True, backend: str = "numpy",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Banded ridge with per-band penalties chosen per target among ``candidates`` by inner CV, then refit.

    ``candidates`` (n_candidates, n_bands, n_targets): candidate ``c`` puts penalty ``candidates[c, b, t]``
    on band b for target t; with one candidate there is no CV. Ties go to the later candidate (order them
    from the least to the most penalised). Penalty vectors sharing their ratios share one decomposition per
    fold (:mod:`lmbrain.encoding.banded`). Returns (coef, intercept, best candidate per target).
    """
    n_cand, n_bands, n_targets = candidates.shape
    col_band = np.empty(X.shape[1], dtype=np.intp)
    for b, cols in enumerate(bands):
        col_band[cols] = b
    inverse = 1.0 / candidates.transpose(0, 2, 1).reshape(-1, n_bands)  # (n_cand * n_targets, n_bands)
    # band b's penalty alpha / w_b equals candidates[c, b, t] with w = inverse / sum and alpha = 1 / sum
    weights, alpha = inverse / inverse.sum(1, keepdims=True), 1.0 / inverse.sum(1)
    _, group = np.unique(np.round(np.log(weights), 9), axis=0, return_inverse=True)
    group = np.asarray(group).ravel()
    n_groups = int(group.max()) + 1
    group_weights = np.zeros((n_groups, n_bands))
    group_weights[group] = weights
    grids, alpha_pos = [], np.zeros(len(alpha), dtype=np.intp)
    for g in range(n_groups):
        rows = np.flatnonzero(group == g)
        values, pos = np.unique(alpha[rows], return_inverse=True)
        grids.append(values)
        alpha_pos[rows] = np.asarray(pos).ravel()
    width = max(len(v) for v in grids)
    grid = np.array([np.r_[v, np.full(width - len(v), v[-1])] for v in grids])  # (n_groups, width)
    common = dict(standardize=standardize, backend=backend)
    target_of = np.tile(np.arange(n_targets), n_cand)
    if n_cand > 1:
        members = [np.unique(target_of[group == g]) for g in range(n_groups)]
        scores = banded_cv_scores(X, Y, col_band, splits, group_weights, grid, targets=members, **common)
        cand_scores = scores[group, alpha_pos, target_of].reshape(n_cand, n_targets)
        best = select_alphas(cand_scores, np.arange(1.0, n_cand + 1))  # ties -> the later candidate
    else:
        best = np.zeros(n_targets, dtype=np.intp)
    chosen = best * n_targets + np.arange(n_targets)
    coef, intercept = banded_refit(X, Y, col_band, group_weights, grid, group[chosen], alpha_pos[chosen], **common)
    return coef, intercept, best


# -- stacking ---------------------------------------------------------------------------------------


def stacking_weights(P: np.ndarray, y: np.ndarray, constraint: str = "simplex") -> np.ndarray:
    """Per-target weights z (n_bands, n_targets) minimising ``|y - Σ_b z_b P[:, b]|²`` with z >= 0.

    ``P`` (n_samples, n_bands, n_targets) are the bands' out-of-fold predictions and ``y`` (n_samples,
    n_targets) the targets, both centred alike. ``constraint="simplex"`` also imposes ``Σ z = 1`` (Lin et
    al. 2024); ``"nonneg"`` is non-negative least squares. Exact: the optimum of this convex quadratic
    programme is the best feasible stationary point over the supports (all subsets of the few bands).
    """
    if constraint not in ("simplex", "nonneg"):
        raise LmbrainError(f"unknown constraint {constraint!r}; expected 'simplex' or 'nonneg'")
    n_bands, n_targets = P.shape[1], P.shape[2]
    G = np.einsum("nbt,nct->tbc", P, P)
    g = np.einsum("nbt,nt->tb", P, y)
    best = np.zeros((n_targets, n_bands))
    # loss up to the constant |y|²: z'Gz - 2 z'g; the empty support (z = 0) is feasible for "nonneg" only
    best_loss = np.zeros(n_targets) if constraint == "nonneg" else np.full(n_targets, np.inf)
    tol = 1e-12 * np.maximum(np.einsum("tbb->t", G), np.finfo(np.float64).tiny)
    for size in range(1, n_bands + 1):
        for support in itertools.combinations(range(n_bands), size):
            S = list(support)
            Ginv = np.linalg.pinv(G[:, S][:, :, S], hermitian=True)
            zS = np.einsum("tij,tj->ti", Ginv, g[:, S])
            feasible = np.ones(n_targets, dtype=bool)
            if constraint == "simplex":
                v = Ginv.sum(2)
                denom = v.sum(1)
                feasible = np.abs(denom) > 1e-12 * np.abs(Ginv).sum((1, 2))  # 1'G⁻¹1 ≠ 0, in G⁻¹'s units
                nu = (zS.sum(1) - 1.0) / np.where(feasible, denom, 1.0)
                zS = zS - nu[:, None] * v
            feasible &= (zS >= -1e-10).all(1)
            zS = np.clip(zS, 0.0, None)
            loss = np.einsum("ti,tij,tj->t", zS, G[:, S][:, :, S], zS) - 2 * (zS * g[:, S]).sum(1)
            better = feasible & (loss < best_loss - tol)
            best[better] = 0.0
            best[np.ix_(better, S)] = zS[better]
            best_loss[better] = loss[better]
    return best.T


class StackedRidgeCV(_JointRidge):
    """Stacked regressions (Lin et al., NeuroImage 2024): a per-target non-negative mix of per-band ridges.

    Each band's :class:`RidgeCV` chooses its alpha per target by inner CV; its out-of-fold inner-CV
    predictions at that alpha (minus each inner fold's training mean of Y) are combined per target with
    weights ``z >= 0`` (:func:`stacking_weights`) summing to 1 (``constraint="simplex"``, the paper's) or
    free (``"nonneg"``). Each band is refit on all training rows and the prediction is
    ``mean(Y) + Σ_b z_b (pred_b - mean(Y))``. Fitted: ``weights_`` and ``alpha_`` (n_bands, n_targets).
    """

    def __init__(
        self,
        feature_slices: Sequence[Any],
        alphas: Sequence[float] | np.ndarray = DEFAULT_ALPHAS,
        cv: Any = 5,
        standardize: bool | np.ndarray = True,
        constraint: str = "simplex",
        backend: str = "numpy",
        dtype: Any = None,
        cv_method: str = "leave_out",
        nested: bool = False,
        alpha_choice: str = "best",
    ) -> None:
        self.alpha_choice = alpha_choice
        self.feature_slices = feature_slices
        self.alphas = alphas
        self.cv = cv
        self.standardize = standardize
        self.constraint = constraint
        self.backend = backend
        self.dtype = dtype
        self.cv_method = cv_method
        self.nested = nested

    def _nested_oof(self, X: np.ndarray, Y: np.ndarray, groups: np.ndarray | None, splits: list,
                    alphas: np.ndarray, standardize: Any, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Out-of-fold predictions of a band whose every inner fold chooses its own alphas by a CV of its training
        rows (split as the inner CV splits), and the inner folds' training means."""
        pred = np.full(Y.shape, np.nan)
        baseline = np.full(Y.shape, np.nan)
        splitter = self.cv if hasattr(self.cv, "split") else len(splits)
        for train, test in splits:
            inner = check_splits(splitter, X[train], Y[train], None if groups is None else groups[train])
            ridge = self._band_ridge(alphas, inner, standardize, cols).fit(X[np.ix_(train, cols)], Y[train])
            pred[test] = ridge.predict(X[np.ix_(test, cols)])
            baseline[test] = Y[train].mean(0)
        return pred, baseline

    def fit(self, X: Any, Y: Any, groups: Any = None) -> StackedRidgeCV:
        """Per-band alphas and out-of-fold predictions by inner CV, stacking weights, per-band refits."""
        X, Y, ravel, splits, bands, standardize = self._setup(X, Y, groups)
        groups = _check_groups(groups, X.shape[0])
        alphas = np.asarray(self.alphas, dtype=np.float64)
        n, n_targets = Y.shape
        oof = np.empty((n, len(bands), n_targets))
        coef = np.zeros((X.shape[1], n_targets))
        intercepts, band_alphas = [], []
        for b, cols in enumerate(bands):
            ridge = self._band_ridge(alphas, splits, standardize, cols)
            scores = ridge.inner_cv_scores(X[:, cols], Y)
            index = select_alphas(scores, alphas)
            if self.nested:  # the weights see each band as it predicts data its alphas were not chosen on
                pred, baseline = self._nested_oof(X, Y, groups, splits, alphas, standardize, cols)
            else:
                pred, baseline = ridge_cv_predictions(X[:, cols], Y, alphas, index, splits,
                                                      standardize=band_mask(standardize, cols), backend=self.backend,
                                                      method=ridge.cv_method)
            oof[:, b] = pred - baseline
            ridge.fit_from_cv_scores(X[:, cols], Y, scores)
            coef[cols] = ridge.factors_.coef()
            intercepts.append(ridge.factors_.intercept())
            band_alphas.append(alphas[index])
        tested = np.isfinite(oof).all(axis=(1, 2))  # rows in some inner validation fold
        z = stacking_weights(oof[tested], Y[tested] - baseline[tested], self.constraint)
        y_mean = Y.mean(0)
        for b, cols in enumerate(bands):
            coef[cols] *= z[b][None, :]
        intercept = y_mean + sum(z[b] * (intercepts[b] - y_mean) for b in range(len(bands)))
        self._store(X, coef, intercept, ravel)
        self.weights_ = self._squeeze(z)
        self.alpha_ = self._squeeze(np.stack(band_alphas))
        return self


# -- hierarchical -----------------------------------------------------------------------------------


def extended_alphas(alphas: Sequence[float] | np.ndarray, decades: int = EXTRA_DECADES) -> np.ndarray:
    """``alphas`` followed by ``decades`` powers of ten above the largest (a band can then vanish)."""
    alphas = _check_alphas(alphas)
    return np.concatenate([alphas, alphas.max() * 10.0 ** np.arange(1, decades + 1)])


def one_se_choice(fold_scores: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """Scores (n_alphas, n_targets) whose argmax is the one-standard-error choice per target: the largest
    alpha whose mean inner-CV score is within one standard error (over inner folds) of the best alpha's
    (Hastie, Tibshirani & Friedman, ESL 7.10); ties of the best go to the larger alpha as usual."""
    n_folds = fold_scores.shape[0]
    mean = fold_scores.mean(0)
    se = fold_scores.std(0, ddof=1) / np.sqrt(n_folds) if n_folds > 1 else np.zeros_like(mean)
    best = select_alphas(mean, alphas)
    columns = np.arange(mean.shape[1])
    threshold = mean[best, columns] - se[best, columns]
    order = np.argsort(alphas)
    within = mean[order] >= threshold[None, :]  # (n_alphas sorted ascending, n_targets)
    largest = order[len(order) - 1 - np.argmax(within[::-1], axis=0)]
    chosen = np.zeros_like(mean)
    chosen[largest, columns] = 1.0
    return chosen


def shared_choice(scores: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """Scores (n_alphas, n_targets) whose argmax is one penalty shared by all targets -- the best mean inner-CV score
    over targets (ties: the larger) -- or, for a target whose own inner-CV score is higher at the largest penalty (the
    stage vanishes), that one: a choice between two values per target instead of the whole grid."""
    shared = int(select_alphas(np.nanmean(scores, axis=1, keepdims=True), alphas)[0])
    largest = int(np.argmax(alphas))
    keep = scores[shared] > scores[largest]
    chosen = np.zeros_like(scores)
    chosen[np.where(keep, shared, largest), np.arange(scores.shape[1])] = 1.0
    return chosen


def pooled_choice(scores: np.ndarray, alphas: np.ndarray, own_weight: float = POOLED_OWN_WEIGHT) -> np.ndarray:
    """Scores (n_alphas, n_targets) whose argmax is, per target, the penalty that maximises ``own_weight`` × its own
    inner-CV score curve + (1 − ``own_weight``) × the mean curve of the targets that want the stage (whose own best is
    not the largest penalty), or -- where its own score is at least as high at the largest penalty -- the largest (the
    stage vanishes): one target's noisy curve borrows the shape of the others' (empirical-Bayes-like pooling)."""
    largest = int(np.argmax(alphas))
    columns = np.arange(scores.shape[1])
    wanting = select_alphas(scores, alphas) != largest
    pool = scores[:, wanting] if wanting.any() else scores
    blended = own_weight * scores + (1.0 - own_weight) * np.nanmean(pool, axis=1, keepdims=True)
    index = select_alphas(blended, alphas)
    keep = scores[index, columns] > scores[largest]
    chosen = np.zeros_like(scores)
    chosen[np.where(keep, index, largest), columns] = 1.0
    return chosen


def guarded_choice(scores: np.ndarray, index: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """Scores (n_alphas, n_targets) whose argmax is, per target, penalty ``index`` or -- where the inner-CV score is
    at least as high there -- the largest penalty (the stage vanishes)."""
    largest = int(np.argmax(alphas))
    columns = np.arange(scores.shape[1])
    keep = scores[index, columns] > scores[largest]
    chosen = np.zeros_like(scores)
    chosen[np.where(keep, index, largest), columns] = 1.0
    return chosen


class HierarchicalRidgeCV(_JointRidge):
    """Controls first, then the LLM on their residuals: prediction = sum of the stages.

    Bands are fitted in ``order`` (default: last band first, i.e. controls then LLM for
    ``[LLM, controls]``), each by :class:`RidgeCV` on the training targets minus the earlier stages'
    in-sample predictions. The first stage searches ``alphas``; later stages ``residual_alphas`` (default
    :func:`extended_alphas`: a few decades larger, so that a band without unique signal can shrink to
    nothing). ``residualize=True`` also replaces each later band's features by their least-squares
    residuals on the earlier bands' features (on the training rows), so that it can only add what is
    linearly new. ``rule="pooled"`` (the default joint model's) reads each target's later-stage penalty off its own
    inner-CV curve pooled with the others' (:func:`pooled_choice`); ``rule="1se"`` chooses the later stages' penalty by
    the one-standard-error rule
    (:func:`one_se_choice`): an LLM stage whose inner-CV gain is within noise shrinks away. Fitted: ``alpha_``
    (n_bands, n_targets) in band order.
    """

    def __init__(
        self,
        feature_slices: Sequence[Any],
        alphas: Sequence[float] | np.ndarray = DEFAULT_ALPHAS,
        cv: Any = 5,
        standardize: bool | np.ndarray = True,
        residual_alphas: Sequence[float] | np.ndarray | None = None,
        order: Sequence[int] | None = None,
        residualize: bool = False,
        rule: str = "best",
        backend: str = "numpy",
        dtype: Any = None,
        cv_method: str = "leave_out",
        alpha_choice: str = "best",
    ) -> None:
        self.alpha_choice = alpha_choice
        self.feature_slices = feature_slices
        self.alphas = alphas
        self.cv = cv
        self.standardize = standardize
        self.residual_alphas = residual_alphas
        self.order = order
        self.residualize = residualize
        self.rule = rule
        self.cv_method = cv_method
        self.backend = backend
        self.dtype = dtype

    def fit(self, X: Any, Y: Any, groups: Any = None) -> HierarchicalRidgeCV:
        """Fit the stages in order, each on the residuals of the previous ones."""
        X, Y, ravel, splits, bands, standardize = self._setup(X, Y, groups)
        order = list(range(len(bands)))[::-1] if self.order is None else [int(b) for b in self.order]
        if sorted(order) != list(range(len(bands))):
            raise LmbrainError(f"order must be a permutation of the {len(bands)} bands, got {order}")
        later = extended_alphas(self.alphas) if self.residual_alphas is None else _check_alphas(self.residual_alphas)
        residual = Y.astype(np.float64)
        coef = np.zeros((X.shape[1], Y.shape[1]))
        intercept = np.zeros(Y.shape[1])
        band_alphas = np.zeros((len(bands), Y.shape[1]))
        for stage, b in enumerate(order):
            cols = bands[b]
            Xb = X[:, cols].astype(np.float64)
            earlier = np.concatenate([bands[e] for e in order[:stage]]) if stage else None
            if self.residualize and earlier is not None:
                P = X[:, earlier].astype(np.float64)
                p_mean, x_mean = P.mean(0), Xb.mean(0)
                proj = np.linalg.lstsq(P - p_mean, Xb - x_mean, rcond=None)[0]  # (n_earlier, n_band)
                Xb = Xb - x_mean - (P - p_mean) @ proj
            grid = _check_alphas(self.alphas) if stage == 0 else later
            ridge = self._band_ridge(grid, splits, standardize, cols)
            if stage and self.rule == "1se":
                ridge.fit_from_cv_scores(Xb, residual, one_se_choice(
                    ridge_cv_scores(Xb, residual, grid, splits, standardize=band_mask(standardize, cols),
                                    backend=self.backend, method=ridge.cv_method), grid))
            elif stage and self.rule == "shared":
                ridge.fit_from_cv_scores(Xb, residual, shared_choice(ridge.inner_cv_scores(Xb, residual), grid))
            elif stage and self.rule == "pooled":  # raw curves: the pooling, not alpha_choice, regularises the choice
                ridge.set_params(alpha_choice="best")
                ridge.fit_from_cv_scores(Xb, residual, pooled_choice(ridge.inner_cv_scores(Xb, residual), grid))
            elif stage and self.rule == "alone":
                own = select_alphas(ridge.inner_cv_scores(Xb, Y), grid)  # the band's penalty on the responses
                ridge.fit_from_cv_scores(Xb, residual, guarded_choice(ridge.inner_cv_scores(Xb, residual), own, grid))
            elif self.rule in RULES:
                ridge.fit(Xb, residual)
            else:
                raise LmbrainError(f"unknown rule {self.rule!r}; expected one of {RULES}")
            c, i0 = ridge.factors_.coef(), ridge.factors_.intercept()
            residual = residual - ridge.factors_.predict(Xb)
            coef[cols] += c
            intercept += i0
            if self.residualize and earlier is not None:
                # Xb_res @ c = X_b @ c - X_earlier @ (proj @ c) - (x_mean - p_mean @ proj) @ c
                coef[earlier] -= proj @ c
                intercept -= (x_mean - p_mean @ proj) @ c
            band_alphas[b] = ridge.alpha_
        self._store(X, coef, intercept, ravel)
        self.alpha_ = self._squeeze(band_alphas)
        return self


# -- stacking over the hierarchy --------------------------------------------------------------------


def _band_oof(ridge: RidgeCV, X: np.ndarray, Y: np.ndarray, grid: np.ndarray, splits: list, standardize: Any,
              backend: str) -> tuple[np.ndarray, np.ndarray, RidgeCV]:
    """A band's inner-CV out-of-fold predictions at each target's chosen alpha, their baselines (the inner
    folds' training means), and the band refit on all rows."""
    scores = ridge.inner_cv_scores(X, Y)
    index = select_alphas(scores, grid)
    pred, baseline = ridge_cv_predictions(X, Y, grid, index, splits, standardize=standardize, backend=backend,
                                          method=ridge.cv_method)
    ridge.fit_from_cv_scores(X, Y, scores)
    return pred, baseline, ridge


def selection_weights(P: np.ndarray, y: np.ndarray) -> np.ndarray:
    """One-hot weights (n_models, n_targets): per target, the model of ``P`` (n_samples, n_models, n_targets)
    with the smallest out-of-fold squared error against ``y``; ties go to the earlier model."""
    sse = ((y[:, None, :] - P) ** 2).sum(0)  # (n_models, n_targets)
    best = np.argmin(sse, axis=0)  # the first of equal minima
    z = np.zeros_like(sse)
    z[best, np.arange(P.shape[2])] = 1.0
    return z


class StackedHierarchicalRidgeCV(_JointRidge):
    """Stacking over three models: the controls, the LLM, and the controls plus the LLM fitted on their residuals.

    Two-band problems only (band 0 = LLM, band 1 = controls). Each model's inner-CV out-of-fold predictions
    (the controls' and the LLM's at their own RidgeCV alphas; the hierarchy's as the controls' plus the LLM's
    out-of-fold predictions of the controls' in-sample training residuals, its alpha grid extended so that it can
    vanish, as in :class:`HierarchicalRidgeCV`) are combined per target with weights ``z >= 0`` summing to 1
    (``constraint="simplex"``, :func:`stacking_weights`) or by choosing the best model (``"select"``,
    :func:`selection_weights`: the hierarchy with a guard that falls back to a better part). Unlike the two-model
    stack, whose convex weights trade the LLM's unique part against the controls' share, the hierarchy carries both
    at full weight. Fitted: ``weights_`` (3, n_targets) in the order (controls, LLM, hierarchy), ``alpha_``
    (3, n_targets): the controls', the LLM's and the residual stage's penalties.
    """

    def __init__(
        self,
        feature_slices: Sequence[Any],
        alphas: Sequence[float] | np.ndarray = DEFAULT_ALPHAS,
        cv: Any = 5,
        standardize: bool | np.ndarray = True,
        constraint: str = "simplex",
        residual_alphas: Sequence[float] | np.ndarray | None = None,
        backend: str = "numpy",
        dtype: Any = None,
        cv_method: str = "leave_out",
        alpha_choice: str = "best",
    ) -> None:
        self.alpha_choice = alpha_choice
        self.feature_slices = feature_slices
        self.alphas = alphas
        self.cv = cv
        self.standardize = standardize
        self.constraint = constraint
        self.residual_alphas = residual_alphas
        self.backend = backend
        self.dtype = dtype
        self.cv_method = cv_method

    def fit(self, X: Any, Y: Any, groups: Any = None) -> StackedHierarchicalRidgeCV:
        """Out-of-fold predictions of the three models by inner CV, their stacking weights, and the refits."""
        X, Y, ravel, splits, bands, standardize = self._setup(X, Y, groups)
        if len(bands) != 2:
            raise LmbrainError(f"{type(self).__name__} needs exactly 2 bands (LLM, controls), got {len(bands)}")
        if self.constraint not in ("simplex", "select"):
            raise LmbrainError(f"unknown constraint {self.constraint!r}; expected 'simplex' or 'select'")
        llm, ctrl = bands
        grid = np.asarray(self.alphas, dtype=np.float64)
        later = extended_alphas(self.alphas) if self.residual_alphas is None else _check_alphas(self.residual_alphas)
        Y = Y.astype(np.float64)

        def oof(cols: np.ndarray, target: np.ndarray, alphas: np.ndarray):
            ridge = self._band_ridge(alphas, splits, standardize, cols)
            return _band_oof(ridge, X[:, cols], target, alphas, splits, band_mask(standardize, cols), self.backend)

        c_pred, baseline, c_ridge = oof(ctrl, Y, grid)
        l_pred, _, l_ridge = oof(llm, Y, grid)
        residual = Y - c_ridge.factors_.predict(X[:, ctrl])
        r_pred, _, r_ridge = oof(llm, residual, later)
        P = np.stack([c_pred - baseline, l_pred - baseline, c_pred - baseline + r_pred], axis=1)
        tested = np.isfinite(P).all(axis=(1, 2))
        if self.constraint == "simplex":
            z = stacking_weights(P[tested], Y[tested] - baseline[tested], "simplex")
        else:
            z = selection_weights(P[tested], Y[tested] - baseline[tested])
        coef = np.zeros((X.shape[1], Y.shape[1]))
        coef[ctrl] = (z[0] + z[2])[None, :] * c_ridge.factors_.coef()
        coef[llm] = z[1][None, :] * l_ridge.factors_.coef() + z[2][None, :] * r_ridge.factors_.coef()
        y_mean = Y.mean(0)
        i_c, i_l, i_r = (r.factors_.intercept() for r in (c_ridge, l_ridge, r_ridge))
        intercept = y_mean + z[0] * (i_c - y_mean) + z[1] * (i_l - y_mean) + z[2] * (i_c + i_r - y_mean)
        self._store(X, coef, intercept, ravel)
        self.weights_ = self._squeeze(z)
        self.alpha_ = self._squeeze(np.stack([c_ridge.alpha_, l_ridge.alpha_, r_ridge.alpha_]).reshape(3, -1))
        return self


# -- the LLM band reduced by PCA ---------------------------------------------------------------------

#: Candidate ranks of :class:`HierarchicalPCARidgeCV` (capped at the band's rank; the full band is always a candidate).
DEFAULT_RANKS = (4, 8, 16, 32, 64, 128)


class HierarchicalPCARidgeCV(_JointRidge):
    """Controls first, then ridge on the LLM band's leading principal components, fitted on their residuals.

    The LLM band is standardised and rotated to its principal components on the training rows (the inner
    validation rows contribute their X, never their Y, as for the standardisation); the number of components
    (``ranks`` and the full band) and the residual stage's penalty (extended grid, so that it can vanish) are
    chosen together per target by inner CV. Two-band problems only. Fitted: ``alpha_`` (2, n_targets) the LLM
    stage's and the controls' penalties, ``rank_`` (n_targets,).
    """

    def __init__(
        self,
        feature_slices: Sequence[Any],
        alphas: Sequence[float] | np.ndarray = DEFAULT_ALPHAS,
        cv: Any = 5,
        standardize: bool | np.ndarray = True,
        ranks: Sequence[int] = DEFAULT_RANKS,
        residual_alphas: Sequence[float] | np.ndarray | None = None,
        backend: str = "numpy",
        dtype: Any = None,
        cv_method: str = "leave_out",
    ) -> None:
        self.feature_slices = feature_slices
        self.alphas = alphas
        self.cv = cv
        self.standardize = standardize
        self.ranks = ranks
        self.residual_alphas = residual_alphas
        self.backend = backend
        self.dtype = dtype
        self.cv_method = cv_method

    def fit(self, X: Any, Y: Any, groups: Any = None) -> HierarchicalPCARidgeCV:
        """Controls by RidgeCV; PCA of the LLM band; rank and penalty of the residual stage by inner CV."""
        X, Y, ravel, splits, bands, standardize = self._setup(X, Y, groups)
        if len(bands) != 2:
            raise LmbrainError(f"{type(self).__name__} needs exactly 2 bands (LLM, controls), got {len(bands)}")
        llm, ctrl = bands
        Y = Y.astype(np.float64)
        c_ridge = self._band_ridge(np.asarray(self.alphas, float), splits, standardize, ctrl).fit(X[:, ctrl], Y)
        residual = Y - c_ridge.factors_.predict(X[:, ctrl])
        Xl = X[:, llm].astype(np.float64)
        mean = Xl.mean(0)
        mask = band_mask(standardize, llm)
        scale = Xl.std(0)
        scale = np.where(np.asarray(mask) & (scale > 0), scale, 1.0)
        _, s, Vt = np.linalg.svd((Xl - mean) / scale, full_matrices=False)
        full = int((s > s[0] * 1e-10).sum()) if len(s) else 0
        ranks = sorted({int(k) for k in self.ranks if 0 < int(k) < full} | {full})
        later = extended_alphas(self.alphas) if self.residual_alphas is None else _check_alphas(self.residual_alphas)
        scores = np.empty((len(ranks), len(later), Y.shape[1]))
        for i, k in enumerate(ranks):
            T = ((Xl - mean) / scale) @ Vt[:k].T
            ridge = RidgeCV(alphas=later, cv=splits, standardize=False, backend=self.backend,
                            cv_method=self.cv_method)
            scores[i] = ridge.inner_cv_scores(T, residual)
        flat = scores.reshape(-1, Y.shape[1])
        order = np.tile(np.log(later), len(ranks)) - 1e-3 * np.repeat(np.arange(len(ranks)), len(later))
        best = np.argmax(flat + 1e-10 * order[:, None], axis=0)  # ties: the larger penalty, then the smaller rank
        rank_index, alpha_index = np.divmod(best, len(later))
        coef = np.zeros((X.shape[1], Y.shape[1]))
        intercept = c_ridge.factors_.intercept().astype(np.float64)
        coef[ctrl] = c_ridge.factors_.coef()
        llm_alpha = np.empty(Y.shape[1])
        for i, k in enumerate(ranks):
            cols = np.flatnonzero(rank_index == i)
            if not len(cols):
                continue
            T = ((Xl - mean) / scale) @ Vt[:k].T
            one = np.full((len(later), len(cols)), -np.inf)
            one[alpha_index[cols], np.arange(len(cols))] = 0.0
            ridge = RidgeCV(alphas=later, cv=splits, standardize=False, backend=self.backend)
            ridge.fit_from_cv_scores(T, residual[:, cols], one)
            w = Vt[:k].T @ ridge.factors_.coef() / scale[:, None]  # (n_llm, targets) in X's units
            coef[np.ix_(llm, cols)] = w
            intercept[cols] += ridge.factors_.intercept() - mean @ w
            llm_alpha[cols] = later[alpha_index[cols]]
        self._store(X, coef, intercept, ravel)
        self.alpha_ = self._squeeze(np.stack([llm_alpha, np.asarray(c_ridge.alpha_).reshape(-1)]))
        self.rank_ = self._squeeze(np.asarray(ranks)[rank_index])
        return self


# -- factory ----------------------------------------------------------------------------------------


def _make_joint(
    kind: str,
    feature_slices: Sequence[Any],
    alphas: Sequence[float] | np.ndarray = DEFAULT_ALPHAS,
    cv: Any = 5,
    standardize: bool | np.ndarray = True,
    random_state: int = 0,
    backend: str = "numpy",
    cv_method: str = "leave_out",
) -> Any:
    """The joint estimator ``kind``, built (see :func:`make_joint_estimator`)."""
    common = dict(feature_slices=feature_slices, alphas=alphas, cv=cv, standardize=standardize, backend=backend)
    if kind == "banded":
        return BandedRidgeCV(n_iter=band_weight_grid(len(feature_slices)), random_state=random_state, **common)
    if kind == "banded_single":
        return SingleAlphaBandedRidge(**common)
    if kind == "banded_single_scaled":
        return SingleAlphaBandedRidge(scales=DEFAULT_SCALES, **common)
    if kind == "banded_conditional":
        return ConditionalBandedRidge(**common)
    if kind in ("stacked_simplex", "stacked_nnls", "stacked_nested"):
        return StackedRidgeCV(constraint="nonneg" if kind == "stacked_nnls" else "simplex", cv_method=cv_method,
                              nested=kind == "stacked_nested", **common)
    if kind in ("hierarchical", "hierarchical_1se", "hierarchical_orth", "hierarchical_shared", "hierarchical_alone",
                "hierarchical_pooled"):
        rule = {"hierarchical_1se": "1se", "hierarchical_shared": "shared", "hierarchical_alone": "alone",
                "hierarchical_pooled": "pooled"}.get(kind, "best")
        return HierarchicalRidgeCV(residualize=kind == "hierarchical_orth", cv_method=cv_method, rule=rule, **common)
    if kind in ("stacked_hierarchical", "hierarchical_guarded"):
        return StackedHierarchicalRidgeCV(constraint="simplex" if kind == "stacked_hierarchical" else "select",
                                          cv_method=cv_method, **common)
    if kind == "hierarchical_pca":
        return HierarchicalPCARidgeCV(cv_method=cv_method, **common)
    raise LmbrainError(f"unknown joint estimator {kind!r}; expected one of {JOINT_KINDS}")


def make_joint_estimator(
    kind: str,
    feature_slices: Sequence[Any],
    alphas: Sequence[float] | np.ndarray = DEFAULT_ALPHAS,
    cv: Any = 5,
    standardize: bool | np.ndarray = True,
    random_state: int = 0,
    backend: str = "numpy",
    cv_method: str = "leave_out",
    alpha_choice: str = "best",
) -> Any:
    """The joint estimator ``kind`` (one of :data:`JOINT_KINDS`; :data:`DEFAULT_JOINT` is the default);
    ``cv_method`` and ``alpha_choice`` (:class:`RidgeCV`'s) apply to the kinds whose bands are RidgeCVs."""
    est = _make_joint(kind, feature_slices, alphas, cv, standardize, random_state, backend, cv_method)
    if alpha_choice != "best":
        if "alpha_choice" not in est.get_params():
            raise LmbrainError(f"joint estimator {kind!r} chooses its penalties itself; alpha_choice must be 'best'")
        est.set_params(alpha_choice=alpha_choice)
    return est
