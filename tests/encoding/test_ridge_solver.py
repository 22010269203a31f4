"""The ridge solvers against scikit-learn, himalaya and a brute-force grouped search."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from lmbrain.encoding import inner_cv as inner_cv_mod
from lmbrain.encoding.inner_cv import ridge_cv_scores, select_alphas, solve_ridge_cv
from lmbrain.encoding.ridge import ridge_fit
from lmbrain.errors import LmbrainError

from .conftest import simulate

ALPHAS = np.logspace(-2, 5, 8)


def _sk_model(alpha, fit_intercept: bool, standardize: bool):
    ridge = Ridge(alpha=alpha, fit_intercept=fit_intercept, solver="svd")
    return make_pipeline(StandardScaler(with_mean=fit_intercept), ridge) if standardize else ridge


def _brute_force_scores(X, Y, splits, alphas, scoring, fit_intercept=True, standardize=True):
    out = np.zeros((len(splits), len(alphas), Y.shape[1]))
    for f, (tr, te) in enumerate(splits):
        for a, alpha in enumerate(alphas):
            pred = _sk_model(alpha, fit_intercept, standardize).fit(X[tr], Y[tr]).predict(X[te])
            yt = Y[te]
            if scoring == "r2":
                out[f, a] = 1 - ((yt - pred) ** 2).sum(0) / ((yt - yt.mean(0)) ** 2).sum(0)
            elif scoring == "neg_mse":
                out[f, a] = -((yt - pred) ** 2).mean(0)
            else:
                out[f, a] = [np.corrcoef(yt[:, j], pred[:, j])[0, 1] for j in range(Y.shape[1])]
    return out


@pytest.mark.parametrize("shape", [(80, 12), (25, 60)])
@pytest.mark.parametrize("solver", ["gram", "svd", "kernel"])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("standardize", [True, False])
def test_fixed_alpha_equals_sklearn_ridge(shape, solver, fit_intercept, standardize):
    n, p = shape
    X, Y, _ = simulate(n=n + 10, p=p, t=4, seed=1)
    Xtr, Ytr, Xte = X[:n], Y[:n], X[n:]
    sk = _sk_model(3.0, fit_intercept, standardize).fit(Xtr, Ytr)
    factors = ridge_fit(Xtr, Ytr, 3.0, solver=solver, fit_intercept=fit_intercept, standardize=standardize)
    np.testing.assert_allclose(factors.predict(Xte), sk.predict(Xte), rtol=1e-8, atol=1e-8)
    # the materialised coefficients give the same predictions
    via_coef = Xte @ factors.coef() + factors.intercept()
    np.testing.assert_allclose(via_coef, sk.predict(Xte), rtol=1e-8, atol=1e-8)


def test_per_target_alphas_equal_sklearn_alpha_array():
    X, Y, _ = simulate(n=60, p=10, t=5, seed=2)
    alphas = np.array([0.1, 10.0, 10.0, 1e3, 0.5])
    sk = Ridge(alpha=alphas).fit(X, Y)
    factors = ridge_fit(X, Y, alphas, standardize=False)
    np.testing.assert_allclose(factors.coef(), sk.coef_.T, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(factors.intercept(), sk.intercept_, rtol=1e-8, atol=1e-10)


def test_rank_deficient_design_matches_sklearn():
    X, Y, _ = simulate(n=50, p=6, t=3, seed=3)
    X = np.hstack([X, X[:, :3] * 2.0])  # duplicated directions: X'X is singular
    sk = Ridge(alpha=0.5).fit(X, Y)
    for solver in ("svd", "kernel"):
        factors = ridge_fit(X, Y, 0.5, solver=solver, standardize=False)
        np.testing.assert_allclose(factors.predict(X), sk.predict(X), rtol=1e-7, atol=1e-7)


@pytest.mark.parametrize("scoring", ["r2", "neg_mse", "pearson"])
@pytest.mark.parametrize("solver", ["gram", "svd", "kernel"])
def test_cv_scores_equal_brute_force_grouped_search(scoring, solver):
    X, Y, groups = simulate(n=96, p=20, t=5, seed=4)
    splits = list(GroupKFold(4).split(X, Y, groups))
    fast = ridge_cv_scores(X, Y, ALPHAS, splits, scoring=scoring, solver=solver, n_targets_batch=2)
    slow = _brute_force_scores(X, Y, splits, ALPHAS, scoring)
    np.testing.assert_allclose(fast, slow, rtol=1e-7, atol=1e-9)
    # hence the chosen alphas are those of the brute-force search
    np.testing.assert_array_equal(select_alphas(fast.mean(0), ALPHAS), np.argmax(slow.mean(0), axis=0))


@pytest.mark.parametrize("project_first", [True, False])
@pytest.mark.parametrize("shape", [(200, 5), (40, 30)])
def test_both_contraction_orders_agree(monkeypatch, project_first, shape):
    X, Y, groups = simulate(n=shape[0], p=shape[1], t=4, seed=5, n_groups=10)
    splits = list(GroupKFold(5).split(X, Y, groups))
    monkeypatch.setattr(inner_cv_mod, "_project_first", lambda *a: project_first)
    monkeypatch.setattr(inner_cv_mod, "_MATRIX_BUDGET", 1)  # and one alpha per batch
    slow = _brute_force_scores(X, Y, splits, ALPHAS, "r2")
    np.testing.assert_allclose(ridge_cv_scores(X, Y, ALPHAS, splits), slow, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("other", ["kernel", "gram"])
def test_svd_kernel_and_gram_paths_agree(other):
    for n, p in [(70, 30), (30, 70)]:
        X, Y, groups = simulate(n=n, p=p, t=4, seed=6, n_groups=10)
        splits = list(GroupKFold(5).split(X, Y, groups))
        a = solve_ridge_cv(X, Y, ALPHAS, splits, solver="svd")
        b = solve_ridge_cv(X, Y, ALPHAS, splits, solver=other)
        np.testing.assert_allclose(a.fold_scores, b.fold_scores, rtol=1e-7, atol=1e-9)
        np.testing.assert_array_equal(a.alphas, b.alphas)
        np.testing.assert_allclose(a.factors.predict(X), b.factors.predict(X), rtol=1e-7, atol=1e-8)


def test_gram_path_is_accurate_on_rank_deficient_designs():
    """Duplicated and collinear columns (rank < p): the covariance eigh drops the null directions and
    matches the SVD path to 1e-8 at the smallest alpha of the grid."""
    rng = np.random.default_rng(4)
    base = rng.standard_normal((200, 20))
    X = np.hstack([base, base[:, :5], base @ rng.standard_normal((20, 15))])
    Y = base[:, :4] @ rng.standard_normal((4, 3)) + rng.standard_normal((200, 3))
    for alpha in (1e-2, 1e2):
        svd = ridge_fit(X, Y, alpha, solver="svd").predict(X)
        gram = ridge_fit(X, Y, alpha, solver="gram").predict(X)
        np.testing.assert_allclose(gram, svd, rtol=1e-8, atol=1e-8)


def test_target_batches_do_not_change_results(data):
    X, Y, groups = data
    splits = list(GroupKFold(4).split(X, Y, groups))
    whole = ridge_cv_scores(X, Y, ALPHAS, splits)
    for batch in (1, 4):
        np.testing.assert_allclose(ridge_cv_scores(X, Y, ALPHAS, splits, n_targets_batch=batch), whole,
                                   rtol=1e-12, atol=1e-12)


def test_float32_close_to_float64(data):
    X, Y, groups = data
    splits = list(GroupKFold(4).split(X, Y, groups))
    s64 = solve_ridge_cv(X, Y, ALPHAS, splits)
    s32 = solve_ridge_cv(X.astype(np.float32), Y.astype(np.float32), ALPHAS, splits)
    assert s32.factors.predict(X.astype(np.float32)).dtype == np.float32
    np.testing.assert_allclose(s32.cv_scores, s64.cv_scores, atol=1e-4)
    np.testing.assert_allclose(s32.factors.predict(X), s64.factors.predict(X), rtol=1e-3, atol=1e-3)


def test_torch_backend_equals_numpy(data):
    X, Y, groups = data
    splits = list(GroupKFold(4).split(X, Y, groups))
    ref = solve_ridge_cv(X, Y, ALPHAS, splits)
    got = solve_ridge_cv(X, Y, ALPHAS, splits, backend="torch_cpu")
    np.testing.assert_allclose(got.fold_scores, ref.fold_scores, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(got.factors.coef(), ref.factors.coef(), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(got.factors.predict(X), ref.factors.predict(X), rtol=1e-8, atol=1e-10)


def test_same_alphas_and_predictions_as_himalaya():
    from himalaya.ridge import RidgeCV as HimalayaRidgeCV
    from himalaya.scoring import r2_score

    X, Y, groups = simulate(n=150, p=40, t=30, seed=7, n_groups=15)
    splits = list(GroupKFold(5).split(X, Y, groups))
    ours = solve_ridge_cv(X, Y, ALPHAS, splits, standardize=False)
    theirs = HimalayaRidgeCV(alphas=ALPHAS, cv=splits, fit_intercept=True,
                             solver_params=dict(score_func=r2_score)).fit(X, Y)
    np.testing.assert_allclose(ours.alphas, theirs.best_alphas_, rtol=1e-6)
    np.testing.assert_allclose(ours.factors.predict(X), theirs.predict(X), rtol=1e-8, atol=1e-8)


def test_inner_folds_standardise_on_their_training_rows_only(monkeypatch):
    """Instrumented: the matrix each fold decomposes is scaled with that fold's training rows alone."""
    X, Y, groups = simulate(n=60, p=8, t=2, seed=8)
    splits = list(GroupKFold(3).split(X, Y, groups))
    seen = []
    real = inner_cv_mod.decompose
    monkeypatch.setattr(inner_cv_mod, "decompose", lambda Xtr, *a: seen.append(Xtr.copy()) or real(Xtr, *a))
    ridge_cv_scores(X, Y, ALPHAS, splits)
    assert len(seen) == len(splits)
    for Xtr, (train, _) in zip(seen, splits, strict=True):
        expected = (X[train] - X[train].mean(0)) / X[train].std(0)
        np.testing.assert_allclose(Xtr, expected, rtol=1e-12, atol=1e-12)


