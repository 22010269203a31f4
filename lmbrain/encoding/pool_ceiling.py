"""Ceilings from a pool of subjects (the models' CV and regression): how well subsets of subjects predict a held-out
one, extrapolated to the whole pool by the saturation shapes of :mod:`lmbrain.encoding.ceiling`; the attenuation
ceiling; the inter-subject ceiling of time series."""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from lmbrain.encoding.ceiling import fit_common_shape, shrink_to_unit_interval
from lmbrain.encoding.evaluate import cross_validate
from lmbrain.encoding.metrics import mean_fold_r, pearson_r_folds
from lmbrain.errors import LmbrainError


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


def _checked_subjects(responses: Sequence[Any], max_sources: int | None, n_boot: int
                      ) -> tuple[list[np.ndarray], int]:
    """Every subject's responses as a float64 (n_samples, n_targets_s) array, and the largest pool used (checked)."""
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
    return subjects, max_sources


class _PoolSums:
    """Running sums of :func:`pool_ceiling` over targets (all subjects' side by side): pool curves and pair r's."""

    def __init__(self, subjects: list[np.ndarray], estimator: Any, groups: ArrayLike, cv: Any, n_k: int,
                 n_boot: int) -> None:
        """Zero sums for ``n_k`` pool sizes and ``n_boot`` bootstrap resamples."""
        self.subjects, self.estimator, self.groups, self.cv = subjects, estimator, groups, cv
        self.n = subjects[0].shape[0]
        self.widths = [s.shape[1] for s in subjects]
        self.starts = np.cumsum([0, *self.widths])
        self.curve_sum, self.curve_n = np.zeros((n_k, self.starts[-1])), np.zeros((n_k, self.starts[-1]))
        self.pair_sum = np.zeros((2, self.starts[-1]))  # mean r of the two pools, their predictions' correlation
        self.boot_sum = np.zeros((2, n_boot, self.starts[-1]))
        self.n_pools = np.zeros((len(subjects), n_k), dtype=int)
        self.n_pairs = np.zeros(len(subjects), dtype=int)

    def columns(self, members: list[int]) -> np.ndarray:
        """The target columns of the subjects ``members``."""
        return np.concatenate([np.arange(self.starts[s], self.starts[s + 1]) for s in members])

    def per_subject(self, values: np.ndarray) -> list[np.ndarray]:
        """``values`` (targets on the last axis) split into one array per subject."""
        return [values[..., a:b] for a, b in itertools.pairwise(self.starts)]

    def predict(self, pool: tuple[int, ...], i: int) -> tuple[list[int], Any]:
        """Predict every subject outside ``pool`` from it (pool size index ``i``); (those subjects, the CV result)."""
        outside = [s for s in range(len(self.subjects)) if s not in pool]
        Y = np.hstack([self.subjects[s] for s in outside])
        result = cross_validate(self.estimator, np.hstack([self.subjects[s] for s in pool]), Y, self.groups, self.cv)
        cols = self.columns(outside)
        self.curve_sum[i, cols] += np.nan_to_num(result.r)
        self.curve_n[i, cols] += np.isfinite(result.r)
        self.n_pools[outside, i] += 1
        return outside, result

    def add_pair(self, fit_a: tuple[list[int], Any], fit_b: tuple[list[int], Any], block_index: np.ndarray,
                 weights: np.ndarray) -> None:
        """Add two disjoint pools' predictions of the targets outside both: their r's and bootstrap replicates."""
        (out_a, res_a), (out_b, res_b) = fit_a, fit_b
        both = [s for s in out_a if s in out_b]
        Y = np.hstack([self.subjects[s] for s in both])
        pa = np.asarray(res_a.predictions).reshape(self.n, -1)[:, np.isin(self.columns(out_a), self.columns(both))]
        pb = np.asarray(res_b.predictions).reshape(self.n, -1)[:, np.isin(self.columns(out_b), self.columns(both))]
        cols = self.columns(both)
        r_ab = mean_fold_r(pearson_r_folds(pa, pb, res_a.folds))
        r_a = mean_fold_r(pearson_r_folds(Y, pa, res_a.folds))
        r_b = mean_fold_r(pearson_r_folds(Y, pb, res_a.folds))
        self.pair_sum[:, cols] += [(r_a + r_b) / 2, r_ab]
        boot_a = _bootstrap_fold_r(Y, pa, res_a.folds, block_index, weights)
        boot_b = _bootstrap_fold_r(Y, pb, res_a.folds, block_index, weights)
        self.boot_sum[0][:, cols] += (boot_a + boot_b) / 2
        self.boot_sum[1][:, cols] += _bootstrap_fold_r(pa, pb, res_a.folds, block_index, weights)
        self.n_pairs[both] += 1


