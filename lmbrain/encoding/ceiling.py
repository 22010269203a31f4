"""Noise ceilings, computed with the same cross-validation and regression as the model scores.

Three estimators, all returning ceilings in the units of the model's Pearson r, so that
``normalized = r / ceiling`` (reported unclipped, next to the raw r):

* :func:`split_half_ceiling` -- responses with repeats on axis 0 (repetitions of the stimuli, or subjects in a
  common target space). For random halves of the repeats, the half means A and B are related either by plain
  correlation (``estimator=None``) or -- the default when an estimator is given -- by predicting B from A with the
  *same* estimator and CV as the model (``cross_validate``; B -> A too, averaged). The mean half-half r is
  Spearman-Brown corrected to the reliability ``rho`` of the mean of all repeats, and the ceiling is ``sqrt(rho)``:
  the correlation a noiseless perfect model would reach with that mean.
* :func:`~lmbrain.encoding.pool_ceiling.pool_ceiling` -- across subjects that heard the same stimuli, for targets
  that need not correspond (ECoG electrodes): every subject's targets are predicted from pools of other subjects'
  responses with the same estimator and CV as the model. Two disjoint pools give two independent noisy predictions
  of a target's shared signal, so the target's ceiling is its mean r with them corrected for their attenuation, ``r
  / sqrt(r_AB)`` (:func:`attenuation_ceiling`; the pool-level split half), with no curve extrapolated to an
  infinite pool. A block bootstrap of the test samples gives its standard error, and
  :func:`shrink_to_unit_interval` shrinks the noisy per-target values toward their subject's mean and keeps them in
  [0, 1]. The r of growing pools is also kept (the pool curve), and extrapolated with one Spearman-Brown shape for
  all targets (:func:`fit_common_shape`) for comparison; Brain-Score's per-target ``v0 (1 - exp(-x / tau))`` fit
  (:func:`fit_saturation`) is kept for reference only: on few pool sizes its bounds decide the answer, and its
  shape saturates too early (docs/statistics.md, "Noise ceilings").
* :func:`~lmbrain.encoding.pool_ceiling.inter_subject_ceiling` -- targets that correspond across subjects (the same
  ROI): every subject's loading on the signal all subjects share (a one-factor model of the pairwise correlations),
  no regression.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from lmbrain.encoding.evaluate import cross_validate
from lmbrain.encoding.metrics import pearson_r
from lmbrain.errors import LmbrainError


def spearman_brown(r: Any, factor: float = 2.0) -> np.ndarray:
    """Reliability of a measure ``factor`` times as long: ``factor r / (1 + (factor - 1) r)``."""
    r = np.asarray(r, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return factor * r / (1.0 + (factor - 1.0) * r)


def normalize_scores(scores: Any, ceiling: Any) -> np.ndarray:
    """Ceiling-normalised scores, unclipped (may exceed 1 or be negative); nan where ceiling <= 0."""
    scores = np.asarray(scores, dtype=np.float64)
    ceiling = np.asarray(ceiling, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = scores / ceiling
    return np.where(ceiling > 0, out, np.nan)


@dataclass
class SplitHalfCeiling:
    """Per-target ceiling (r units), reliability of the full mean, and the mean half-half r."""

    ceiling: np.ndarray
    reliability: np.ndarray
    half_r: np.ndarray
    n_repeats: int


def split_half_ceiling(
    responses: ArrayLike,
    estimator: Any = None,
    groups: ArrayLike | None = None,
    cv: Any = 5,
    n_splits: int = 10,
    random_state: int = 0,
) -> SplitHalfCeiling:
    """Split-half ceiling of ``responses`` (n_repeats, n_samples, n_targets); see the module docstring."""
    R = np.asarray(responses, dtype=np.float64)
    if R.ndim == 2:
        R = R[:, :, None]
    if R.ndim != 3:
        raise LmbrainError(f"responses must be (n_repeats, n_samples, n_targets), got shape {R.shape}")
    n_rep = R.shape[0]
    if n_rep < 2:
        raise LmbrainError(f"split-half needs at least 2 repeats (repetitions or subjects), got {n_rep}")
    if not np.isfinite(R).all():
        raise LmbrainError("responses have NaN/inf values; mask them before computing a ceiling")
    rng = np.random.default_rng(random_state)
    rs = []
    for _ in range(n_splits):
        perm = rng.permutation(n_rep)
        half = n_rep // 2
        A, B = R[perm[:half]].mean(0), R[perm[half : 2 * half]].mean(0)
        if estimator is None:
            rs.append(pearson_r(A, B))
        else:
            r_ab = cross_validate(estimator, A, B, groups, cv).r
            r_ba = cross_validate(estimator, B, A, groups, cv).r
            rs.append((r_ab + r_ba) / 2)
    half_r = np.nanmean(np.stack(rs), axis=0)
    # each half holds n_rep // 2 repeats; the full mean holds n_rep of them
    reliability = spearman_brown(half_r, n_rep / (n_rep // 2))
    ceiling = np.sqrt(np.clip(reliability, 0.0, None))
    return SplitHalfCeiling(ceiling=ceiling, reliability=reliability, half_r=half_r, n_repeats=n_rep)


def fit_saturation(
    x: np.ndarray, y: np.ndarray, taus: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Fit ``y = v0 (1 - exp(-x / tau))`` with ``0 <= v0 <= 1`` per column of y (n_x, n_targets).

    Returns (v0, tau). For fixed tau the bounded v0 is the clipped linear least-squares solution (closed
    form); tau is searched on a dense log grid for all targets at once, exact up to the grid step and
    vectorised (scipy's curve_fit would loop over targets). NaN entries of y are ignored.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 1:
        y = y[:, None]
    taus = np.logspace(-2, 3, 501) if taus is None else np.asarray(taus, dtype=np.float64)
    mask = np.isfinite(y)
    yz = np.where(mask, y, 0.0)
    f = 1.0 - np.exp(-x[None, :, None] / taus[:, None, None])  # (n_tau, n_x, 1)
    f = f * mask[None]
    ff = (f * f).sum(1)  # (n_tau, n_targets)
    fy = (f * yz[None]).sum(1)
    v0 = np.clip(fy / ff, 0.0, 1.0)
    sse = (yz * yz).sum(0)[None] - 2 * v0 * fy + v0 * v0 * ff
    best = np.argmin(sse, axis=0)
    cols = np.arange(y.shape[1])
    return v0[best, cols], taus[best]


SHAPES = ("spearman_brown", "exponential")
#: the grid of each shape's parameter: rho (a source subject's reliability) or tau (Brain-Score's time constant)
SHAPE_GRIDS = {"spearman_brown": np.logspace(-3, 0, 301), "exponential": np.logspace(-2, 3, 501)}


def pool_curve(n_sources: Any, theta: Any, shape: str = "spearman_brown") -> np.ndarray:
    """Share of the asymptote reached with ``n_sources`` source subjects, (n_theta, n_k) for a grid of theta.

    ``spearman_brown``: ``sqrt(k rho / (1 + (k - 1) rho))``, the correlation with the shared signal of the mean of
    k sources of reliability rho; ``exponential``: Brain-Score's ``1 - exp(-(k + 1) / tau)`` (pool size with the
    held-out subject).
    """
    k = np.asarray(n_sources, dtype=np.float64)[None, :]
    theta = np.atleast_1d(np.asarray(theta, dtype=np.float64))[:, None]
    if shape == "spearman_brown":
        return np.sqrt(k * theta / (1.0 + (k - 1.0) * theta))
    if shape == "exponential":
        return 1.0 - np.exp(-(k + 1.0) / theta)
    raise LmbrainError(f"unknown pool-curve shape {shape!r}; expected one of {SHAPES}")


def fit_common_shape(
    n_sources: Any, curves: Any, shape: str = "spearman_brown"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One curve shape shared by all targets, a free scale (the asymptote) per target, by least squares.

    ``curves`` is (n_k, n_targets) or a stack of them (n_rep, n_k, n_targets) fitted one by one; NaN is ignored.
    For every theta of the shape's grid the scales are closed-form (unclipped), and the theta with the smallest
    total squared error wins. Returns (theta (n_rep,), scales (n_rep, n_targets), theta at the grid's edge).
    """
    Y = np.asarray(curves, dtype=np.float64)
    single = Y.ndim == 2
    Y = Y[None] if single else Y
    grid = SHAPE_GRIDS[shape] if shape in SHAPE_GRIDS else None
    if grid is None:
        raise LmbrainError(f"unknown pool-curve shape {shape!r}; expected one of {SHAPES}")
    g = pool_curve(n_sources, grid, shape)  # (n_grid, n_k)
    mask = np.isfinite(Y)
    Yz = np.where(mask, Y, 0.0)
    gy = np.einsum("gk,bkt->bgt", g, Yz)
    gg = np.einsum("gk,bkt->bgt", g * g, mask.astype(np.float64))
    with np.errstate(invalid="ignore", divide="ignore"):
        explained = np.where(gg > 0, gy * gy / gg, 0.0).sum(2)  # SSE = sum(y²) - explained
        best = np.argmax(explained, axis=1)
        rows = np.arange(len(Y))
        scales = gy[rows, best] / gg[rows, best]
    edge = (best == 0) | (best == len(grid) - 1)
    theta = grid[best]
    return (theta[0], scales[0], edge[0]) if single else (theta, scales, edge)


