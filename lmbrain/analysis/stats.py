"""Statistics over scores: FDR control, bootstrap confidence intervals, paired and mixed-model comparisons."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import DescrStatsW

from lmbrain.analysis.permutation import group_sums


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
    """Per target: percentile bootstrap bounds of out-of-sample r and R² over resampled groups."""

    r_low: np.ndarray
    r_high: np.ndarray
    r2_low: np.ndarray
    r2_high: np.ndarray
    n_groups: int


def bootstrap_scores(
    Y: np.ndarray,
    predictions: np.ndarray,
    baseline: np.ndarray,
    groups: np.ndarray,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> ScoreIntervals:
    """CIs of each target's pooled out-of-fold r and R², resampling whole groups (passages, sentences,
    blocks of scans) with replacement. Each group is reduced to its sums (y, ŷ, y², ŷ², yŷ, squared errors
    of the prediction and of the training-fold mean), so a resample is one (n_boot x groups) product."""
    Y, P, B = (np.asarray(a, dtype=np.float64) for a in (Y, predictions, baseline))
    ones = np.ones_like(Y[:, :1])
    sums = group_sums(np.stack([Y, P, Y * Y, P * P, Y * P, (Y - P) ** 2, (Y - B) ** 2]), groups)
    n_groups = sums.shape[1]
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(n_groups, np.full(n_groups, 1 / n_groups), size=n_boot).astype(float)
    n = weights @ group_sums(ones, groups)[:, 0]  # samples per resample
    sy, sp, syy, spp, syp, sse, sst = (weights @ part for part in sums)
    with np.errstate(divide="ignore", invalid="ignore"):
        n = n[:, None]
        cov = syp - sy * sp / n
        r = cov / np.sqrt((syy - sy**2 / n) * (spp - sp**2 / n))
        r2 = 1.0 - sse / sst
    tail = (1 - level) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN targets (constant predictions) stay NaN
        r_low, r_high = np.nanquantile(r, [tail, 1 - tail], axis=0)
        r2_low, r2_high = np.nanquantile(r2, [tail, 1 - tail], axis=0)
    return ScoreIntervals(r_low, r_high, r2_low, r2_high, n_groups)


@dataclass(frozen=True)
class Comparison:
    """A paired comparison of two models across subjects (or other matched units)."""

    mean_difference: float
    t: float
    p_ttest: float
    p_wilcoxon: float
    n: int


def paired_comparison(a: np.ndarray, b: np.ndarray) -> Comparison:
    """Paired t-test (statsmodels) and Wilcoxon signed-rank test of a − b across matched units."""
    from scipy.stats import wilcoxon

    a, b = np.asarray(a, float), np.asarray(b, float)
    keep = np.isfinite(a) & np.isfinite(b)
    diff = a[keep] - b[keep]
    if len(diff) < 2:
        return Comparison(float(diff.mean()) if len(diff) else np.nan, np.nan, np.nan, np.nan, len(diff))
    t, p, _ = DescrStatsW(diff).ttest_mean(0.0)
    p_w = float(wilcoxon(diff).pvalue) if np.any(diff != 0) else 1.0
    return Comparison(float(diff.mean()), float(t), float(p), p_w, len(diff))


def mixed_model_comparison(
    table: pd.DataFrame, value: str = "value", factor: str = "model", subject: str = "subject"
) -> pd.DataFrame:
    """Linear mixed model ``value ~ factor`` with a random intercept per subject (statsmodels MixedLM).

    ``table`` holds one row per target (e.g. electrode) x level of ``factor``; returns the fixed effects
    (coefficient, standard error, z, p) relative to the first level in sorted order.
    """
    import statsmodels.formula.api as smf

    data = table[[value, factor, subject]].dropna().rename(columns={value: "y", factor: "f", subject: "s"})
    data["f"] = data["f"].astype(str)
    data["s"] = data["s"].astype(str)
    fit = smf.mixedlm("y ~ C(f)", data, groups=data["s"]).fit(reml=True, method=["lbfgs", "powell"])
    effects = pd.DataFrame(
        {"coef": fit.fe_params, "se": fit.bse_fe, "z": fit.tvalues[fit.fe_params.index],
         "p": fit.pvalues[fit.fe_params.index]}
    )
    effects.index = [i.replace("C(f)[T.", f"{factor}=").rstrip("]") for i in effects.index]
    return effects
