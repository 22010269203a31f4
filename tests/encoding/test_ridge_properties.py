"""Hypothesis properties of RidgeCV: shapes, and invariances it must have by construction."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lmbrain.encoding import RidgeCV

ALPHAS = np.logspace(-2, 4, 7)
SETTINGS = settings(max_examples=15, deadline=None, derandomize=True)


def _problem(seed: int, n: int, p: int, t: int):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) * rng.uniform(0.5, 3.0, p)
    Y = X @ rng.standard_normal((p, t)) * rng.uniform(0, 1, t) + rng.standard_normal((n, t))
    groups = np.arange(n) % 6
    return X, Y, groups


dims = st.tuples(st.integers(0, 10_000), st.integers(24, 60), st.integers(1, 40), st.integers(1, 5))


@SETTINGS
@given(dims)
def test_shapes(d):
    seed, n, p, t = d
    X, Y, groups = _problem(seed, n, p, t)
    model = RidgeCV(alphas=ALPHAS, cv=3).fit(X, Y, groups)
    assert model.alpha_.shape == (t,)
    assert model.coef_.shape == (p, t)
    assert model.intercept_.shape == (t,)
    assert model.cv_scores_.shape == (len(ALPHAS), t)
    assert model.predict(X[:5]).shape == (5, t)
    assert set(model.alpha_) <= set(ALPHAS)
    one = RidgeCV(alphas=ALPHAS, cv=3).fit(X, Y[:, 0], groups)
    assert one.predict(X[:5]).shape == (5,) and one.coef_.shape == (p,) and np.ndim(one.alpha_) == 0
    np.testing.assert_allclose(one.predict(X), model.predict(X)[:, 0], rtol=1e-10, atol=1e-10)


@SETTINGS
@given(dims, st.floats(1e-3, 1e3), st.floats(-100, 100))
def test_affine_target_equivariance(d, scale, shift):
    """Y -> aY + b: same alphas (R² is invariant), predictions transformed the same way."""
    seed, n, p, t = d
    X, Y, groups = _problem(seed, n, p, t)
    base = RidgeCV(alphas=ALPHAS, cv=3).fit(X, Y, groups)
    moved = RidgeCV(alphas=ALPHAS, cv=3).fit(X, scale * Y + shift, groups)
    np.testing.assert_array_equal(moved.alpha_, base.alpha_)
    np.testing.assert_allclose(moved.predict(X), scale * base.predict(X) + shift,
                               rtol=1e-7, atol=1e-7 * (abs(shift) + scale))


@SETTINGS
@given(dims, st.integers(0, 10_000))
def test_feature_scaling_invariance_when_standardised(d, seed2):
    """Per-column rescaling and shifting of X changes nothing when standardize=True."""
    seed, n, p, t = d
    X, Y, groups = _problem(seed, n, p, t)
    rng = np.random.default_rng(seed2)
    X2 = X * rng.uniform(1e-2, 1e2, p) + rng.uniform(-50, 50, p)
    a = RidgeCV(alphas=ALPHAS, cv=3).fit(X, Y, groups)
    b = RidgeCV(alphas=ALPHAS, cv=3).fit(X2, Y, groups)
    np.testing.assert_array_equal(a.alpha_, b.alpha_)
    np.testing.assert_allclose(a.predict(X), b.predict(X2), rtol=1e-6, atol=1e-6)


@SETTINGS
@given(dims, st.integers(0, 10_000))
def test_target_permutation_equivariance(d, seed2):
    """Targets are solved independently: permuting them permutes alphas and coefficients."""
    seed, n, p, t = d
    X, Y, groups = _problem(seed, n, p, t)
    perm = np.random.default_rng(seed2).permutation(t)
    a = RidgeCV(alphas=ALPHAS, cv=3).fit(X, Y, groups)
    b = RidgeCV(alphas=ALPHAS, cv=3).fit(X, Y[:, perm], groups)
    np.testing.assert_array_equal(b.alpha_, a.alpha_[perm])
    np.testing.assert_allclose(b.coef_, a.coef_[:, perm], rtol=1e-9, atol=1e-9)
