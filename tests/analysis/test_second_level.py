"""Second-level tests across subjects: exact sign flips, agreement with scipy / statsmodels, calibration
(false-positive rate at α = 0.05 in [0.03, 0.07]) and power; the nested model comparison against the former
target-level mixed model (docs/statistics.md, "Across subjects"; full table: benchmarks/calibrate_second_level.py)."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lmbrain.analysis.second_level import (
    SYMMETRIC_NULLS,
    across_subjects,
    min_sign_flip_p,
    nested_mean,
    null_sample,
    paired_across_subjects,
    rejection_rates,
    sign_flip_test,
    simulate_nested_comparison,
)
from lmbrain.analysis.stats import mixed_model_comparison, paired_comparison

ALPHA, BAND = 0.05, (0.03, 0.07)
#: the nested designs of the model comparison (targets per subject, SDs of the variance components)
SLOPES = dict(targets_per_subject=(20,) * 5, slope_sd=0.02)
FEDORENKO = dict(targets_per_subject=(47, 8, 9, 15, 18), subject_sd=0.05, slope_sd=0.01, target_sd=0.12,
                 noise_sd=0.035)


def test_sign_flip_enumerates_every_sign_vector():
    x = np.random.default_rng(0).normal(size=6) + 0.3
    null = np.array(list(itertools.product((1, -1), repeat=6))) @ x
    assert sign_flip_test(x) == pytest.approx(np.mean(np.abs(null) >= abs(x.sum()) - 1e-12))
    assert sign_flip_test(x, alternative="greater") == pytest.approx(np.mean(null >= x.sum() - 1e-12))
    assert sign_flip_test(x, alternative="less") == pytest.approx(np.mean(null <= x.sum() + 1e-12))
    positive = np.arange(1.0, 6.0)  # 5 subjects, all positive: the smallest p there is
    assert sign_flip_test(positive, alternative="greater") == min_sign_flip_p(5, "greater") == 1 / 32
    assert sign_flip_test(positive) == min_sign_flip_p(5) == 0.0625
    assert np.isnan(sign_flip_test(np.array([np.nan])))


def test_monte_carlo_sign_flips_agree_with_enumeration_and_columns_are_separate_tests():
    rng = np.random.default_rng(1)
    x = rng.normal(size=12) + 0.4
    exact = sign_flip_test(x, n_flips=10000)  # 2**12 <= 10000: enumerated
    monte_carlo = sign_flip_test(x, n_flips=4000, seed=3)  # 2**12 > 4000: random flips
    assert abs(exact - monte_carlo) < 0.02 and monte_carlo >= 1 / 4001
    values = rng.normal(size=(8, 4))
    values[2, 3] = np.nan
    columns = sign_flip_test(values, alternative="greater")
    for j in range(3):
        assert columns[j] == pytest.approx(sign_flip_test(values[:, j], alternative="greater"))
    assert np.isnan(columns[3])


def test_across_subjects_equals_scipy_and_pairs_drop_missing_subjects():
    rng = np.random.default_rng(2)
    x = rng.normal(0.3, 1.0, size=9)
    s = across_subjects(x, alternative="greater")
    assert s.mean == pytest.approx(x.mean()) and s.n_subjects == 9
    assert s.p_ttest == pytest.approx(stats.ttest_1samp(x, 0, alternative="greater").pvalue)
    assert s.p_wilcoxon == pytest.approx(stats.wilcoxon(x, alternative="greater").pvalue)
    assert s.dz == pytest.approx(x.mean() / x.std(ddof=1))
    low, high = stats.t.interval(0.95, 8, loc=x.mean(), scale=stats.sem(x))
    assert (s.ci_low, s.ci_high) == pytest.approx((low, high))
    a, b = rng.normal(size=7), rng.normal(size=7)
    a[0] = np.nan
    paired = paired_across_subjects(a, b)
    assert paired == across_subjects(a[1:] - b[1:]) and paired.n_subjects == 6
    comparison = paired_comparison(a, b)
    assert comparison.p_signflip == paired.p_signflip and comparison.p_ttest == pytest.approx(paired.p_ttest)
    assert np.isnan(across_subjects(np.array([1.0])).p_signflip)


@pytest.mark.parametrize("distribution", SYMMETRIC_NULLS)
@pytest.mark.parametrize("n", [5, 27])
def test_false_positive_rate_at_005_is_in_the_band(n, distribution):
    """Symmetric nulls (normal, Laplace, t(3)): t and sign-flip tests within [0.03, 0.07]; with 5 subjects the
    exact sign-flip test has a known size: 1/32 one-sided (in the band), 0 two-sided (cannot reach it)."""
    n_sims = 10000 if n == 5 else 3000
    values = null_sample(np.random.default_rng(10 + n), distribution, n, n_sims)
    for alternative in ("two-sided", "greater"):
        rates = rejection_rates(values, ALPHA, alternative, n_flips=1000)
        assert BAND[0] <= rates["ttest"] <= BAND[1], (alternative, rates)
        if n > 5:
            assert BAND[0] <= rates["signflip"] <= BAND[1], (alternative, rates)
        elif alternative == "greater":
            size = min_sign_flip_p(5, "greater")
            assert BAND[0] <= size <= BAND[1]
            assert abs(rates["signflip"] - size) < 3 * np.sqrt(size * (1 - size) / n_sims), rates
        else:  # flagged in the docs: two-sided, 5 subjects never reach p <= 0.05
            assert rates["signflip"] == 0.0 and min_sign_flip_p(5) > ALPHA


def test_power_at_the_effect_sizes_of_the_default_study():
    rng = np.random.default_rng(4)
    # Brennan2016, 27 subjects: unique LLM R² of SmolLM2 in LATL, d_z = 0.66
    brennan = rejection_rates(rng.normal(size=(27, 2000)) + 0.66, ALPHA, "greater", n_flips=1000)
    assert brennan["signflip"] > 0.9 and brennan["ttest"] > 0.9
    # Fedorenko2016, 5 subjects: LLM R², d_z = 1.9; one-sided only (two-sided sign flips cannot reject)
    fedorenko = rejection_rates(rng.normal(size=(5, 2000)) + 1.9, ALPHA, "greater")
    assert fedorenko["signflip"] > 0.75
    assert rejection_rates(rng.normal(size=(5, 500)) + 1.9, ALPHA)["signflip"] == 0.0


def _differences(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per-target differences b − a and their subjects of a simulated design (a's rows first, same order)."""
    n = len(frame) // 2
    return frame["value"].to_numpy()[n:] - frame["value"].to_numpy()[:n], frame["subject"].to_numpy()[:n]


