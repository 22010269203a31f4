"""Outer CV and nested candidate selection: references, and no test-fold influence (instrumented)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
from sklearn.base import BaseEstimator, clone
from sklearn.linear_model import Ridge

from lmbrain.encoding import (
    OLS,
    ContiguousBlockSplit,
    GroupedKFold,
    RidgeCV,
    SplitError,
    cross_validate,
    cross_validate_select,
    pearson_r,
    r2_oos,
)

from .conftest import simulate

ALPHAS = np.logspace(-2, 5, 8)


class Spy(BaseEstimator):
    """Records the rows and groups every fit sees (column 0 of X is a sample id)."""

    log: ClassVar[list] = []

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha

    def fit(self, X, Y, groups=None):
        Spy.log.append((X[:, 0].astype(int).copy(), None if groups is None else groups.copy()))
        self.model_ = Ridge(alpha=self.alpha).fit(X[:, 1:], Y)
        return self

    def predict(self, X):
        return self.model_.predict(X[:, 1:])


def test_cross_validate_equals_manual_loop(data):
    X, Y, groups = data
    res = cross_validate(RidgeCV(alphas=ALPHAS, cv=3), X, Y, groups, cv=4)
    splits = list(GroupedKFold(4).split(X, Y, groups))
    pred = np.empty_like(Y)
    base = np.empty_like(Y)
    alphas = []
    for train, test in splits:
        est = RidgeCV(alphas=ALPHAS, cv=3).fit(X[train], Y[train], groups[train])
        pred[test] = est.predict(X[test])
        base[test] = Y[train].mean(0)
        alphas.append(est.alpha_)
    np.testing.assert_allclose(res.predictions, pred, rtol=1e-12)
    np.testing.assert_allclose(res.baseline, base, rtol=1e-12)
    np.testing.assert_array_equal(res.alphas, np.stack(alphas))
    r_folds = np.stack([pearson_r(Y[test], pred[test]) for _, test in splits])
    np.testing.assert_allclose(res.r_folds, r_folds, rtol=1e-12)
    np.testing.assert_allclose(res.r, r_folds.mean(0), rtol=1e-12)  # r: per-fold r averaged over folds
    np.testing.assert_allclose(res.r_pooled, pearson_r(Y, pred), rtol=1e-12)
    np.testing.assert_allclose(res.r2, r2_oos(Y, pred, base), rtol=1e-12)  # R²: pooled
    for k, (_, test) in enumerate(splits):
        assert np.all(res.folds[test] == k)
    assert res.r_folds.shape == (4, Y.shape[1])
    assert res.r2[0] < 0.05 < res.r2[-1], "the no-signal target scores ~0, the signal one above"


class InterceptOnly(BaseEstimator):
    """Predicts the training mean of every target (no features used)."""

    def fit(self, X, Y):
        self.mean_ = np.asarray(Y, dtype=float).mean(0)
        return self

    def predict(self, X):
        return np.tile(self.mean_, (len(X), 1))


def test_fold_mean_r_is_unbiased_without_signal_where_pooled_r_is_not():
    """No-signal predictions: per-fold r averaged over folds is ~0, the pooled r is negative (fold means)."""
    r, r_pooled, r_shrunk, r_shrunk_pooled = [], [], [], []
    for seed in range(5):  # 5 x 200 = 1000 targets
        rng = np.random.default_rng(seed)
        n_groups, size, t = 30, 4, 200
        groups = np.repeat(np.arange(n_groups), size)
        # group means differ (passages), so the test folds' means differ, too
        Y = rng.normal(size=(len(groups), t)) + np.repeat(rng.normal(size=(n_groups, t)), size, axis=0)
        X = rng.normal(size=(len(groups), 10))  # pure noise features
        noise = cross_validate(RidgeCV(cv=GroupedKFold(4)), X, Y, groups, GroupedKFold(5))
        r.append(noise.r)
        r_pooled.append(noise.r_pooled)
        # a nearly intercept-only model (all but the training mean shrunk away), like a weak control
        shrunk = cross_validate(RidgeCV(alphas=[1e6], cv=GroupedKFold(4)), X, Y, groups, GroupedKFold(5))
        r_shrunk.append(shrunk.r)
        r_shrunk_pooled.append(shrunk.r_pooled)
        # intercept only: no association in any fold (constant predictions score r = 0), pooled r is negative
        intercept = cross_validate(InterceptOnly(), X, Y, groups, GroupedKFold(5))
        assert (intercept.r == 0).all() and (intercept.r_folds == 0).all()
        assert intercept.r_pooled.mean() < -0.02
        np.testing.assert_allclose(intercept.r2, 0.0, atol=1e-12)
    r, r_pooled, r_shrunk, r_shrunk_pooled = map(np.concatenate, (r, r_pooled, r_shrunk, r_shrunk_pooled))
    assert len(r) >= 1000 and np.isfinite(r).all()
    assert abs(r.mean()) <= 0.02 and abs(r_shrunk.mean()) <= 0.02
    assert r_pooled.mean() < -0.02 and r_shrunk_pooled.mean() < -0.02  # the bias that fold-mean r removes


def test_fold_mean_r_skips_folds_where_a_target_is_constant():
    X, Y, groups = simulate(n=120, p=5, t=3, seed=3)
    splits = list(GroupedKFold(4).split(X, Y, groups))
    Y[splits[1][1], 1] = 7.0  # target 1 is constant in test fold 1
    Y[:, 2] = 5.0  # target 2 is constant everywhere
    res = cross_validate(RidgeCV(alphas=ALPHAS, cv=3), X, Y, groups, cv=splits)
    assert np.isnan(res.r_folds[1, 1]) and np.isfinite(res.r_folds[[0, 2, 3], 1]).all()
    assert res.r[1] == pytest.approx(res.r_folds[[0, 2, 3], 1].mean(), rel=1e-12)
    assert np.isfinite(res.r[0]) and np.isnan(res.r[2])


def test_no_test_row_reaches_fit():
    """Instrumented: every fit sees only its training rows and their groups, never a test row."""
    X, Y, groups = simulate(n=60, p=4, t=2, seed=1)
    Xid = np.hstack([np.arange(60)[:, None], X])
    Spy.log = []
    cross_validate(Spy(), Xid, Y, groups, cv=GroupedKFold(3))
    splits = list(GroupedKFold(3).split(X, Y, groups))
    assert len(Spy.log) == 3
    for (rows, seen_groups), (train, test) in zip(Spy.log, splits, strict=True):
        np.testing.assert_array_equal(np.sort(rows), train)
        np.testing.assert_array_equal(seen_groups, groups[train])
        assert not np.intersect1d(rows, test).size


def test_test_fold_never_influences_alpha_or_scaling(data):
    """Perturbation: wild test-fold values leave that fold's alphas and predictions unchanged."""
    X, Y, groups = data
    splits = list(GroupedKFold(4).split(X, Y, groups))
    ref = cross_validate(RidgeCV(alphas=ALPHAS, cv=3), X, Y, groups, cv=splits)
    rng = np.random.default_rng(0)
    for k, (_, test) in enumerate(splits):
        X2, Y2 = X.copy(), Y.copy()
        X2[test] = X2[test] * 1e3 + 1e4  # would wreck standardisation if test rows were used
        Y2[test] = rng.standard_normal(Y2[test].shape) * 1e3  # would change alpha choice
        res = cross_validate(RidgeCV(alphas=ALPHAS, cv=3), X2, Y2, groups, cv=splits)
        np.testing.assert_array_equal(res.alphas[k], ref.alphas[k])
        est = RidgeCV(alphas=ALPHAS, cv=3).fit(X2[splits[k][0]], Y2[splits[k][0]], groups[splits[k][0]])
        np.testing.assert_allclose(est.predict(X[test]), ref.predictions[test], rtol=1e-9, atol=1e-9)


