"""Per-word surprisal and entropy against a direct computation of token log-probabilities with the packaged
SmolLM2 (words' tokens found by tokenising growing prefixes, not by offsets), the cache, windows, the control."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr
from conftest import smollm2_group

from lmbrain.data.dataset import Dataset
from lmbrain.features.cache import FeatureCache
from lmbrain.features.controls import control_features
from lmbrain.features.errors import FeatureError
from lmbrain.features.extract import prepare_units
from lmbrain.features.surprisal import compute_surprisal, get_surprisal, start_token

TEXTS = {
    "a": "The cat sat on the mat because it was tired.",
    "b": "Scientists found 42 new species in the deep ocean, near Japan.",
}


def _direct(model, text: str) -> tuple[np.ndarray, np.ndarray]:
    """Surprisal (bits) of each word and entropy before it: -log2 p of the word's tokens given BOS + the text so
    far, a word's tokens being those its prefix adds to the tokenisation of the words before it."""
    tok = model.tokenizer
    words = text.split()
    ids = tok(text, add_special_tokens=False)["input_ids"]
    bounds = [0] + [len(tok(" ".join(words[: k + 1]), add_special_tokens=False)["input_ids"])
                    for k in range(len(words))]
    assert bounds[-1] == len(ids)
    bos = tok.convert_tokens_to_ids("<|endoftext|>")
    with torch.no_grad():
        logits = model.model(torch.tensor([[bos, *ids]])).logits[0].double()
    logp = torch.log_softmax(logits, -1).numpy()
    surprisal, entropy = [], []
    for k in range(len(words)):
        span = range(bounds[k], bounds[k + 1])
        surprisal.append(-sum(logp[j, ids[j]] for j in span) / np.log(2))  # token j sits at position j + 1
        first = logp[bounds[k]]
        entropy.append(-(np.exp(first) * first).sum() / np.log(2))
    return np.asarray(surprisal), np.asarray(entropy)


@smollm2_group
def test_word_surprisal_equals_the_sum_of_its_tokens_log_probabilities(smollm2) -> None:
    assert start_token(smollm2.tokenizer) == [smollm2.tokenizer.convert_tokens_to_ids("<|endoftext|>")]
    words = [w for t in TEXTS.values() for w in t.split()]
    contexts = [c for c, t in TEXTS.items() for _ in t.split()]
    got = compute_surprisal(smollm2, prepare_units(words, contexts, None))
    direct = [_direct(smollm2, t) for t in TEXTS.values()]
    np.testing.assert_allclose(got[:, 0], np.concatenate([d[0] for d in direct]), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got[:, 1], np.concatenate([d[1] for d in direct]), rtol=1e-4, atol=1e-4)
    assert np.all(got[:, 0] > 0) and np.all(got[:, 1] > 0)
    # "42" is more than one token of the byte-level BPE: its surprisal sums them (it is not the first's alone)
    assert len(smollm2.tokenizer(" 42", add_special_tokens=False)["input_ids"]) >= 2


@smollm2_group
def test_windows_and_cache(smollm2, tmp_path) -> None:
    text = " ".join([TEXTS["a"], TEXTS["b"], TEXTS["a"]])
    words = text.split()
    units = prepare_units(words, [0] * len(words), None)
    whole = compute_surprisal(smollm2, units)
    windowed = compute_surprisal(smollm2, units, max_length=12)
    n_ids = len(smollm2.tokenizer(text, add_special_tokens=False)["input_ids"])
    assert n_ids > 11
    # the units of the first window see the same left context either way
    first = [k for k in range(len(words))
             if len(smollm2.tokenizer(" ".join(words[: k + 1]), add_special_tokens=False)["input_ids"]) <= 11]
    np.testing.assert_allclose(windowed[first], whole[first], rtol=1e-4, atol=1e-4)
    assert not np.allclose(windowed, whole)  # later units lost context
    store = FeatureCache(tmp_path)
    cold = get_surprisal(smollm2, words, [0] * len(words), cache=store)
    np.testing.assert_allclose(cold, whole, rtol=1e-5, atol=1e-5)
    assert len(store.keys()) == 1
    warm = get_surprisal("smollm2-135m", words, [0] * len(words), cache=store)  # read back, same key
    np.testing.assert_array_equal(warm, cold)
    assert len(store.keys()) == 1


def test_bidirectional_models_are_refused(minilm) -> None:
    with pytest.raises(FeatureError, match="causal"):
        compute_surprisal(minilm, prepare_units(["a", "b"], [0, 0], None))
    with pytest.raises(FeatureError, match="causal"):
        get_surprisal("minilm-l6", ["a", "b"], [0, 0])


@smollm2_group
def test_surprisal_control_in_a_feature_set(smollm2, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("LMBRAIN_CACHE_DIR", str(tmp_path))
    words = [w for t in TEXTS.values() for w in t.split()]
    contexts = [c for c, t in TEXTS.items() for _ in t.split()]
    positions = [k for t in TEXTS.values() for k in range(len(t.split()))]
    stimuli = pd.DataFrame({"stimulus_id": [str(i) for i in range(len(words))], "text": words,
                            "context_id": contexts, "position": positions})
    responses = xr.DataArray(np.random.default_rng(0).normal(size=(len(words), 1)), dims=("sample", "neuroid"),
                             coords={"stimulus_id": ("sample", stimuli["stimulus_id"].to_numpy()),
                                     "neuroid_id": ("neuroid", ["n"]), "subject": ("neuroid", ["s"])})
    dataset = Dataset("toy", "reading_times", "word", "context_id", stimuli, responses)
    both = control_features(dataset, "surprisal+entropy+word_length")
    direct = [_direct(smollm2, t) for t in TEXTS.values()]
    np.testing.assert_allclose(both.matrix[:, 0], np.concatenate([d[0] for d in direct]), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(both.matrix[:, 1], np.concatenate([d[1] for d in direct]), rtol=1e-4, atol=1e-4)
    assert both.columns == ["surprisal_smollm2-135m", "entropy_smollm2-135m", "word_length"]
    assert both.standardize.tolist() == [True, True, True]
