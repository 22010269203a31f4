"""The two-role inflation κ of the sign-flip tests of out-of-fold gains (``p_r2``, ``p_unique``): its smoothers
reproduce the fitted models, κ equals a direct refit loop, and widening the flips by √κ is what the tests do."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import Ridge
from sklearn.preprocessing import StandardScaler

from lmbrain.analysis.permutation import group_sums, permutation_test
from lmbrain.analysis.resamples import block_sign_flips, resampled_responses
from lmbrain.analysis.signflip import gain_inflation, paired_sign_flip_test, sign_flip_test
from lmbrain.analysis.smoothers import FoldSmoother, StackedSmoother
from lmbrain.encoding import GroupedKFold, RidgeCV, cross_validate
from lmbrain.encoding.joint import make_joint_estimator

ALPHAS = np.logspace(-1, 4, 6)


def design(seed: int = 0, n_groups: int = 40, size: int = 4, p: int = 24, targets: int = 5):
    """Grouped samples, LLM-like features (p), two dense controls correlated with them, responses with signal."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_groups), size)
    n = len(groups)
    controls = rng.normal(size=(n, 2)) * [1.0, 3.0] + [0.5, -2.0]
    llm = rng.normal(size=(n, p)) + controls @ rng.normal(size=(2, p)) * 0.5
    Y = (llm[:, :3] @ rng.normal(size=(3, targets)) * 0.3 + controls @ rng.normal(size=(2, targets))
         + rng.normal(size=(n, targets)) * 2 + 3.0)
    return groups, llm, controls, Y


