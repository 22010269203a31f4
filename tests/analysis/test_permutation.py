import numpy as np
import pytest

from lmbrain.analysis.permutation import cv_predictions, fold_operators, permutation_test
from lmbrain.analysis.resamples import circular_shifts, group_permutations
from lmbrain.encoding import GroupedKFold, RidgeCV, cross_validate


def test_group_permutations_move_whole_groups_among_equal_sizes():
    groups = np.repeat(np.arange(12), [4, 4, 4, 3, 3, 3, 4, 4, 3, 4, 3, 4])
    for order in group_permutations(groups, 20, seed=1):
        assert sorted(order) == list(range(len(groups)))
        moved = groups[order]
        for g in np.unique(groups):
            src = np.unique(moved[groups == g])
            assert len(src) == 1, "a group must receive exactly one source group"
            assert (groups == src[0]).sum() == (groups == g).sum()
            assert np.all(np.diff(order[groups == g]) == 1), "order inside a group is kept"


def test_circular_shifts_stay_within_runs_and_shift_enough():
    runs = np.repeat([0, 1], [50, 40])
    for order in circular_shifts(90, 20, runs=runs, min_shift=5, seed=2):
        assert (runs[order] == runs).all()
        shift = (order[:50] - np.arange(50)) % 50
        assert len(np.unique(shift)) == 1 and 5 <= shift[0] <= 45


