"""Noise ceilings on simulated data with a known noise level."""

from __future__ import annotations

import numpy as np
import pytest

from lmbrain.encoding import (
    OLS,
    GroupedKFold,
    RidgeCV,
    cross_validate,
    fit_saturation,
    normalize_scores,
    pool_ceiling,
    spearman_brown,
    split_half_ceiling,
)
from lmbrain.encoding.ceiling import fit_common_shape, pool_curve, shrink_to_unit_interval
from lmbrain.encoding.pool_ceiling import _draw_pairs, _draw_pools, attenuation_ceiling, inter_subject_ceiling
from lmbrain.errors import LmbrainError


def _repeats(n_rep: int, sigma: np.ndarray, n: int = 400, seed: int = 0) -> np.ndarray:
    """n_rep noisy repeats of a unit-variance signal; target j has noise sd sigma[j] per repeat."""
    rng = np.random.default_rng(seed)
    signal = rng.standard_normal((n, len(sigma)))
    return signal[None] + sigma * rng.standard_normal((n_rep, n, len(sigma)))


@pytest.mark.parametrize("n_rep", [4, 5, 8])
def test_split_half_recovers_known_reliability(n_rep):
    sigma = np.array([0.5, 1.0, 2.0, 3.0])
    res = split_half_ceiling(_repeats(n_rep, sigma, n=8000), n_splits=20)
    truth = 1.0 / (1.0 + sigma**2 / n_rep)  # reliability of the mean of n_rep repeats
    np.testing.assert_allclose(res.reliability, truth, atol=0.03)
    np.testing.assert_allclose(res.ceiling, np.sqrt(truth), atol=0.03)


def test_split_half_with_the_scoring_regression_matches_plain_correlation():
    """One target, OLS, grouped CV: predicting half B from half A is an affine map -> same r."""
    R = _repeats(6, np.array([1.5]), n=300)
    groups = np.repeat(np.arange(15), 20)
    plain = split_half_ceiling(R, n_splits=5)
    regressed = split_half_ceiling(R, estimator=OLS(), groups=groups, cv=5, n_splits=5)
    np.testing.assert_allclose(regressed.reliability, plain.reliability, atol=0.01)


def test_spearman_brown_identities():
    r = np.array([-0.2, 0.0, 0.3, 0.9])
    np.testing.assert_allclose(spearman_brown(r, 1.0), r)
    np.testing.assert_allclose(spearman_brown(spearman_brown(r, 2.0), 2.0), spearman_brown(r, 4.0))
    assert spearman_brown(0.5) == pytest.approx(2 / 3)


def test_normalize_is_unclipped():
    out = normalize_scores([0.5, -0.1, 0.3, 0.2], [0.4, 0.5, 0.0, np.nan])
    np.testing.assert_allclose(out, [1.25, -0.2, np.nan, np.nan])


def test_fit_saturation_recovers_parameters():
    x = np.arange(2, 12)
    v0, tau = np.array([0.8, 0.4]), np.array([1.5, 4.0])
    y = v0 * (1 - np.exp(-x[:, None] / tau))
    got_v0, got_tau = fit_saturation(x, y)
    np.testing.assert_allclose(got_v0, v0, rtol=0.02)
    np.testing.assert_allclose(got_tau, tau, rtol=0.03)


def _subjects_with_known_ceilings(n_sub: int = 8, n_targets: int = 6, n: int = 300, mixed: bool = False,
                                  seed: int = 0) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Subjects sharing unit-variance signals, each target with its own noise sd (a subject scale times a target
    factor): its true ceiling, the r of a noiseless model with it, is 1 / sqrt(1 + sd²). ``mixed``: every subject's
    targets mix the shared signals differently (electrodes that correspond across no two subjects)."""
    rng = np.random.default_rng(seed)
    signal = rng.standard_normal((n, n_targets))
    sd = rng.uniform(0.7, 1.4, (n_sub, 1)) * np.exp(rng.uniform(np.log(0.4), np.log(6.0), (n_sub, n_targets)))
    subjects = []
    for s in range(n_sub):
        mix = rng.standard_normal((n_targets, n_targets)) if mixed else np.eye(n_targets)
        subjects.append(signal @ (mix / np.linalg.norm(mix, axis=0)) + sd[s] * rng.standard_normal((n, n_targets)))
    return subjects, 1 / np.sqrt(1 + sd**2), np.arange(n) * 30 // n


def test_pool_ceiling_recovers_known_ceilings_within_its_interval():
    """Both kinds of targets (the same in every subject; mixed differently in each): the truth lies inside the 95 %
    interval for >= 90 % of the targets, no estimate sits on 0 or 1, few targets' own estimates left (0, 1)."""
    est = RidgeCV(alphas=np.logspace(-2, 6, 9), cv=GroupedKFold(5))
    inside, bound, ceilings, errors = [], [], [], []
    for mixed in (False, True):
        subjects, truth, groups = _subjects_with_known_ceilings(mixed=mixed)
        res = pool_ceiling(subjects, est, groups, cv=GroupedKFold(5), n_draws=10, random_state=0)
        low, high, c = (np.concatenate(x) for x in (res.ci_low, res.ci_high, res.ceiling))
        inside.append((low <= truth.ravel()) & (truth.ravel() <= high))
        bound.append(np.concatenate(res.at_bound))
        ceilings.append(c)
        errors.append(c - truth.ravel())
        assert res.split_sources == 3 and res.n_pairs.min() >= 10 and res.n_pools[:, :-1].min() >= 7
    inside, bound, ceilings, errors = (np.concatenate(x) for x in (inside, bound, ceilings, errors))
    assert inside.mean() >= 0.9, inside.mean()
    assert bound.mean() <= 0.05, bound.mean()
    assert np.all((ceilings > 0.01) & (ceilings < 0.99))
    assert abs(errors.mean()) < 0.03 and np.sqrt(np.mean(errors**2)) < 0.08


