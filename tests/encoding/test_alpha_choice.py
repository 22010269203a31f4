"""The one-standard-error choice of each target's ridge penalty (``RidgeCV(alpha_choice="one_se")``).

With far more features than samples the small penalties nearly interpolate and their inner-CV scores swing from
fold to fold; the best mean of a few folds then often picks one by luck, and its out-of-sample R² is far below
zero. The one-SE rule takes the largest penalty within one standard error of the best mean.
"""

from __future__ import annotations

import numpy as np
import pytest

from lmbrain.encoding import GroupedKFold, RidgeCV, cross_validate, cross_validate_select, select_alphas
from lmbrain.encoding.inner_cv import alpha_scores
from lmbrain.encoding.joint import one_se_choice
from lmbrain.errors import LmbrainError

ALPHAS = np.logspace(-2, 7, 10)


def test_one_se_scores_choose_the_largest_alpha_within_one_standard_error():
    rng = np.random.default_rng(0)
    folds = rng.normal(size=(5, len(ALPHAS), 300)) * rng.uniform(0.01, 1.0, size=(1, len(ALPHAS), 1))
    folds += np.linspace(0.3, 0.0, len(ALPHAS))[None, :, None]  # small alphas better on average
    scores = alpha_scores(folds, ALPHAS, "one_se")
    chosen = select_alphas(scores, ALPHAS)
    # the same choice as the hierarchical joint model's independent implementation
    np.testing.assert_array_equal(chosen, one_se_choice(folds, ALPHAS).argmax(0))
    mean = folds.mean(0)
    columns = np.arange(mean.shape[1])
    np.testing.assert_array_equal(scores.max(0), mean[chosen, columns])  # the layer score: the chosen alpha's mean
    best = select_alphas(mean, ALPHAS)
    assert (chosen >= best).all() and (chosen > best).any()
    np.testing.assert_array_equal(alpha_scores(folds, ALPHAS, "best"), mean)
    # the grid's order does not matter
    order = rng.permutation(len(ALPHAS))
    shuffled = select_alphas(alpha_scores(folds[:, order], ALPHAS[order], "one_se"), ALPHAS[order])
    np.testing.assert_array_equal(ALPHAS[order][shuffled], ALPHAS[chosen])
    with pytest.raises(LmbrainError, match="alpha choice"):
        alpha_scores(folds, ALPHAS, "smallest")