def test_nested_mean_is_the_reml_fit_of_statsmodels_mixedlm():
    import statsmodels.api as sm

    rng = np.random.default_rng(5)
    for _ in range(2):
        d, subjects = _differences(simulate_nested_comparison(rng, (12, 6, 9, 15, 7, 10), slope_sd=0.05))
        fit = nested_mean(d, subjects)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = sm.MixedLM(d, np.ones((len(d), 1)), groups=subjects).fit(reml=True, method="bfgs")
        assert fit.variance_ratio == pytest.approx(np.asarray(ref.cov_re)[0, 0] / ref.scale, rel=1e-3)
        assert fit.mean == pytest.approx(ref.fe_params[0], rel=1e-4)
        assert fit.se == pytest.approx(ref.bse_fe[0], rel=0.05)  # expected vs observed information
        assert fit.df == 5 and fit.p == pytest.approx(2 * stats.t.sf(abs(fit.mean / fit.se), 5))


def test_mixed_model_comparison_nests_targets_in_subjects():
    rng = np.random.default_rng(6)
    frame = simulate_nested_comparison(rng, (10, 4, 7, 12, 9), difference=0.01)
    effect = mixed_model_comparison(frame).loc["model=b"]
    reference = nested_mean(*_differences(frame))
    assert effect["coef"] == pytest.approx(reference.mean) and effect["p"] == pytest.approx(reference.p)
    assert effect["df"] == 4 and effect["n_subjects"] == 5 and effect["n_targets"] == 42
    # without target ids: each subject's mean difference, i.e. the paired t test on subject means
    means = frame.groupby(["subject", "model"])["value"].mean().unstack("model")
    plain = mixed_model_comparison(frame.drop(columns="neuroid_id")).loc["model=b"]
    assert plain["p"] == pytest.approx(stats.ttest_rel(means["b"], means["a"]).pvalue)


def _former_mixed_p(frame: pd.DataFrame) -> float:
    """The former model: ``value ~ model`` over targets with a random intercept per subject, Wald z."""
    import statsmodels.formula.api as smf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = smf.mixedlm("value ~ C(model)", frame, groups=frame["subject"]).fit(reml=True,
                                                                                  method=["lbfgs", "powell"])
    return float(fit.pvalues["C(model)[T.b]"])


def _comparison_rates(design: dict, n_sims: int, seed: int) -> dict[str, float]:
    """Rejection rates at α of the nested model and of the paired tests on subject means, no true difference.

    Only the per-target differences matter (subject and target intercepts cancel): subject-specific effect +
    the two models' independent noise."""
    rng = np.random.default_rng(seed)
    sizes = np.array(design["targets_per_subject"])
    subjects = np.repeat(np.arange(len(sizes)), sizes)
    d = (rng.normal(0, design.get("slope_sd", 0.02), size=(len(sizes), n_sims))[subjects]
         + rng.normal(0, np.sqrt(2) * design.get("noise_sd", 0.02), size=(len(subjects), n_sims)))
    means = np.stack([d[subjects == s].mean(0) for s in range(len(sizes))])
    pvalues = {"nested": np.array([nested_mean(d[:, j], subjects).p for j in range(n_sims)]),
               "paired_t": stats.ttest_1samp(means, 0, axis=0).pvalue, "paired_signflip": sign_flip_test(means)}
    return {name: float(np.mean(p <= ALPHA)) for name, p in pvalues.items()}


def test_former_target_level_mixed_model_is_anti_conservative_and_subject_level_tests_are_not():
    """5 subjects × 20 targets, subject-specific model effects, no true difference."""
    rng = np.random.default_rng(7)
    former = np.mean([_former_mixed_p(simulate_nested_comparison(rng, **SLOPES)) <= ALPHA for _ in range(80)])
    assert former > 0.2  # ~0.4: every target counted as a replicate of the subject's model effect
    rates = _comparison_rates(SLOPES, 1000, seed=8)
    assert BAND[0] <= rates["nested"] <= BAND[1], rates
    assert BAND[0] <= rates["paired_t"] <= BAND[1], rates
    assert rates["paired_signflip"] == 0.0  # two-sided with 5 subjects: cannot reach 0.05 (flagged)


def test_nested_model_is_conservative_not_anti_conservative_on_the_fedorenko_design():
    """Fedorenko-like (47, 8, 9, 15, 18 electrodes, small subject-specific effects): the nested model's t on
    n_subjects − 1 df is conservative (flagged: for reference only), the paired t on subject means is in band."""
    rates = _comparison_rates(FEDORENKO, 1000, seed=9)
    assert rates["nested"] <= BAND[1], rates
    assert BAND[0] <= rates["paired_t"] <= BAND[1], rates
