"""Extraction: equivalence to per-prefix runs, one pass per context, pooling, batching, context policies."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import PASSAGE, WORDS, smollm2_group
from hypothesis import given
from hypothesis import strategies as st

from lmbrain.errors import DataError
from lmbrain.features import FeatureError, extract_features
from lmbrain.features.extract import Run, batches, plan_runs, prepare_units


def _raw_states(lm, text):
    """Reference: every layer's hidden states of one text, straight from transformers (no lmbrain)."""
    enc = lm.tokenizer(text, return_tensors="pt")
    with torch.inference_mode():
        out = lm.model(**enc, output_hidden_states=True)
    return [h[0].float().numpy() for h in out.hidden_states], enc["input_ids"][0].tolist()


def test_word_in_one_pass_equals_word_on_its_prefix_alone(tiny):
    ctx = extract_features(tiny, WORDS, ["s"] * len(WORDS), progress=False)
    for k in range(len(WORDS)):
        alone = extract_features(tiny, [" ".join(WORDS[: k + 1])], [0], progress=False)
        np.testing.assert_allclose(ctx[:, k], alone[:, 0], atol=1e-4, rtol=0)


def test_mean_and_sum_pooling_match_a_token_count_reference(tiny):
    """Reference tokens of word k: prefix up to k minus prefix up to k-1 (valid for byte-level BPE)."""
    mean = extract_features(tiny, WORDS, ["s"] * len(WORDS), pooling="mean", progress=False)
    total = extract_features(tiny, WORDS, ["s"] * len(WORDS), pooling="sum", progress=False)
    states, ids = _raw_states(tiny, " ".join(WORDS))
    for k in range(len(WORDS)):
        end = len(tiny.tokenizer(" ".join(WORDS[: k + 1]))["input_ids"])
        start = len(tiny.tokenizer(" ".join(WORDS[:k]))["input_ids"]) if k else 0
        assert ids[:end] == tiny.tokenizer(" ".join(WORDS[: k + 1]))["input_ids"]
        for layer, h in enumerate(states):
            np.testing.assert_allclose(mean[layer, k], h[start:end].mean(0), atol=1e-5)
            np.testing.assert_allclose(total[layer, k], h[start:end].sum(0), atol=1e-4)


@smollm2_group
def test_sentence_in_passage_pass_equals_brain_score_rerun_on_context_so_far(smollm2):
    """Brain-Score Language: re-run on ' '.join(sentences so far), keep the last token; here: one pass."""
    ours = extract_features(smollm2, PASSAGE, ["p"] * 3, positions=[1, 2, 3], progress=False)
    clean = [" ".join(s.split()) for s in PASSAGE]
    for k in range(len(PASSAGE)):
        states, _ = _raw_states(smollm2, " ".join(clean[: k + 1]))
        ref = np.stack([h[-1] for h in states])
        # float32 noise of different sequence lengths, relative to SmolLM2's massive activations (~2e4)
        assert np.all(np.abs(ours[:, k] - ref) <= 1e-4 * np.maximum(1.0, np.abs(ref)))


@smollm2_group
def test_layer_zero_is_the_static_token_embedding(smollm2):
    """Llama has no position embedding: layer 0 of a word is its last token's embedding, context-free."""
    ctx = extract_features(smollm2, WORDS, ["s"] * len(WORDS), layers=[0, 1], progress=False)
    other = extract_features(smollm2, ["Some", *WORDS[1:]], ["s"] * len(WORDS), layers=[0, 1], progress=False)
    np.testing.assert_array_equal(ctx[0, 1:], other[0, 1:])  # other preceding words: same layer 0
    assert np.abs(ctx[1, 1:] - other[1, 1:]).max() > 1e-2  # ...but not the same layer 1
    table = smollm2.model.get_input_embeddings().weight.detach().numpy()
    units = prepare_units(WORDS, ["s"] * len(WORDS))
    [run] = plan_runs(smollm2, units, "passage-so-far")
    for row, tokens in run.pools:
        np.testing.assert_array_equal(ctx[0, row], table[run.ids[tokens[-1]]])


def _count_sequences(lm):
    seen = []
    handle = lm.model.base_model.register_forward_pre_hook(
        lambda _m, args, kwargs: seen.append(kwargs["input_ids"].shape[0]), with_kwargs=True
    )
    return seen, handle


