"""lmbrain's banded-ridge solver gives himalaya's results for the same band weights and penalties.

himalaya cannot rescale inside its inner folds (it standardises once on all training rows), so the
comparisons use ``standardize=False``; per-fold standardisation is checked against scikit-learn.
"""

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from lmbrain.encoding import BandedRidgeCV, GroupedKFold, cross_validate
from lmbrain.encoding.banded import banded_cv_scores, banded_refit


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
    kw = dict(feature_slices=slices, alphas=alphas, cv=GroupedKFold(4), n_iter=weights, standardize=False)
    ours = BandedRidgeCV(solver="lmbrain", **kw).fit(X, Y, groups)
    ref = BandedRidgeCV(solver="himalaya", **kw).fit(X, Y, groups)
    np.testing.assert_allclose(ours.cv_scores_, ref.cv_scores_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(ours.deltas_, ref.deltas_, rtol=1e-8)
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), rtol=1e-5, atol=1e-6)


def test_default_weights_are_himalayas_dirichlet_draws_and_cv_agrees():
    X, Y, groups, slices = data(100, 12, 3, 5, seed=1)
    kw = dict(feature_slices=slices, alphas=np.logspace(-1, 3, 5), cv=GroupedKFold(3), n_iter=6, random_state=3,
              standardize=False)
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


def _sklearn_banded(Xtr, Ytr, Xte, w, alpha, mask):
    """Banded ridge by hand: scale each column on the training rows (z-score where mask, else centre),
    multiply band b by sqrt(w_b), and fit scikit-learn's Ridge with ``alpha``."""
    mean = Xtr.mean(0)
    scale = np.where(mask, Xtr.std(0), 1.0)
    d = np.sqrt(w)
    model = Ridge(alpha=alpha).fit((Xtr - mean) / scale * d, Ytr)
    return model.predict((Xte - mean) / scale * d)


@pytest.mark.parametrize("shape", [(120, 20, 4), (80, 150, 6)], ids=["primal", "dual"])
@pytest.mark.parametrize("standardize", ["all", "mask"])
def test_banded_standardises_inside_each_inner_fold(shape, standardize):
    """Inner-CV scores and the refit equal scikit-learn's Ridge on per-fold standardised, reweighted columns."""
    n, p1, p2 = shape
    X, Y, groups, slices = data(n, p1, p2, 3, seed=4)
    X[:, p1:] = (X[:, p1:] > 0.3).astype(float)  # indicator controls: centred only under "mask"
    mask = np.ones(p1 + p2, bool) if standardize == "all" else np.r_[np.ones(p1, bool), np.zeros(p2, bool)]
    col_band = np.r_[np.zeros(p1, int), np.ones(p2, int)]
    weights = np.array([[0.5, 0.5], [0.9, 0.1], [1.0, 0.0]])
    alphas = np.array([0.3, 30.0])
    splits = list(GroupedKFold(4).split(X, Y, groups))
    std = True if standardize == "all" else mask
    scores = banded_cv_scores(X, Y, col_band, splits, weights, alphas, standardize=std)
    for i, w in enumerate(weights):
        for j, alpha in enumerate(alphas):
            expected = np.zeros(Y.shape[1])
            for train, val in splits:
                pred = _sklearn_banded(X[train], Y[train], X[val], w[col_band], alpha, mask)
                yv = Y[val]
                expected += 1 - ((yv - pred) ** 2).sum(0) / ((yv - yv.mean(0)) ** 2).sum(0)
            np.testing.assert_allclose(scores[i, j], expected / len(splits), rtol=1e-8, atol=1e-10)
    best_w, best_a = np.array([0, 1, 2]), np.array([1, 0, 1])
    coef, intercept = banded_refit(X, Y, col_band, weights, alphas, best_w, best_a, standardize=std)
    for t in range(Y.shape[1]):
        ref = _sklearn_banded(X, Y[:, t], X, weights[best_w[t]][col_band], alphas[best_a[t]], mask)
        np.testing.assert_allclose(X @ coef[:, t] + intercept[t], ref, rtol=1e-7, atol=1e-8)
    # the estimator uses the same per-fold scaling: its CV scores are the best of these (ties -> larger alpha)
    est = BandedRidgeCV(slices, alphas=alphas, cv=GroupedKFold(4), n_iter=weights, standardize=std).fit(X, Y, groups)
    sloped = scores + 1e-10 * np.log(alphas)[None, :, None]
    np.testing.assert_allclose(est.cv_scores_, sloped.max(axis=1), rtol=1e-8, atol=1e-10)


def test_banded_torch_backend_equals_numpy():
    """backend="torch" runs lmbrain's solver on torch (CPU here): same scores and predictions to 1e-6."""
    pytest.importorskip("torch")
    for n, p1, p2 in [(120, 20, 4), (80, 150, 6)]:
        X, Y, groups, slices = data(n, p1, p2, 5, seed=6)
        kw = dict(feature_slices=slices, alphas=np.logspace(-1, 4, 6), cv=GroupedKFold(4), n_iter=5, random_state=2)
        ours = BandedRidgeCV(backend="numpy", **kw).fit(X, Y, groups)
        torch_cpu = BandedRidgeCV(backend="torch_cpu", **kw).fit(X, Y, groups)
        np.testing.assert_allclose(torch_cpu.cv_scores_, ours.cv_scores_, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(torch_cpu.deltas_, ours.deltas_, rtol=1e-8)
        np.testing.assert_allclose(torch_cpu.predict(X), ours.predict(X), rtol=1e-6, atol=1e-6)


def test_banded_unknown_backend_is_an_error():
    X, Y, groups, slices = data(40, 5, 2, 2)
    with pytest.raises(Exception, match="unknown backend"):
        BandedRidgeCV(slices, backend="jax").fit(X, Y, groups)
