"""Calibration of the study's significance tests on simulations (a fast version of benchmarks/calibrate_nulls.py).

The false-positive rate at α = 0.05 must lie in [0.03, 0.07] over ≥ 1000 simulated targets at the edge of each
test's null: no association for ``p_r`` (the refit null), an expected out-of-sample R² (or unique R²) of exactly
0 for the sign-flip tests ``p_r2`` and ``p_unique`` (conservative where there is no signal at all). Word-position
designs are fixed (one-hot), so targets are independent given the design.
"""

from __future__ import annotations

import numpy as np

from lmbrain.analysis.permutation import permutation_test
from lmbrain.analysis.resamples import block_sign_flips, circular_shifts, group_permutations
from lmbrain.analysis.signflip import gain_inflation, paired_sign_flip_test, sign_flip_test
from lmbrain.analysis.smoothers import FoldSmoother, joint_smoother
from lmbrain.encoding import ContiguousBlockSplit, GroupedKFold, RidgeCV, cross_validate
from lmbrain.encoding.joint import DEFAULT_JOINT, make_joint_estimator

N_SENT, SIZE = 52, 8
SENT = np.repeat(np.arange(N_SENT), SIZE)
POSITION = np.eye(SIZE)[np.tile(np.arange(SIZE), N_SENT)]  # one-hot word position, centred only
ALPHAS = np.logspace(-2, 7, 10)
BAND = (0.03, 0.07)


def rejected(p: np.ndarray) -> float:
    """Share of p-values at or below 0.05."""
    return float((np.asarray(p) <= 0.05).mean())


def scaled(signal: np.ndarray, r2: float) -> np.ndarray:
    """Columns scaled to sample variance ``r2``."""
    return signal * np.sqrt(r2) / signal.std(0)


def sentences(seed: int, n: int, position: float = 0.0, shared: bool = False, extra: np.ndarray | None = None,
              unique: float = 0.0) -> np.ndarray:
    """Fedorenko-like targets: a word-position profile shared by all sentences (R² ``position``; one profile for
    every target when ``shared``), an optional signal ``extra @ v`` (R² ``unique``), sentence-intercept noise."""
    rng = np.random.default_rng(seed)
    signal = np.zeros((len(SENT), n))
    if position:
        profile = np.random.default_rng(99).standard_normal((SIZE, 1)) if shared else rng.standard_normal((SIZE, n))
        signal += scaled(np.broadcast_to(POSITION @ (profile - profile.mean(0)), (len(SENT), n)), position)
    if unique:
        v = np.random.default_rng(98).standard_normal((extra.shape[1], 1))
        signal += scaled(np.broadcast_to(extra @ v, (len(SENT), n)), unique)
    noise = np.sqrt(0.2) * rng.standard_normal((N_SENT, n))[SENT] + np.sqrt(0.8) * rng.standard_normal((len(SENT), n))
    return signal + noise * np.sqrt(1 - position - unique)


def position_fit(Y: np.ndarray):
    """The word-position control as a study fits it: RidgeCV, grouped inner and outer CV by sentence."""
    return cross_validate(RidgeCV(alphas=ALPHAS, cv=GroupedKFold(5), standardize=False), POSITION, Y, SENT,
                          GroupedKFold(5))


def boundary(mean_gain, low: float, high: float, steps: int = 7) -> float:
    """Bisection for the signal size where a pilot's mean out-of-sample gain crosses 0."""
    for _ in range(steps):
        mid = (low + high) / 2
        low, high = (mid, high) if mean_gain(mid) < 0 else (low, mid)
    return (low + high) / 2