def test_fold_operators_reproduce_the_ridge_engine_predictions():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 15)) * rng.uniform(0.5, 3, size=15) + 2.0
    Y = X[:, :3] @ rng.normal(size=(3, 6)) + rng.normal(size=(120, 6)) + 5.0
    groups = np.repeat(np.arange(30), 4)
    cv = GroupedKFold(5)
    result = cross_validate(RidgeCV(alphas=np.logspace(-2, 4, 7), cv=GroupedKFold(4)), X, Y, groups, cv)
    splits = list(cv.split(X, Y, groups))
    ops = fold_operators(X, splits, result.alphas)
    pred, base = cv_predictions(Y, splits, ops, result.alphas)
    np.testing.assert_allclose(pred, result.predictions, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(base, result.baseline, rtol=1e-10)


def test_null_false_positive_rate_is_nominal_over_1000_targets():
    rng = np.random.default_rng(3)
    n, p, t = 160, 20, 1000
    groups = np.repeat(np.arange(40), 4)
    X = rng.normal(size=(n, p))
    # passage-level autocorrelated noise, unrelated to X
    Y = rng.normal(size=(n, t)) + np.repeat(rng.normal(size=(40, t)), 4, axis=0)
    cv = GroupedKFold(5)
    splits = list(cv.split(X, Y, groups))
    alphas = np.full((5, t), 100.0)
    result = permutation_test(X, Y, splits, alphas, group_permutations(groups, 199, seed=4))
    fpr = float((result.p_r < 0.05).mean())
    assert 0.03 <= fpr <= 0.07, fpr
    assert result.n_permutations == 199


def test_a_real_effect_is_detected():
    rng = np.random.default_rng(5)
    n, p = 160, 10
    groups = np.repeat(np.arange(40), 4)
    X = rng.normal(size=(n, p))
    Y = X @ rng.normal(size=(p, 20)) * 0.4 + rng.normal(size=(n, 20))
    splits = list(GroupedKFold(5).split(X, Y, groups))
    result = permutation_test(X, Y, splits, np.full((5, 20), 10.0), group_permutations(groups, 99, seed=6))
    assert (result.p_r <= 0.02).all()
    assert result.r.min() > 0.3
    assert result.null_r_mean == pytest.approx(np.zeros(20), abs=0.06)


def test_prediction_permutation_matches_a_direct_computation_and_is_calibrated():
    from lmbrain.analysis.permutation import prediction_permutation_test
    from lmbrain.encoding.metrics import r2_oos

    rng = np.random.default_rng(7)
    n, t = 160, 2000
    groups = np.repeat(np.arange(40), 4)
    X = rng.normal(size=(n, 20))
    Y = rng.normal(size=(n, t)) + np.repeat(rng.normal(size=(40, t)), 4, axis=0)
    cv = GroupedKFold(5)
    fit = cross_validate(RidgeCV(alphas=np.logspace(-1, 4, 6), cv=GroupedKFold(4)), X, Y, groups, cv)
    orders = list(group_permutations(groups, 499, seed=8, strata=fit.folds))
    result = prediction_permutation_test(Y, fit.predictions, fit.baseline, orders)
    # the permutation test scores the pooled r (its null keeps every fold's means, so it carries the same bias)
    np.testing.assert_allclose(result.r, fit.r_pooled, rtol=1e-10)
    np.testing.assert_allclose(result.r2, fit.r2, rtol=1e-10)
    # the null of the first target, computed the slow way
    from lmbrain.encoding.metrics import pearson_r

    null_r = np.array([pearson_r(Y[:, :1], fit.predictions[o][:, :1])[0] for o in orders])
    null_r2 = np.array([r2_oos(Y[:, :1], fit.predictions[o][:, :1], fit.baseline[:, :1])[0] for o in orders])
    assert result.p_r[0] == pytest.approx((1 + (null_r >= fit.r_pooled[0]).sum()) / 500)
    assert result.p_r2[0] == pytest.approx((1 + (null_r2 >= fit.r2[0] - 1e-9).sum()) / 500, abs=1 / 500)
    # permuting across folds instead pairs responses with models trained on their own group: conservative
    across = prediction_permutation_test(Y, fit.predictions, fit.baseline, group_permutations(groups, 499, seed=8))
    assert (across.p_r < 0.05).mean() < (result.p_r < 0.05).mean()
    fpr = float((result.p_r < 0.05).mean())
    # valid (never above the nominal rate) and close to it; slightly conservative with per-target alphas
    assert 0.02 <= fpr <= 0.07, fpr


def test_paired_sign_flip_is_calibrated_when_two_models_predict_equally_well():
    from lmbrain.analysis.signflip import paired_sign_flip_test

    rng = np.random.default_rng(5)
    n, t = 200, 2000
    groups = np.repeat(np.arange(50), 4)
    signal = rng.normal(size=(n, t))
    Y = signal + rng.normal(size=(n, t))
    # two predictions of the same quality (independent errors): exchangeable under the null
    a = signal + rng.normal(size=(n, t))
    b = signal + rng.normal(size=(n, t))
    result = paired_sign_flip_test(Y, a, b, np.zeros((n, t)), groups, n_permutations=500, seed=6)
    fpr = float((result.p < 0.05).mean())
    assert 0.03 <= fpr <= 0.07, fpr
    # the gain is exactly the difference of the two out-of-sample R²
    r2 = lambda p: 1 - ((Y - p) ** 2).sum(0) / (Y**2).sum(0)  # noqa: E731
    np.testing.assert_allclose(result.delta_r2, r2(a) - r2(b), rtol=1e-10, atol=1e-12)


def test_paired_sign_flip_detects_unique_variance_and_respects_blocks():
    from lmbrain.analysis.signflip import contiguous_blocks, paired_sign_flip_test

    rng = np.random.default_rng(7)
    n, t = 200, 50
    groups = np.repeat(np.arange(50), 4)
    shared, unique = rng.normal(size=(n, t)), rng.normal(size=(n, t))
    Y = shared + unique + rng.normal(size=(n, t))
    result = paired_sign_flip_test(Y, shared + unique, shared, np.zeros((n, t)), groups, 999, seed=8)
    assert (result.p < 0.01).all() and (result.delta_r2 > 0).all()
    assert result.n_blocks == 50
    # a better reduced model: the gain is negative and never significant
    flipped = paired_sign_flip_test(Y, shared, shared + unique, np.zeros((n, t)), groups, 999, seed=8)
    assert (flipped.p > 0.5).all()
    labels = contiguous_blocks(10, 4, runs=np.repeat([0, 1], [6, 4]))
    assert labels.tolist() == [0, 0, 0, 0, 1, 1, 2, 2, 2, 2]


def test_block_sign_flips_give_one_sign_per_block():
    from lmbrain.analysis.resamples import block_sign_flips

    blocks = np.repeat([3, 1, 2, 0], [2, 3, 1, 4])
    signs = list(block_sign_flips(blocks, 50, seed=1))
    assert all(s.dtype.kind == "f" and set(np.unique(s)) <= {-1.0, 1.0} for s in signs)
    assert all(len(np.unique(s[blocks == b])) == 1 for s in signs for b in np.unique(blocks))
    assert 0.3 < np.mean([s[0] > 0 for s in signs]) < 0.7


def test_refit_on_flipped_responses_equals_a_fit_of_the_flipped_data():
    from lmbrain.analysis.resamples import block_sign_flips, resampled_responses

    rng = np.random.default_rng(2)
    X = rng.normal(size=(80, 6))
    Y = rng.normal(size=(80, 3)) + 4.0
    groups = np.repeat(np.arange(20), 4)
    cv = GroupedKFold(5)
    fit = cross_validate(RidgeCV(alphas=np.logspace(-1, 3, 5), cv=GroupedKFold(4)), X, Y, groups, cv)
    splits = list(cv.split(X, Y, groups))
    ops = fold_operators(X, splits, fit.alphas)
    signs = next(block_sign_flips(groups, 1, seed=3))
    flipped = resampled_responses(Y, signs, Y.mean(0))
    np.testing.assert_allclose(flipped, Y.mean(0) + signs[:, None] * (Y - Y.mean(0)))
    pred, _ = cv_predictions(flipped, splits, ops, fit.alphas)
    direct = np.full_like(Y, np.nan)
    for k, (train, test) in enumerate(splits):
        for t in range(Y.shape[1]):
            ridge = RidgeCV(alphas=[fit.alphas[k, t]], cv=GroupedKFold(4)).fit(X[train], flipped[train, t:t + 1],
                                                                             groups=groups[train])
            direct[test, t] = ridge.predict(X[test])[:, 0]
    np.testing.assert_allclose(pred, direct, rtol=1e-6, atol=1e-8)


def test_sign_flip_test_scores_the_reported_r_and_r2_and_matches_a_direct_loop():
    from lmbrain.analysis.permutation import group_sums
    from lmbrain.analysis.signflip import fold_r_contributions, sign_flip_test

    rng = np.random.default_rng(4)
    n, t = 120, 30
    groups = np.repeat(np.arange(30), 4)
    X = rng.normal(size=(n, 5))
    Y = X[:, :1] * 0.3 + rng.normal(size=(n, t))
    fit = cross_validate(RidgeCV(alphas=np.logspace(-1, 4, 6), cv=GroupedKFold(4)), X, Y, groups, GroupedKFold(5))
    result = sign_flip_test(Y, fit.predictions, fit.baseline, groups, fit.folds, n_permutations=200, seed=5)
    np.testing.assert_allclose(result.r, fit.r, rtol=1e-10)  # the fold-mean r of EncodingResult
    np.testing.assert_allclose(result.r2, fit.r2, rtol=1e-10)
    np.testing.assert_allclose(fold_r_contributions(Y, fit.predictions, fit.folds).sum(0), fit.r, rtol=1e-10)
    # the same 200 sign vectors (one per sentence), the slow way
    signs = np.random.default_rng(5).choice([-1.0, 1.0], size=(200, 30))
    gains = group_sums((Y - fit.baseline) ** 2 - (Y - fit.predictions) ** 2, groups)
    shares = group_sums(fold_r_contributions(Y, fit.predictions, fit.folds), groups)
    for t in range(3):
        null_r2 = np.array([(s * gains[:, t]).sum() for s in signs]) / ((Y[:, t] - fit.baseline[:, t]) ** 2).sum()
        null_r = np.array([(s * shares[:, t]).sum() for s in signs])
        assert result.p_r2[t] == pytest.approx((1 + (null_r2 >= fit.r2[t] - 1e-12).sum()) / 201)
        assert result.p_r[t] == pytest.approx((1 + (null_r >= fit.r[t] - 1e-12).sum()) / 201)
        assert result.null_r2_mean[t] == pytest.approx(null_r2.mean())
        assert result.null_r_mean[t] == pytest.approx(null_r.mean())
    # nothing to gain over the training mean: p = 1
    flat = sign_flip_test(Y, fit.baseline, fit.baseline, groups, fit.folds, 99)
    assert (flat.p_r2 == 1).all() and (flat.r2 == 0).all()


@pytest.mark.parametrize("n_targets", [1, 7])
def test_resamples_refitted_side_by_side_equal_one_at_a_time(n_targets, monkeypatch):
    """Batching the resamples as extra columns (one product per fold and penalty for many resamples) gives the
    same p-values, null moments and κ as refitting one resample at a time (float64 products; ragged last batch,
    several penalties per fold)."""
    import lmbrain.analysis.permutation as perm
    from lmbrain.analysis.resamples import block_sign_flips

    rng = np.random.default_rng(11)
    n, p = 120, 9
    groups = np.repeat(np.arange(30), 4)
    X = rng.normal(size=(n, p))
    Y = X[:, :2] @ rng.normal(size=(2, n_targets)) * 0.3 + rng.normal(size=(n, n_targets))
    splits = list(GroupedKFold(5).split(X, Y, groups))
    alphas = rng.choice([1.0, 10.0, 100.0], size=(5, n_targets))
    flips = list(block_sign_flips(groups, 53, seed=3))
    monkeypatch.setattr(perm, "RESAMPLE_COLUMNS", 1)
    single = permutation_test(X, Y, splits, alphas, flips, dtype=np.float64, blocks=groups)
    monkeypatch.setattr(perm, "RESAMPLE_COLUMNS", 10 * n_targets)  # batches of 10, the last of 3
    batched = permutation_test(X, Y, splits, alphas, iter(flips), dtype=np.float64, blocks=groups)
    assert batched.n_permutations == single.n_permutations == 53
    for name in ("r", "r2", "p_r", "p_r2"):
        np.testing.assert_array_equal(getattr(batched, name), getattr(single, name))
    for name in ("null_r_mean", "null_r_std", "null_r2_mean", "gain_inflation"):
        np.testing.assert_allclose(getattr(batched, name), getattr(single, name), rtol=1e-10, atol=1e-12)


def test_refit_null_in_float32_does_not_depend_on_the_responses_offset():
    """Responses far from zero (raw BOLD: mean ~100, SD ~1) give the same null as centred ones: the products run in
    float32 on centred responses, so the offset cannot eat the signal's digits (it did, by up to 0.014 in p)."""
    from lmbrain.analysis.resamples import circular_shifts
    from lmbrain.encoding.splits import ContiguousBlockSplit

    rng = np.random.default_rng(12)
    n, p, t = 300, 40, 6
    X = rng.normal(size=(n, p))
    Y = X[:, :3] @ rng.normal(size=(3, t)) * 0.1 + rng.normal(size=(n, t))
    splits = list(ContiguousBlockSplit(5, gap=3).split(X))
    alphas = np.full((5, t), 30.0)
    results = [permutation_test(X, Y + offset, splits, alphas, circular_shifts(n, 199, min_shift=10, seed=1),
                                dtype=dtype) for offset, dtype in ((0.0, np.float64), (150.0, np.float32))]
    np.testing.assert_array_equal(results[1].p_r, results[0].p_r)
    np.testing.assert_allclose(results[1].null_r_mean, results[0].null_r_mean, atol=1e-6)
    np.testing.assert_allclose(results[1].r, results[0].r, atol=1e-6)


@pytest.mark.parametrize("n_targets", [1, 9])
def test_block_sum_refits_equal_refits_of_the_flipped_rows(n_targets, monkeypatch):
    """``flip_blocks``: each training block's contribution summed once, then one (test rows x blocks) product per
    draw, gives the null of refitting the flipped rows: float64 p-values identical, null moments and κ to 1e-10;
    blocks that straddle folds, several penalties per fold, targets in chunks and a ragged last batch of draws."""
    import lmbrain.analysis.permutation as perm
    from lmbrain.analysis.resamples import block_sign_flips

    rng = np.random.default_rng(13)
    n, p = 123, 8
    groups = np.repeat(np.arange(41), 3)
    blocks = groups // 2  # pairs of groups: some pairs are cut by the folds' boundaries
    X = rng.normal(size=(n, p))
    Y = X[:, :2] @ rng.normal(size=(2, n_targets)) * 0.4 + rng.normal(size=(n, n_targets)) + 7.0
    splits = list(GroupedKFold(5).split(X, Y, groups))
    assert any(len(np.intersect1d(blocks[tr], blocks[te])) for tr, te in splits)
    alphas = rng.choice([0.5, 5.0, 50.0], size=(5, n_targets))
    flips = list(block_sign_flips(blocks, 61, seed=4))
    rows = permutation_test(X, Y, splits, alphas, flips, dtype=np.float64, blocks=groups)
    monkeypatch.setattr(perm, "RESAMPLE_COLUMNS", 8)  # chunks of 1 target (8 // FLIP_DRAWS), 8 draws a batch
    monkeypatch.setattr(perm, "FLIP_PRODUCT_ELEMENTS", 50)  # the tensors' products in pieces too
    sums = permutation_test(X, Y, splits, alphas, iter(flips), dtype=np.float64, blocks=groups, flip_blocks=blocks)
    assert sums.n_permutations == rows.n_permutations == 61
    for name in ("r", "r2", "p_r", "p_r2"):
        np.testing.assert_array_equal(getattr(sums, name), getattr(rows, name))
    for name in ("null_r_mean", "null_r_std", "null_r2_mean", "gain_inflation"):
        np.testing.assert_allclose(getattr(sums, name), getattr(rows, name), rtol=1e-10, atol=1e-12)
    assert np.isfinite(sums.gain_inflation).all() and (sums.null_r_std > 0).all()
    # float32 products, the study's default: the same null to float32 rounding
    low = permutation_test(X, Y, splits, alphas, flips, blocks=groups, flip_blocks=blocks)
    np.testing.assert_allclose(low.null_r_mean, rows.null_r_mean, atol=1e-6)
    np.testing.assert_allclose(low.gain_inflation, rows.gain_inflation, rtol=1e-5)


def test_block_sum_refits_refuse_draws_that_are_not_constant_on_the_blocks():
    from lmbrain.analysis.resamples import block_sign_flips

    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(40, 3)), rng.normal(size=(40, 2))
    groups = np.repeat(np.arange(10), 4)
    splits = list(GroupedKFold(5).split(X, Y, groups))
    alphas = np.ones((5, 2))
    by_pairs = block_sign_flips(np.arange(40) // 2, 5, seed=0)  # finer than the blocks claimed
    with pytest.raises(ValueError, match="not constant within the flip blocks"):
        permutation_test(X, Y, splits, alphas, by_pairs, flip_blocks=groups)
    with pytest.raises(ValueError, match="per-sample signs"):
        permutation_test(X, Y, splits, alphas, group_permutations(groups, 3), flip_blocks=groups)


def test_predictions_equal_to_rounding_gain_nothing_and_get_p_1():
    """A joint model that gave the LLM no weight reproduces the controls' predictions only to float64 rounding
    (a few units in their last place); its squared-error gains are then 0, not noise for the flips to rank (on the
    real data such targets got p_unique anywhere in 0.003-0.998, some below 0.05). A genuine gain a million times
    smaller than the signal is still found."""
    from lmbrain.analysis.permutation import squared_error_gain
    from lmbrain.analysis.signflip import paired_sign_flip_test, sign_flip_test

    rng = np.random.default_rng(5)
    n, t = 200, 40
    groups = np.repeat(np.arange(50), 4)
    folds = groups % 5
    signal = rng.normal(size=(n, t))
    Y = 120.0 + signal + rng.normal(size=(n, t))  # raw-BOLD-like offset: rounding noise of ~1e-14
    base = np.zeros_like(Y)
    for k in range(5):
        base[folds == k] = Y[folds != k].mean(0)
    controls = base + 0.5 * signal
    joint = controls * (1 + 2.2e-16 * rng.choice([-2, -1, 1, 2], size=(n, t)))  # = controls but for the last bits
    assert (joint != controls).mean() > 0.5  # rounding noise is there
    np.testing.assert_array_equal(squared_error_gain(Y, joint, controls), 0.0)
    same = paired_sign_flip_test(Y, joint, controls, base, groups, 999, seed=1, folds=folds)
    assert (same.p == 1).all() and (same.delta_r2 == 0).all()
    flat = sign_flip_test(Y, base * (1 - 2.2e-16 * rng.choice([-1, 1], size=(n, t))), base, groups, folds, 999, seed=1)
    assert (flat.p_r2 == 1).all()
    tiny = paired_sign_flip_test(Y, controls + 1e-6 * signal, controls, base, groups, 999, seed=1, folds=folds)
    assert (tiny.p < 0.01).all() and (tiny.delta_r2 > 0).all()
    np.testing.assert_allclose(squared_error_gain(Y, joint + 0.1, controls),
                               (Y - controls) ** 2 - (Y - joint - 0.1) ** 2, rtol=1e-9, atol=1e-9)