def test_smoothers_reproduce_the_ridge_and_the_stacked_joint_predictions():
    groups, llm, controls, Y = design()
    cv = GroupedKFold(5)
    splits = list(cv.split(llm, Y, groups))
    alone = cross_validate(RidgeCV(alphas=ALPHAS, cv=GroupedKFold(4)), controls, Y, groups, cv)
    np.testing.assert_allclose(FoldSmoother.ridge(controls, splits, alone.alphas).predict(Y)[0], alone.predictions,
                               rtol=1e-9, atol=1e-9)
    joint = make_joint_estimator("stacked_simplex", [slice(0, 24), slice(24, 26)], ALPHAS, GroupedKFold(4))
    both = cross_validate(joint, np.hstack([llm, controls]), Y, groups, cv)
    assert both.weights.shape == (5, 2, Y.shape[1])
    np.testing.assert_allclose(both.weights.sum(1), 1.0, atol=1e-9)  # simplex weights, kept per fold
    stacked = StackedSmoother([FoldSmoother.ridge(llm, splits, both.alphas[:, 0]),
                               FoldSmoother.ridge(controls, splits, both.alphas[:, 1])], both.weights)
    pred, base = stacked.predict(Y)
    np.testing.assert_allclose(pred, both.predictions, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(base, both.baseline, rtol=1e-12)


def sklearn_oof(X: np.ndarray, Y: np.ndarray, splits, alphas: np.ndarray) -> np.ndarray:
    """Out-of-fold predictions of scikit-learn's scaled Ridge, one fit per fold and target at a fixed penalty."""
    pred = np.full_like(Y, np.nan)
    for k, (train, test) in enumerate(splits):
        scaler = StandardScaler().fit(X[train])
        for t in range(Y.shape[1]):
            model = Ridge(alpha=alphas[k, t]).fit(scaler.transform(X[train]), Y[train, t])
            pred[test, t] = model.predict(scaler.transform(X[test]))
    return pred


def test_gain_inflation_equals_a_direct_refit_loop_with_scikit_learn():
    groups, llm, controls, Y = design(1)
    cv = GroupedKFold(5)
    splits = list(cv.split(llm, Y, groups))
    fit = cross_validate(RidgeCV(alphas=ALPHAS, cv=GroupedKFold(4)), llm, Y, groups, cv)
    alone = cross_validate(RidgeCV(alphas=ALPHAS, cv=GroupedKFold(4)), controls, Y, groups, cv)
    flips = list(block_sign_flips(groups, 12, seed=5))
    folds = fit.folds

    def direct(reduced: str) -> np.ndarray:
        sums = []
        for signs in flips:
            Yp = resampled_responses(Y, signs, Y.mean(0))
            full = sklearn_oof(llm, Yp, splits, fit.alphas)
            if reduced == "mean":
                red = np.empty_like(Yp)
                for train, test in splits:
                    red[test] = Yp[train].mean(0)
            else:
                red = sklearn_oof(controls, Yp, splits, alone.alphas)
            D = group_sums((Yp - red) ** 2 - (Yp - full) ** 2, groups * 10 + folds)
            sums.append((D.sum(0), (D**2).sum(0)))
        T, V = np.array([s for s, _ in sums]), np.array([v for _, v in sums])
        return T.var(0, ddof=1) / V.mean(0)

    llm_smoother = FoldSmoother.ridge(llm, splits, fit.alphas)
    np.testing.assert_allclose(gain_inflation(Y, llm_smoother, None, groups, flips), direct("mean"), rtol=1e-7)
    np.testing.assert_allclose(gain_inflation(Y, llm_smoother, FoldSmoother.ridge(controls, splits, alone.alphas),
                                              groups, flips), direct("controls"), rtol=1e-7)
    # the refit null of p_r computes the same κ on the way (float32 products)
    refit = permutation_test(llm, Y, splits, fit.alphas, flips, blocks=groups)
    np.testing.assert_allclose(refit.gain_inflation, direct("mean"), rtol=1e-3)


def test_the_flips_are_widened_by_the_square_root_of_kappa_and_never_narrowed():
    groups, llm, controls, Y = design(2, targets=40)
    cv = GroupedKFold(5)
    fit = cross_validate(RidgeCV(alphas=ALPHAS, cv=GroupedKFold(4)), llm, Y, groups, cv)
    alone = cross_validate(RidgeCV(alphas=ALPHAS, cv=GroupedKFold(4)), controls, Y, groups, cv)
    kappa = np.linspace(0.5, 3.0, Y.shape[1])
    raw = sign_flip_test(Y, fit.predictions, fit.baseline, groups, fit.folds, 4000, seed=1)
    wide = sign_flip_test(Y, fit.predictions, fit.baseline, groups, fit.folds, 4000, seed=1, inflation=kappa)
    # the same flips: scaling the observed gain by 1/√κ is scaling the null by √κ; κ <= 1 changes nothing
    assert np.all(wide.p_r2[kappa <= 1] == raw.p_r2[kappa <= 1])
    positive = raw.r2 > 0
    assert np.all(wide.p_r2[positive] >= raw.p_r2[positive]) and np.any(wide.p_r2[positive & (kappa > 1.5)]
                                                                          > raw.p_r2[positive & (kappa > 1.5)])
    np.testing.assert_array_equal(wide.p_r, raw.p_r)  # r's diagnostic flips are untouched
    paired_raw = paired_sign_flip_test(Y, fit.predictions, alone.predictions, alone.baseline, groups, 4000, seed=1,
                                       folds=fit.folds)
    paired = paired_sign_flip_test(Y, fit.predictions, alone.predictions, alone.baseline, groups, 4000, seed=1,
                                   folds=fit.folds, inflation=kappa)
    gain = paired_raw.delta_r2 > 0
    assert np.all(paired.p[kappa <= 1] == paired_raw.p[kappa <= 1])
    assert np.all(paired.p[gain] >= paired_raw.p[gain])
    # a direct Gaussian reading: widening by √κ moves z = T / √V to z / √κ, so for large κ and a clear gain the
    # p-value rises toward the normal tail of z / √κ
    from scipy.stats import norm

    D = group_sums((Y - alone.predictions) ** 2 - (Y - fit.predictions) ** 2, groups * 10 + fit.folds)
    z = D.sum(0) / np.sqrt((D**2).sum(0))
    np.testing.assert_allclose(paired.p, norm.sf(z / np.sqrt(np.maximum(kappa, 1))), atol=0.03)


def test_kappa_of_the_stacked_joint_model_is_the_same_with_resamples_side_by_side(monkeypatch):
    """gain_inflation refits batches of resamples as extra columns (tiled penalties and stacking weights); a
    ragged batching and one resample at a time give the same κ."""
    import lmbrain.analysis.permutation as perm

    groups, llm, controls, Y = design(2)
    cv = GroupedKFold(5)
    splits = list(cv.split(llm, Y, groups))
    alone = cross_validate(RidgeCV(alphas=ALPHAS, cv=GroupedKFold(4)), controls, Y, groups, cv)
    joint = make_joint_estimator("stacked_simplex", [slice(0, 24), slice(24, 26)], ALPHAS, GroupedKFold(4))
    both = cross_validate(joint, np.hstack([llm, controls]), Y, groups, cv)
    full = StackedSmoother([FoldSmoother.ridge(llm, splits, both.alphas[:, 0]),
                            FoldSmoother.ridge(controls, splits, both.alphas[:, 1])], both.weights)
    reduced = FoldSmoother.ridge(controls, splits, alone.alphas)
    flips = list(block_sign_flips(groups, 23, seed=9))
    monkeypatch.setattr(perm, "RESAMPLE_COLUMNS", 1)
    one = gain_inflation(Y, full, reduced, groups, flips)
    monkeypatch.setattr(perm, "RESAMPLE_COLUMNS", 4 * Y.shape[1])  # batches of 4, the last of 3
    np.testing.assert_allclose(gain_inflation(Y, full, reduced, groups, iter(flips)), one, rtol=1e-10)