def test_former_group_permutation_keeps_word_position_and_the_new_nulls_do_not():
    """The former null moves whole sentences onto sentences of the same length, word order kept: a word-position
    model refitted on any permutation is the same model, so its null mean r is the observed r and a strong
    word-position effect is 'significant' at the nominal rate. Sign-flipped sentences break it."""
    Y = sentences(1, 100, position=0.06)
    fit = position_fit(Y)
    splits = list(GroupedKFold(5).split(POSITION, Y, SENT))
    former = permutation_test(POSITION, Y, splits, fit.alphas, group_permutations(SENT, 99, seed=2),
                              standardize=False)
    assert fit.r.mean() > 0.15 and np.median(fit.r2) > 0.02
    # position-locked structure survives: the null mean r is the observed r, target by target
    assert abs((former.null_r_mean - former.r).mean()) < 0.01 and np.abs(former.null_r_mean - former.r).max() < 0.05
    assert rejected(former.p_r) < 0.15 and rejected(former.p_r2) < 0.15
    flips = permutation_test(POSITION, Y, splits, fit.alphas, block_sign_flips(SENT, 99, seed=2), standardize=False)
    np.testing.assert_allclose(flips.r, fit.r, rtol=1e-4)
    assert abs(flips.null_r_mean.mean()) < 0.01 and np.abs(flips.null_r_mean).max() < 0.05
    assert rejected(flips.p_r) > 0.9
    gains = sign_flip_test(Y, fit.predictions, fit.baseline, SENT, fit.folds, 999, seed=2)
    assert rejected(gains.p_r2) > 0.6 and np.abs(gains.null_r2_mean).max() < 0.01


def test_refit_sign_flip_null_of_r_is_calibrated_without_signal():
    """Responses flipped a sentence at a time and refitted: nominal. Flipping the sentences' out-of-fold shares of
    r instead is liberal: each response is also training data of the other folds' models (two roles), and flips
    after the fact see only its test role."""
    Y = sentences(3, 1000)
    fit = position_fit(Y)
    splits = list(GroupedKFold(5).split(POSITION, Y, SENT))
    test = permutation_test(POSITION, Y, splits, fit.alphas, block_sign_flips(SENT, 99, seed=4), standardize=False)
    assert BAND[0] <= rejected(test.p_r) <= BAND[1], rejected(test.p_r)
    after_the_fact = sign_flip_test(Y, fit.predictions, fit.baseline, SENT, fit.folds, 999, seed=4)
    assert rejected(after_the_fact.p_r) > 0.09


def test_r2_sign_flips_are_calibrated_at_the_boundary_and_conservative_without_signal():
    """At the boundary (one shared position profile whose expected out-of-sample R² is 0) the rate is nominal;
    without any signal a ridge's expected out-of-sample R² is negative and the test is conservative."""
    size = boundary(lambda x: position_fit(sentences(5, 2000, position=x, shared=True)).r2.mean(), 0.0, 0.03)
    Y = sentences(6, 2000, position=size, shared=True)
    fit = position_fit(Y)
    assert abs(fit.r2.mean()) < 5e-4
    test = sign_flip_test(Y, fit.predictions, fit.baseline, SENT, fit.folds, 999, seed=7)
    assert BAND[0] <= rejected(test.p_r2) <= BAND[1], rejected(test.p_r2)
    # the study's version, widened by the refits' two-role inflation: never more liberal, conservative for this
    # low-dimensional model (κ ≈ 1.2 under no association; docs/statistics.md)
    splits = list(GroupedKFold(5).split(POSITION, Y, SENT))
    refit = permutation_test(POSITION, Y, splits, fit.alphas, block_sign_flips(SENT, 99, seed=7), standardize=False,
                             blocks=SENT)
    assert 1.05 < np.median(refit.gain_inflation) < 1.5
    widened = sign_flip_test(Y, fit.predictions, fit.baseline, SENT, fit.folds, 999, seed=7,
                             inflation=refit.gain_inflation)
    assert 0.01 <= rejected(widened.p_r2) <= rejected(test.p_r2), rejected(widened.p_r2)
    noise = position_fit(sentences(8, 1000))
    at_noise = sign_flip_test(sentences(8, 1000), noise.predictions, noise.baseline, SENT, noise.folds, 999)
    assert rejected(at_noise.p_r2) <= 0.02


