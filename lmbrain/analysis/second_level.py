"""Second-level (random-effects) inference: tests across subjects of one value per subject.

Every test here treats the subject as the unit of replication: a subject's targets (electrodes, ROIs, voxels)
are first averaged to one value per subject, so no p-value can claim more subjects than there are. The
report's significance column uses the sign-flip test: under the null, each subject's value is symmetric about
0 (for a model difference, the two models are exchangeable within a subject), so flipping the signs of the
subject values gives the exact null distribution of their sum without assuming normality — exact by
enumeration when all ``2**n`` flips fit in ``n_flips``, Monte Carlo otherwise. Its price is discreteness: with
``n`` subjects the smallest one-sided p is ``2**-n`` and the smallest two-sided p ``2**(1-n)`` (5 subjects:
0.031 and 0.0625), the honest limit of what 5 subjects can show.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

ALTERNATIVES = ("two-sided", "greater", "less")
#: at most this many subjects are enumerated exactly (2**16 sign vectors)
MAX_EXACT_SUBJECTS = 16
_BATCH = 512  # sign vectors per Monte Carlo batch (bounded memory)


def _check_alternative(alternative: str) -> None:
    """Raise on an unknown alternative."""
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")


def _exceed(null: np.ndarray, observed: np.ndarray, alternative: str) -> np.ndarray:
    """Per column: how many null sums are at least as extreme as the observed one (relative tolerance)."""
    tol = 1e-9 * np.maximum(np.abs(observed), 1e-300)
    if alternative == "greater":
        return (null >= observed - tol).sum(0)
    if alternative == "less":
        return (null <= observed + tol).sum(0)
    return (np.abs(null) >= np.abs(observed) - tol).sum(0)


def all_signs(n: int) -> np.ndarray:
    """(2**n, n) matrix of every vector of ±1 signs."""
    return np.array(list(itertools.product((1.0, -1.0), repeat=n))).reshape(2**n, n)


def sign_flip_test(values: np.ndarray, n_flips: int = 10000, seed: int = 0,
                   alternative: str = "two-sided") -> float | np.ndarray:
    """p-value of a zero mean across subjects by flipping the signs of the subject values (axis 0).

    Exact when ``2**n <= n_flips`` (every sign vector, the observed one included: ``p = #{|T*| >= |T|} / 2**n``),
    else Monte Carlo with ``p = (1 + #{...}) / (1 + n_flips)``; T is the sum over subjects. 1-D input: one test,
    non-finite values dropped; 2-D input: one test per column (same sign vectors for every column; a column with
    a non-finite value gets NaN). Fewer than one subject: NaN.
    """
    _check_alternative(alternative)
    x = np.asarray(values, dtype=np.float64)
    one = x.ndim == 1
    if one:
        x = x[np.isfinite(x)][:, None]
    n, k = x.shape
    p = np.full(k, np.nan)
    finite = np.isfinite(x).all(0)
    if n == 0 or not finite.any():
        return float(p[0]) if one else p
    x = x[:, finite]
    observed = x.sum(0)
    if n <= MAX_EXACT_SUBJECTS and 2**n <= n_flips:
        p[finite] = _exceed(all_signs(n) @ x, observed, alternative) / 2**n
    else:
        rng = np.random.default_rng(seed)
        count = np.zeros(x.shape[1])
        for start in range(0, n_flips, _BATCH):
            signs = rng.choice([-1.0, 1.0], size=(min(_BATCH, n_flips - start), n))
            count += _exceed(signs @ x, observed, alternative)
        p[finite] = (1 + count) / (1 + n_flips)
    return float(p[0]) if one else p


def min_sign_flip_p(n_subjects: int, alternative: str = "two-sided") -> float:
    """The smallest p-value an exact sign-flip test can reach with ``n_subjects`` subjects."""
    _check_alternative(alternative)
    return 2.0 ** -n_subjects * (2 if alternative == "two-sided" else 1)


@dataclass(frozen=True)
class SecondLevel:
    """A random-effects summary of one value per subject: mean, CI, effect size and three tests of mean 0.

    ``ci_low``/``ci_high``: two-sided t interval of the mean at ``level``; ``dz``: Cohen's d_z = mean / SD
    (SD with ddof 1); ``p_signflip``: sign-flip test (the report's significance column), ``p_ttest``: one-sample
    t test, ``p_wilcoxon``: Wilcoxon signed-rank test, all for ``alternative``.
    """

    mean: float
    sd: float
    ci_low: float
    ci_high: float
    dz: float
    t: float
    p_signflip: float
    p_ttest: float
    p_wilcoxon: float
    n_subjects: int
    alternative: str


def across_subjects(values_by_subject: np.ndarray, alternative: str = "two-sided", level: float = 0.95,
                    n_flips: int = 10000, seed: int = 0) -> SecondLevel:
    """Tests across subjects of one value per subject (non-finite values dropped; NaN with < 2 subjects)."""
    from scipy import stats

    _check_alternative(alternative)
    x = np.asarray(values_by_subject, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    n = len(x)
    if n < 2:
        mean = float(x[0]) if n else np.nan
        return SecondLevel(mean, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, n, alternative)
    mean, sd = float(x.mean()), float(x.std(ddof=1))
    if sd == 0.0:  # every subject the same value: no spread to test against
        t, p_t, dz = (np.nan if mean == 0 else np.copysign(np.inf, mean)), np.nan, np.nan
    else:
        test = stats.ttest_1samp(x, 0.0, alternative=alternative)
        t, p_t, dz = float(test.statistic), float(test.pvalue), mean / sd
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * sd / np.sqrt(n)
    p_w = float(stats.wilcoxon(x, alternative=alternative).pvalue) if np.any(x != 0) else 1.0
    p_s = float(sign_flip_test(x, n_flips=n_flips, seed=seed, alternative=alternative))
    return SecondLevel(mean, sd, mean - half, mean + half, float(dz), float(t), p_s, p_t, p_w, n, alternative)


def paired_across_subjects(a: np.ndarray, b: np.ndarray, alternative: str = "two-sided", level: float = 0.95,
                           n_flips: int = 10000, seed: int = 0) -> SecondLevel:
    """Tests across subjects of a − b (matched subjects; pairs with a non-finite value dropped)."""
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    keep = np.isfinite(a) & np.isfinite(b)
    return across_subjects(a[keep] - b[keep], alternative=alternative, level=level, n_flips=n_flips, seed=seed)


@dataclass(frozen=True)
class NestedEffect:
    """REML fit of ``d = mu + s_subject + e`` (targets nested in subjects): mu, its standard error, the t test of
    mu = 0 on n_subjects − 1 df, and the variance ratio var(s) / var(e)."""

    mean: float
    se: float
    t: float
    df: int
    p: float
    variance_ratio: float
    n_subjects: int
    n_targets: int


def nested_mean(values: np.ndarray, subjects: np.ndarray) -> NestedEffect:
    """Random-intercept model of target values nested in subjects, fitted by REML; mu tested on n_subjects − 1 df.

    With ``gamma = var(subject) / var(target)`` the GLS mean weighs each subject's mean by
    ``n_i / (1 + gamma n_i)``; the REML profile likelihood of gamma (residual variance profiled out) is
    maximised on [0, 1e8] by scipy's bounded scalar search. The t reference on n_subjects − 1 df (not the
    Wald z over targets) keeps the test at the subject level.
    """
    from scipy import optimize, stats

    d = np.asarray(values, dtype=np.float64).ravel()
    keep = np.isfinite(d)
    d, subjects = d[keep], np.asarray(subjects).ravel()[keep]
    labels, index = np.unique(subjects, return_inverse=True)
    k, total = len(labels), len(d)
    if k < 2:
        return NestedEffect(float(d.mean()) if total else np.nan, np.nan, np.nan, max(k - 1, 0), np.nan, np.nan,
                            k, total)
    n = np.bincount(index).astype(float)
    means = np.bincount(index, d) / n
    within = float(((d - means[index]) ** 2).sum())

    def fit(log_gamma: float) -> tuple[float, float, float, float]:
        gamma = np.exp(log_gamma) if log_gamma > -30 else 0.0
        w = n / (1 + gamma * n)
        mu = float((w * means).sum() / w.sum())
        q = within + float((w * (means - mu) ** 2).sum())
        nll = (total - 1) * np.log(max(q, 1e-300)) + np.log1p(gamma * n).sum() + np.log(w.sum())
        return nll, mu, q, float(w.sum())

    best = optimize.minimize_scalar(lambda g: fit(g)[0], bounds=(-30.0, np.log(1e8)), method="bounded")
    log_gamma = best.x if best.fun < fit(-31.0)[0] else -31.0  # the boundary gamma = 0 when it is better
    _, mu, q, weight = fit(log_gamma)
    se = float(np.sqrt(q / (total - 1) / weight)) if total > 1 else np.nan
    t = mu / se if se > 0 else np.nan
    p = float(2 * stats.t.sf(abs(t), k - 1)) if np.isfinite(t) else np.nan
    gamma = float(np.exp(log_gamma)) if log_gamma > -30 else 0.0
    return NestedEffect(mu, se, float(t), k - 1, p, gamma, k, total)


def simulate_nested_comparison(rng: np.random.Generator, targets_per_subject: tuple[int, ...],
                               difference: float = 0.0, subject_sd: float = 0.05, slope_sd: float = 0.02,
                               target_sd: float = 0.02, noise_sd: float = 0.02) -> pd.DataFrame:
    """Scores of models "a" and "b" on the same targets nested in subjects, for calibration.

    value = subject intercept + target intercept (shared by both models) + for "b": ``difference`` + the
    subject's own model effect (SD ``slope_sd``) + independent noise per model and target. Columns subject,
    neuroid_id, model, value.
    """
    sizes = np.asarray(targets_per_subject)
    subject = np.repeat(np.arange(len(sizes)), sizes)
    base = rng.normal(0, subject_sd, size=len(sizes))[subject] + rng.normal(0, target_sd, size=len(subject))
    slope = (difference + rng.normal(0, slope_sd, size=len(sizes)))[subject]
    ids = np.array([f"s{s}_{i}" for s, n in enumerate(sizes) for i in range(n)])
    n = len(subject)
    return pd.DataFrame({
        "subject": np.tile(np.char.add("s", subject.astype(str)), 2), "neuroid_id": np.tile(ids, 2),
        "model": np.repeat(["a", "b"], n),
        "value": np.concatenate([base, base + slope]) + rng.normal(0, noise_sd, size=2 * n),
    })


# -- calibration ------------------------------------------------------------------------------------

#: null distributions of subject values used to calibrate the tests (mean 0, SD 1)
NULL_DISTRIBUTIONS = ("normal", "laplace", "t3", "skewed")
#: the symmetric ones, under which the sign-flip test is exact
SYMMETRIC_NULLS = ("normal", "laplace", "t3")


def null_sample(rng: np.random.Generator, distribution: str, n_subjects: int, n_sims: int) -> np.ndarray:
    """(n_subjects, n_sims) subject values of mean 0 and SD 1: normal, Laplace, Student t(3) (symmetric, heavy
    tails) or skewed (centred chi-square with 3 df, skewness 1.6)."""
    size = (n_subjects, n_sims)
    if distribution == "normal":
        return rng.normal(size=size)
    if distribution == "laplace":
        return rng.laplace(scale=1 / np.sqrt(2), size=size)
    if distribution == "t3":
        return rng.standard_t(3, size=size) / np.sqrt(3)
    if distribution == "skewed":
        return (rng.chisquare(3, size=size) - 3) / np.sqrt(6)
    raise ValueError(f"unknown distribution {distribution!r}; one of {NULL_DISTRIBUTIONS}")


def rejection_rates(values: np.ndarray, alpha: float = 0.05, alternative: str = "two-sided", n_flips: int = 10000,
                    seed: int = 0) -> dict[str, float]:
    """Share of the columns of ``values`` (simulated datasets, subjects on axis 0) rejected at ``alpha`` by the
    sign-flip, t and Wilcoxon tests of :func:`across_subjects`."""
    from scipy import stats

    x = np.asarray(values, dtype=np.float64)
    p_sign = sign_flip_test(x, n_flips=n_flips, seed=seed, alternative=alternative)
    p_t = stats.ttest_1samp(x, 0.0, axis=0, alternative=alternative).pvalue
    p_w = stats.wilcoxon(x, axis=0, alternative=alternative).pvalue
    return {name: float(np.mean(p <= alpha)) for name, p in (("signflip", p_sign), ("ttest", p_t),
                                                             ("wilcoxon", p_w))}
