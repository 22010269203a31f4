"""Encoding estimators with the scikit-learn contract: RidgeCV (one alpha per target), BandedRidgeCV, OLS.

All take ``fit(X, Y, groups=None)``: ``groups`` are the training samples' CV groups, used by the inner
cross-validation that chooses hyperparameters (``cv`` int -> :class:`GroupedKFold` over ``groups``;
a splitter is called with ``groups``). Standardisation is fitted on the training data only (inside
the inner CV, on each inner training fold); the intercept is the training mean, handled explicitly.
``coef_`` is (n_features, n_targets) and ``score`` returns R² per target (n_targets,).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import LinearRegression

from lmbrain.encoding.backend import get_backend
from lmbrain.encoding.inner_cv import alpha_scores, ridge_cv_scores, select_alphas
from lmbrain.encoding.metrics import r2_oos
from lmbrain.encoding.ridge import RidgeFactors, _check_alphas, check_standardize, ridge_fit, standardize_rows
from lmbrain.encoding.splits import check_splits
from lmbrain.errors import LmbrainError

#: Default alpha grid: 10 values from 1e-2 to 1e7. For standardised features the eigenvalues of X'X
#: run from ~0 to ~n_samples x n_features (1e6 for 1000 x 1000), so the grid spans from almost no
#: shrinkage to shrinking every direction; one alpha per decade keeps the CV cost (linear in the
#: number of alphas) at 10 products per fold.
DEFAULT_ALPHAS = np.logspace(-2, 7, 10)


def check_xy(X: ArrayLike, Y: ArrayLike | None, dtype: DTypeLike = None) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """X as 2-D and Y as 2-D float arrays of one dtype (float32 kept, else float64); Y was 1-D?"""
    X = np.asarray(X)
    if X.ndim != 2:
        raise LmbrainError(f"X must be 2-D (samples, features), got shape {X.shape}")
    if dtype is None:
        dtype = np.float32 if X.dtype == np.float32 else np.float64
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise LmbrainError(f"dtype must be float32 or float64, got {dtype}")
    X = np.asarray(X, dtype=dtype)
    _check_finite(X, "X")
    if Y is None:
        return X, None, False
    Y = np.asarray(Y, dtype=dtype)
    ravel = Y.ndim == 1
    if ravel:
        Y = Y[:, None]
    if Y.ndim != 2:
        raise LmbrainError(f"Y must be 1-D or 2-D (samples, targets), got shape {Y.shape}")
    if Y.shape[0] != X.shape[0]:
        raise LmbrainError(f"X has {X.shape[0]} samples but Y has {Y.shape[0]}")
    _check_finite(Y, "Y")
    return X, Y, ravel


def _check_finite(a: np.ndarray, name: str) -> None:
    if not np.isfinite(a).all():
        bad = int((~np.isfinite(a)).sum())
        raise LmbrainError(
            f"{name} has {bad} NaN/inf values; mask missing samples (per subject) before encoding"
        )


def _check_groups(groups: ArrayLike, n_samples: int) -> np.ndarray | None:
    if groups is None:
        return None
    groups = np.asarray(groups)
    if groups.shape != (n_samples,):
        raise LmbrainError(f"groups must have one value per sample ({n_samples}), got shape {groups.shape}")
    return groups


class RidgeCV(RegressorMixin, BaseEstimator):
    """Ridge regression with one alpha per target chosen by (grouped) inner cross-validation.

    All alphas, targets and inner folds are solved from one decomposition of the training samples
    (``cv_method="leave_out"``: each inner fold's predictions are those of the ridge refitted without its
    held-out rows, by the exact deletion formula; ``"refit"``: one decomposition per inner fold; see
    :mod:`lmbrain.encoding.ridge`), then the model is refit on all training samples with each target's
    alpha (the same decomposition). ``scoring`` ("r2", "pearson", "neg_mse") is averaged over inner folds;
    ``alpha_choice`` "best" takes each target's best mean (ties: the larger alpha), "one_se" the largest alpha
    within one standard error (over inner folds) of it (:func:`lmbrain.encoding.inner_cv.alpha_scores`; the smaller
    alphas' scores are then -inf in ``cv_scores_``), "shared_one_se" that rule on the targets' mean curve: one alpha
    for all targets (per subject in :func:`lmbrain.encoding.cross_validate_select` with ``target_groups``).
    ``standardize`` is a bool or a per-feature boolean mask
    (True: z-score the column; False: centre only, for one-hot, indicator and identity-like features), fitted on
    the training samples given to ``fit`` (with ``"refit"``: on each inner training fold). The intercept is
    refitted without the held-out rows either way.

    Fitted attributes: ``alpha_`` (n_targets,), ``coef_`` (n_features, n_targets), ``intercept_``
    (n_targets,), ``cv_scores_`` (n_alphas, n_targets) the inner-CV scores that chose them. With 1-D ``Y`` these
    drop the target axis.

    Parameters
    ----------
    alphas : array of shape (n_alphas,)
        The penalty grid (default 1e-2 .. 1e7).
    cv : int or splitter
        The inner CV over the training samples' groups (an int: that many grouped folds).
    standardize : bool or array of shape (n_features,)
        Which columns are z-scored (True) or only centred (False).
    alpha_choice : {"best", "one_se", "shared_one_se"}
        How each target's penalty is read off its inner-CV scores.
    solver, backend, dtype, n_targets_batch, scoring, cv_method
        How the fits are computed (``lmbrain.encoding.ridge``); the results do not depend on them beyond rounding.
    """

    def __init__(
        self,
        alphas: Sequence[float] | np.ndarray = DEFAULT_ALPHAS,
        cv: Any = 5,
        fit_intercept: bool = True,
        standardize: bool | np.ndarray = True,
        solver: str = "auto",
        backend: str = "numpy",
        dtype: DTypeLike = None,
        n_targets_batch: int | None = None,
        scoring: str = "r2",
        cv_method: str = "leave_out",
        alpha_choice: str = "best",
    ) -> None:
        self.alphas = alphas
        self.cv = cv
        self.fit_intercept = fit_intercept
        self.standardize = standardize
        self.solver = solver
        self.backend = backend
        self.dtype = dtype
        self.n_targets_batch = n_targets_batch
        self.scoring = scoring
        self.cv_method = cv_method
        self.alpha_choice = alpha_choice

    def _solver_kwargs(self) -> dict[str, Any]:
        return dict(fit_intercept=self.fit_intercept, standardize=self.standardize, solver=self.solver,
                    backend=self.backend, n_targets_batch=self.n_targets_batch)

    def inner_cv_scores(self, X: ArrayLike, Y: ArrayLike, groups: ArrayLike | None = None,
                        target_groups: ArrayLike | None = None) -> np.ndarray:
        """Inner-CV scores (n_alphas, n_targets) on these training data, without refitting: the mean over inner
        folds, with ``alpha_choice="one_se"`` -inf below each target's one-SE alpha (:func:`alpha_scores`;
        ``"shared_one_se"``: one curve per group of ``target_groups``, all targets when None)."""
        X, Y, _ = check_xy(X, Y, self.dtype)
        groups = _check_groups(groups, X.shape[0])
        splits = check_splits(self.cv, X, Y, groups)
        alphas = _check_alphas(self.alphas)
        scores = ridge_cv_scores(X, Y, alphas, splits, scoring=self.scoring, method=self.cv_method,
                                 **self._solver_kwargs())
        return alpha_scores(scores, alphas, self.alpha_choice, target_groups)

    def fit(self, X: ArrayLike, Y: ArrayLike, groups: ArrayLike | None = None) -> RidgeCV:
        """Choose one alpha per target by inner CV over ``groups``, then refit on all samples."""
        return self.fit_from_cv_scores(X, Y, self.inner_cv_scores(X, Y, groups))

    def fit_from_cv_scores(self, X: ArrayLike, Y: ArrayLike, cv_scores: np.ndarray) -> RidgeCV:
        """Refit with alphas chosen from ``cv_scores`` = ``inner_cv_scores(X, Y, groups)`` (reused)."""
        X, Y2, ravel = check_xy(X, Y, self.dtype)
        alphas = _check_alphas(self.alphas)
        if cv_scores.shape != (len(alphas), Y2.shape[1]):
            expected = (len(alphas), Y2.shape[1])
            raise LmbrainError(f"cv_scores has shape {cv_scores.shape}, expected {expected}")
        index = select_alphas(cv_scores, alphas)
        self.factors_: RidgeFactors = ridge_fit(X, Y2, alphas, index, **self._solver_kwargs())
        self._coef = None
        self.alpha_ = alphas[index][0] if ravel else alphas[index]
        self.cv_scores_ = cv_scores[:, 0] if ravel else cv_scores
        self.n_features_in_ = X.shape[1]
        self.n_targets_ = Y2.shape[1]
        self._ravel = ravel
        self.dtype_ = X.dtype
        return self

    def _check_fitted(self, X: ArrayLike) -> np.ndarray:
        if not hasattr(self, "factors_"):
            raise LmbrainError(f"{type(self).__name__} is not fitted yet; call fit first")
        X, _, _ = check_xy(X, None, self.dtype_)
        if X.shape[1] != self.n_features_in_:
            raise LmbrainError(f"X has {X.shape[1]} features; the model was fitted on {self.n_features_in_}")
        return X

    @property
    def coef_(self) -> np.ndarray:
        """Coefficients (n_features, n_targets) in the units of X (built from the factors on first use)."""
        if not hasattr(self, "factors_"):
            raise AttributeError("coef_")
        if self._coef is None:
            self._coef = self.factors_.coef()
        return self._coef[:, 0] if self._ravel else self._coef

    @property
    def intercept_(self) -> np.ndarray | float:
        """Intercepts (n_targets,); zeros when fit_intercept is False."""
        if not hasattr(self, "factors_"):
            raise AttributeError("intercept_")
        intercept = self.factors_.intercept()
        return intercept[0] if self._ravel else intercept

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predictions (n_samples, n_targets), or (n_samples,) when fitted on 1-D Y."""
        X = self._check_fitted(X)
        pred = self.factors_.predict(X)
        return pred[:, 0] if self._ravel else pred

    def score(self, X: ArrayLike, Y: ArrayLike) -> np.ndarray:
        """R² per target (n_targets,) against the mean of ``Y`` itself (scikit-learn's definition)."""
        return _r2_per_target(Y, self.predict(X))


