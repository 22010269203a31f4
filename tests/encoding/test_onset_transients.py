"""No pathological fits on a single run whose features start with a transient (issue 23, item 5).

An untrained transformer reading a story from its first word carries what the context length does to it and the
running mean of what it has read: large over the first words, fading as the context grows. On a single run only
the first outer test block holds that stretch, so its ridge, fitted on the rest, extrapolates: on Brennan2016
untrained SmolLM2 reached R² = -0.80 on single ROIs. The simulation below has the same structure (weak real
signal, slow noise, far more features than scans, five contiguous blocks) and checks that the study's defaults --
run-onset transients regressed out with the high-pass, the one-standard-error penalty -- keep its fits from going
pathological.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

from lmbrain.encoding import ContiguousBlockSplit, RidgeCV, cross_validate
from lmbrain.encoding.timeseries import ScanFeatures, high_pass
from lmbrain.study.schema import EstimatorOptions, TimeseriesOptions

TR, N_SCANS, N_FEATURES, N_TARGETS = 2.0, 300, 400, 12


def _story(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Scan features = stationary features + three directions that fade with the context length (1/sqrt, from 5 s
    to 80 s) and follow the running mean of what was read; responses = a weak effect of the stationary features
    + slow (AR 0.8) noise."""
    rng = np.random.default_rng(seed)
    stationary = lfilter([1.0], [1.0, -0.6], rng.standard_normal((N_SCANS, N_FEATURES)), axis=0)
    t = np.arange(N_SCANS)[:, None] * TR
    fading = 5.0 / np.sqrt(1.0 + t / np.array([5.0, 20.0, 80.0])[None, :])
    running_mean = 6.0 * np.cumsum(rng.standard_normal((N_SCANS, 3)), axis=0) / np.arange(1, N_SCANS + 1)[:, None]
    X = stationary + (fading + running_mean) @ rng.standard_normal((3, N_FEATURES))
    noise = lfilter([1.0], [1.0, -0.8], rng.standard_normal((N_SCANS, N_TARGETS)), axis=0) * 0.6
    Y = stationary @ rng.standard_normal((N_FEATURES, N_TARGETS)) * 0.02 + noise
    return X, Y


def _scores(X: np.ndarray, Y: np.ndarray, onset_s: tuple[float, ...], alpha_choice: str) -> tuple[float, float]:
    """(mean pooled out-of-sample R², mean R² of the first test block) as a study fits a time series."""
    ts, est = TimeseriesOptions(), EstimatorOptions()
    times = np.arange(N_SCANS) * TR
    features = ScanFeatures(times, TR, high_pass_s=ts.high_pass_s, delays=(0,), onset_s=onset_s).fit_transform(X)
    responses = high_pass(Y, TR, ts.high_pass_s, onset_s=onset_s)
    cv = ContiguousBlockSplit(5, gap=ts.gap)
    ridge = RidgeCV(alphas=est.alphas, cv=ContiguousBlockSplit(5, gap=ts.gap), alpha_choice=alpha_choice)
    result = cross_validate(ridge, features, responses, None, cv)
    first = result.folds == 0
    sse = ((responses[first] - result.predictions[first]) ** 2).sum(0)
    sst = ((responses[first] - result.baseline[first]) ** 2).sum(0)
    return float(result.r2.mean()), float((1 - sse / sst).mean())


def test_study_defaults_keep_the_first_block_of_a_drifting_story_from_going_pathological():
    from lmbrain.study.estimators import alpha_choice
    from lmbrain.study.schema import Study

    ts = TimeseriesOptions()
    study = Study.model_validate({"name": "defaults", "datasets": [{"name": "any", "controls": ["word_rate"]}]})
    choice = alpha_choice(study, timeseries=True)  # the default (auto) for time series
    assert ts.onset_s and study.estimator.alpha_choice == "auto" and choice == "shared_one_se"
    assert alpha_choice(study, timeseries=False) == "best"
    before, after = [], []
    for seed in range(8):
        X, Y = _story(seed)
        before.append(_scores(X, Y, (), "best"))  # the cosine high-pass alone, the best inner-CV mean
        after.append(_scores(X, Y, tuple(ts.onset_s), choice))
    (before_mean, before_first), (after_mean, after_first) = np.mean(before, 0), np.mean(after, 0)
    # the mechanism: the first block extrapolates (R² -0.3 to -0.85 per story), and drags the pooled R² down
    assert before_first < -0.4 and before_mean < -0.05
    assert max(first for _, first in before) < -0.3
    assert after_first > -0.2 and after_mean > -0.02
    assert sum(first > -0.3 for _, first in after) >= 7  # a random-shaped start can still mislead one story