def test_cross_validate_requires_groups_with_int_cv(data):
    X, Y, _ = data
    with pytest.raises(SplitError, match="needs groups"):
        cross_validate(RidgeCV(), X, Y, None, cv=5)
    # an explicit time-series splitter works without groups
    res = cross_validate(RidgeCV(alphas=ALPHAS, cv=3), X, Y, None, cv=ContiguousBlockSplit(4, gap=2))
    assert np.all(res.folds >= 0)


def _layers(seed: int = 0):
    """Three candidate 'layers': only 'mid' carries the signal."""
    rng = np.random.default_rng(seed)
    n = 120
    groups = np.repeat(np.arange(12), 10)
    mid = rng.standard_normal((n, 10))
    Y = mid @ rng.standard_normal((10, 4)) + rng.standard_normal((n, 4))
    late = mid[:, :2] + rng.standard_normal((n, 2))
    cands = {"early": rng.standard_normal((n, 10)), "mid": mid, "late": late}
    return cands, Y, groups


def test_select_equals_brute_force_nested_search():
    cands, Y, groups = _layers()
    est = RidgeCV(alphas=ALPHAS, cv=3)
    res = cross_validate_select(cands, Y, groups, cv=4, estimator=est)
    splits = list(GroupedKFold(4).split(Y, Y, groups))
    names = list(cands)
    for k, (train, test) in enumerate(splits):
        inner = [np.mean(clone(est).inner_cv_scores(cands[m][train], Y[train], groups[train]).max(0))
                 for m in names]
        np.testing.assert_allclose(res.inner_scores_folds[k], inner, rtol=1e-12)
        best = names[int(np.argmax(inner))]
        assert res.selected[k] == best
        ref = clone(est).fit(cands[best][train], Y[train], groups[train])
        np.testing.assert_allclose(res.predictions[test], ref.predict(cands[best][test]), rtol=1e-10)
        np.testing.assert_array_equal(res.alphas[k], ref.alpha_)
    assert res.selected == ["mid"] * 4
    assert max(res.inner_scores, key=res.inner_scores.get) == "mid"


