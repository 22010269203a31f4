"""Noise ceilings on simulated data with a known noise level."""

from __future__ import annotations

import numpy as np
import pytest

from lmbrain.encoding import (
    OLS,
    RidgeCV,
    cross_validate,
    fit_saturation,
    normalize_scores,
    pool_ceiling,
    spearman_brown,
    split_half_ceiling,
)
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


def test_pool_ceiling_scores_and_asymptote():
    rng = np.random.default_rng(0)
    n, sigma = 240, 0.5
    groups = np.repeat(np.arange(12), 20)
    signal = rng.standard_normal((n, 2))
    subjects = [signal + sigma * rng.standard_normal((n, 2)) for _ in range(6)]
    est = RidgeCV(alphas=np.logspace(-1, 3, 5), cv=3)
    res = pool_ceiling(subjects, est, groups, cv=4, n_draws=1, random_state=3)
    np.testing.assert_array_equal(res.pool_sizes, np.arange(2, 7))
    # the largest pool has a single draw: every other subject; check it against cross_validate
    for s in (0, 5):
        X = np.hstack([subjects[o] for o in range(6) if o != s])
        np.testing.assert_allclose(res.scores[s][-1], cross_validate(est, X, subjects[s], groups, 4).r,
                                   rtol=1e-10)
        assert np.all(res.scores[s][-1] > res.scores[s][0]), "more subjects predict better"
    # an infinite pool predicts the signal: r = 1/sqrt(1 + sigma²); the saturating fit gets close
    truth = 1 / np.sqrt(1 + sigma**2)
    ceilings = np.concatenate(res.ceiling)
    assert np.all(np.abs(ceilings - truth) < 0.06), (ceilings, truth)


def test_ceiling_input_errors():
    with pytest.raises(LmbrainError, match="at least 2 repeats"):
        split_half_ceiling(np.zeros((1, 10, 2)))
    with pytest.raises(LmbrainError, match="at least 3 subjects"):
        pool_ceiling([np.zeros((10, 1))] * 2, OLS(), np.arange(10) % 5)
