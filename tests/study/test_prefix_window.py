"""features.prefix_window: a bounded left-context window for bidirectional models on incremental data only."""

from __future__ import annotations

import numpy as np

from lmbrain.study.context import StudyContext
from lmbrain.study.schema import Study


def _study(window, dataset="fedorenko2016"):
    return Study.model_validate({"name": "w", "datasets": [{"name": dataset, "controls": ["word_position"]}],
                                 "models": [{"name": "minilm-l6"}, {"name": "gpt2-tiny"}],
                                 "features": {"prefix_window": window}})


def test_the_window_applies_to_bidirectional_prefix_reading_only(data_dir):
    inputs = StudyContext(_study(16))
    policy = inputs.context_policy("fedorenko2016", "minilm-l6", None)
    assert policy.policy == "passage-so-far" and inputs.prefix_window(policy, "minilm-l6", None) == 16
    causal = inputs.context_policy("fedorenko2016", "gpt2-tiny", None)
    assert inputs.prefix_window(causal, "gpt2-tiny", None) is None  # one pass over the context: no window
    assert StudyContext(_study(None)).prefix_window(policy, "minilm-l6", None) is None


def test_windowed_features_are_the_encoder_on_a_bounded_suffix_of_each_prefix(data_dir, tmp_path, monkeypatch):
    """With an 8-token window each word's features are MiniLM's, read directly, on a suffix of whole words of its
    prefix that fits the window ([CLS] + at most 6 tokens + [SEP]) and keeps at least half of it as context."""
    import torch

    from lmbrain.features import load_model

    monkeypatch.setenv("LMBRAIN_CACHE_DIR", str(tmp_path))
    window = 8
    inputs = StudyContext(_study(window))
    stimuli = inputs.dataset("fedorenko2016").stimuli
    layers = inputs.llm_layers("fedorenko2016", "minilm-l6", None)
    last = max(layers)
    lm = load_model("minilm-l6")
    words = stimuli[stimuli["context_id"] == stimuli["context_id"].iloc[0]]["text"].astype(str).tolist()
    assert len(lm.tokenizer(" ".join(words))["input_ids"]) > window  # the window cuts the longer prefixes
    for k in range(len(words)):
        matches = []
        for j in range(k + 1):
            ids = lm.tokenizer(" ".join(words[j : k + 1]), return_tensors="pt")
            if ids["input_ids"].shape[1] > window:
                continue
            with torch.inference_mode():
                hidden = lm.model(**ids, output_hidden_states=True).hidden_states[last][0, -2].numpy()
            if np.allclose(layers[last][k], hidden, atol=2e-5):
                matches.append(ids["input_ids"].shape[1] - 2)
        assert matches, f"word {k}: no suffix of its prefix within {window} tokens gives its features"
        whole = len(lm.tokenizer(" ".join(words[: k + 1]))["input_ids"]) - 2
        assert max(matches) >= min(whole, (window - 2) // 2)  # at least half the window as context