def test_select_ignores_the_test_fold():
    cands, Y, groups = _layers(1)
    splits = list(GroupedKFold(4).split(Y, Y, groups))
    ref = cross_validate_select(cands, Y, groups, cv=splits, estimator=RidgeCV(alphas=ALPHAS, cv=3))
    test = splits[2][1]
    bad = {m: x.copy() for m, x in cands.items()}
    bad["early"][test] = Y[test, :1] * 100  # 'early' would win if the test fold were looked at
    Y2 = Y.copy()
    Y2[test] *= -5
    res = cross_validate_select(bad, Y2, groups, cv=splits, estimator=RidgeCV(alphas=ALPHAS, cv=3))
    assert res.selected[2] == ref.selected[2]
    np.testing.assert_allclose(res.inner_scores_folds[2], ref.inner_scores_folds[2], rtol=1e-12)


def test_select_with_generic_estimator_uses_nested_cross_validate():
    cands, Y, groups = _layers(2)
    res = cross_validate_select(cands, Y, groups, cv=3, estimator=OLS(), inner_cv=3, criterion="pearson")
    splits = list(GroupedKFold(3).split(Y, Y, groups))
    for k, (train, _) in enumerate(splits):
        inner = [np.nanmean(cross_validate(OLS(), cands[m][train], Y[train], groups[train], 3).r)
                 for m in cands]
        np.testing.assert_allclose(res.inner_scores_folds[k], inner, rtol=1e-12)
    assert res.alphas is None and res.selected == ["mid"] * 3


def test_each_candidate_from_kept_inner_scores_equals_separate_cross_validate():
    from lmbrain.encoding import cross_validate_each

    rng = np.random.default_rng(11)
    n, t = 120, 5
    groups = np.repeat(np.arange(30), 4)
    candidates = {f"layer={k}": rng.normal(size=(n, 10 + 5 * k)) for k in range(3)}
    Y = candidates["layer=1"][:, :3] @ rng.normal(size=(3, t)) + rng.normal(size=(n, t))
    ridge = RidgeCV(alphas=ALPHAS, cv=GroupedKFold(4))
    cv = GroupedKFold(5)
    selection = cross_validate_select(candidates, Y, groups, cv, ridge, keep_cv_scores=True)
    fast = cross_validate_each(candidates, Y, groups, cv, ridge, selection.cv_scores_folds)
    for name, X in candidates.items():
        slow = cross_validate(ridge, X, Y, groups, cv)
        np.testing.assert_allclose(fast[name].predictions, slow.predictions, rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(fast[name].alphas, slow.alphas)
        np.testing.assert_allclose(fast[name].r2, slow.r2, rtol=1e-10)