def test_pool_ceiling_pools_and_curves():
    """Every subject is left out of enough pools; the largest pool (every other subject) is plain cross_validate; the
    pool curve rises with the pool size; the pairs' implied source reliability lies in (0, 1)."""
    subjects, _, groups = _subjects_with_known_ceilings(n_sub=6, n_targets=2, n=240, seed=1)
    est = RidgeCV(alphas=np.logspace(-1, 3, 5), cv=3)
    res = pool_ceiling(subjects, est, groups, cv=4, n_draws=3, random_state=3)
    np.testing.assert_array_equal(res.n_sources, np.arange(1, 6))
    np.testing.assert_array_equal(res.pool_sizes, np.arange(2, 7))
    assert res.split_sources == 2 and (res.n_pools >= 1).all() and (res.n_pools[:, :2] >= 3).all()
    for s in (0, 5):
        X = np.hstack([subjects[o] for o in range(6) if o != s])
        np.testing.assert_allclose(res.scores[s][-1], cross_validate(est, X, subjects[s], groups, 4).r, rtol=1e-10)
        assert np.all(res.scores[s][-1] > res.scores[s][0]), "more subjects predict better"
    rho = np.concatenate(res.rho)
    assert np.all((rho > 0) & (rho < 1))


def test_draws_leave_every_subject_out_often_enough():
    rng = np.random.default_rng(0)
    pools = _draw_pools(27, 8, 20, rng)
    out = np.array([sum(s not in p for p in pools) for s in range(27)])
    assert out.min() >= 20 and len(set(pools)) == len(pools)
    assert len(_draw_pools(5, 2, 20, rng)) == 10  # few: all of them
    pairs = _draw_pairs(27, 8, 10, rng)
    assert all(not set(a) & set(b) and len(a) == len(b) == 8 for a, b in pairs)
    assert min(sum(s not in a and s not in b for a, b in pairs) for s in range(27)) >= 10
    pairs = _draw_pairs(5, 2, 20, rng)  # 15 pairs, each subject outside 3 of them
    assert len(pairs) == 15 and all(sum(s not in a + b for a, b in pairs) == 3 for s in range(5))


def test_attenuation_and_shrinkage():
    np.testing.assert_allclose(attenuation_ceiling([0.3, 0.3, 0.2], [0.36, 0.0, -0.1]), [0.5, np.nan, np.nan])
    rng = np.random.default_rng(0)
    raw = np.array([0.3, 0.5, 0.4, -0.2, np.nan, 1.3, 0.6, 0.7])
    group = np.array([0, 0, 0, 0, 0, 1, 1, 1])
    se = np.array([0.02, 0.02, 0.02, 0.3, 0.1, 0.5, 0.02, 0.02])
    boot = np.where(np.isfinite(raw), raw, 0.0) + se * rng.standard_normal((400, len(raw)))
    mean, low, high, tau2 = shrink_to_unit_interval(raw, boot, group)
    assert np.all((mean > 0) & (mean < 1) & (low <= mean) & (mean <= high) & (low >= 0) & (high <= 1))
    np.testing.assert_allclose(mean[:3], raw[:3], atol=0.02)  # precise estimates keep their value
    assert 0.05 < mean[3] < 0.4 and 0.05 < mean[4] < 0.6  # noisy / missing ones move toward their subject
    assert 0.6 < mean[5] < 1 and high[3] - low[3] > high[0] - low[0]
    assert tau2 > 0.001


def test_fit_common_shape_recovers_a_spearman_brown_curve():
    k = np.arange(1, 9)
    scale, rho = np.array([0.3, 0.6, 0.8]), 0.15
    curves = pool_curve(k, rho)[0][:, None] * scale
    theta, got, edge = fit_common_shape(k, curves)
    assert theta == pytest.approx(rho, rel=0.03) and not edge
    np.testing.assert_allclose(got, scale, rtol=0.02)


def test_inter_subject_ceiling_recovers_known_ceilings():
    subjects, truth, groups = _subjects_with_known_ceilings(n_sub=10, n=2000, seed=2)
    folds = groups % 5
    ceiling, loo = inter_subject_ceiling(np.stack(subjects), folds)
    assert np.all(loo < ceiling)
    assert np.abs(ceiling - truth).mean() < 0.04


def test_ceiling_input_errors():
    with pytest.raises(LmbrainError, match="at least 2 repeats"):
        split_half_ceiling(np.zeros((1, 10, 2)))
    with pytest.raises(LmbrainError, match="at least 3 subjects"):
        pool_ceiling([np.zeros((10, 1))] * 2, OLS(), np.arange(10) % 5)