def test_bad_alphas_and_scoring_raise(data):
    X, Y, groups = data
    splits = list(GroupKFold(4).split(X, Y, groups))
    with pytest.raises(LmbrainError, match="alphas"):
        ridge_cv_scores(X, Y, [0.0, 1.0], splits)
    with pytest.raises(LmbrainError, match="scoring"):
        ridge_cv_scores(X, Y, ALPHAS, splits, scoring="accuracy")
    with pytest.raises(LmbrainError, match="solver"):
        ridge_fit(X, Y, 1.0, solver="cholesky")


@pytest.mark.parametrize("solver", ["gram", "svd", "kernel"])
def test_float32_accurate_on_ill_conditioned_design(solver):
    """Strongly correlated features, p ~ n, small alpha: float32 stays close to float64 on both paths."""
    rng = np.random.default_rng(9)
    n, p = 150, 160
    X = rng.standard_normal((n, 10)) @ rng.standard_normal((10, p)) * 30 + 0.3 * rng.standard_normal((n, p))
    Y = X @ rng.standard_normal((p, 3)) / 30 + rng.standard_normal((n, 3))
    for alpha in (0.01, 1.0):
        f64 = ridge_fit(X, Y, alpha, solver=solver, standardize=False).predict(X)
        f32 = ridge_fit(X.astype(np.float32), Y.astype(np.float32), alpha, solver=solver,
                        standardize=False).predict(X)
        assert np.max(np.abs(f32 - f64)) / np.max(np.abs(f64)) < 1e-4


