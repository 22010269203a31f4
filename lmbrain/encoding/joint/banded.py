"""Banded ridge with per-band penalties taken from single-space fits (``banded_single``, ``banded_single_scaled``)
or searched for the LLM band alone (``banded_conditional``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from lmbrain.encoding.banded import banded_cv_scores, banded_refit
from lmbrain.encoding.estimators import (
    DEFAULT_ALPHAS,
)
from lmbrain.encoding.inner_cv import select_alphas
from lmbrain.encoding.joint.base import _JointRidge, extended_alphas
from lmbrain.encoding.ridge import _check_alphas
from lmbrain.errors import LmbrainError


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
        dtype: DTypeLike = None,
    ) -> None:
        self.feature_slices = feature_slices
        self.alphas = alphas
        self.cv = cv
        self.standardize = standardize
        self.scales = scales
        self.backend = backend
        self.dtype = dtype

    def fit(self, X: ArrayLike, Y: ArrayLike, groups: ArrayLike | None = None) -> SingleAlphaBandedRidge:
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
        dtype: DTypeLike = None,
    ) -> None:
        super().__init__(feature_slices, alphas=alphas, cv=cv, standardize=standardize, backend=backend, dtype=dtype)
        self.free_band = free_band
        self.free_alphas = free_alphas

    def fit(self, X: ArrayLike, Y: ArrayLike, groups: ArrayLike | None = None) -> ConditionalBandedRidge:
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