@pytest.mark.parametrize(
    ("fixture", "context", "expected"),
    [("tiny", "auto", 2), ("tiny", "isolated", 7), ("minilm", "full", 2), ("minilm", "passage-so-far", 7)],
)
def test_one_forward_sequence_per_context(request, fixture, context, expected):
    lm = request.getfixturevalue(fixture)
    texts, ids = ["a", "b", "c", "d", "e", "f", "g"], [0, 0, 0, 0, 1, 1, 1]
    seen, handle = _count_sequences(lm)
    try:
        extract_features(lm, texts, ids, context=context, batch_size=3, progress=False)
    finally:
        handle.remove()
    assert sum(seen) == expected  # bidirectional passage-so-far must re-read each prefix: 7 sequences


@pytest.mark.parametrize("fixture", ["tiny", "minilm"])
def test_padding_and_batching_do_not_change_features(request, fixture):
    lm = request.getfixturevalue(fixture)
    texts = [*PASSAGE, "Short one.", "A somewhat longer sentence than the short one."]
    ids = [0, 0, 0, 1, 2]
    one = extract_features(lm, texts, ids, batch_size=1, pooling="mean", progress=False)
    many = extract_features(lm, texts, ids, batch_size=8, pooling="mean", progress=False)
    np.testing.assert_allclose(one, many, atol=2e-5)


def test_rows_follow_input_order_whatever_the_reading_order(tiny):
    texts, ids, pos = ["c", "a", "b", "x", "y"], [1, 1, 1, 2, 2], [2, 0, 1, 1, 0]
    out = extract_features(tiny, texts, ids, pos, progress=False)
    perm = [3, 0, 4, 2, 1]
    shuffled = extract_features(
        tiny, [texts[i] for i in perm], [ids[i] for i in perm], [pos[i] for i in perm], progress=False
    )
    np.testing.assert_allclose(shuffled, out[:, perm], atol=1e-6)
    # reading order is by position: "a b c", so "a" (row 1) equals the isolated first word
    np.testing.assert_allclose(out[:, 1], extract_features(tiny, ["a"], [0], progress=False)[:, 0], atol=1e-5)


def test_causal_units_ignore_later_units_bidirectional_ones_do_not(tiny, minilm):
    a = ["The", "bank", "was", "steep"]
    b = ["The", "bank", "was", "closed"]
    for lm, depends in ((tiny, False), (minilm, True)):
        fa = extract_features(lm, a, [0] * 4, progress=False)
        fb = extract_features(lm, b, [0] * 4, progress=False)
        diff = np.abs(fa[1:, 1] - fb[1:, 1]).max()
        assert (diff > 1e-3) == depends, (lm.info.name, diff)


def test_isolated_mean_equals_sentence_embedding_of_the_encoder(minilm):
    """Known ground truth: all-MiniLM's sentence embedding is the mean over its non-special tokens."""
    out = extract_features(minilm, PASSAGE, None, pooling="mean", layers=[-1], progress=False)
    for k, sentence in enumerate(PASSAGE):
        states, _ = _raw_states(minilm, " ".join(sentence.split()))
        np.testing.assert_allclose(out[0, k], states[-1][1:-1].mean(0), atol=1e-5)


def test_sum_is_mean_times_token_count_and_single_tokens_pool_alike(tiny):
    texts = ["a", "unbelievably", "b"]
    last, mean, total = (
        extract_features(tiny, texts, [0, 0, 0], pooling=p, progress=False) for p in ("last", "mean", "sum")
    )
    counts = []
    for k in range(len(texts)):
        big = np.abs(mean[:, k]) > 1e-3
        ratio = total[:, k][big] / mean[:, k][big]
        n = round(float(np.median(ratio)))
        np.testing.assert_allclose(ratio, n, rtol=1e-3)  # one integer token count for every layer and unit
        counts.append(n)
        if n == 1:
            np.testing.assert_allclose(last[:, k], mean[:, k], atol=1e-6)
    assert counts[0] == 1 and counts[1] > 1  # " unbelievably" is several BPE tokens


def test_layer_selection_slices_all_layers(minilm):
    full = extract_features(minilm, PASSAGE, [0, 0, 0], progress=False)
    some = extract_features(minilm, PASSAGE, [0, 0, 0], layers=[0, 0.5, 1.0], progress=False)
    np.testing.assert_array_equal(some, full[[0, 3, 6]])
    assert full.dtype == np.float32 and full.shape == (7, 3, 384)


