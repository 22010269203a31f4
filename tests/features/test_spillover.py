"""Lagged controls (``CONTROL@K``): the previous stimuli's values within a context, never across one; and on
word-level reading data with a known spillover effect, the LLM's unique R² is spurious without them and vanishes
with them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmbrain.data import load_dataset
from lmbrain.encoding import GroupedKFold, RidgeCV, cross_validate
from lmbrain.encoding.joint import DEFAULT_JOINT, make_joint_estimator
from lmbrain.errors import LmbrainError
from lmbrain.features.controls import control_features, control_info
from lmbrain.features.spillover import lag_within
from lmbrain.results import parse_lag
from lmbrain.study.schema import Study


def word_dataset():
    """Two sentences read as two contexts (the features tests' toy words)."""
    import xarray as xr

    from lmbrain.data.dataset import Dataset

    words = [(s, w, word) for s, text in enumerate(["The cat sat.", "A dog, barking loudly, ran home!"])
             for w, word in enumerate(text.split())]
    stimuli = pd.DataFrame({"stimulus_id": [f"{s}-{w}" for s, w, _ in words], "text": [t for *_, t in words],
                            "context_id": [s for s, *_ in words], "position": [w for _, w, _ in words],
                            "sentence_id": [s for s, *_ in words], "word_position": [w for _, w, _ in words]})
    responses = xr.DataArray(np.zeros((len(stimuli), 1)), dims=("sample", "neuroid"),
                             coords={"neuroid_id": ("neuroid", ["a"]), "subject": ("neuroid", ["1"])})
    return Dataset("toy", "ecog_words", "word", "sentence_id", stimuli, responses)


def test_lag_within_equals_a_grouped_shift_and_never_crosses_a_context():
    rng = np.random.default_rng(0)
    contexts = np.repeat([3, 1, 2], [4, 1, 5])  # a one-word context has no previous word at all
    X = rng.standard_normal((10, 2))
    for lag in (1, 2):
        values, missing = lag_within(X, contexts, lag)
        expected = pd.DataFrame(X).groupby(contexts, sort=False).shift(lag).to_numpy()
        gap = np.isnan(expected).any(axis=1)
        np.testing.assert_array_equal(missing.astype(bool), gap)
        np.testing.assert_array_equal(values[~gap], expected[~gap])
        np.testing.assert_allclose(values[gap], np.broadcast_to(X.mean(0), (gap.sum(), 2)))
        assert gap.sum() == sum(min(lag, n) for n in (4, 1, 5))


def test_a_lagged_control_is_the_previous_words_value_with_an_indicator():
    ds = word_dataset()  # "The cat sat." / "A dog, barking loudly, ran home!"
    length = control_features(ds, "word_length").matrix[:, 0]
    lag1 = control_features(ds, "word_length@1")
    assert lag1.columns == ["word_length@1", "word_length@1_missing"]
    assert list(lag1.standardize) == [True, False]  # the indicator is centred only
    X = lag1.matrix
    np.testing.assert_array_equal(X[:, 1], [1, 0, 0, 1, 0, 0, 0, 0, 0])  # each sentence's first word
    np.testing.assert_array_equal(X[[1, 2, 4, 5, 6, 7, 8], 0], length[[0, 1, 3, 4, 5, 6, 7]])
    np.testing.assert_allclose(X[[0, 3], 0], length.mean())
    both = control_features(ds, "word_length+word_length@1+word_frequency@2")
    assert both.matrix.shape == (9, 1 + 2 + 2) and "2 back within its context" in both.description
    assert control_info("word_frequency@1").level == "word" and control_info("surprisal@2").model_kind == "causal"


@pytest.mark.parametrize("name", ["word_rate@1", "oasm@1", "word_length@0", "word_length@x", "word_length@6",
                                  "nosuch@1"])
def test_what_cannot_be_lagged_is_refused_in_one_line(name):
    with pytest.raises(LmbrainError):
        control_info(name)
    with pytest.raises(ValueError, match="control"):
        Study.model_validate({"name": "s", "datasets": [{"name": "frank2015_eeg", "controls": [name]}]})


def test_a_study_accepts_lagged_controls_and_their_base_options():
    study = Study.model_validate({"name": "s", "datasets": [{
        "name": "frank2015_eeg", "controls": ["word_frequency+word_length+word_frequency@1+word_length@1"],
        "control_options": {"surprisal": {}}}]})
    (controls,) = study.datasets[0].control_sets
    assert controls.controls == ("word_frequency", "word_length", "word_frequency@1", "word_length@1")
    assert parse_lag("surprisal@2") == ("surprisal", 2)


def test_spillover_on_real_reading_data_is_spurious_llm_variance_unless_lagged(data_dir):
    """Frank2015's real words (frequency, length, sentences as contexts); responses with a known spillover effect
    (the previous word's frequency and length); an LLM-like band that carries the current and previous words'
    properties in 64 noisy dimensions. Without lag controls the LLM's unique R² is spurious; with them it is gone."""
    ds = load_dataset("frank2015_eeg")
    now_cf, lags_cf = (control_features(ds, "word_frequency+word_length"),
                       control_features(ds, "word_frequency@1+word_length@1"))
    now, lags = now_cf.matrix, lags_cf.matrix  # lags: [frequency@1, its indicator, length@1, its indicator]
    groups = ds.stimuli["context_id"].to_numpy()
    rng = np.random.default_rng(0)
    z = lambda a: (a - a.mean(0)) / a.std(0)  # noqa: E731
    now_z, prev_z = z(now), z(lags[:, [0, 2]])
    signal = now_z @ [0.25, 0.2] + prev_z @ [0.3, 0.25]
    Y = signal[:, None] + rng.standard_normal((len(signal), 12)) * 1.0
    carried = np.column_stack([now_z, prev_z]) @ rng.standard_normal((4, 64))
    llm = carried + rng.standard_normal((len(signal), 64)) * 2.0
    cv = GroupedKFold(5)
    unique = {}
    sets = {"unlagged": (now, now_cf.standardize),
            "lagged": (np.column_stack([now, lags]), np.r_[now_cf.standardize, lags_cf.standardize])}
    for label, (ctrl, ctrl_flags) in sets.items():
        flags = np.r_[np.ones(64, bool), ctrl_flags]
        joint = make_joint_estimator(DEFAULT_JOINT, [slice(0, 64), slice(64, 64 + ctrl.shape[1])], cv=cv,
                                     standardize=flags)
        r2_joint = cross_validate(joint, np.column_stack([llm, ctrl]), Y, groups, cv).r2
        r2_ctrl = cross_validate(RidgeCV(cv=cv, standardize=flags[64:]), ctrl, Y, groups, cv).r2
        unique[label] = float(np.mean(r2_joint - r2_ctrl))
    assert unique["unlagged"] >= 0.02, unique
    assert unique["lagged"] <= 0.005, unique
