"""lmbrain's banded-ridge solver gives himalaya's results for the same band weights and penalties."""

import numpy as np
import pytest

from lmbrain.encoding import BandedRidgeCV, GroupedKFold, cross_validate


def data(n: int, p1: int, p2: int, t: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X1 = rng.normal(size=(n, p1)) * 3 + 1
    X2 = rng.normal(size=(n, p2))
    Y = X1[:, :5] @ rng.normal(size=(5, t)) * 0.3 + X2 @ rng.normal(size=(p2, t)) + rng.normal(size=(n, t)) * 2
    groups = np.repeat(np.arange(n // 4), 4)
    return np.hstack([X1, X2]), Y, groups, [slice(0, p1), slice(p1, p1 + p2)]


@pytest.mark.parametrize("shape", [(120, 20, 4), (80, 150, 6)], ids=["primal", "dual"])
def test_lmbrain_solver_equals_himalaya(shape):
    n, p1, p2 = shape
    X, Y, groups, slices = data(n, p1, p2, 7)
    weights = np.column_stack([1 / (1 + np.logspace(-2, 2, 5)), 1 - 1 / (1 + np.logspace(-2, 2, 5))])
    alphas = np.logspace(-1, 4, 6)
    kw = dict(feature_slices=slices, alphas=alphas, cv=GroupedKFold(4), n_iter=weights)
    ours = BandedRidgeCV(solver="lmbrain", **kw).fit(X, Y, groups)
    ref = BandedRidgeCV(solver="himalaya", **kw).fit(X, Y, groups)
    np.testing.assert_allclose(ours.cv_scores_, ref.cv_scores_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ours.deltas_, ref.deltas_, rtol=1e-8)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-5, atol=1e-6)


def test_default_weights_are_himalayas_dirichlet_draws_and_cv_agrees():
    X, Y, groups, slices = data(100, 12, 3, 5, seed=1)
    kw = dict(feature_slices=slices, alphas=np.logspace(-1, 3, 5), cv=GroupedKFold(3), n_iter=6, random_state=3)
    ours = cross_validate(BandedRidgeCV(**kw), X, Y, groups, GroupedKFold(5))
    ref = cross_validate(BandedRidgeCV(solver="himalaya", **kw), X, Y, groups, GroupedKFold(5))
    np.testing.assert_allclose(ours.predictions, ref.predictions, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ours.r2, ref.r2, rtol=1e-6)


def test_banded_beats_plain_ridge_when_one_band_is_pure_noise():
    rng = np.random.default_rng(2)
    n = 160
    signal = rng.normal(size=(n, 3))
    noise_band = rng.normal(size=(n, 120))
    X = np.hstack([signal, noise_band])
    Y = signal @ rng.normal(size=(3, 4)) + rng.normal(size=(n, 4))
    groups = np.repeat(np.arange(40), 4)
    banded = cross_validate(BandedRidgeCV(feature_slices=[slice(0, 3), slice(3, 123)], cv=GroupedKFold(4)),
                            X, Y, groups, GroupedKFold(5))
    assert banded.r2.mean() > 0.5
    # the noise band is shrunk much harder than the signal band
    est = BandedRidgeCV(feature_slices=[slice(0, 3), slice(3, 123)], cv=GroupedKFold(4)).fit(X, Y, groups)
    assert (est.alpha_[1] > est.alpha_[0]).all()
