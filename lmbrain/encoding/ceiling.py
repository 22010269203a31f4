"""Noise ceilings, computed with the same cross-validation and regression as the model scores.

Three estimators, all returning ceilings in the units of the model's Pearson r, so that
``normalized = r / ceiling`` (reported unclipped, next to the raw r):

* :func:`split_half_ceiling` -- responses with repeats on axis 0 (repetitions of the stimuli, or
  subjects in a common target space). For random halves of the repeats, the half means A and B are
  related either by plain correlation (``estimator=None``) or -- the default when an estimator is given
  -- by predicting B from A with the *same* estimator and CV as the model (``cross_validate``; B -> A
  too, averaged). The mean half-half r is Spearman-Brown corrected to the reliability ``rho`` of the mean
  of all repeats, and the ceiling is ``sqrt(rho)``: the correlation a noiseless perfect model would reach
  with that mean.
* :func:`pool_ceiling` -- across subjects that heard the same stimuli, for targets that need not correspond
  (ECoG electrodes): every subject's targets are predicted from pools of other subjects' responses with the
  same estimator and CV as the model. Two disjoint pools give two independent noisy predictions of a target's
  shared signal, so the target's ceiling is its mean r with them corrected for their attenuation,
  ``r / sqrt(r_AB)`` (:func:`attenuation_ceiling`; the pool-level split half), with no curve extrapolated to
  an infinite pool. A block bootstrap of the test samples gives its standard error, and
  :func:`shrink_to_unit_interval` shrinks the noisy per-target values toward their subject's mean and keeps
  them in [0, 1]. The r of growing pools is also kept (the pool curve), and extrapolated with one
  Spearman-Brown shape for all targets (:func:`fit_common_shape`) for comparison; Brain-Score's per-target
  ``v0 (1 - exp(-x / tau))`` fit (:func:`fit_saturation`) is kept for reference only: on few pool sizes its
  bounds decide the answer, and its shape saturates too early (docs/statistics.md, "Noise ceilings").
* :func:`inter_subject_ceiling` -- targets that correspond across subjects (the same ROI): every subject's
  loading on the signal all subjects share (a one-factor model of the pairwise correlations), no regression.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lmbrain.encoding.evaluate import cross_validate
from lmbrain.encoding.metrics import mean_fold_r, pearson_r, pearson_r_folds
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

    def group_mean(values: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """Weighted mean of every target's group over its targets with an estimate, NaN-aware, per target."""
        w = np.where(np.isfinite(values) & finite, weight, 0.0)
        sums, total = np.zeros((*values.shape[:-1], n_groups)), np.zeros((*values.shape[:-1], n_groups))
        np.add.at(sums, (..., index), w * np.nan_to_num(values))
        np.add.at(total, (..., index), w)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (sums / total)[..., index]

    def variance(values: np.ndarray) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # targets without replicates stay NaN
            return np.nanvar(values, axis=0, ddof=1)

    weight = 1.0 / np.maximum(variance(boot), 1e-12)
    v = np.maximum(variance(boot - group_mean(boot, weight)), 1e-12)
    size = np.bincount(index[finite], minlength=n_groups)[index]
    several = finite & (size > 1)
    if several.any():  # DerSimonian-Laird over the groups' deviations
        w = np.where(several, 1.0 / v, 0.0)
        q = float(np.sum(w * (raw - group_mean(raw[None], w)[0]) ** 2))
        sums = np.bincount(index, w, minlength=n_groups)
        squares = np.bincount(index, w * w, minlength=n_groups)
        scale = float(np.sum(sums - np.divide(squares, sums, out=np.zeros_like(sums), where=sums > 0)))
        df = float(np.sum(np.maximum(np.bincount(index[several], minlength=n_groups) - 1, 0)))
        tau2 = max((q - df) / scale, 1e-6) if scale > 0 else 1e-6
    else:
        tau2 = 1e-6
    prior = 1.0 / (v + tau2)
    mu, mu_boot = group_mean(raw[None], prior)[0], group_mean(boot, prior)
    mu_var = variance(mu_boot)
    lonely = ~np.isfinite(mu)  # no target of the group has an estimate: the spread of all estimates
    mu[lonely] = float(np.mean(raw[finite]))
    mu_var[lonely] = float(np.var(raw[finite])) if finite.sum() > 1 else 1.0
    v = np.where(several, variance(boot - mu_boot), np.inf)
    shrink = np.where(several, tau2 / (tau2 + np.where(several, v, 0.0)), 0.0)
    mean = mu + shrink * np.where(several, raw - mu, 0.0)
    spread = np.where(several, shrink * np.where(several, v, 0.0), np.where(finite, 0.0, tau2))
    sd = np.maximum(np.sqrt(np.nan_to_num(mu_var) + spread), 1e-9)
    tail = (1.0 - level) / 2
    post = truncnorm((0.0 - mean) / sd, (1.0 - mean) / sd, loc=mean, scale=sd)
    return post.mean(), post.ppf(tail), post.ppf(1 - tail), tau2


