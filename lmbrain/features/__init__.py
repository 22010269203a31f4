"""Feature extraction: every layer of any model, word-aligned, one forward pass per context window, cached.

The public names are imported on first use (torch and transformers load only when a model is needed); the
packaged models register themselves the first time the model registry is consulted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lmbrain._lazy import lazy_exports

if TYPE_CHECKING:
    from lmbrain.features.cache import FeatureCache, get_features
    from lmbrain.features.errors import FeatureError
    from lmbrain.features.extract import CONTEXTS, POOLINGS, extract_features, resolve_context
    from lmbrain.features.layers import resolve_layers
    from lmbrain.features.models import (
        LanguageModel,
        ModelRef,
        build_gpt2,
        list_models,
        load_model,
        load_tokenizer,
        model_ref,
        register_gpt2,
    )
    from lmbrain.features.registry import ModelInfo, describe_models, register_model

_EXPORTS = {
    "CONTEXTS": "lmbrain.features.extract",
    "POOLINGS": "lmbrain.features.extract",
    "FeatureCache": "lmbrain.features.cache",
    "FeatureError": "lmbrain.features.errors",
    "LanguageModel": "lmbrain.features.models",
    "ModelInfo": "lmbrain.features.registry",
    "ModelRef": "lmbrain.features.models",
    "build_gpt2": "lmbrain.features.models",
    "describe_models": "lmbrain.features.registry",
    "extract_features": "lmbrain.features.extract",
    "get_features": "lmbrain.features.cache",
    "list_models": "lmbrain.features.models",
    "load_model": "lmbrain.features.models",
    "load_tokenizer": "lmbrain.features.models",
    "model_ref": "lmbrain.features.models",
    "register_gpt2": "lmbrain.features.models",
    "register_model": "lmbrain.features.registry",
    "resolve_context": "lmbrain.features.extract",
    "resolve_layers": "lmbrain.features.layers",
}

__all__ = [
    "CONTEXTS",
    "POOLINGS",
    "FeatureCache",
    "FeatureError",
    "LanguageModel",
    "ModelInfo",
    "ModelRef",
    "build_gpt2",
    "describe_models",
    "extract_features",
    "get_features",
    "list_models",
    "load_model",
    "load_tokenizer",
    "model_ref",
    "register_gpt2",
    "register_model",
    "resolve_context",
    "resolve_layers",
]


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
