"""Per-target scores: Pearson r (per outer fold, averaged over folds) and out-of-sample R² against the
training-mean baseline (pooled over folds)."""

from __future__ import annotations

import warnings

import numpy as np

from lmbrain.errors import LmbrainError


def _as_2d(a: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise LmbrainError(f"{name} must be 1-D or 2-D (samples, targets), got shape {arr.shape}")
    return arr


def _check_same(*arrays: tuple[str, np.ndarray]) -> None:
    (name0, a0), *rest = arrays
    for name, a in rest:
        if a.shape != a0.shape:
            raise LmbrainError(f"{name} has shape {a.shape} but {name0} has shape {a0.shape}")


def pearson_r(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Column-wise Pearson correlation (n_targets,): NaN where the response is constant (r is undefined);
    0 where the prediction is constant to rounding (a constant prediction has zero covariance with anything:
    an intercept-only model, or OASM on a held-out passage, is scored as no association, not as noise)."""
    yt, yp = _as_2d(y_true, "y_true"), _as_2d(y_pred, "y_pred")
    _check_same(("y_true", yt), ("y_pred", yp))
    if yt.shape[0] == 0:
        return np.full(yt.shape[1], np.nan)
    # tolerance tests for constant columns: their centred values can be rounding noise rather than zeros
    constant = yt.max(0) == yt.min(0)
    flat = (yp.max(0) - yp.min(0)) <= 1e-12 * np.abs(yp).max(0)
    yt = yt - yt.mean(0)
    yp = yp - yp.mean(0)
    num = (yt * yp).sum(0)
    den = np.sqrt((yt * yt).sum(0) * (yp * yp).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = num / den
    r[flat] = 0.0
    r[(den == 0) & ~flat] = np.nan
    r[constant] = np.nan
    return r


def r2_oos(y_true: np.ndarray, y_pred: np.ndarray, y_baseline: np.ndarray) -> np.ndarray:
    """Out-of-sample R² (n_targets,) = 1 - Σ(y - ŷ)² / Σ(y - ȳ_train)², pooled over all given samples.

    ``y_baseline`` holds, for every sample, the mean of the training fold that predicted it, so the
    score is relative to the best constant a model could know without seeing the test fold. It can be
    negative; nan where the baseline is exact on every sample.
    """
    yt, yp, yb = _as_2d(y_true, "y_true"), _as_2d(y_pred, "y_pred"), _as_2d(y_baseline, "y_baseline")
    _check_same(("y_true", yt), ("y_pred", yp), ("y_baseline", yb))
    sse = ((yt - yp) ** 2).sum(0)
    sse0 = ((yt - yb) ** 2).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = 1.0 - sse / sse0
    r2[sse0 == 0] = np.nan
    return r2


def pearson_r_folds(y_true: np.ndarray, y_pred: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Pearson r within every test fold (n_folds, n_targets); samples with ``folds < 0`` are skipped."""
    yt, yp = _as_2d(y_true, "y_true"), _as_2d(y_pred, "y_pred")
    _check_same(("y_true", yt), ("y_pred", yp))
    folds = np.asarray(folds)
    if folds.shape != (yt.shape[0],):
        raise LmbrainError(f"folds needs one entry per sample ({yt.shape[0]}), got shape {folds.shape}")
    n_folds = int(folds.max()) + 1 if folds.size else 0
    out = np.full((n_folds, yt.shape[1]), np.nan)
    for k in range(n_folds):
        rows = folds == k
        if rows.any():
            out[k] = pearson_r(yt[rows], yp[rows])
    return out


def mean_fold_r(r_folds: np.ndarray) -> np.ndarray:
    """Mean over folds (axis 0) of per-fold r, skipping NaN folds; NaN where no fold has a finite r."""
    r_folds = np.asarray(r_folds, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN targets stay NaN
        return np.nanmean(r_folds, axis=0)
