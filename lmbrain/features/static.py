"""Static word embeddings as a model family: one "layer" (layer 0), no context, each unit's vector looked up from a
table instead of computed by a network. An untrained variant replaces every word's vector by a seeded random one
with the table's per-dimension mean and standard deviation (word identity kept, distributional meaning gone)."""

from __future__ import annotations

from typing import Any

import numpy as np

from lmbrain.features.models import parse_model_name
from lmbrain.features.registry import ModelInfo, RegisteredModel, registered, unavailable


def static_entry(name: str) -> RegisteredModel | None:
    """The registry entry of a static embedding's name (``:untrained-N`` allowed), else None."""
    base, _ = parse_model_name(name)
    entry = registered(base)
    return entry if entry is not None and entry.embed is not None else None


def random_like(vectors: np.ndarray, seed: int) -> np.ndarray:
    """A seeded random table of ``vectors``' shape, with its per-dimension mean and standard deviation."""
    table = np.asarray(vectors, dtype=np.float64)
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(table.shape, dtype=np.float32)
    return (noise * table.std(axis=0) + table.mean(axis=0)).astype(np.float32)


def static_features(name: str, texts: list[str], identity: str) -> tuple[np.ndarray, dict[str, Any]]:
    """``(1, n_texts, dim)`` float32 vectors of a static embedding and its model info (with the lookup's facts:
    words and out-of-vocabulary words), as the feature cache stores them."""
    base, seed = parse_model_name(name)
    entry = static_entry(name)
    if entry is None:
        raise unavailable(name, "it is not a registered static embedding")
    vectors, facts = entry.embed(texts, seed)
    vectors = np.asarray(vectors, dtype=np.float32)[None]
    training = entry.training if seed is None else (
        f"untrained: every word's vector replaced by a random one (seed {seed}) with the table's per-dimension "
        "mean and standard deviation")
    info = ModelInfo(name=name, family=entry.family, architecture=entry.architecture, kind="static",
                     n_params=0, n_layers=1, hidden_size=int(vectors.shape[2]), max_length=0, identity=identity,
                     untrained_seed=seed, training=training, source=f"registry:{base}", dtype="float32")
    return vectors, {**info.as_dict(), **facts}


def lookup_text(name: str, texts: list[str]) -> str:
    """How a static embedding's lookup went on ``texts`` ("12 of 2,127 words out of vocabulary (0.6 %)"); empty
    for any other model."""
    entry = static_entry(name)
    if entry is None:
        return ""
    _, facts = entry.embed(texts, None)
    words, oov = int(facts.get("n_words", 0)), int(facts.get("n_oov", 0))
    return f"{oov:,} of {words:,} words out of vocabulary ({100 * oov / max(words, 1):.1f} %)"