def _r2_per_target(Y: ArrayLike, pred: np.ndarray) -> np.ndarray:
    Y = np.asarray(Y, dtype=np.float64)
    Y2 = Y[:, None] if Y.ndim == 1 else Y
    P2 = pred[:, None] if pred.ndim == 1 else pred
    r2 = r2_oos(Y2, P2, np.broadcast_to(Y2.mean(0), Y2.shape))
    return r2[0] if Y.ndim == 1 else r2


@contextmanager
def himalaya_backend(name: str) -> Iterator[Any]:
    """Set himalaya's (global) backend for the duration of a block: numpy, torch (CUDA if present)."""
    from himalaya.backend import get_backend, set_backend

    if name == "torch":
        import torch

        name = "torch_cuda" if torch.cuda.is_available() else "torch"
    names = {"numpy": "numpy", "torch": "torch", "torch_cpu": "torch", "torch_cuda": "torch_cuda"}
    if name not in names:
        raise LmbrainError(f"unknown backend {name!r}; expected numpy, torch, torch_cpu or torch_cuda")
    previous = get_backend()
    set_backend(names[name])
    try:
        yield get_backend()
    finally:
        set_backend(previous)


def _band_indices(feature_slices: Any, n_features: int) -> list[np.ndarray]:
    """Feature indices of each band from slices / index lists; every feature in exactly one band."""
    bands = []
    for band in feature_slices:
        idx = np.arange(n_features)[band] if isinstance(band, slice) else np.asarray(band, dtype=np.intp)
        bands.append(np.atleast_1d(idx))
    used = np.concatenate(bands) if bands else np.array([], dtype=np.intp)
    if len(bands) < 1 or len(used) != n_features or set(used.tolist()) != set(range(n_features)):
        raise LmbrainError(
            f"feature_slices must cover each of the {n_features} features exactly once "
            f"(got {len(bands)} bands covering {len(used)} indices)"
        )
    return bands


