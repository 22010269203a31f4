"""Banded ridge with a given list of band weights: exact, and cheaper than himalaya's random search.

For band weights ``w`` (one per feature space) and penalty ``α``, banded ridge is ridge on
``[√w_1 X_1, ..., √w_B X_B]`` (himalaya's ``solve_group_ridge_random_search`` with an array ``n_iter``);
band ``b``'s penalty is ``α / w_b``, and a zero weight drops the band. Per inner fold and weight vector
this module diagonalises one small symmetric matrix — the weighted Gram matrix ``D Xᵀ X D`` (p × p) when
there are fewer features than samples, else the weighted kernel ``Σ_b w_b X_b X_bᵀ`` (n × n) — built from
per-band products computed once per fold, and scores every penalty for every target from it:
``pred_α = A diag(1 / (λ + α)) Z``. himalaya takes an SVD of the reweighted design for every weight vector
instead. Centering (``fit_intercept``) and standardisation (``standardize``: bool or per-feature mask, see
:func:`lmbrain.encoding.ridge.check_standardize`) are fitted on each inner training fold, and on all rows for
the refit, as in :mod:`lmbrain.encoding.ridge`. Arrays live on a :mod:`lmbrain.encoding.backend` (numpy or
torch) in float64.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from lmbrain.encoding.backend import Backend, get_backend
from lmbrain.encoding.ridge import standardize_rows


def _per_weight_alphas(alphas: np.ndarray, n_weights: int) -> np.ndarray:
    """Alphas (n_weights, n_alphas): a shared grid repeated, or one grid per weight vector."""
    alphas = np.asarray(alphas, dtype=np.float64)
    if alphas.ndim == 1:
        return np.broadcast_to(alphas, (n_weights, len(alphas)))
    if alphas.shape[0] != n_weights:
        raise ValueError(f"alphas per weight vector must have {n_weights} rows, got shape {alphas.shape}")
    return alphas


def _band_columns(col_band: np.ndarray, n_bands: int, bk: Backend) -> list[Any]:
    return [bk.index(np.flatnonzero(col_band == b)) for b in range(n_bands)]


def _products(Xtr: Any, Xval: Any | None, cols: list[Any], primal: bool) -> tuple[bool, Any, Any]:
    """Fold products reused by every weight vector: Gram (primal) or per-band kernels (dual)."""
    if primal:
        return True, Xtr.T @ Xtr, None
    train_k = [Xtr[:, c] @ Xtr[:, c].T for c in cols]
    val_k = [Xval[:, c] @ Xtr[:, c].T for c in cols] if Xval is not None else None
    return False, None, (train_k, val_k)


def _spectrum(
    w: np.ndarray, Xtr: Any, Xval: Any | None, col_band: np.ndarray, products: tuple[bool, Any, Any], bk: Backend,
    coef: bool = False,
) -> tuple[Any, Any, Any, Any]:
    """(λ, A, P, M) for one weight vector w: ``Z = Pᵀ R`` with R = ``Xᵀ Y`` (primal) or ``Y`` (dual).

    Validation predictions are ``A diag(1/(λ+α)) Z`` and coefficients ``M diag(1/(λ+α)) Z``. Primal:
    ``P = M = D V`` from ``D XᵀX D = V Λ Vᵀ``; dual: ``P = Q`` from ``Σ_b w_b X_b X_bᵀ = Q Λ Qᵀ`` and
    ``M = D² Xᵀ Q`` (formed only when ``coef``).
    """
    primal, gram, kernels = products
    if primal:
        d = bk.asarray(np.sqrt(w[col_band]), dtype=np.float64)
        lam, V = bk.eigh(gram * d[:, None] * d[None, :])
        M = V * d[:, None]
        return lam.clip(0), (Xval @ M if Xval is not None else None), M, M
    lam, Q = bk.eigh(sum(float(wb) * k for wb, k in zip(w, kernels[0], strict=True)))
    A = None
    if Xval is not None:
        A = sum(float(wb) * k for wb, k in zip(w, kernels[1], strict=True)) @ Q
    M = None
    if coef:
        d2 = bk.asarray(w[col_band], dtype=np.float64)
        M = (Xtr * d2[None, :]).T @ Q
    return lam.clip(0), A, Q, M


def banded_cv_scores(
    X: ArrayLike,
    Y: ArrayLike,
    col_band: np.ndarray,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    weights: np.ndarray,
    alphas: np.ndarray,
    *,
    fit_intercept: bool = True,
    standardize: bool | np.ndarray = False,
    backend: str | Backend = "numpy",
    targets: Sequence[np.ndarray] | None = None,
) -> np.ndarray:
    """Mean inner-CV R² (n_weights, n_alphas, n_targets) of banded ridge, scaling fitted per training fold.

    ``alphas`` is one grid (n_alphas,) or one grid per weight vector (n_weights, n_alphas). ``targets``
    optionally restricts weight vector ``i`` to the targets ``targets[i]`` (the others score -inf).
    R² is against each validation fold's own mean, as himalaya's; a constant validation target scores 0.
    """
    bk = get_backend(backend)
    X = bk.asarray(X, dtype=np.float64)
    Y = bk.asarray(Y, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    grid = _per_weight_alphas(alphas, len(weights))
    n_bands, n_targets = int(col_band.max()) + 1, Y.shape[1]
    cols = _band_columns(col_band, n_bands, bk)
    chosen = [np.arange(n_targets)] * len(weights) if targets is None else [np.asarray(t, np.intp) for t in targets]
    scores = np.zeros((len(weights), grid.shape[1], n_targets))
    for train, val in splits:
        train_b, val_b = bk.index(train), bk.index(val)
        Xtr, Xval, _, _ = standardize_rows(X, train_b, val_b, fit_intercept, standardize, bk)
        Ytr, Yval = Y[train_b], Y[val_b]
        mean_y = Ytr.mean(0) if fit_intercept else Ytr[0] * 0.0
        Ytr = Ytr - mean_y
        dev = Yval - Yval.mean(0)
        sst = bk.to_numpy((dev * dev).sum(0))
        products = _products(Xtr, Xval, cols, primal=X.shape[1] <= len(train))
        rhs = Xtr.T @ Ytr if products[0] else Ytr
        for i, w in enumerate(weights):
            sel = chosen[i]
            if len(sel) == 0:
                continue
            sel_b = bk.index(sel)
            lam, A, P, _ = _spectrum(w, Xtr, Xval, col_band, products, bk)
            Z = P.T @ rhs[:, sel_b]
            for j, alpha in enumerate(grid[i]):
                resid = Yval[:, sel_b] - ((A / (lam + float(alpha))) @ Z + mean_y[sel_b])
                sse = bk.to_numpy((resid * resid).sum(0))
                with np.errstate(divide="ignore", invalid="ignore"):
                    fold = 1.0 - sse / sst[sel]
                scores[i, j, sel] += np.where(np.isfinite(fold), fold, 0.0)
    scores /= len(splits)
    if targets is not None:
        scored = np.zeros((len(weights), n_targets), dtype=bool)
        for i, sel in enumerate(chosen):
            scored[i, sel] = True
        scores[~np.broadcast_to(scored[:, None, :], scores.shape)] = -np.inf
    return scores


def select_banded(scores: np.ndarray, alphas: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best (weights index, α index) per target with himalaya's rules; also the per-weights best scores.

    Within a weight vector the best α wins (ties to the larger α); a later weight vector replaces the
    current best only if it scores more than one float64 epsilon higher. ``alphas``: (n_alphas,) or one
    grid per weight vector (n_weights, n_alphas).
    """
    grid = _per_weight_alphas(alphas, scores.shape[0])
    sloped = scores + 1e-10 * np.log(grid)[:, :, None]
    best_alpha_per_w = sloped.argmax(axis=1)
    best_per_w = sloped.max(axis=1)
    n_targets = scores.shape[2]
    best_w = np.zeros(n_targets, dtype=int)
    current = np.full(n_targets, -np.inf)
    for i in range(scores.shape[0]):
        better = best_per_w[i] > current + np.finfo(np.float64).eps
        current[better] = best_per_w[i][better]
        best_w[better] = i
    return best_w, best_alpha_per_w[best_w, np.arange(n_targets)], best_per_w


