"""What the joint estimators share: the band helpers, the penalty grid that lets a band vanish, and the linear
estimator base (:class:`_JointRidge`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.base import BaseEstimator, RegressorMixin

from lmbrain.encoding.estimators import (
    RidgeCV,
    _band_indices,
    _check_groups,
    _linear_predict,
    _r2_per_target,
    check_xy,
)
from lmbrain.encoding.ridge import _check_alphas, check_standardize
from lmbrain.encoding.splits import check_splits
from lmbrain.errors import LmbrainError

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

    def _setup(self, X: ArrayLike, Y: ArrayLike, groups: ArrayLike) -> tuple[np.ndarray, np.ndarray, bool, list,
               list, Any]:
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

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predictions (n_samples, n_targets), or (n_samples,) when fitted on 1-D Y."""
        return _linear_predict(self, X)

    def score(self, X: ArrayLike, Y: ArrayLike) -> np.ndarray:
        """R² per target (n_targets,)."""
        return _r2_per_target(Y, self.predict(X))


def extended_alphas(alphas: Sequence[float] | np.ndarray, decades: int = EXTRA_DECADES) -> np.ndarray:
    """``alphas`` followed by ``decades`` powers of ten above the largest (a band can then vanish)."""
    alphas = _check_alphas(alphas)
    return np.concatenate([alphas, alphas.max() * 10.0 ** np.arange(1, decades + 1)])
