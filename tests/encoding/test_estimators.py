"""RidgeCV, BandedRidgeCV and OLS: scikit-learn contract, inner grouped CV, references."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import LinearRegression, Ridge
from sklearn.model_selection import GroupKFold

from lmbrain.encoding import OLS, BandedRidgeCV, GroupedKFold, RidgeCV
from lmbrain.encoding.inner_cv import ridge_cv_scores
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
    expected = ridge_cv_scores(X, Y, ALPHAS, splits, method="leave_out").mean(0)
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


# -- per-feature standardisation -------------------------------------------------------------------


def _manual(Xtr, Xte, mask):
    """Centre every column on the training rows; divide the flagged ones by their training std."""
    mean = Xtr.mean(0)
    scale = np.where(mask, Xtr.std(0), 1.0)
    return (Xtr - mean) / scale, (Xte - mean) / scale


def _onehot_data(seed=5):
    X, Y, groups = simulate(n=96, p=6, t=4, seed=seed, n_groups=12)
    onehot = np.eye(4)[np.arange(96) % 4] * 1.0
    return np.hstack([X, onehot]), Y + onehot @ np.array([[1.0], [0.0], [-1.0], [2.0]]), groups


def test_standardize_mask_centres_only_the_unflagged_columns():
    from lmbrain.encoding.ridge import ridge_fit

    X, Y, _ = _onehot_data()
    mask = np.r_[np.ones(6, bool), np.zeros(4, bool)]
    factors = ridge_fit(X, Y, 3.0, standardize=mask)
    np.testing.assert_allclose(factors.x_mean, X.mean(0))
    np.testing.assert_allclose(factors.x_scale[6:], 1.0)  # one-hot columns: centred, not scaled
    np.testing.assert_allclose(factors.x_scale[:6], X[:, :6].std(0))
    ref = Ridge(alpha=3.0).fit(_manual(X, X, mask)[0], Y)
    np.testing.assert_allclose(factors.predict(X), ref.predict(_manual(X, X, mask)[1]), rtol=1e-9, atol=1e-9)
    # all-True and all-False masks are the bools
    np.testing.assert_allclose(ridge_fit(X, Y, 3.0, standardize=np.ones(10, bool)).predict(X),
                               ridge_fit(X, Y, 3.0, standardize=True).predict(X), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ridge_fit(X, Y, 3.0, standardize=np.zeros(10, bool)).predict(X),
                               ridge_fit(X, Y, 3.0, standardize=False).predict(X), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cv_method", ["refit", "leave_out"])
@pytest.mark.parametrize("p_extra", [0, 200], ids=["gram", "kernel"])
def test_ridgecv_standardize_mask_equals_sklearn_per_fold(p_extra, cv_method):
    """Inner-CV scores and the refit equal scikit-learn's Ridge refitted on each inner training fold of manually
    transformed data: scaled per inner fold ("refit") or once on all training rows ("leave_out")."""
    X, Y, groups = _onehot_data(seed=6)
    X = np.hstack([np.random.default_rng(0).normal(size=(96, p_extra)) * 4 + 2, X])
    p = X.shape[1]
    mask = np.r_[np.ones(p - 4, bool), np.zeros(4, bool)]
    alphas = np.array([0.5, 20.0])
    model = RidgeCV(alphas=alphas, cv=4, standardize=mask, cv_method=cv_method).fit(X, Y, groups)
    splits = list(GroupedKFold(4).split(X, Y, groups))
    expected = np.zeros((2, Y.shape[1]))
    once = _manual(X, X, mask)[0]
    for train, val in splits:
        Xtr, Xval = _manual(X[train], X[val], mask) if cv_method == "refit" else (once[train], once[val])
        for j, alpha in enumerate(alphas):
            pred = Ridge(alpha=alpha).fit(Xtr, Y[train]).predict(Xval)
            yv = Y[val]
            expected[j] += 1 - ((yv - pred) ** 2).sum(0) / ((yv - yv.mean(0)) ** 2).sum(0)
    np.testing.assert_allclose(model.cv_scores_, expected / len(splits), rtol=1e-8, atol=1e-10)
    for t in range(Y.shape[1]):
        ref = Ridge(alpha=model.alpha_[t]).fit(_manual(X, X, mask)[0], Y[:, t])
        np.testing.assert_allclose(model.predict(X)[:, t], ref.predict(_manual(X, X, mask)[1]), rtol=1e-8, atol=1e-8)


def test_ridge_cv_predictions_equal_sklearn():
    from lmbrain.encoding.inner_cv import ridge_cv_predictions

    X, Y, groups = _onehot_data(seed=7)
    mask = np.r_[np.ones(6, bool), np.zeros(4, bool)]
    alphas = np.array([0.1, 10.0, 1000.0])
    index = np.array([0, 2, 1, 1])
    splits = list(GroupedKFold(4).split(X, Y, groups))
    pred, base = ridge_cv_predictions(X, Y, alphas, index, splits, standardize=mask)
    for train, val in splits:
        Xtr, Xval = _manual(X[train], X[val], mask)
        for t in range(Y.shape[1]):
            ref = Ridge(alpha=alphas[index[t]]).fit(Xtr, Y[train, t]).predict(Xval)
            np.testing.assert_allclose(pred[val, t], ref, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(base[val], np.broadcast_to(Y[train].mean(0), (len(val), Y.shape[1])))


def test_standardize_mask_errors(data):
    X, Y, groups = data
    with pytest.raises(LmbrainError, match="one value per feature"):
        RidgeCV(standardize=np.ones(3, bool)).fit(X, Y, groups)
    with pytest.raises(LmbrainError, match="boolean"):
        RidgeCV(standardize=np.ones(X.shape[1])).fit(X, Y, groups)
    with pytest.raises(LmbrainError, match="one value per feature"):
        BandedRidgeCV([slice(0, 5), slice(5, 15)], standardize=np.ones(4, bool)).fit(X, Y, groups)