def banded_refit(
    X: ArrayLike, Y: ArrayLike, col_band: np.ndarray, weights: np.ndarray, alphas: np.ndarray,
    best_weight: np.ndarray, best_alpha: np.ndarray, *, fit_intercept: bool = True,
    standardize: bool | np.ndarray = False, backend: str | Backend = "numpy",
) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients (n_features, n_targets) and intercepts in the units of X for each target's (weights, α).

    ``alphas``: (n_alphas,) or (n_weights, n_alphas) as in :func:`banded_cv_scores`; target ``t`` uses
    ``weights[best_weight[t]]`` and ``alphas[(best_weight[t],) best_alpha[t]]``. Scaling is fitted on all rows.
    """
    bk = get_backend(backend)
    X = bk.asarray(X, dtype=np.float64)
    Y = bk.asarray(Y, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    grid = _per_weight_alphas(alphas, len(weights))
    best_weight, best_alpha = np.asarray(best_weight, np.intp), np.asarray(best_alpha, np.intp)
    n_bands = int(col_band.max()) + 1
    cols = _band_columns(col_band, n_bands, bk)
    rows = bk.index(np.arange(X.shape[0]))
    Xs, _, mean_x, scale = standardize_rows(X, rows, None, fit_intercept, standardize, bk)
    mean_y = Y.mean(0) if fit_intercept else Y[0] * 0.0
    Yc = Y - mean_y
    products = _products(Xs, None, cols, primal=X.shape[1] <= X.shape[0])
    coef = np.zeros((X.shape[1], Y.shape[1]))
    for i in np.unique(best_weight):
        targets_w = np.flatnonzero(best_weight == i)
        lam, _, P, M = _spectrum(weights[i], Xs, None, col_band, products, bk, coef=True)
        rhs = Xs.T @ Yc[:, bk.index(targets_w)] if products[0] else Yc[:, bk.index(targets_w)]
        Z = P.T @ rhs
        for j in np.unique(best_alpha[targets_w]):
            sub = np.flatnonzero(best_alpha[targets_w] == j)
            coef[:, targets_w[sub]] = bk.to_numpy((M / (lam + float(grid[i, j]))) @ Z[:, bk.index(sub)])
    if scale is not None:
        coef /= bk.to_numpy(scale)[:, None]
    intercept = bk.to_numpy(mean_y) - (bk.to_numpy(mean_x) @ coef if fit_intercept else 0.0)
    return coef, intercept