def _draw_pools(n_subjects: int, k: int, n_draws: int, rng: np.random.Generator) -> list[tuple[int, ...]]:
    """Pools of k subjects such that every subject is left out of at least ``n_draws`` of them (of all of them
    where there are at most ``3 n_draws`` pools)."""
    total = math.comb(n_subjects, k)
    if total <= 3 * n_draws:
        return list(itertools.combinations(range(n_subjects), k))
    need = min(n_draws, math.comb(n_subjects - 1, k))
    pools: dict[tuple[int, ...], None] = {}
    held_out = np.zeros(n_subjects, dtype=int)
    while held_out.min() < need:
        pool = tuple(sorted(rng.choice(n_subjects, size=k, replace=False).tolist()))
        if pool not in pools:
            pools[pool] = None
            held_out += 1
            held_out[list(pool)] -= 1
    return list(pools)


def _draw_pairs(n_subjects: int, k: int, n_draws: int, rng: np.random.Generator
                ) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """Pairs of disjoint pools of k subjects such that every subject is outside both pools of at least
    ``n_draws`` pairs (of all pairs where there are at most ``3 n_draws``)."""
    per_subject = math.comb(n_subjects - 1, k) * math.comb(n_subjects - 1 - k, k) // 2
    total = math.comb(n_subjects, k) * math.comb(n_subjects - k, k) // 2
    if total <= 3 * n_draws:
        pairs = set()
        for a in itertools.combinations(range(n_subjects), k):
            rest = [s for s in range(n_subjects) if s not in a]
            for b in itertools.combinations(rest, k):
                pairs.add((a, b) if a < b else (b, a))
        return sorted(pairs)
    need = min(n_draws, per_subject)
    chosen: dict[tuple[tuple[int, ...], tuple[int, ...]], None] = {}
    outside = np.zeros(n_subjects, dtype=int)
    while outside.min() < need:
        order = rng.permutation(n_subjects)
        a, b = tuple(sorted(order[:k].tolist())), tuple(sorted(order[k:2 * k].tolist()))
        pair = (a, b) if a < b else (b, a)
        if pair not in chosen:
            chosen[pair] = None
            outside[order[2 * k:]] += 1
    return list(chosen)


def _bootstrap_fold_r(Y: np.ndarray, P: np.ndarray, folds: np.ndarray, blocks: np.ndarray,
                      weights: np.ndarray) -> np.ndarray:
    """Fold-mean Pearson r (n_boot, n_targets) between the columns of Y and P for block-bootstrap resamples of the
    tested samples (``weights``: (n_boot, n_blocks) counts; ``blocks``: every sample's block index)."""
    keep = folds >= 0
    Y, P, folds, blocks = Y[keep], P[keep], folds[keep], blocks[keep]
    r_sum = np.zeros((len(weights), Y.shape[1]))
    r_n = np.zeros_like(r_sum)
    for fold in np.unique(folds):
        rows = folds == fold
        y, p = Y[rows] - Y[rows].mean(0), P[rows] - P[rows].mean(0)
        cells, index = np.unique(blocks[rows], return_inverse=True)
        to_cells = np.zeros((len(cells), int(rows.sum())))
        to_cells[index, np.arange(rows.sum())] = 1.0
        w = weights[:, cells]
        n = (w @ to_cells.sum(1))[:, None]
        sy, sp, syy, spp, syp = (w @ (to_cells @ m) for m in (y, p, y * y, p * p, y * p))
        with np.errstate(invalid="ignore", divide="ignore"):
            vy, vp = syy - sy * sy / n, spp - sp * sp / n
            r = (syp - sy * sp / n) / np.sqrt(vy * vp)
        r[vp <= 1e-10 * spp] = 0.0  # a constant prediction: no association (as pearson_r)
        r[~(vy > 1e-10 * syy)] = np.nan
        finite = np.isfinite(r)
        r_sum += np.where(finite, r, 0.0)
        r_n += finite
    with np.errstate(invalid="ignore", divide="ignore"):
        return r_sum / r_n