def test_sliding_windows_match_a_direct_run_of_each_window(tiny):
    """Each window is a slice of the context's tokens; each word equals a plain run of that window."""
    words = (" ".join(PASSAGE * 3)).split()
    units = prepare_units(words, [0] * len(words))
    runs = plan_runs(tiny, units, "passage-so-far", max_length=24, stride=8)
    full_ids = tiny.tokenizer(" ".join(words))["input_ids"]
    assert len(runs) > 3 and all(len(r.ids) <= 24 for r in runs)
    out = extract_features(
        tiny, words, [0] * len(words), max_length=24, stride=8, pooling="mean", progress=False
    )
    rows = set()
    for run in runs:
        start = next(i for i in range(len(full_ids)) if full_ids[i : i + len(run.ids)] == list(run.ids))
        assert start >= 0
        with torch.inference_mode():
            states = tiny.model(input_ids=torch.tensor([run.ids]), output_hidden_states=True).hidden_states
        for row, tokens in run.pools:
            rows.add(row)
            ref = np.stack([h[0, list(tokens)].mean(0).numpy() for h in states])
            np.testing.assert_allclose(out[:, row], ref, atol=1e-5)
    assert rows == set(range(len(words)))


def test_too_long_inputs_are_refused_never_truncated(tiny, minilm):
    with pytest.raises(FeatureError, match="maximum"):
        extract_features(tiny, ["a"], [0], max_length=10_000, progress=False)
    with pytest.raises(FeatureError, match="never truncates"):
        extract_features(
            tiny, ["a", "supercalifragilistic expialidocious"], [0, 0], max_length=4, stride=2, progress=False
        )
    long_story = ["word"] * 700  # > 512 tokens for BERT: read in windows, every word present
    out = extract_features(minilm, long_story, [0] * 700, layers=[1], progress=False)
    assert out.shape == (1, 700, 384) and np.isfinite(out).all()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"texts": ["a", "b"], "context_ids": [0]}, DataError),
        ({"texts": [], "context_ids": []}, DataError),
        ({"texts": ["a", " "], "context_ids": [0, 0]}, DataError),
        ({"texts": "a b", "context_ids": [0]}, DataError),
        ({"texts": ["a", "b"], "context_ids": [0, 0], "positions": [1, 1]}, DataError),
        ({"texts": ["a", "b"], "context_ids": [0, None]}, DataError),
        ({"texts": ["a"], "context_ids": [0], "pooling": "max"}, FeatureError),
        ({"texts": ["a"], "context_ids": [0], "context": "window"}, FeatureError),
        ({"texts": ["a"], "context_ids": [0], "layers": 99}, FeatureError),
        ({"texts": ["a"], "context_ids": [0], "batch_size": 0}, FeatureError),
    ],
)
def test_bad_input_raises_one_clear_error(tiny, kwargs, error):
    with pytest.raises(error):
        extract_features(tiny, progress=False, **kwargs)


def test_bfloat16_gives_float32_features_close_to_float32(tiny):
    from lmbrain.features import load_model

    half = load_model("gpt2-tiny", dtype="bfloat16")
    a = extract_features(tiny, PASSAGE, [0, 0, 0], progress=False)
    b = extract_features(half, PASSAGE, [0, 0, 0], progress=False)
    assert b.dtype == np.float32
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.99


@given(
    lengths=st.lists(st.integers(1, 50), min_size=1, max_size=40),
    size=st.integers(1, 8),
    cap=st.integers(1, 200),
)
def test_batches_respect_count_and_token_budget(lengths, size, cap):
    runs = [Run(ids=tuple(range(n)), pools=((i, (0,)),)) for i, n in enumerate(lengths)]
    out = batches(runs, size, cap)
    assert sorted(r.pools[0][0] for b in out for r in b) == list(range(len(runs)))
    for b in out:
        assert len(b) <= size
        assert len(b) == 1 or len(b) * max(len(r.ids) for r in b) <= cap


def test_memory_budget_changes_batching_not_features(tiny, monkeypatch):
    import lmbrain.features.extract as extract_module

    texts, ids = [*PASSAGE, "x y z"], [0, 0, 1, 2]
    before = extract_features(tiny, texts, ids, progress=False)
    monkeypatch.setattr(extract_module, "HIDDEN_STATE_BUDGET", 1)
    seen, handle = _count_sequences(tiny)
    try:
        after = extract_features(tiny, texts, ids, progress=False)
    finally:
        handle.remove()
    assert seen == [1, 1, 1]  # one window per forward pass when the budget is tiny
    np.testing.assert_allclose(after, before, atol=1e-5)