def test_unique_variance_sign_flips_are_calibrated_at_the_boundary():
    """Joint (the default estimator, LLM-like features that carry word position) vs word position alone, on
    targets with a real-size position effect and a shared LLM-specific signal whose expected gain is 0."""
    rng = np.random.default_rng(10)
    latent = rng.standard_normal((len(SENT), 32))
    llm = POSITION @ rng.standard_normal((SIZE, 32)) * 0.7 + latent
    X = np.hstack([llm, POSITION])
    joint = make_joint_estimator(DEFAULT_JOINT, [slice(0, 32), slice(32, 40)], ALPHAS, GroupedKFold(5),
                                 standardize=np.r_[np.ones(32, bool), np.zeros(SIZE, bool)])

    def gain(Y: np.ndarray, with_fits: bool = False):
        both = cross_validate(joint, X, Y, SENT, GroupedKFold(5))
        alone = position_fit(Y)
        return (both, alone) if with_fits else (both.predictions, alone)

    def mean_gain(x: float) -> float:
        Y = sentences(11, 1000, position=0.05, extra=latent - latent.mean(0), unique=x)
        pred, alone = gain(Y)
        return float(((Y - alone.predictions) ** 2 - (Y - pred) ** 2).sum(0).mean())

    size = boundary(mean_gain, 0.0, 0.03, steps=5)
    Y = sentences(12, 1000, position=0.05, extra=latent - latent.mean(0), unique=size)
    both, alone = gain(Y, with_fits=True)
    test = paired_sign_flip_test(Y, both.predictions, alone.predictions, alone.baseline, SENT, 999, seed=13,
                                 folds=alone.folds)
    assert abs(test.delta_r2.mean()) < 1e-3
    assert BAND[0] <= rejected(test.p) <= BAND[1], rejected(test.p)
    # κ-widened (a study widens time series only; on event data like these the plain flips above are used): the
    # joint (penalties fixed per fold, as a linear smoother) and the controls refitted on 99 flipped data sets;
    # never more liberal
    splits = list(GroupedKFold(5).split(X, Y, SENT))
    full = joint_smoother(DEFAULT_JOINT, [llm] * len(splits), [POSITION] * len(splits), splits, both, False)
    kappa = gain_inflation(Y, full, FoldSmoother.ridge(POSITION, splits, alone.alphas, False), SENT,
                           block_sign_flips(SENT, 99, seed=14))
    widened = paired_sign_flip_test(Y, both.predictions, alone.predictions, alone.baseline, SENT, 999, seed=13,
                                    folds=alone.folds, inflation=kappa)
    assert 0.01 <= rejected(widened.p) <= rejected(test.p), rejected(widened.p)


def ar1(rng: np.random.Generator, n: int, k: int, rho: float) -> np.ndarray:
    """A stationary AR(1) series (n, k) with unit variance."""
    x = np.empty((n, k))
    x[0] = rng.standard_normal(k)
    innovations = rng.standard_normal((n, k)) * np.sqrt(1 - rho**2)
    for t in range(1, n):
        x[t] = rho * x[t - 1] + innovations[t]
    return x


def test_time_series_circular_shift_null_is_calibrated():
    """Brennan-like: 362 autocorrelated scans, two delayed regressors, AR(1) noise, contiguous CV with a gap;
    1000 targets over 4 draws of the regressors (targets of one draw share them)."""
    p_r, p_r2 = [], []
    for seed in range(4):
        rng = np.random.default_rng([20, seed])
        regressors = ar1(rng, 366, 2, 0.6)
        X = np.hstack([regressors[4 - d : 366 - d] for d in (1, 2, 3, 4)])
        Y = ar1(rng, 362, 250, 0.4)
        cv = ContiguousBlockSplit(5, gap=5)
        fit = cross_validate(RidgeCV(alphas=ALPHAS, cv=cv), X, Y, None, cv)
        splits = list(cv.split(X, Y))
        p_r.append(permutation_test(X, Y, splits, fit.alphas, circular_shifts(362, 99, min_shift=10, seed=seed)).p_r)
        blocks = np.arange(362) // 20
        p_r2.append(sign_flip_test(Y, fit.predictions, fit.baseline, blocks, fit.folds, 999, seed=seed).p_r2)
    assert BAND[0] <= rejected(np.concatenate(p_r)) <= BAND[1], rejected(np.concatenate(p_r))
    assert rejected(np.concatenate(p_r2)) <= 0.02  # no signal: conservative
