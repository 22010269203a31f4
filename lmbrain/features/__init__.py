"""Feature extraction: every layer of any model, word-aligned, one forward pass per context window, cached."""

from lmbrain.features import catalog as _catalog  # noqa: F401  (registers the packaged models)
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