def _gapped_splits(n, n_folds=5, gap=3):
    """Contiguous validation blocks whose training rows leave a gap on both sides (time-series inner CV)."""
    idx = np.arange(n)
    return [(np.setdiff1d(idx, np.arange(max(0, f[0] - gap), min(n, f[-1] + gap + 1))), f)
            for f in np.array_split(idx, n_folds)]


def _sklearn_once_scaled(X, Y, alphas, splits, fit_intercept=True):
    """Columns z-scored once on all rows, then scikit-learn's Ridge refitted on every split's training rows."""
    from sklearn.linear_model import Ridge

    Xs = ((X - X.mean(0)) if fit_intercept else X) / X.std(0)  # without intercept: scaled, not centred
    scores = np.empty((len(splits), len(alphas), Y.shape[1]))
    preds = []
    for f, (train, test) in enumerate(splits):
        for a, alpha in enumerate(alphas):
            p = Ridge(alpha=alpha, fit_intercept=fit_intercept).fit(Xs[train], Y[train]).predict(Xs[test])
            d = Y[test] - Y[test].mean(0)
            scores[f, a] = 1 - ((p - Y[test]) ** 2).sum(0) / (d * d).sum(0)
            preds.append(p)
    return scores, preds


def _scaled_problem(seed: int, shape: tuple[int, int], n_targets: int):
    """Features of mixed scales and offsets, targets from four of them plus noise (and the generator, for more)."""
    rng = np.random.default_rng(seed)
    n, p = shape
    X = rng.normal(size=(n, p)) * rng.uniform(0.5, 3, p) + rng.uniform(-2, 2, p)
    Y = X[:, :4] @ rng.normal(size=(4, n_targets)) + 2 * rng.normal(size=(n, n_targets)) + 5.0
    return X, Y, rng


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("shape", [(240, 30), (90, 160)], ids=["gram", "kernel"])
def test_leave_out_equals_refitting_each_split(shape, fit_intercept):
    """The deletion formula gives the predictions of ridge refitted without each split's held-out rows (gaps
    included), for every alpha; the reference is scikit-learn on once-scaled features."""
    X, Y, _ = _scaled_problem(3, shape, 3)
    n = shape[0]
    alphas = 10.0 ** np.arange(-1, 6)
    for splits in (_gapped_splits(n), list(GroupKFold(4).split(X, Y, np.arange(n) // 6))):
        expected, _ = _sklearn_once_scaled(X, Y, alphas, splits, fit_intercept)
        got = ridge_cv_scores(X, Y, alphas, splits, method="leave_out", fit_intercept=fit_intercept)
        np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-9)
        got_b = ridge_cv_scores(X, Y, alphas, splits, method="leave_out", fit_intercept=fit_intercept,
                                n_targets_batch=1)
        np.testing.assert_allclose(got_b, got, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("shape", [(240, 30), (90, 160), (300, 280)], ids=["gram", "kernel", "square"])
def test_leave_out_routes_each_split_to_the_cheaper_exact_path(shape, fit_intercept, monkeypatch):
    """With half the rows held out (2 folds) the splits are refitted on the once-scaled rows instead of using
    the deletion formula; either route gives the same scores (and scikit-learn's), including mixed routes."""
    import lmbrain.encoding.inner_cv as inner_cv

    X, Y, _ = _scaled_problem(8, shape, 3)
    n, p = shape
    alphas = 10.0 ** np.arange(-1, 6)
    two = list(GroupKFold(2).split(X, Y, np.arange(n) // 6))
    five = list(GroupKFold(5).split(np.zeros((300, 1)), None, np.arange(300) // 6))
    assert inner_cv._deletion_splits(n, p, two, len(alphas), 3, memoised=False) == [False, False]
    assert all(inner_cv._deletion_splits(300, 280, five, len(alphas), 3, memoised=True))
    expected, _ = _sklearn_once_scaled(X, Y, alphas, two, fit_intercept)
    hybrid = ridge_cv_scores(X, Y, alphas, two, method="leave_out", fit_intercept=fit_intercept)
    np.testing.assert_allclose(hybrid, expected, rtol=1e-8, atol=1e-9)
    for route in ([True, True], [True, False], [False, True]):
        monkeypatch.setattr(inner_cv, "_deletion_splits", lambda *a, route=route, **k: list(route))
        got = ridge_cv_scores(X, Y, alphas, two, method="leave_out", fit_intercept=fit_intercept)
        np.testing.assert_allclose(got, hybrid, rtol=1e-8, atol=1e-9)


def test_leave_out_predictions_equal_refits_and_torch():
    from sklearn.linear_model import Ridge

    from lmbrain.encoding.inner_cv import ridge_cv_predictions

    rng = np.random.default_rng(4)
    X = rng.normal(size=(150, 20)) * 3 + 1
    Y = X[:, :3] @ rng.normal(size=(3, 4)) + rng.normal(size=(150, 4))
    alphas = np.array([0.1, 10.0, 1000.0])
    index = np.array([0, 2, 1, 2])
    splits = _gapped_splits(150, 5, 2)
    pred, base = ridge_cv_predictions(X, Y, alphas, index, splits, method="leave_out")
    Xs = (X - X.mean(0)) / X.std(0)
    for train, test in splits:
        for t in range(4):
            ref = Ridge(alpha=alphas[index[t]]).fit(Xs[train], Y[train, t]).predict(Xs[test])
            np.testing.assert_allclose(pred[test, t], ref, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(base[test], np.broadcast_to(Y[train].mean(0), (len(test), 4)))
    torch_pred, _ = ridge_cv_predictions(X, Y, alphas, index, splits, method="leave_out", backend="torch_cpu")
    np.testing.assert_allclose(torch_pred, pred, rtol=1e-9, atol=1e-9)
    torch_scores = ridge_cv_scores(X, Y, alphas, splits, method="leave_out", backend="torch_cpu")
    np.testing.assert_allclose(torch_scores, ridge_cv_scores(X, Y, alphas, splits, method="leave_out"),
                               rtol=1e-9, atol=1e-9)


def test_decomposition_cache_is_by_content_and_read_only(monkeypatch):
    from lmbrain.encoding.backend import get_backend
    from lmbrain.encoding.ridge import DECOMPOSITIONS, ridge_fit, standardized_decomposition

    rng = np.random.default_rng(5)
    X = rng.normal(size=(60, 8))
    Y = rng.normal(size=(60, 2))
    DECOMPOSITIONS.clear()
    first = standardized_decomposition(X, True, True, "auto", get_backend("numpy"))
    again = standardized_decomposition(X.copy(), True, True, "auto", get_backend("numpy"))
    assert again[2] is first[2]  # the same content hits the cache
    assert not first[2].B.flags.writeable
    other = standardized_decomposition(X + 1e-9, True, True, "auto", get_backend("numpy"))
    assert other[2] is not first[2]  # any change of content misses
    X32 = X.astype(np.float32)  # float32 features and their float64 upcast (e.g. next to controls) share one entry
    narrow = standardized_decomposition(X32, True, True, "auto", get_backend("numpy"))
    assert standardized_decomposition(X32.astype(np.float64), True, True, "auto", get_backend("numpy"))[2] is narrow[2]
    assert narrow[2] is not first[2] and narrow[2].B.dtype == np.float64
    cached = ridge_fit(X, Y, 2.0).predict(X)
    monkeypatch.setenv("LMBRAIN_DECOMPOSITION_CACHE_MB", "0")
    DECOMPOSITIONS.clear()
    np.testing.assert_array_equal(ridge_fit(X, Y, 2.0).predict(X), cached)
    assert not DECOMPOSITIONS.items
    with pytest.raises(LmbrainError, match="unknown CV method"):
        ridge_cv_scores(X, Y, [1.0], _gapped_splits(60), method="gcv")


def test_leave_out_scores_are_memoised_by_content_per_target(monkeypatch):
    """A second scoring of the same rows, splits and target columns (e.g. the joint model's LLM band after the
    layer selection) is read from the memo, also for a subset of the targets; any change of content recomputes."""
    import lmbrain.encoding.inner_cv as inner_cv
    import lmbrain.encoding.ridge as ridge

    rng = np.random.default_rng(6)
    X = rng.normal(size=(80, 12))
    Y = X[:, :2] @ rng.normal(size=(2, 4)) + rng.normal(size=(80, 4))
    alphas = 10.0 ** np.arange(-1, 4)
    splits = _gapped_splits(80)
    ridge.clear_memos()
    full = ridge_cv_scores(X, Y, alphas, splits, method="leave_out")
    computed = []
    real = inner_cv._leave_out_compute
    monkeypatch.setattr(inner_cv, "_leave_out_compute", lambda *a, **k: computed.append(1) or real(*a, **k))
    np.testing.assert_array_equal(ridge_cv_scores(X.copy(), Y[:, [2, 0]].copy(), alphas, splits,
                                                  method="leave_out"), full[:, :, [2, 0]])
    assert not computed
    Y2 = Y.copy()
    Y2[0, 1] += 1e-9
    changed = ridge_cv_scores(X, Y2, alphas, splits, method="leave_out")
    assert computed and not np.array_equal(changed[:, :, 1], full[:, :, 1])
    ridge_cv_scores(X, Y, alphas[:3], splits, method="leave_out")  # other alphas: recomputed
    ridge_cv_scores(X, Y, alphas, splits[:4], method="leave_out")  # other splits: recomputed
    assert len(computed) == 3
    monkeypatch.setenv("LMBRAIN_DECOMPOSITION_CACHE_MB", "0")
    ridge.clear_memos()
    np.testing.assert_allclose(ridge_cv_scores(X, Y, alphas, splits, method="leave_out"), full, rtol=1e-12)
    assert not ridge.CV_SCORES.items


@pytest.mark.parametrize("shape", [(120, 30), (90, 160)], ids=["gram", "kernel"])
def test_leave_out_with_more_targets_than_held_out_rows_equals_sklearn(shape, monkeypatch):
    """With at least as many targets as held-out rows the deletion matrices are inverted once per split and the
    alphas' scaled bases stacked into one product: scores and predictions still equal scikit-learn's refits (and
    the few-targets path, target by target; torch too). The router then refits where the shared projection B'Y of
    thousands of targets costs more than the deletion saves."""
    import lmbrain.encoding.inner_cv as inner_cv
    from lmbrain.encoding.inner_cv import ridge_cv_predictions

    X, Y, rng = _scaled_problem(21, shape, 40)
    n = shape[0]
    alphas = 10.0 ** np.arange(-1, 6)
    splits = list(GroupKFold(5).split(X, Y, np.arange(n) // 6))
    assert Y.shape[1] >= max(len(test) for _, test in splits)
    monkeypatch.setattr(inner_cv, "_deletion_splits", lambda *a, **k: [True] * len(a[2]))
    expected, _ = _sklearn_once_scaled(X, Y, alphas, splits)
    many = ridge_cv_scores(X, Y, alphas, splits, method="leave_out")
    np.testing.assert_allclose(many, expected, rtol=1e-8, atol=1e-9)
    one_by_one = np.concatenate([ridge_cv_scores(X, Y[:, [t]], alphas, splits, method="leave_out")
                                 for t in range(Y.shape[1])], axis=-1)
    np.testing.assert_allclose(many, one_by_one, rtol=1e-10, atol=1e-10)
    index = rng.integers(0, len(alphas), size=Y.shape[1])
    pred, _ = ridge_cv_predictions(X, Y, alphas, index, splits, method="leave_out")
    single = np.column_stack([ridge_cv_predictions(X, Y[:, [t]], alphas, index[[t]], splits, method="leave_out")[0]
                              for t in range(Y.shape[1])])
    np.testing.assert_allclose(pred, single, rtol=1e-10, atol=1e-10)
    torch_scores = ridge_cv_scores(X, Y, alphas, splits, method="leave_out", backend="torch_cpu")
    np.testing.assert_allclose(torch_scores, many, rtol=1e-9, atol=1e-9)
    monkeypatch.undo()
    five = list(GroupKFold(5).split(np.zeros((500, 1)), None, np.arange(500) // 4))
    assert all(inner_cv._deletion_splits(500, 768, five, 9, 1, memoised=False))
    assert not any(inner_cv._deletion_splits(500, 768, five, 9, 10_000, memoised=False))
