"""Controls computed by a language model: per-word surprisal and next-word entropy (bits), registered by name."""

from __future__ import annotations

import numpy as np

from lmbrain.data.dataset import Dataset
from lmbrain.errors import LmbrainError
from lmbrain.features.controls import ControlFeatures, _single, register_control

# Surprisal and entropy: dense real values in bits from a causal LM reading each text left to right (left
# context only, whatever the study's context policy for LLM features): z-scored like word frequency.
SURPRISAL_MODEL = "smollm2-135m"
_LM_NAN_POLICY = "cannot occur: every word gets a value (a word that maps to no token of the model is an error)"


def _lm_columns(dataset: Dataset, control: str, model: str) -> np.ndarray:
    if dataset.stimulus_unit != "word":
        raise LmbrainError(f"control {control} needs word stimuli; {dataset.name} has {dataset.stimulus_unit}")
    from lmbrain.features.surprisal import get_surprisal

    stimuli = dataset.stimuli
    return get_surprisal(model, stimuli["text"].astype(str).tolist(), stimuli["context_id"].tolist(),
                         stimuli["position"].tolist())


@register_control("surprisal", "per-word surprisal (bits, summed over its tokens) from a causal LM reading left to "
                  f"right (option model, default {SURPRISAL_MODEL})", level="word", delayed=True, standardize=True,
                  model_kind="causal", units="bits", reads="`text`, `context_id`, `position`", fallback="none needed",
                  nan_policy=_LM_NAN_POLICY)
def surprisal(dataset: Dataset, model: str = SURPRISAL_MODEL) -> ControlFeatures:
    """-log2 p(word | the words before it in its context) in bits, summed over the word's tokens, from the causal
    model of option ``model`` reading each context left to right (the first token conditioned on a start-of-text
    token; lmbrain.features.surprisal). Word stimuli only."""
    values = _lm_columns(dataset, "surprisal", model)
    return _single("surprisal", values[:, :1], [f"surprisal_{model}"])


@register_control("entropy", "entropy (bits) of a causal LM's next-token distribution before each word (option "
                  f"model, default {SURPRISAL_MODEL})", level="word", delayed=True, standardize=True,
                  model_kind="causal", units="bits", reads="`text`, `context_id`, `position`", fallback="none needed",
                  nan_policy=_LM_NAN_POLICY)
def entropy(dataset: Dataset, model: str = SURPRISAL_MODEL) -> ControlFeatures:
    """The entropy in bits of the causal model's next-token distribution just before each word's first token
    (option ``model``; lmbrain.features.surprisal): how uncertain it was. Word stimuli only."""
    values = _lm_columns(dataset, "entropy", model)
    return _single("entropy", values[:, 1:], [f"entropy_{model}"])