def attenuation_ceiling(r: Any, shared: Any) -> np.ndarray:
    """The r of a target with the signal that two independent noisy predictions of it share: ``r / sqrt(shared)``,
    with r the target's mean r with the two predictions and ``shared`` their correlation (NaN where not > 0)."""
    r, shared = np.asarray(r, dtype=np.float64), np.asarray(shared, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(shared > 0, r / np.sqrt(np.where(shared > 0, shared, 1.0)), np.nan)


@dataclass
class PoolCeiling:
    """Per subject s, arrays over its targets: ``ceiling[s]`` (the estimate, in (0, 1)), ``ci_low``/``ci_high``,
    ``at_bound`` (the target's own estimate was missing or outside (0, 1) before shrinkage), ``raw`` (that own
    estimate), ``shared`` (the correlation of the two disjoint pools' predictions, q²), ``rho`` (the reliability of
    one source subject that q² implies), ``extrapolated`` (the pool curve extrapolated with a shape common to all
    targets); ``scores[s]`` (n_k, n_targets_s): mean r over the pools of each size ``n_sources``."""

    ceiling: list[np.ndarray]
    ci_low: list[np.ndarray]
    ci_high: list[np.ndarray]
    at_bound: list[np.ndarray]
    raw: list[np.ndarray]
    se: list[np.ndarray]
    shared: list[np.ndarray]
    rho: list[np.ndarray]
    extrapolated: list[np.ndarray]
    scores: list[np.ndarray]
    n_sources: np.ndarray
    n_pools: np.ndarray
    n_pairs: np.ndarray
    split_sources: int
    theta: float
    prior_sd: float

    @property
    def pool_sizes(self) -> np.ndarray:
        """Pool sizes with the held-out subject (Brain-Score's x): n_sources + 1."""
        return self.n_sources + 1


def pool_ceiling(
    responses: Sequence[Any],
    estimator: Any,
    groups: Any,
    cv: Any = 5,
    n_draws: int = 20,
    max_sources: int | None = None,
    random_state: int = 0,
    blocks: Any = None,
    n_boot: int = 200,
    level: float = 0.95,
) -> PoolCeiling:
    """Ceiling of every subject's targets from predicting them with pools of other subjects' responses.

    ``responses``: one (n_samples, n_targets_s) array per subject, rows aligned across subjects. For k = 1 ..
    ``max_sources`` (default n_subjects - 1) source subjects, pools are drawn (:func:`_draw_pools`, ``n_draws``
    per subject); one ``cross_validate(estimator, pool, others, groups, cv)`` predicts every subject outside the
    pool, and a target's pool curve r(k) averages the pools that left its subject out. At k* =
    min(max_sources, (n_subjects - 1) // 2) the pools come in disjoint pairs (:func:`_draw_pairs`): the two
    predictions of a target outside both are independent noisy copies of its shared signal, so its ceiling is
    the attenuation-corrected r (:func:`attenuation_ceiling`), no curve extrapolated. Its standard error comes
    from a bootstrap over ``blocks`` (default: ``groups``) of the test samples (the same resamples for every
    pair); :func:`shrink_to_unit_interval` turns it into the reported estimate and interval. The pool curves are
    also extrapolated with one Spearman-Brown shape for all targets (:func:`fit_common_shape`), for comparison.
    """
    subjects = [np.asarray(r, dtype=np.float64) for r in responses]
    subjects = [s[:, None] if s.ndim == 1 else s for s in subjects]
    n_sub = len(subjects)
    if n_sub < 3:
        raise LmbrainError(f"pool_ceiling needs at least 3 subjects (two disjoint pools and a target), got {n_sub}")
    n = subjects[0].shape[0]
    if any(s.shape[0] != n for s in subjects):
        raise LmbrainError("every subject's responses must have the same samples (rows)")
    max_sources = n_sub - 1 if max_sources is None else min(max_sources, n_sub - 1)
    if max_sources < 1:
        raise LmbrainError("pool_ceiling needs max_sources >= 1")
    if n_boot < 2:
        raise LmbrainError("pool_ceiling needs a bootstrap (n_boot >= 2) for its standard errors")
    rng = np.random.default_rng(random_state)
    _, block_index = np.unique(np.asarray(groups if blocks is None else blocks), return_inverse=True)
    n_blocks = int(block_index.max()) + 1
    weights = rng.multinomial(n_blocks, np.full(n_blocks, 1 / n_blocks), size=n_boot).astype(np.float64)
    n_sources = np.arange(1, max_sources + 1)
    split = min(max_sources, (n_sub - 1) // 2)
    widths = [s.shape[1] for s in subjects]
    starts = np.cumsum([0, *widths])
    curve_sum, curve_n = np.zeros((len(n_sources), starts[-1])), np.zeros((len(n_sources), starts[-1]))
    pair_sum = np.zeros((2, starts[-1]))  # mean r of the two pools, their predictions' correlation
    boot_sum = np.zeros((2, n_boot, starts[-1]))
    n_pools = np.zeros((n_sub, len(n_sources)), dtype=int)
    n_pairs = np.zeros(n_sub, dtype=int)

    def columns(members: list[int]) -> np.ndarray:
        return np.concatenate([np.arange(starts[s], starts[s + 1]) for s in members])

    def predict(pool: tuple[int, ...], i: int) -> tuple[list[int], Any]:
        outside = [s for s in range(n_sub) if s not in pool]
        Y = np.hstack([subjects[s] for s in outside])
        result = cross_validate(estimator, np.hstack([subjects[s] for s in pool]), Y, groups, cv)
        cols = columns(outside)
        curve_sum[i, cols] += np.nan_to_num(result.r)
        curve_n[i, cols] += np.isfinite(result.r)
        n_pools[outside, i] += 1
        return outside, result

    for i, k in enumerate(n_sources):
        if k != split:
            for pool in _draw_pools(n_sub, int(k), n_draws, rng):
                predict(pool, i)
            continue
        fitted: dict[tuple[int, ...], tuple[list[int], Any]] = {}  # a pool may be in several pairs: fit it once
        for a, b in _draw_pairs(n_sub, int(k), n_draws, rng):
            out_a, res_a = fitted[a] if a in fitted else fitted.setdefault(a, predict(a, i))
            out_b, res_b = fitted[b] if b in fitted else fitted.setdefault(b, predict(b, i))
            both = [s for s in out_a if s in out_b]
            Y = np.hstack([subjects[s] for s in both])
            pa = np.asarray(res_a.predictions).reshape(n, -1)[:, np.isin(columns(out_a), columns(both))]
            pb = np.asarray(res_b.predictions).reshape(n, -1)[:, np.isin(columns(out_b), columns(both))]
            cols = columns(both)
            r_ab = mean_fold_r(pearson_r_folds(pa, pb, res_a.folds))
            r_a = mean_fold_r(pearson_r_folds(Y, pa, res_a.folds))
            r_b = mean_fold_r(pearson_r_folds(Y, pb, res_a.folds))
            pair_sum[:, cols] += [(r_a + r_b) / 2, r_ab]
            boot_a = _bootstrap_fold_r(Y, pa, res_a.folds, block_index, weights)
            boot_b = _bootstrap_fold_r(Y, pb, res_a.folds, block_index, weights)
            boot_sum[0][:, cols] += (boot_a + boot_b) / 2
            boot_sum[1][:, cols] += _bootstrap_fold_r(pa, pb, res_a.folds, block_index, weights)
            n_pairs[both] += 1
    count = np.repeat(n_pairs, widths).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        curves = curve_sum / curve_n
        pair_mean, boot_mean = pair_sum / count, boot_sum / count
    raw = attenuation_ceiling(pair_mean[0], pair_mean[1])
    boot = attenuation_ceiling(boot_mean[0], boot_mean[1])
    subject_of = np.repeat(np.arange(n_sub), widths)
    mean, low, high, tau2 = shrink_to_unit_interval(raw, boot, subject_of, level)
    at_bound = ~(np.isfinite(raw) & (raw > 0) & (raw < 1))
    q2 = pair_mean[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(q2 > 0, q2 / (split - (split - 1) * q2), np.nan)
    theta, extrapolated, _ = fit_common_shape(n_sources, curves) if len(n_sources) > 1 else (np.nan, raw, False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        se = np.nanstd(boot, axis=0, ddof=1)

    def per_subject(values: np.ndarray) -> list[np.ndarray]:
        return [values[..., a:b] for a, b in itertools.pairwise(starts)]

    return PoolCeiling(ceiling=per_subject(mean), ci_low=per_subject(low), ci_high=per_subject(high),
                       at_bound=per_subject(at_bound), raw=per_subject(raw), se=per_subject(se),
                       shared=per_subject(q2), rho=per_subject(rho), extrapolated=per_subject(extrapolated),
                       scores=per_subject(curves), n_sources=n_sources, n_pools=n_pools, n_pairs=n_pairs,
                       split_sources=split, theta=float(theta), prior_sd=float(np.sqrt(tau2)))


def inter_subject_ceiling(responses: Any, folds: Any) -> tuple[np.ndarray, np.ndarray]:
    """Ceiling of targets that correspond across subjects (the same ROI in every subject), from a one-factor model.

    ``responses``: (n_subjects, n_samples, n_targets), target j the same in every subject. Every subject's target
    is modelled as its loading c_s times the signal all subjects share plus its own noise, so the pairwise r is
    ``c_i c_j`` and c_s, the r of s with the shared signal, is its ceiling. From the pairwise fold-mean r (the
    models' outer test folds ``folds``; negative: never tested), ``c_s² = sum r_sj r_sk / sum r_jk`` over ordered
    pairs j != k of the other subjects (a ratio of sums: stable, and exact under the model whatever the subjects'
    noise levels; Spearman-Brown on the mean pairwise r is exact only for equal ones). Returns (ceiling, r_loo),
    (n_subjects, n_targets) each: r_loo is the fold-mean r of s with the mean of the other (z-scored) subjects;
    the ceiling is NaN where the other subjects' pairwise r sum is not positive, 0 where s shares nothing.
    """
    R = np.asarray(responses, dtype=np.float64)
    folds = np.asarray(folds)
    n_sub = R.shape[0]
    if n_sub < 3:
        raise LmbrainError(f"inter_subject_ceiling needs at least 3 subjects, got {n_sub}")
    tested = np.unique(folds[folds >= 0])
    pair = np.zeros((n_sub, n_sub, R.shape[2]))
    loo = np.zeros((n_sub, R.shape[2]))
    for fold in tested:
        part = R[:, folds == fold]
        z = part - part.mean(1, keepdims=True)
        z = z / np.linalg.norm(z, axis=1, keepdims=True)
        pair += np.einsum("snt,unt->sut", z, z)
        others = z.sum(0, keepdims=True) - z
        others = others - others.mean(1, keepdims=True)
        loo += (z * others).sum(1) / np.linalg.norm(others, axis=1)
    pair /= len(tested)
    loo /= len(tested)
    pair[np.arange(n_sub), np.arange(n_sub)] = 0.0
    total = pair.sum((0, 1))  # over ordered pairs i != j
    with_others = pair.sum(1)  # (n_sub, n_targets): sum over j of r_sj
    products = with_others**2 - (pair**2).sum(1)  # sum over ordered j != k of r_sj r_sk
    among_others = total - 2 * with_others
    with np.errstate(invalid="ignore", divide="ignore"):
        squared = np.where((products > 0) & (with_others > 0), products, 0.0) / among_others
        ceiling = np.where(among_others > 0, np.sqrt(np.clip(squared, 0.0, None)), np.nan)
    return ceiling, loo
