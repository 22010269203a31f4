"""Context policies: incremental data give every model left context only; a bidirectional model then reads each
prefix on its own, so its features of a word never depend on the words to its right."""

from __future__ import annotations

import numpy as np
import pytest

from lmbrain.data.specs import INCREMENTAL_MODALITIES, MODALITIES
from lmbrain.features import extract_features
from lmbrain.features.context import context_policy
from lmbrain.features.errors import FeatureError


@pytest.mark.parametrize("modality", MODALITIES)
@pytest.mark.parametrize("kind", ["causal", "bidirectional"])
def test_auto_is_left_context_only_on_incremental_data(modality, kind):
    policy = context_policy("auto", kind, modality)
    incremental = modality in INCREMENTAL_MODALITIES
    expected = "passage-so-far" if incremental or kind == "causal" else "full"
    assert policy.policy == expected and policy.requested == "auto"
    assert ("left context only" in policy.reason) == (expected == "passage-so-far")
    assert context_policy("isolated", kind, modality).policy == "isolated"


def test_full_context_for_a_bidirectional_model_on_incremental_data_is_refused():
    assert set(INCREMENTAL_MODALITIES) == {"reading_times", "eeg_words", "ecog_words", "fmri_timeseries"}
    for modality in INCREMENTAL_MODALITIES:
        with pytest.raises(FeatureError, match="words to the right"):
            context_policy("full", "bidirectional", modality)
        assert context_policy("full", "causal", modality).policy == "passage-so-far"
    assert context_policy("full", "bidirectional", "fmri_sentences").policy == "full"


def test_a_bidirectional_model_under_left_context_never_sees_later_words(minilm):
    words = "the old man saw a very tall tree".split()
    policy = context_policy("auto", "bidirectional", "eeg_words").policy
    left = extract_features(minilm, words, [0] * len(words), context=policy, layers=[-1], progress=False)[0]
    full = extract_features(minilm, words, [0] * len(words), context="full", layers=[-1], progress=False)[0]
    for k in (0, 3, len(words) - 1):
        prefix = extract_features(minilm, words[: k + 1], [0] * (k + 1), context="full", layers=[-1],
                                  progress=False)[0]
        np.testing.assert_allclose(left[k], prefix[k], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(left[-1], full[-1], rtol=1e-4, atol=1e-5)  # the last word has no right context
    assert not np.allclose(left[0], full[0], atol=1e-3)  # the first word's full-context state saw the rest
