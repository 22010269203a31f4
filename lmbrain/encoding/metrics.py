"""Per-target scores: Pearson r and out-of-sample R² against the training-mean baseline."""

from __future__ import annotations

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
    """Column-wise Pearson correlation (n_targets,); nan where either column is constant."""
    yt, yp = _as_2d(y_true, "y_true"), _as_2d(y_pred, "y_pred")
    _check_same(("y_true", yt), ("y_pred", yp))
    yt = yt - yt.mean(0)
    yp = yp - yp.mean(0)
    num = (yt * yp).sum(0)
    den = np.sqrt((yt * yt).sum(0) * (yp * yp).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = num / den
    r[den == 0] = np.nan
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
