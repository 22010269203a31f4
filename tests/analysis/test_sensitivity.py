"""Implanted unique signals: built as documented, the learnable limit equals scikit-learn, the detectable level."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.model_selection import GroupKFold
from sklearn.preprocessing import StandardScaler

from lmbrain.analysis.sensitivity import detectable, implant, implant_signals, limit_gains, residualise


@pytest.fixture
def problem():
    rng = np.random.default_rng(3)
    n, p = 120, 30
    controls = np.eye(6)[np.tile(np.arange(6), n // 6)]
    X = rng.standard_normal((n, p)) + controls @ rng.standard_normal((6, p))
    Y = controls @ rng.standard_normal((6, 4)) + rng.standard_normal((n, 4))
    return X, controls, Y, np.repeat(np.arange(n // 6), 6)


def test_signals_are_unique_to_the_llm(problem):
    X, controls, _, _ = problem
    S = implant_signals(X, controls, 5, seed=1)
    assert S.shape == (len(X), 5)
    np.testing.assert_allclose(S.std(0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(S.mean(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(controls.T @ S, 0.0, atol=1e-9)  # orthogonal to every control column
    span = np.column_stack([np.ones(len(X)), X, controls])  # X's directions, residualised on the controls
    np.testing.assert_allclose(span @ np.linalg.lstsq(span, S, rcond=None)[0], S, atol=1e-8)
    np.testing.assert_array_equal(S, implant_signals(X, controls, 5, seed=1))  # seeded
    assert not np.allclose(S, implant_signals(X, controls, 5, seed=2))


def test_signals_refused_when_the_llm_is_the_controls(problem):
    _, controls, _, _ = problem
    with pytest.raises(ValueError, match="nothing unique"):
        implant_signals(controls @ np.ones((6, 3)), controls, 2)


def test_implanted_share_of_variance(problem):
    """Where the signal is uncorrelated with a response, it is exactly ``level`` of the implanted variance; the
    columns are ordered signal-major."""
    _, _, Y, _ = problem
    S = implant_signals(*problem[:2], 3, seed=0)
    Yo = Y - S @ np.linalg.lstsq(S, Y, rcond=None)[0]  # responses uncorrelated with every signal
    Yi = implant(Yo, S, 0.02)
    assert Yi.shape == (len(Y), 3 * Y.shape[1])
    for r in range(3):
        block = Yi[:, r * Y.shape[1]:(r + 1) * Y.shape[1]]
        added = block - Yo
        np.testing.assert_allclose(added.var(0) / block.var(0), 0.02, rtol=1e-10)
        np.testing.assert_allclose(added / added.std(0), np.repeat(S[:, [r]], Y.shape[1], 1), atol=1e-10)
    with pytest.raises(ValueError):
        implant(Y, S, 0.0)


def test_limit_gains_equal_scikit_learn(problem):
    X, controls, Y, groups = problem
    T = residualise(Y, controls)
    np.testing.assert_allclose(np.column_stack([np.ones(len(Y)), controls]).T @ T, 0.0, atol=1e-9)
    splits = list(GroupKFold(4).split(X, None, groups))
    alphas = np.array([0.1, 10.0, 1e4])
    gains = limit_gains(X, T, splits, alphas)
    for a, alpha in enumerate(alphas):
        expected = np.zeros(Y.shape[1])
        for train, test in splits:
            scaler = StandardScaler().fit(X[train])
            model = Ridge(alpha=alpha).fit(scaler.transform(X[train]), T[train])
            pred = model.predict(scaler.transform(X[test]))
            expected += ((T[test] - T[train].mean(0)) ** 2).sum(0) - ((T[test] - pred) ** 2).sum(0)
        np.testing.assert_allclose(gains[a], expected, rtol=1e-8, atol=1e-10)


def test_detectable_level():
    levels = np.array([0.005, 0.02, 0.05])
    assert detectable(levels, np.array([0.9, 1.0, 1.0])) == 0.005
    assert detectable(levels, np.array([0.1, 0.5, 0.7])) == np.inf
    assert np.isnan(detectable(levels, np.array([np.nan] * 3)))
    # power 0.4 at 0.02 and 1.0 at 0.05: 0.8 is two thirds of the way in log(level)
    expected = np.exp(np.log(0.02) + (0.8 - 0.4) / 0.6 * (np.log(0.05) - np.log(0.02)))
    assert detectable(levels, np.array([0.0, 0.4, 1.0])) == pytest.approx(expected)
    assert detectable(levels[::-1], np.array([1.0, 0.4, 0.0])) == pytest.approx(expected)  # order does not matter


def test_controls_that_span_the_llm_features_leave_nothing_to_implant():
    """OASM at a near-identity σ spans every sample: no direction of the LLM is unique; a clear error, which a study
    turns into a skipped sensitivity analysis."""
    from lmbrain.analysis.sensitivity import NothingToImplantError, implant_signals

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 10))
    with pytest.raises(NothingToImplantError, match="no variance left after the controls"):
        implant_signals(X, np.eye(40)[:, 1:], 3)
    assert implant_signals(X, np.eye(40)[:, :5], 3).shape == (40, 3)  # a few indicator columns leave plenty
