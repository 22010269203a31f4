"""The hierarchy: controls first, then the LLM on their residuals (``hierarchical`` and its rules for the residual
stage's penalty: ``1se``, ``shared``, ``alone``, ``pooled`` -- the default), and its PCA variant."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from lmbrain.encoding.estimators import (
    DEFAULT_ALPHAS,
    RidgeCV,
)
from lmbrain.encoding.inner_cv import ridge_cv_scores, select_alphas
from lmbrain.encoding.joint.base import _JointRidge, band_mask, extended_alphas
from lmbrain.encoding.ridge import _check_alphas
from lmbrain.errors import LmbrainError

#: Weight of a target's own inner-CV curve in :func:`pooled_choice` (the rest: the mean curve of the targets that want
#: the stage); recovery on the simulations of ``benchmarks/compare_joint.py`` is flat over 0.1..0.4.
POOLED_OWN_WEIGHT = 0.25


#: Rules of :class:`HierarchicalRidgeCV` for its later stages' penalties.
RULES = ("best", "1se", "shared", "alone", "pooled")


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


def grouped_choice(choice: Any, scores: np.ndarray, alphas: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
    """``choice(scores, alphas)`` applied to each group of targets on its own (``groups``: a label per target; None:
    one group), so that a rule that shares between targets (:func:`shared_choice`, :func:`pooled_choice`) shares only
    within a group -- several independent problems fitted side by side give each its own result."""
    if groups is None:
        return choice(scores, alphas)
    groups = np.asarray(groups)
    if groups.shape != (scores.shape[1],):
        raise LmbrainError(f"pool_groups needs one label per target ({scores.shape[1]}), got shape {groups.shape}")
    chosen = np.zeros_like(scores)
    for label in np.unique(groups):
        cols = groups == label
        chosen[:, cols] = choice(scores[:, cols], alphas)
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
        dtype: DTypeLike = None,
        cv_method: str = "leave_out",
        alpha_choice: str = "best",
        pool_groups: Any = None,
    ) -> None:
        self.alpha_choice = alpha_choice
        self.pool_groups = pool_groups
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

    def fit(self, X: ArrayLike, Y: ArrayLike, groups: ArrayLike | None = None) -> HierarchicalRidgeCV:
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
                ridge.fit_from_cv_scores(Xb, residual, grouped_choice(
                    shared_choice, ridge.inner_cv_scores(Xb, residual), grid, self.pool_groups))
            elif stage and self.rule == "pooled":  # raw curves: the pooling, not alpha_choice, regularises the choice
                ridge.set_params(alpha_choice="best")
                ridge.fit_from_cv_scores(Xb, residual, grouped_choice(
                    pooled_choice, ridge.inner_cv_scores(Xb, residual), grid, self.pool_groups))
            elif stage and self.rule == "alone":  # the band's penalty on the responses; a shared one per pool group
                own = select_alphas(ridge.inner_cv_scores(Xb, Y, target_groups=self.pool_groups), grid)
                ridge.fit_from_cv_scores(Xb, residual, guarded_choice(
                    ridge.inner_cv_scores(Xb, residual, target_groups=self.pool_groups), own, grid))
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
        dtype: DTypeLike = None,
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

    def fit(self, X: ArrayLike, Y: ArrayLike, groups: ArrayLike | None = None) -> HierarchicalPCARidgeCV:
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