class BandedRidgeCV(RegressorMixin, BaseEstimator):
    """Banded (grouped) ridge: one regularisation per feature space, chosen per target.

    ``feature_slices`` lists each band's columns of X (slices or index lists), e.g. an LLM layer and
    low-level controls. The search is himalaya's (``solve_group_ridge_random_search``, the solver behind
    ``GroupRidgeCV``/``BandedRidgeCV``): band weights (``n_iter`` Dirichlet draws, or an array of weight
    vectors) x ``alphas``, scored by R² on the same grouped inner folds as :class:`RidgeCV`. ``solver``
    "lmbrain" (default) solves it with :mod:`lmbrain.encoding.banded` (same results, measured faster:
    ``benchmarks/bench_banded.py``) on ``backend`` (numpy or torch, in float64); "himalaya" calls himalaya.
    ``standardize`` (bool, or a per-feature boolean mask: False = centre only) is fitted on each inner
    training fold and on all training rows for the refit, as in :class:`RidgeCV`; the "himalaya" reference
    cannot rescale inside its folds and standardises once on all training rows (identical to "lmbrain" with
    ``standardize=False``). Fitted: ``deltas_`` (n_bands, n_targets) log band scalings, ``alpha_`` (n_bands,
    n_targets) = exp(-deltas_) effective per-band regularisation, ``coef_``, ``intercept_``, ``cv_scores_``
    (n_iter, n_targets).
    """

    def __init__(
        self,
        feature_slices: Sequence[Any],
        alphas: Sequence[float] | np.ndarray = DEFAULT_ALPHAS,
        n_iter: int | np.ndarray = 20,
        concentration: Sequence[float] = (0.1, 1.0),
        cv: Any = 5,
        fit_intercept: bool = True,
        standardize: bool | np.ndarray = True,
        backend: str = "numpy",
        dtype: DTypeLike = None,
        n_targets_batch: int | None = None,
        random_state: int = 0,
        solver: str = "lmbrain",
    ) -> None:
        self.solver = solver
        self.feature_slices = feature_slices
        self.alphas = alphas
        self.n_iter = n_iter
        self.concentration = concentration
        self.cv = cv
        self.fit_intercept = fit_intercept
        self.standardize = standardize
        self.backend = backend
        self.dtype = dtype
        self.n_targets_batch = n_targets_batch
        self.random_state = random_state

    def fit(self, X: ArrayLike, Y: ArrayLike, groups: ArrayLike | None = None) -> BandedRidgeCV:
        """Choose per-target band regularisation by inner CV over ``groups``, then refit."""
        X, Y, ravel = check_xy(X, Y, self.dtype)
        groups = _check_groups(groups, X.shape[0])
        splits = check_splits(self.cv, X, Y, groups)
        bands = _band_indices(self.feature_slices, X.shape[1])
        alphas = _check_alphas(self.alphas)
        standardize = check_standardize(self.standardize, X.shape[1])
        get_backend(self.backend)  # unknown names fail here, whichever solver
        if self.solver == "lmbrain":
            return self._fit_lmbrain(X, Y, bands, splits, alphas, standardize, ravel)
        if self.solver != "himalaya":
            raise LmbrainError(f"unknown solver {self.solver!r}; expected 'lmbrain' or 'himalaya'")
        return self._fit_himalaya(X, Y, bands, splits, alphas, standardize, ravel)

    def _fit_himalaya(self, X: np.ndarray, Y: np.ndarray, bands: list[np.ndarray], splits: Any,
                      alphas: np.ndarray, standardize: bool | np.ndarray, ravel: bool) -> BandedRidgeCV:
        """himalaya's random search on X standardised once on all training rows (its folds only centre)."""
        from himalaya.ridge import solve_group_ridge_random_search
        from himalaya.scoring import r2_score

        Xs, _, mean, scale = standardize_rows(X, np.arange(X.shape[0]), None, False, standardize)
        if self.fit_intercept:
            mean = X.mean(0)
            Xs = Xs - (mean if scale is None else mean / scale)
        with himalaya_backend(self.backend) as hb:
            deltas, coef, cv_scores, *rest = solve_group_ridge_random_search(
                [Xs[:, b] for b in bands], Y, n_iter=self.n_iter, concentration=list(self.concentration),
                alphas=alphas.astype(X.dtype), fit_intercept=self.fit_intercept, score_func=r2_score,
                cv=splits, return_weights=True, random_state=self.random_state,
                n_targets_batch=self.n_targets_batch, progress_bar=False, warn=False,
            )
            deltas, coef, cv_scores = (np.asarray(hb.to_numpy(a)) for a in (deltas, coef, cv_scores))
            intercept = np.asarray(hb.to_numpy(rest[0])) if rest else np.zeros(Y.shape[1], X.dtype)
        order = np.concatenate(bands)
        full = np.empty_like(coef)
        full[order] = coef  # himalaya stacks the bands in the order given
        if scale is not None:
            full /= scale[:, None]
        if self.fit_intercept:
            intercept = intercept - mean @ full  # himalaya's intercept is for centred X
        self.deltas_ = deltas[:, 0] if ravel else deltas
        self.alpha_ = np.exp(-self.deltas_)
        self.coef_ = full[:, 0] if ravel else full
        self.intercept_ = intercept[0] if ravel else intercept
        self.cv_scores_ = cv_scores[:, 0] if ravel else cv_scores
        self.n_features_in_ = X.shape[1]
        self.dtype_ = X.dtype
        return self

    def band_weights(self, n_bands: int) -> np.ndarray:
        """The band-weight vectors searched: ``n_iter`` itself if an array, else himalaya's Dirichlet draws."""
        if not np.isscalar(self.n_iter):
            weights = np.asarray(self.n_iter, dtype=np.float64)
            if weights.ndim != 2 or weights.shape[1] != n_bands:
                raise LmbrainError(f"n_iter as weights must have shape (n, {n_bands}), got {weights.shape}")
            return weights
        from himalaya.kernel_ridge import generate_dirichlet_samples

        weights = np.asarray(generate_dirichlet_samples(
            n_samples=int(self.n_iter), n_kernels=n_bands, concentration=list(self.concentration),
            random_state=self.random_state), dtype=np.float64)
        weights[0] = 1.0 / n_bands  # himalaya always tries equal weights first
        return weights

    def _fit_lmbrain(self, X: np.ndarray, Y: np.ndarray, bands: list[np.ndarray], splits: Any,
                     alphas: np.ndarray, standardize: bool | np.ndarray, ravel: bool) -> BandedRidgeCV:
        """Exact grid search over (band weights, α) with lmbrain.encoding.banded (same results as himalaya)."""
        from lmbrain.encoding.banded import banded_cv_scores, banded_refit, select_banded

        col_band = np.empty(X.shape[1], dtype=np.intp)
        for b, cols in enumerate(bands):
            col_band[cols] = b
        weights = self.band_weights(len(bands))
        common = dict(fit_intercept=self.fit_intercept, standardize=standardize, backend=self.backend)
        scores = banded_cv_scores(X, Y, col_band, splits, weights, alphas, **common)
        best_w, best_a, cv_best = select_banded(scores, alphas)
        coef, intercept = banded_refit(X, Y, col_band, weights, alphas, best_w, best_a, **common)
        with np.errstate(divide="ignore"):  # a zero band weight drops the band: delta -inf
            deltas = np.log(weights[best_w].T) - np.log(alphas[best_a])[None, :]
        self.deltas_ = deltas[:, 0] if ravel else deltas
        self.alpha_ = np.exp(-self.deltas_)
        self.coef_ = (coef[:, 0] if ravel else coef).astype(X.dtype)
        self.intercept_ = (intercept[0] if ravel else intercept).astype(X.dtype)
        self.cv_scores_ = cv_best[:, 0] if ravel else cv_best
        self.n_features_in_ = X.shape[1]
        self.dtype_ = X.dtype
        return self

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predictions (n_samples, n_targets), or (n_samples,) when fitted on 1-D Y."""
        return _linear_predict(self, X)

    def score(self, X: ArrayLike, Y: ArrayLike) -> np.ndarray:
        """R² per target (n_targets,)."""
        return _r2_per_target(Y, self.predict(X))


def _linear_predict(est: Any, X: ArrayLike) -> np.ndarray:
    if not hasattr(est, "coef_"):
        raise LmbrainError(f"{type(est).__name__} is not fitted yet; call fit first")
    X, _, _ = check_xy(X, None, est.dtype_)
    if X.shape[1] != est.n_features_in_:
        raise LmbrainError(f"X has {X.shape[1]} features; the model was fitted on {est.n_features_in_}")
    return X @ est.coef_ + est.intercept_


class OLS(RegressorMixin, BaseEstimator):
    """Ordinary least squares for low-dimensional controls (scikit-learn's LinearRegression).

    Standardisation (on the training data) does not change OLS predictions but keeps coefficients
    comparable across controls; ``groups`` is accepted and ignored (no hyperparameter to choose).
    """

    def __init__(self, fit_intercept: bool = True, standardize: bool = True, dtype: DTypeLike = None) -> None:
        self.fit_intercept = fit_intercept
        self.standardize = standardize
        self.dtype = dtype

    def fit(self, X: ArrayLike, Y: ArrayLike, groups: ArrayLike | None = None) -> OLS:
        """Least-squares fit (minimum-norm when X is rank-deficient)."""
        X, Y, ravel = check_xy(X, Y, self.dtype)
        mean = X.mean(0) if self.fit_intercept else np.zeros(X.shape[1], X.dtype)
        scale = X.std(0) if self.standardize else np.ones(X.shape[1], X.dtype)
        scale[scale == 0] = 1.0
        model = LinearRegression(fit_intercept=self.fit_intercept).fit((X - mean) / scale, Y)
        coef = (model.coef_.T / scale[:, None]).astype(X.dtype)
        intercept = np.asarray(model.intercept_, dtype=X.dtype) * np.ones(Y.shape[1], X.dtype)
        intercept = intercept - mean @ coef
        self.coef_ = coef[:, 0] if ravel else coef
        self.intercept_ = intercept[0] if ravel else intercept
        self.n_features_in_ = X.shape[1]
        self.dtype_ = X.dtype
        return self

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predictions (n_samples, n_targets), or (n_samples,) when fitted on 1-D Y."""
        return _linear_predict(self, X)

    def score(self, X: ArrayLike, Y: ArrayLike) -> np.ndarray:
        """R² per target (n_targets,)."""
        return _r2_per_target(Y, self.predict(X))
