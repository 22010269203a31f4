"""Banded ridge with a given list of band weights: exact, and cheaper than himalaya's random search.

For band weights ``w`` (one per feature space) and penalty ``α``, banded ridge is ridge on
``[√w_1 X_1, ..., √w_B X_B]`` (himalaya's ``solve_group_ridge_random_search`` with an array ``n_iter``).
Per inner fold and weight vector this module diagonalises one small symmetric matrix — the weighted
Gram matrix ``D Xᵀ X D`` (p × p) when there are fewer features than samples, else the weighted kernel
``Σ_b w_b X_b X_bᵀ`` (n × n) — built from per-band products computed once per fold, and scores every
penalty for every target from it: ``pred_α = A diag(1 / (λ + α)) Z``. himalaya takes an SVD of the
reweighted design for every weight vector instead. Centering is per inner training fold, as himalaya's
``fit_intercept`` does; standardisation is done once by the estimator on its training data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lmbrain.encoding.metrics import r2_oos


def _factor(
    Xtr: np.ndarray, Xval: np.ndarray, col_band: np.ndarray, n_bands: int, primal: bool
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray] | None]:
    """Fold products reused by every weight vector: Gram (primal) or per-band kernels (dual)."""
    if primal:
        return Xtr.T @ Xtr, Xval, None  # Xtr.T @ Ytr is formed once per fold by the caller
    kernels = [Xtr[:, col_band == b] @ Xtr[:, col_band == b].T for b in range(n_bands)]
    val_kernels = [Xval[:, col_band == b] @ Xtr[:, col_band == b].T for b in range(n_bands)]
    return np.empty(0), np.empty(0), [*kernels, *val_kernels]


def _spectral(
    weights: np.ndarray, Xtr: np.ndarray, Xval: np.ndarray, Ytr: np.ndarray, col_band: np.ndarray,
    products: tuple[np.ndarray, np.ndarray, list[np.ndarray] | None],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(A, λ, Z) with predictions ``A diag(1/(λ+α)) Z`` for every α, for one weight vector."""
    gram, xty, kernels = products
    if kernels is None:
        d = np.sqrt(weights[col_band])
        lam, V = np.linalg.eigh(gram * d[:, None] * d[None, :])
        DV = V * d[:, None]
        return Xval @ DV, lam, DV.T @ xty
    n_bands = len(kernels) // 2
    K = sum(w * k for w, k in zip(weights, kernels[:n_bands], strict=True))
    Kval = sum(w * k for w, k in zip(weights, kernels[n_bands:], strict=True))
    lam, Q = np.linalg.eigh(K)
    return Kval @ Q, lam, Q.T @ Ytr


def banded_cv_scores(
    X: np.ndarray,
    Y: np.ndarray,
    col_band: np.ndarray,
    splits: Sequence[tuple[np.ndarray, np.ndarray]],
    weights: np.ndarray,
    alphas: np.ndarray,
) -> np.ndarray:
    """Mean inner-CV R² (n_weights, n_alphas, n_targets) of banded ridge, centering per training fold."""
    n_bands = int(col_band.max()) + 1
    scores = np.zeros((len(weights), len(alphas), Y.shape[1]))
    for train, val in splits:
        mean_x, mean_y = X[train].mean(0), Y[train].mean(0)
        Xtr, Xval = X[train] - mean_x, X[val] - mean_x
        Ytr = Y[train] - mean_y
        test_mean = np.broadcast_to(Y[val].mean(0), (len(val), Y.shape[1]))
        primal = X.shape[1] <= len(train)
        products = _factor(Xtr, Xval, col_band, n_bands, primal)
        if primal:
            products = (products[0], Xtr.T @ Ytr, None)
        for i, w in enumerate(weights):
            A, lam, Z = _spectral(np.asarray(w, float), Xtr, Xval, Ytr, col_band, products)
            lam = np.clip(lam, 0, None)
            for j, alpha in enumerate(alphas):
                pred = (A / (lam + alpha)) @ Z + mean_y
                with np.errstate(divide="ignore", invalid="ignore"):
                    fold = r2_oos(Y[val], pred, test_mean)  # R² against the fold's own mean, as himalaya
                scores[i, j] += np.where(np.isfinite(fold), fold, 0.0)
    return scores / len(splits)


def select_banded(scores: np.ndarray, alphas: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best (weights index, α index) per target with himalaya's rules; also the per-weights best scores.

    Within a weight vector the best α wins (ties to the larger α); a later weight vector replaces the
    current best only if it scores more than one float64 epsilon higher.
    """
    sloped = scores + 1e-10 * np.log(alphas)[None, :, None]
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
    X: np.ndarray, Y: np.ndarray, col_band: np.ndarray, weights: np.ndarray, alphas: np.ndarray,
    best_weight: np.ndarray, best_alpha: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients (n_features, n_targets) and intercepts for each target's chosen (weights, α)."""
    mean_x, mean_y = X.mean(0), Y.mean(0)
    Xc, Yc = X - mean_x, Y - mean_y
    coef = np.zeros((X.shape[1], Y.shape[1]))
    for i in np.unique(best_weight):
        d = np.sqrt(np.asarray(weights[i], float)[col_band])
        Xw = Xc * d
        targets_w = np.flatnonzero(best_weight == i)
        if X.shape[1] <= X.shape[0]:
            lam, V = np.linalg.eigh(Xw.T @ Xw)
            Z = V.T @ (Xw.T @ Yc[:, targets_w])
        else:
            lam, Q = np.linalg.eigh(Xw @ Xw.T)
            V, Z = Xw.T @ Q, Q.T @ Yc[:, targets_w]
        lam = np.clip(lam, 0, None)
        for j in np.unique(best_alpha[targets_w]):
            cols = targets_w[best_alpha[targets_w] == j]
            sub = np.searchsorted(targets_w, cols)
            coef[:, cols] = d[:, None] * ((V / (lam + alphas[j])) @ Z[:, sub])
    return coef, mean_y - mean_x @ coef
