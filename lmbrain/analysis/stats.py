"""Statistics over scores: FDR control, bootstrap confidence intervals (of scores and of variance partitions),
paired and mixed-model comparisons."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse
from statsmodels.stats.multitest import multipletests

from lmbrain.analysis.partition import omega, omega_defined
from lmbrain.encoding.metrics import r2_oos


def fdr_bh(pvalues: np.ndarray, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Benjamini–Hochberg: (rejected, q-values); NaN p-values are never rejected and keep q = NaN."""
    pvalues = np.asarray(pvalues, dtype=float)
    rejected = np.zeros(pvalues.shape, dtype=bool)
    qvalues = np.full(pvalues.shape, np.nan)
    finite = np.isfinite(pvalues)
    if finite.any():
        reject, q, _, _ = multipletests(pvalues[finite], alpha=alpha, method="fdr_bh")
        rejected[finite], qvalues[finite] = reject, q
    return rejected, qvalues


@dataclass(frozen=True)
class Interval:
    """A point estimate with a percentile bootstrap confidence interval."""

    estimate: float
    low: float
    high: float
    n_units: int


def bootstrap_ci(
    values: np.ndarray,
    units: np.ndarray | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    statistic: Callable[[np.ndarray], float] = np.mean,
) -> Interval:
    """Percentile bootstrap CI of ``statistic``, resampling whole ``units`` (subjects, passages) with replacement.

    With ``units`` given, the statistic is computed on unit means, so each unit weighs the same.
    """
    values = np.asarray(values, dtype=float)
    if units is not None:
        frame = pd.DataFrame({"v": values, "u": np.asarray(units)})
        values = frame.groupby("u", sort=True)["v"].mean().to_numpy()
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return Interval(np.nan, np.nan, np.nan, 0)
    estimate = float(statistic(values))
    if len(values) < 2 or n_boot == 0:
        return Interval(estimate, np.nan, np.nan, len(values))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(values), size=(n_boot, len(values)))
    stats = np.array([statistic(values[i]) for i in idx]) if statistic is not np.mean else values[idx].mean(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(stats, [tail, 1 - tail])
    return Interval(estimate, float(low), float(high), len(values))


@dataclass(frozen=True)
class ScoreIntervals:
    """Per target: percentile bootstrap bounds of out-of-sample r (mean over folds of per-fold r) and R²."""

    r_low: np.ndarray
    r_high: np.ndarray
    r2_low: np.ndarray
    r2_high: np.ndarray
    n_groups: int


_CHUNK = 1 << 22  # elements of one (n_boot x targets) intermediate: targets are processed in chunks


def _as_2d(a: np.ndarray) -> np.ndarray:
    arr = np.asarray(a, dtype=np.float64)
    return arr[:, None] if arr.ndim == 1 else arr


def _indicator(labels: np.ndarray, n_labels: int) -> sparse.csr_matrix:
    """(n_labels, n_samples) 0/1 matrix: one product with it sums the samples of every label."""
    n = len(labels)
    return sparse.csr_matrix((np.ones(n), (labels, np.arange(n))), shape=(n_labels, n))


def _resample_weights(n_units: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n_units) counts of every unit in each resample of ``n_units`` units with replacement."""
    rng = np.random.default_rng(seed)
    return rng.multinomial(n_units, np.full(n_units, 1 / n_units), size=n_boot).astype(float)


def _bounds(values: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bounds over axis 0, ignoring NaN resamples (NaN where every resample is NaN)."""
    tail = (1 - level) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN targets stay NaN
        quantile = np.nanquantile if np.isnan(values).any() else np.quantile
        low, high = quantile(values, [tail, 1 - tail], axis=0)
    return low, high


def _fold_r(sums: np.ndarray, n: np.ndarray, c: int) -> np.ndarray:
    """Pearson r (n_boot, c) from weighted sums [y, ŷ, y², ŷ², yŷ] stacked on axis 1; NaN where the response is
    constant, 0 where the prediction is."""
    sy, sp, syy, spp, syp = (sums[:, i * c:(i + 1) * c] for i in range(5))
    n = n[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        vy = syy - sy * sy / n
        vp = spp - sp * sp / n
        r = (syp - sy * sp / n) / np.sqrt(vy * vp)
    # relative test: values centred on the fold's mean leave only rounding noise when a resample is constant;
    # as in pearson_r, a constant prediction is no association (0), a constant response has no r (NaN)
    r[vp <= 1e-10 * spp] = 0.0
    r[~((vy > 1e-10 * syy) & (n > 1))] = np.nan
    return r


def _resampled_fold_mean_r(weights: np.ndarray, moments: np.ndarray, counts: np.ndarray,
                           in_fold: list[np.ndarray], c: int) -> np.ndarray:
    """Every resample's r (n_boot, c) within each fold, averaged over the folds where it is finite."""
    r_sum = np.zeros((len(weights), c))
    r_count = np.zeros((len(weights), c))
    for rows in in_fold:
        w = weights[:, rows]
        r = _fold_r(w @ moments[rows], w @ counts[rows], c)
        finite = np.isfinite(r)
        r_sum += np.where(finite, r, 0.0)
        r_count += finite
    with np.errstate(divide="ignore", invalid="ignore"):
        return r_sum / r_count


def bootstrap_scores(
    Y: np.ndarray,
    predictions: np.ndarray,
    baseline: np.ndarray,
    groups: np.ndarray,
    folds: np.ndarray | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> ScoreIntervals:
    """CIs of each target's out-of-fold r and R², resampling whole groups with replacement.

    The groups (passages, sentences, blocks of scans) are resampled; ``folds`` gives the outer test fold of
    every sample (samples with a negative fold are dropped; None: one fold, i.e. pooled r), and each
    resample is scored like the point estimate: r within every fold, averaged over the folds with a finite
    r (:attr:`EncodingResult.r`), and R² pooled over all samples against the training-fold mean
    ``baseline``. A group may straddle folds (blocks of a time series): each of its samples keeps its own
    fold. Every (group, fold) cell is reduced to its sums (y, ŷ, y², ŷ², yŷ with y and ŷ centred on their
    fold's mean, and the squared errors of the prediction and of the baseline), so a resample costs one
    (n_boot x cells) product per fold.
    """
    Y, P, B = (_as_2d(a) for a in (Y, predictions, baseline))
    groups = np.asarray(groups)
    folds = np.zeros(len(Y), dtype=np.intp) if folds is None else np.asarray(folds)
    keep = folds >= 0
    Y, P, B, groups, folds = Y[keep], P[keep], B[keep], groups[keep], folds[keep]
    _, group_index = np.unique(groups, return_inverse=True)
    _, fold_index = np.unique(folds, return_inverse=True)
    n_groups, n_folds = int(group_index.max()) + 1, int(fold_index.max()) + 1
    cells, cell_index = np.unique(group_index * n_folds + fold_index, return_inverse=True)
    cell_group, cell_fold = cells // n_folds, cells % n_folds
    to_cells = _indicator(cell_index, len(cells))
    to_folds = _indicator(fold_index, n_folds)
    per_fold = np.asarray(to_folds.sum(1)).ravel()
    Yc = Y - (to_folds @ Y / per_fold[:, None])[fold_index]  # r is unchanged by a shift within a fold
    Pc = P - (to_folds @ P / per_fold[:, None])[fold_index]
    weights = _resample_weights(n_groups, n_boot, seed)[:, cell_group]  # (n_boot, cells)
    counts = np.asarray(to_cells.sum(1)).ravel()
    in_fold = [np.flatnonzero(cell_fold == k) for k in range(n_folds)]
    n_targets = Y.shape[1]
    r_low, r_high, r2_low, r2_high = (np.full(n_targets, np.nan) for _ in range(4))
    step = max(1, _CHUNK // (5 * n_boot))
    for start in range(0, n_targets, step):
        cols = slice(start, min(start + step, n_targets))
        y, p = Yc[:, cols], Pc[:, cols]
        c = y.shape[1]
        moments = to_cells @ np.hstack([y, p, y * y, p * p, y * p])
        errors = weights @ (to_cells @ np.hstack([(Y[:, cols] - P[:, cols]) ** 2, (Y[:, cols] - B[:, cols]) ** 2]))
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = 1.0 - errors[:, :c] / errors[:, c:]
        r_low[cols], r_high[cols] = _bounds(_resampled_fold_mean_r(weights, moments, counts, in_fold, c), level)
        r2_low[cols], r2_high[cols] = _bounds(r2, level)
    return ScoreIntervals(r_low, r_high, r2_low, r2_high, n_groups)


@dataclass(frozen=True)
class PartitionIntervals:
    """Variance partition (R² of the LLM, the controls and both; unique LLM R²; omega) with bootstrap bounds.

    Every quantity has its estimate and ``*_low``/``*_high`` percentile bounds (per target for
    :func:`bootstrap_partition`, per aggregate for :func:`bootstrap_partition_subjects`). ``unique`` =
    R²(joint) − R²(controls). ``llm_above_chance``: the lower bound of the LLM's R² is above 0; omega and its
    bounds are NaN (not defined) elsewhere, and its bounds are percentiles of the resamples' unclipped omegas
    (above 100 or below 0 as measured), taken over the resamples with R²(LLM) > 0.
    ``n_units``: the number of resampled units (blocks or subjects).
    """

    r2_llm: np.ndarray
    r2_llm_low: np.ndarray
    r2_llm_high: np.ndarray
    r2_controls: np.ndarray
    r2_controls_low: np.ndarray
    r2_controls_high: np.ndarray
    r2_joint: np.ndarray
    r2_joint_low: np.ndarray
    r2_joint_high: np.ndarray
    unique: np.ndarray
    unique_low: np.ndarray
    unique_high: np.ndarray
    omega: np.ndarray
    omega_low: np.ndarray
    omega_high: np.ndarray
    llm_above_chance: np.ndarray
    n_units: int


def _partition_intervals(point: tuple[np.ndarray, ...], boot: tuple[np.ndarray, ...], level: float,
                         n_units: int) -> PartitionIntervals:
    """Estimates and bounds from the point R²s (llm, controls, joint) and their resampled values."""
    llm, ctrl, joint = point
    boot_llm, boot_ctrl, boot_joint = boot
    bounds = [_bounds(b, level) for b in (boot_llm, boot_ctrl, boot_joint, boot_joint - boot_ctrl)]
    above = omega_defined(bounds[0][0])
    om_low, om_high = _bounds(omega(boot_llm, boot_ctrl, boot_joint), level)
    return PartitionIntervals(
        llm, *bounds[0], ctrl, *bounds[1], joint, *bounds[2], joint - ctrl, *bounds[3],
        omega(llm, ctrl, joint, above), np.where(above, om_low, np.nan), np.where(above, om_high, np.nan),
        above, n_units,
    )


def bootstrap_partition(
    Y: np.ndarray,
    pred_llm: np.ndarray,
    pred_controls: np.ndarray,
    pred_joint: np.ndarray,
    baseline: np.ndarray,
    blocks: np.ndarray,
    folds: np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> PartitionIntervals:
    """Per-target CIs of the variance partition, resampling whole ``blocks`` (the same for all three models).

    All R² are out-of-sample R² pooled over the tested samples (``folds >= 0``; the others are dropped)
    against ``baseline``, the training-fold mean each sample's fold knew. Every block is reduced to its
    squared errors of the three models and of the baseline, so a resample costs one matrix product.
    """
    Y, P1, P2, P3, B = (_as_2d(a) for a in (Y, pred_llm, pred_controls, pred_joint, baseline))
    keep = np.asarray(folds) >= 0
    Y, P1, P2, P3, B = Y[keep], P1[keep], P2[keep], P3[keep], B[keep]
    _, block_index = np.unique(np.asarray(blocks)[keep], return_inverse=True)
    n_blocks = int(block_index.max()) + 1
    to_blocks = _indicator(block_index, n_blocks)
    weights = _resample_weights(n_blocks, n_boot, seed)
    n_targets = Y.shape[1]
    point = tuple(r2_oos(Y, P, B) for P in (P1, P2, P3))
    boot = [np.empty((n_boot, n_targets)) for _ in range(3)]
    step = max(1, _CHUNK // (4 * n_boot))
    for start in range(0, n_targets, step):
        cols = slice(start, min(start + step, n_targets))
        y = Y[:, cols]
        c = y.shape[1]
        errors = [(y - P[:, cols]) ** 2 for P in (P1, P2, P3)] + [(y - B[:, cols]) ** 2]
        sums = weights @ (to_blocks @ np.hstack(errors))
        with np.errstate(divide="ignore", invalid="ignore"):
            for i in range(3):
                boot[i][:, cols] = 1.0 - sums[:, i * c:(i + 1) * c] / sums[:, 3 * c:]
    return _partition_intervals(point, tuple(boot), level, n_blocks)


def bootstrap_partition_subjects(
    r2_llm: np.ndarray,
    r2_controls: np.ndarray,
    r2_joint: np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> PartitionIntervals:
    """CIs over subjects of the mean R²s, the mean unique LLM R² and the omega of the resampled means.

    Inputs hold one value per subject on axis 0 (e.g. each subject's mean R² over its targets; further axes
    are aggregates scored separately); subjects with a non-finite value are dropped. The estimates are the
    means over subjects and the omega of those means (unclipped); resamples draw subjects with replacement. With
    fewer than 2 subjects the bounds are NaN, and omega is not defined.
    """
    arrays = [np.asarray(a, dtype=np.float64) for a in (r2_llm, r2_controls, r2_joint)]
    finite = np.logical_and.reduce([np.isfinite(a).all(axis=tuple(range(1, a.ndim))) for a in arrays])
    arrays = [a[finite] for a in arrays]
    n = len(arrays[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # no subject left: NaN
        point = tuple(a.mean(0) for a in arrays)
    if n < 2 or n_boot == 0:
        boot = tuple(np.full((1, *a.shape[1:]), np.nan) for a in arrays)
    else:
        idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
        boot = tuple(a[idx].mean(1) for a in arrays)
    return _partition_intervals(point, boot, level, n)


@dataclass(frozen=True)
class Comparison:
    """A paired comparison of two models across subjects (or other matched units): mean of a − b, t test,
    Wilcoxon signed-rank and sign-flip tests (two-sided), Cohen's d_z and a t interval of the mean."""

    mean_difference: float
    t: float
    p_ttest: float
    p_wilcoxon: float
    n: int
    p_signflip: float = np.nan
    dz: float = np.nan
    ci_low: float = np.nan
    ci_high: float = np.nan


def paired_comparison(a: np.ndarray, b: np.ndarray, n_flips: int = 10000, seed: int = 0) -> Comparison:
    """Paired t-test (scipy), Wilcoxon signed-rank and sign-flip tests of a − b across matched units."""
    from lmbrain.analysis.second_level import paired_across_subjects

    test = paired_across_subjects(a, b, n_flips=n_flips, seed=seed)
    return Comparison(test.mean, test.t, test.p_ttest, test.p_wilcoxon, test.n_subjects, test.p_signflip,
                      test.dz, test.ci_low, test.ci_high)


def mixed_model_comparison(
    table: pd.DataFrame, value: str = "value", factor: str = "model", subject: str = "subject",
    target: str | None = "neuroid_id",
) -> pd.DataFrame:
    """Each level of ``factor`` against the first in sorted order, with the subject as the unit of inference.

    With a ``target`` column (every target scored under each level): a linear mixed model of the per-target
    differences level − reference with a random intercept per subject, i.e. targets nested in subjects, each
    subject with its own effect of the factor (the target's own level cancels in the difference), fitted by
    REML (:func:`lmbrain.analysis.second_level.nested_mean`). Without one: the same on each subject's mean
    difference (one value per subject: the paired t test). The fixed effect is tested against a t distribution
    with n_subjects − 1 degrees of freedom, so no p-value claims more subjects than there are (the former
    random-intercept model over targets, tested by a Wald z, treated every target as an independent replicate).
    Returns coef, se, t, df, p, n_subjects and n_targets, indexed ``factor=level``.
    """
    from lmbrain.analysis.second_level import nested_mean

    paired = target is not None and target in table.columns
    columns = [value, factor, subject] + ([target] if paired else [])
    data = table[columns].dropna().rename(columns={value: "y", factor: "f", subject: "s"})
    data["f"], data["s"] = data["f"].astype(str), data["s"].astype(str)
    keys = ["s", target] if paired else ["s"]
    wide = data.groupby([*keys, "f"])["y"].mean().unstack("f")
    levels = sorted(wide.columns)
    rows = {}
    for level in levels[1:]:
        diffs = (wide[level] - wide[levels[0]]).dropna()
        fit = nested_mean(diffs.to_numpy(), diffs.index.get_level_values("s").to_numpy())
        rows[f"{factor}={level}"] = {"coef": fit.mean, "se": fit.se, "t": fit.t, "df": fit.df, "p": fit.p,
                                     "n_subjects": fit.n_subjects, "n_targets": fit.n_targets}
    return pd.DataFrame.from_dict(rows, orient="index",
                                  columns=["coef", "se", "t", "df", "p", "n_subjects", "n_targets"])
