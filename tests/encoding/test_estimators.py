"""RidgeCV, BandedRidgeCV and OLS: scikit-learn contract, inner grouped CV, references."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GroupKFold

from lmbrain.encoding import OLS, BandedRidgeCV, GroupedKFold, RidgeCV
from lmbrain.encoding.ridge import ridge_cv_scores
from lmbrain.errors import LmbrainError

from .conftest import simulate

ALPHAS = np.logspace(-2, 5, 8)


def test_ridgecv_sklearn_contract(data):
    X, Y, groups = data
    model = RidgeCV(alphas=ALPHAS, cv=4, scoring="pearson")
    cloned = clone(model).get_params()
    assert cloned.keys() == model.get_params().keys() and cloned["scoring"] == "pearson"
    np.testing.assert_array_equal(cloned["alphas"], ALPHAS)
    assert not hasattr(model, "alpha_") and not hasattr(model, "coef_")
    with pytest.raises(LmbrainError, match="not fitted"):
        model.predict(X)
    model.fit(X, Y, groups)
    np.testing.assert_allclose(model.predict(X), X @ model.coef_ + model.intercept_, rtol=1e-10, atol=1e-10)
    assert model.score(X, Y).shape == (Y.shape[1],)
    with pytest.raises(LmbrainError, match="features"):
        model.predict(X[:, :3])


def test_inner_cv_is_grouped_by_the_given_groups(data):
    X, Y, groups = data
    model = RidgeCV(alphas=ALPHAS, cv=4).fit(X, Y, groups)
    splits = list(GroupedKFold(4).split(X, Y, groups))
    expected = ridge_cv_scores(X, Y, ALPHAS, splits).mean(0)
    np.testing.assert_allclose(model.cv_scores_, expected, rtol=1e-12)
    np.testing.assert_array_equal(model.alpha_, ALPHAS[np.argmax(expected, axis=0)])
    # a splitter object is called with the groups too
    via_splitter = RidgeCV(alphas=ALPHAS, cv=GroupKFold(4)).fit(X, Y, groups)
    np.testing.assert_allclose(via_splitter.cv_scores_, expected, rtol=1e-12)


def test_ridgecv_errors(data):
    X, Y, groups = data
    with pytest.raises(LmbrainError, match="5 grouped folds from 3 groups"):
        RidgeCV(cv=5).fit(X, Y, groups % 3)
    Ybad = Y.copy()
    Ybad[3, 1] = np.nan
    with pytest.raises(LmbrainError, match="1 NaN"):
        RidgeCV().fit(X, Ybad, groups)
    with pytest.raises(LmbrainError, match="samples"):
        RidgeCV().fit(X, Y[:-1], groups)


def test_ridgecv_dtype_float32(data):
    X, Y, groups = data
    m32 = RidgeCV(alphas=ALPHAS, cv=4, dtype=np.float32).fit(X, Y, groups)
    m64 = RidgeCV(alphas=ALPHAS, cv=4).fit(X, Y, groups)
    assert m32.coef_.dtype == np.float32 and m32.predict(X).dtype == np.float32
    np.testing.assert_allclose(m32.predict(X), m64.predict(X), rtol=1e-3, atol=1e-3 * np.abs(Y).max())


def test_banded_single_band_equals_ridgecv():
    """One band: banded ridge is ridge with a per-target alpha (same grouped folds, same R² scoring)."""
    X, Y, groups = simulate(n=100, p=12, t=5, seed=3, n_groups=10)
    Xs = (X - X.mean(0)) / X.std(0)
    banded = BandedRidgeCV([slice(0, 12)], alphas=ALPHAS, n_iter=1, cv=5).fit(Xs, Y, groups)
    ridge = RidgeCV(alphas=ALPHAS, cv=5, standardize=False).fit(Xs, Y, groups)
    np.testing.assert_allclose(banded.alpha_[0], ridge.alpha_, rtol=1e-6)
    np.testing.assert_allclose(banded.predict(Xs), ridge.predict(Xs), rtol=1e-7, atol=1e-7)


def test_banded_equals_himalaya_and_finds_the_irrelevant_band():
    from himalaya.ridge import GroupRidgeCV
    from himalaya.scoring import r2_score

    rng = np.random.default_rng(0)
    n, groups = 160, np.repeat(np.arange(16), 10)
    X = rng.standard_normal((n, 14)) * 3 + 1
    Y = X[:, :8] @ rng.standard_normal((8, 4)) + rng.standard_normal((n, 4))
    bands = [np.arange(8, 14), np.arange(0, 8)]  # given out of order on purpose
    model = BandedRidgeCV(bands, alphas=ALPHAS, n_iter=12, cv=4, random_state=1).fit(X, Y, groups)
    Xs = (X - X.mean(0)) / X.std(0)
    labels = np.where(np.arange(14) < 8, 1, 0)
    splits = list(GroupedKFold(4).split(X, Y, groups))
    ref = GroupRidgeCV(groups=labels, fit_intercept=True, cv=splits, random_state=1,
                       solver_params=dict(alphas=ALPHAS, n_iter=12, score_func=r2_score,
                                          progress_bar=False)).fit(Xs, Y)
    np.testing.assert_allclose(model.predict(X), ref.predict(Xs), rtol=1e-7, atol=1e-7)
    # the noise band (band 0) is regularised more than the signal band for every target
    assert np.all(model.alpha_[0] > model.alpha_[1])


def test_banded_bad_slices(data):
    X, Y, groups = data
    with pytest.raises(LmbrainError, match="exactly once"):
        BandedRidgeCV([slice(0, 5), slice(4, 15)]).fit(X, Y, groups)


def test_ols_equals_linear_regression(data):
    X, Y, groups = data
    model = OLS().fit(X, Y, groups)
    ref = LinearRegression().fit(X, Y)
    np.testing.assert_allclose(model.predict(X), ref.predict(X), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(model.coef_, ref.coef_.T, rtol=1e-8, atol=1e-10)
    one = OLS().fit(X, Y[:, 2])
    np.testing.assert_allclose(one.predict(X), ref.predict(X)[:, 2], rtol=1e-9, atol=1e-9)
