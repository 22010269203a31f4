"""Stacked regressions (Lin et al., NeuroImage 2024): per-target weights of the bands' inner-CV out-of-fold
predictions (``stacked_simplex``, ``stacked_nnls``, ``stacked_nested``), and stacking over the hierarchy
(``stacked_hierarchical``, ``hierarchical_guarded``)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from lmbrain.encoding.estimators import (
    DEFAULT_ALPHAS,
    RidgeCV,
    _check_groups,
)
from lmbrain.encoding.inner_cv import ridge_cv_predictions, select_alphas
from lmbrain.encoding.joint.base import _JointRidge, band_mask, extended_alphas
from lmbrain.encoding.ridge import _check_alphas
from lmbrain.encoding.splits import check_splits
from lmbrain.errors import LmbrainError


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
        dtype: DTypeLike = None,
        cv_method: str = "leave_out",
        nested: bool = False,
        alpha_choice: str = "best",
        pool_groups: Any = None,
    ) -> None:
        self.alpha_choice = alpha_choice
        self.pool_groups = pool_groups
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

    def fit(self, X: ArrayLike, Y: ArrayLike, groups: ArrayLike | None = None) -> StackedRidgeCV:
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
            scores = ridge.inner_cv_scores(X[:, cols], Y, target_groups=self.pool_groups)  # shared within groups
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
        dtype: DTypeLike = None,
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

    def fit(self, X: ArrayLike, Y: ArrayLike, groups: ArrayLike | None = None) -> StackedHierarchicalRidgeCV:
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