def _pool_result(sums: _PoolSums, n_sources: np.ndarray, split: int, level: float) -> PoolCeiling:
    """The ceilings from the summed pools and pairs: attenuation-corrected, shrunk into (0, 1), per subject."""
    count = np.repeat(sums.n_pairs, sums.widths).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        curves = sums.curve_sum / sums.curve_n
        pair_mean, boot_mean = sums.pair_sum / count, sums.boot_sum / count
    raw = attenuation_ceiling(pair_mean[0], pair_mean[1])
    boot = attenuation_ceiling(boot_mean[0], boot_mean[1])
    subject_of = np.repeat(np.arange(len(sums.subjects)), sums.widths)
    mean, low, high, tau2 = shrink_to_unit_interval(raw, boot, subject_of, level)
    at_bound = ~(np.isfinite(raw) & (raw > 0) & (raw < 1))
    q2 = pair_mean[1]
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(q2 > 0, q2 / (split - (split - 1) * q2), np.nan)
    theta, extrapolated, _ = fit_common_shape(n_sources, curves) if len(n_sources) > 1 else (np.nan, raw, False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        se = np.nanstd(boot, axis=0, ddof=1)
    per_subject = sums.per_subject
    return PoolCeiling(ceiling=per_subject(mean), ci_low=per_subject(low), ci_high=per_subject(high),
                       at_bound=per_subject(at_bound), raw=per_subject(raw), se=per_subject(se),
                       shared=per_subject(q2), rho=per_subject(rho), extrapolated=per_subject(extrapolated),
                       scores=per_subject(curves), n_sources=n_sources, n_pools=sums.n_pools, n_pairs=sums.n_pairs,
                       split_sources=split, theta=float(theta), prior_sd=float(np.sqrt(tau2)))


def pool_ceiling(
    responses: Sequence[Any],
    estimator: Any,
    groups: ArrayLike,
    cv: Any = 5,
    n_draws: int = 20,
    max_sources: int | None = None,
    random_state: int = 0,
    blocks: ArrayLike | None = None,
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
    subjects, max_sources = _checked_subjects(responses, max_sources, n_boot)
    n_sub = len(subjects)
    rng = np.random.default_rng(random_state)
    _, block_index = np.unique(np.asarray(groups if blocks is None else blocks), return_inverse=True)
    n_blocks = int(block_index.max()) + 1
    weights = rng.multinomial(n_blocks, np.full(n_blocks, 1 / n_blocks), size=n_boot).astype(np.float64)
    n_sources = np.arange(1, max_sources + 1)
    split = min(max_sources, (n_sub - 1) // 2)
    sums = _PoolSums(subjects, estimator, groups, cv, len(n_sources), n_boot)
    for i, k in enumerate(n_sources):
        if k != split:
            for pool in _draw_pools(n_sub, int(k), n_draws, rng):
                sums.predict(pool, i)
            continue
        fitted: dict[tuple[int, ...], tuple[list[int], Any]] = {}  # a pool may be in several pairs: fit it once
        for a, b in _draw_pairs(n_sub, int(k), n_draws, rng):
            fit_a = fitted[a] if a in fitted else fitted.setdefault(a, sums.predict(a, i))
            fit_b = fitted[b] if b in fitted else fitted.setdefault(b, sums.predict(b, i))
            sums.add_pair(fit_a, fit_b, block_index, weights)
    return _pool_result(sums, n_sources, split, level)


def inter_subject_ceiling(responses: ArrayLike, folds: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
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
