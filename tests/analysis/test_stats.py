import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lmbrain.analysis.stats import bootstrap_ci, fdr_bh, mixed_model_comparison, paired_comparison


def test_fdr_matches_the_step_up_definition_and_skips_nan():
    rng = np.random.default_rng(0)
    p = np.concatenate([rng.uniform(size=90), rng.uniform(0, 1e-4, size=10), [np.nan]])
    rejected, q = fdr_bh(p, 0.05)
    finite = p[:-1]
    order = np.sort(finite)
    k = np.nonzero(order <= 0.05 * np.arange(1, len(order) + 1) / len(order))[0]
    threshold = order[k.max()] if len(k) else -1
    np.testing.assert_array_equal(rejected[:-1], finite <= threshold)
    assert not rejected[-1] and np.isnan(q[-1])
    assert (q[:-1] >= finite - 1e-15).all()


def test_bootstrap_ci_covers_the_true_mean_at_its_nominal_rate():
    rng = np.random.default_rng(1)
    hits = 0
    for trial in range(200):
        sample = rng.normal(1.0, 2.0, size=40)
        ci = bootstrap_ci(sample, n_boot=500, seed=trial)
        hits += ci.low <= 1.0 <= ci.high
        assert ci.estimate == pytest.approx(sample.mean())
    assert 0.88 <= hits / 200 <= 0.99


def test_bootstrap_resamples_whole_units():
    # two units with many identical values: the CI spans only unit means
    values = np.r_[np.zeros(100), np.ones(2)]
    units = np.r_[np.zeros(100), np.ones(2)]
    ci = bootstrap_ci(values, units, n_boot=2000, seed=0)
    assert ci.estimate == pytest.approx(0.5) and ci.n_units == 2
    assert ci.low == 0.0 and ci.high == 1.0


def test_paired_comparison_equals_scipy():
    rng = np.random.default_rng(2)
    a = rng.normal(size=12)
    b = a - 0.3 + rng.normal(scale=0.5, size=12)
    comp = paired_comparison(a, b)
    ref = stats.ttest_rel(a, b)
    assert comp.t == pytest.approx(ref.statistic) and comp.p_ttest == pytest.approx(ref.pvalue)
    assert comp.p_wilcoxon == pytest.approx(stats.wilcoxon(a - b).pvalue)


def test_mixed_model_recovers_a_known_model_effect():
    rng = np.random.default_rng(3)
    rows = []
    for s in range(8):
        offset = rng.normal(scale=1.0)
        for model, effect in (("a", 0.0), ("b", 0.5)):
            for _ in range(30):
                rows.append({"subject": s, "model": model, "value": offset + effect + rng.normal(scale=0.3)})
    effects = mixed_model_comparison(pd.DataFrame(rows))
    coef = effects.loc["model=b"]
    assert abs(coef["coef"] - 0.5) < 3 * coef["se"] and coef["p"] < 1e-6


def _loop_scores(Y, P, B, groups, folds, n_boot, seed):
    """r (per-fold r averaged over folds) and pooled R² of every resample, drawn by a plain loop over groups."""
    from lmbrain.encoding import r2_oos
    from lmbrain.encoding.metrics import mean_fold_r, pearson_r_folds

    keep = folds >= 0
    Y, P, B, groups, folds = Y[keep], P[keep], B[keep], groups[keep], folds[keep]
    labels = np.unique(groups)
    weights = np.random.default_rng(seed).multinomial(len(labels), np.full(len(labels), 1 / len(labels)),
                                                      size=n_boot)
    rs, r2s = [], []
    for w in weights:
        rows = np.concatenate([np.flatnonzero(groups == g) for g in np.repeat(labels, w)])
        rs.append(mean_fold_r(pearson_r_folds(Y[rows], P[rows], folds[rows])))
        r2s.append(r2_oos(Y[rows], P[rows], B[rows]))
    return np.array(rs), np.array(r2s)


def _assert_same_bounds(fast, rs, r2s):
    np.testing.assert_allclose(fast.r_low, np.nanquantile(rs, 0.025, axis=0), rtol=1e-9)
    np.testing.assert_allclose(fast.r_high, np.nanquantile(rs, 0.975, axis=0), rtol=1e-9)
    np.testing.assert_allclose(fast.r2_low, np.quantile(r2s, 0.025, axis=0), rtol=1e-9)
    np.testing.assert_allclose(fast.r2_high, np.quantile(r2s, 0.975, axis=0), rtol=1e-9)


def test_bootstrap_scores_equal_a_plain_resampling_loop_and_cover_the_truth():
    from lmbrain.analysis.stats import bootstrap_scores
    from lmbrain.encoding import GroupedKFold, RidgeCV, cross_validate

    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(40), 5)
    X = rng.normal(size=(200, 4))
    Y = X @ rng.normal(size=(4, 3)) * 0.5 + rng.normal(size=(200, 3)) + np.repeat(rng.normal(size=(40, 3)), 5, 0)
    fit = cross_validate(RidgeCV(cv=GroupedKFold(4)), X, Y, groups, GroupedKFold(5))
    P, B, folds = fit.predictions.copy(), fit.baseline, fit.folds.copy()
    P[folds == 2, 2] = 0.25  # target 2: a constant prediction in fold 2, skipped like in the point estimate
    folds[groups == 39] = -1  # a group never tested: dropped
    P[groups == 39] = np.nan
    fast = bootstrap_scores(Y, P, B, groups, folds, n_boot=300, seed=1)
    assert fast.n_groups == 39
    _assert_same_bounds(fast, *_loop_scores(Y, P, B, groups, folds, 300, 1))
    from lmbrain.encoding.metrics import mean_fold_r, pearson_r_folds

    observed = mean_fold_r(pearson_r_folds(Y, P, folds))  # the point estimate on the tested groups
    assert (fast.r_low < observed).all() and (observed < fast.r_high).all()


def test_bootstrap_scores_with_blocks_straddling_folds_and_without_folds():
    from lmbrain.analysis.stats import bootstrap_scores

    rng = np.random.default_rng(3)
    n = 200
    Y = rng.normal(size=(n, 4)) + np.linspace(-1, 1, n)[:, None]  # a drift: the fold means differ
    P = 0.4 * Y + rng.normal(size=(n, 4)) + 3.0  # an offset: centring within folds keeps the sums exact
    B = np.full_like(Y, 0.1)
    blocks = np.arange(n) // 7  # 7-scan blocks ...
    folds = np.arange(n) // 40  # ... cross the boundaries of 5 contiguous folds
    fast = bootstrap_scores(Y, P, B, blocks, folds, n_boot=200, seed=2)
    _assert_same_bounds(fast, *_loop_scores(Y, P, B, blocks, folds, 200, 2))
    # without folds: one fold, i.e. the pooled r
    pooled = bootstrap_scores(Y, P, B, blocks, n_boot=200, seed=2)
    _assert_same_bounds(pooled, *_loop_scores(Y, P, B, blocks, np.zeros(n, dtype=int), 200, 2))