def _spiked(seed: int, n_targets: int, signal: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """160 samples in 16 groups, 800 features with a few strong directions; ``signal`` scales a linear effect."""
    rng = np.random.default_rng(seed)
    n, p = 160, 800
    X = rng.standard_normal((n, 5)) @ rng.standard_normal((5, p)) * 3 + rng.standard_normal((n, p))
    Y = X @ rng.standard_normal((p, n_targets)) * signal + rng.standard_normal((n, n_targets))
    return X, Y, np.repeat(np.arange(16), 10)


@pytest.mark.parametrize("seed", [0, 1])
def test_one_se_keeps_fits_without_signal_near_zero(seed):
    X, Y, groups = _spiked(seed, 80, 0.0)
    r2 = {}
    for choice in ("best", "one_se"):
        ridge = RidgeCV(alphas=ALPHAS, cv=GroupedKFold(4), alpha_choice=choice)
        r2[choice] = cross_validate(ridge, X, Y, groups, GroupedKFold(4)).r2
    # the best inner mean: a luck-chosen small alpha now and then, R² of -0.05 and below in the tail
    assert np.quantile(r2["best"], 0.05) < -0.04
    assert np.quantile(r2["one_se"], 0.05) > -0.03
    assert r2["one_se"].mean() > r2["best"].mean() and r2["one_se"].mean() > -0.01


def test_one_se_costs_little_where_there_is_signal():
    X, Y, groups = _spiked(2, 30, 0.004)
    r2 = {}
    for choice in ("best", "one_se"):
        ridge = RidgeCV(alphas=ALPHAS, cv=GroupedKFold(4), alpha_choice=choice)
        r2[choice] = cross_validate(ridge, X, Y, groups, GroupedKFold(4)).r2
    assert r2["best"].mean() > 0.1  # a real effect
    assert r2["one_se"].mean() > r2["best"].mean() - 0.02


def test_chunked_analysis_refuses_the_one_se_choice():
    from lmbrain.analysis.chunked import ControlProblem
    from lmbrain.encoding import ContiguousBlockSplit

    rng = np.random.default_rng(0)
    ridge = RidgeCV(alphas=ALPHAS, cv=ContiguousBlockSplit(3), cv_method="refit", alpha_choice="one_se")
    with pytest.raises(LmbrainError, match="alpha_choice"):
        ControlProblem(candidates={"a": rng.normal(size=(30, 2))}, controls=rng.normal(size=(30, 1)),
                       targets=rng.normal(size=(30, 2)), target_groups=np.array(["s", "s"]),
                       groups=np.zeros(30, dtype=int), cv=ContiguousBlockSplit(3), ridge=ridge,
                       control_standardize=np.array([True]))


def test_shared_one_se_is_the_one_se_choice_of_each_groups_mean_curve():
    rng = np.random.default_rng(3)
    folds = rng.normal(size=(5, len(ALPHAS), 12)) * 0.3 + np.linspace(0.2, 0.0, len(ALPHAS))[None, :, None]
    labels = np.repeat(["s1", "s2", "s3"], 4)
    scores = alpha_scores(folds, ALPHAS, "shared_one_se", labels)
    for label in np.unique(labels):
        cols = labels == label
        # an independent computation: the per-fold mean over the group's targets, then the one-SE rule by hand
        pooled = folds[:, :, cols].mean(2)
        mean, se = pooled.mean(0), pooled.std(0, ddof=1) / np.sqrt(5)
        best = int(np.argmax(mean))
        expected = max(a for a, m in zip(ALPHAS, mean, strict=True) if m >= mean[best] - se[best])
        chosen = ALPHAS[select_alphas(scores[:, cols], ALPHAS)]
        assert (chosen == expected).all()  # one alpha for the whole group
        np.testing.assert_allclose(scores[:, cols].max(0), mean[ALPHAS == expected][0])
    # no labels: all targets are one group
    np.testing.assert_array_equal(alpha_scores(folds, ALPHAS, "shared_one_se"),
                                  alpha_scores(folds, ALPHAS, "shared_one_se", np.zeros(12)))
    with pytest.raises(LmbrainError, match="one label per target"):
        alpha_scores(folds, ALPHAS, "shared_one_se", labels[:5])


def test_shared_one_se_in_cross_validate_select_equals_one_call_per_subject():
    X, Y, groups = _spiked(4, 6, 0.002)
    rng = np.random.default_rng(4)
    candidates = {"a": X, "b": X[:, :300] + rng.standard_normal((160, 300))}
    subjects = np.repeat(["s1", "s2"], 3)
    ridge = RidgeCV(alphas=ALPHAS, cv=GroupedKFold(4), alpha_choice="shared_one_se")
    both = cross_validate_select(candidates, Y, groups, GroupedKFold(4), ridge, target_groups=subjects)
    for s in ("s1", "s2"):
        one = cross_validate_select(candidates, Y[:, subjects == s], groups, GroupedKFold(4), ridge)
        np.testing.assert_allclose(both.r2[subjects == s], one.r2, atol=1e-10)
        assert [fold[s] for fold in both.selected] == one.selected
        for fold in both.alphas:  # one penalty per subject and fold
            assert len(np.unique(fold[subjects == s])) == 1


def test_shared_one_se_keeps_no_signal_fits_near_zero_and_costs_little_with_signal():
    for signal, check in ((0.0, "null"), (0.004, "signal")):
        X, Y, groups = _spiked(5, 60, signal)
        subjects = np.repeat(np.arange(10), 6)
        r2 = {}
        for choice in ("one_se", "shared_one_se"):
            ridge = RidgeCV(alphas=ALPHAS, cv=GroupedKFold(4), alpha_choice=choice)
            r2[choice] = cross_validate_select({"x": X}, Y, groups, GroupedKFold(4), ridge, target_groups=subjects).r2
        if check == "null":
            assert np.quantile(r2["shared_one_se"], 0.05) > -0.03 and r2["shared_one_se"].mean() > -0.01
        else:
            assert r2["shared_one_se"].mean() > r2["one_se"].mean() - 0.02
