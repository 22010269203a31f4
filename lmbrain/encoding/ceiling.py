"""Noise ceilings, computed with the same cross-validation and regression as the model scores.

Two estimators, both returning ceilings in the units of the model's Pearson r, so that
``normalized = r / ceiling`` (reported unclipped, next to the raw r):

* :func:`split_half_ceiling` -- responses with repeats on axis 0 (repetitions of the stimuli, or
  subjects in a common target space). For random halves of the repeats, the half means A and B are
  related either by plain correlation (``estimator=None``) or -- the default when an estimator is given
  -- by predicting B from A with the *same* estimator and CV as the model (``cross_validate``; B -> A
  too, averaged). The mean half-half r is Spearman-Brown corrected to the reliability ``rho`` of the mean
  of all repeats, and the ceiling is ``sqrt(rho)``: the correlation a noiseless perfect model would reach
  with that mean.
* :func:`pool_ceiling` -- Brain-Score style, across subjects: for pools of growing size, each pool
  member is predicted from the other members' responses with the same estimator and CV as the model;
  the per-target r as a function of the pool size ``x`` (held-out subject included, 2..n_subjects) is
  fitted with ``v0 (1 - exp(-x / tau))``, ``0 <= v0 <= 1`` (Brain-Score's ``ExtrapolationCeiling``),
  and the ceiling is ``v0``, the r an infinite pool would reach. Like Brain-Score's, this saturating
  form tends to *under*-estimate the asymptote when r still climbs slowly at the largest pools.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

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
    responses: Any,
    estimator: Any = None,
    groups: Any = None,
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


@dataclass
class PoolCeiling:
    """Brain-Score-style ceiling per subject: ``ceiling[s]`` (n_targets_s,) and its fitted curve."""

    ceiling: list[np.ndarray]
    tau: list[np.ndarray]
    pool_sizes: np.ndarray
    scores: list[np.ndarray]


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


def pool_ceiling(
    responses: Sequence[Any],
    estimator: Any,
    groups: Any,
    cv: Any = 5,
    n_draws: int = 3,
    max_sources: int | None = None,
    random_state: int = 0,
) -> PoolCeiling:
    """Ceiling per subject from predicting each subject with pools of other subjects' responses.

    ``responses`` is one (n_samples, n_targets_s) array per subject, rows aligned across subjects. For
    pool sizes x = 2 .. ``max_sources`` + 1 (default n_subjects) and ``n_draws`` random pools per x, every
    subject is predicted from x - 1 randomly drawn other subjects (their targets side by side) with
    ``cross_validate(estimator, ..., groups, cv)``; per-target r is averaged over draws and the curve over
    x is extrapolated with :func:`fit_saturation`.
    """
    subjects = [np.asarray(r, dtype=np.float64) for r in responses]
    subjects = [s[:, None] if s.ndim == 1 else s for s in subjects]
    n_sub = len(subjects)
    if n_sub < 3:
        raise LmbrainError(f"pool_ceiling needs at least 3 subjects to extrapolate, got {n_sub}")
    n = subjects[0].shape[0]
    if any(s.shape[0] != n for s in subjects):
        raise LmbrainError("every subject's responses must have the same samples (rows)")
    max_sources = n_sub - 1 if max_sources is None else min(max_sources, n_sub - 1)
    if max_sources < 2:
        raise LmbrainError("pool_ceiling needs at least 2 pool sizes (max_sources >= 2)")
    rng = np.random.default_rng(random_state)
    n_sources = np.arange(1, max_sources + 1)
    scores = [np.zeros((len(n_sources), s.shape[1])) for s in subjects]
    for i, x in enumerate(n_sources):
        for target in range(n_sub):
            others = [s for s in range(n_sub) if s != target]
            acc = np.zeros(subjects[target].shape[1])
            for _ in range(n_draws):
                pool = rng.choice(others, size=x, replace=False)
                X = np.hstack([subjects[s] for s in pool])
                acc += cross_validate(estimator, X, subjects[target], groups, cv).r
            scores[target][i] = acc / n_draws
    ceilings, taus = [], []
    for s in range(n_sub):
        v0, tau = fit_saturation(n_sources + 1, scores[s])
        ceilings.append(v0)
        taus.append(tau)
    return PoolCeiling(ceiling=ceilings, tau=taus, pool_sizes=n_sources + 1, scores=scores)