def _group_mean(values: np.ndarray, weight: np.ndarray, finite: np.ndarray, index: np.ndarray,
                n_groups: int) -> np.ndarray:
    """Weighted mean of every target's group over its targets with an estimate, NaN-aware, per target."""
    w = np.where(np.isfinite(values) & finite, weight, 0.0)
    sums, total = np.zeros((*values.shape[:-1], n_groups)), np.zeros((*values.shape[:-1], n_groups))
    np.add.at(sums, (..., index), w * np.nan_to_num(values))
    np.add.at(total, (..., index), w)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums / total)[..., index]


def _replicate_variance(values: np.ndarray) -> np.ndarray:
    """Variance over the bootstrap replicates (axis 0), NaN for targets without replicates."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # targets without replicates stay NaN
        return np.nanvar(values, axis=0, ddof=1)


def _deviation_spread(raw: np.ndarray, v: np.ndarray, finite: np.ndarray, several: np.ndarray, index: np.ndarray,
                      n_groups: int) -> float:
    """tau², the spread of the true deviations from the group means (DerSimonian-Laird over the groups; >= 1e-6)."""
    if not several.any():
        return 1e-6
    w = np.where(several, 1.0 / v, 0.0)
    q = float(np.sum(w * (raw - _group_mean(raw[None], w, finite, index, n_groups)[0]) ** 2))
    sums = np.bincount(index, w, minlength=n_groups)
    squares = np.bincount(index, w * w, minlength=n_groups)
    scale = float(np.sum(sums - np.divide(squares, sums, out=np.zeros_like(sums), where=sums > 0)))
    df = float(np.sum(np.maximum(np.bincount(index[several], minlength=n_groups) - 1, 0)))
    return max((q - df) / scale, 1e-6) if scale > 0 else 1e-6


def shrink_to_unit_interval(
    raw: Any, boot: Any, group: Any, level: float = 0.95
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Empirical-Bayes estimates of per-target ceilings known to lie in [0, 1], from raw estimates (NaN: none)
    and their bootstrap replicates ``boot`` (n_boot, n_targets).

    Every raw estimate is its group's (subject's) precision-weighted mean plus a deviation, and only the
    deviation is shrunk: toward 0 by ``tau² / (tau² + v)``, with v the bootstrap variance of the target's
    deviation and tau² the spread of the true deviations (DerSimonian-Laird, pooled over groups: robust to the
    few targets whose estimate is very noisy). A target without an estimate gets its group's mean and the prior's
    variance. The posterior variance adds the bootstrap variance of the group mean (errors that every target of
    a subject shares), and the normal posterior is truncated to [0, 1]: its mean is the estimate (never exactly on
    a bound) and its ``level`` quantiles are the interval. Returns (mean, low, high, tau²).
    """
    from scipy.stats import truncnorm

    raw, boot = np.asarray(raw, dtype=np.float64), np.asarray(boot, dtype=np.float64)
    _, index = np.unique(np.asarray(group), return_inverse=True)
    n_groups = int(index.max()) + 1
    finite = np.isfinite(raw) & (np.isfinite(boot).sum(0) > 1)
    if not finite.any():
        raise LmbrainError("no target has a ceiling estimate to shrink")
    raw, boot = np.where(finite, raw, 0.0), np.where(finite, boot, np.nan)
    weight = 1.0 / np.maximum(_replicate_variance(boot), 1e-12)
    v = np.maximum(_replicate_variance(boot - _group_mean(boot, weight, finite, index, n_groups)), 1e-12)
    size = np.bincount(index[finite], minlength=n_groups)[index]
    several = finite & (size > 1)
    tau2 = _deviation_spread(raw, v, finite, several, index, n_groups)
    prior = 1.0 / (v + tau2)
    mu = _group_mean(raw[None], prior, finite, index, n_groups)[0]
    mu_boot = _group_mean(boot, prior, finite, index, n_groups)
    mu_var = _replicate_variance(mu_boot)
    lonely = ~np.isfinite(mu)  # no target of the group has an estimate: the spread of all estimates
    mu[lonely] = float(np.mean(raw[finite]))
    mu_var[lonely] = float(np.var(raw[finite])) if finite.sum() > 1 else 1.0
    v = np.where(several, _replicate_variance(boot - mu_boot), np.inf)
    shrink = np.where(several, tau2 / (tau2 + np.where(several, v, 0.0)), 0.0)
    mean = mu + shrink * np.where(several, raw - mu, 0.0)
    spread = np.where(several, shrink * np.where(several, v, 0.0), np.where(finite, 0.0, tau2))
    sd = np.maximum(np.sqrt(np.nan_to_num(mu_var) + spread), 1e-9)
    tail = (1.0 - level) / 2
    post = truncnorm((0.0 - mean) / sd, (1.0 - mean) / sd, loc=mean, scale=sd)
    return post.mean(), post.ppf(tail), post.ppf(1 - tail), tau2
