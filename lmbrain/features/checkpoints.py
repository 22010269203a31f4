"""Checkpoint formats without the registry: GGUF headers, transformers configs and folders, the hub's local cache --
a model's kind and shape read without its weights, and (model, tokenizer) loaded from a folder, hub id or GGUF."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from lmbrain.features.errors import FeatureError
from lmbrain.features.gguf_cache import converted_gguf
from lmbrain.features.registry import ModelShape, unavailable
from lmbrain.io import combined_sha256

#: model types whose self-attention sees the whole input (everything else with a causal-LM class is causal)
_BIDIRECTIONAL_TYPES = {
    "bert",
    "roberta",
    "xlm-roberta",
    "distilbert",
    "albert",
    "electra",
    "deberta",
    "deberta-v2",
    "mpnet",
    "camembert",
    "modernbert",
    "ernie",
    "nomic_bert",
    "xlm",
    "megatron-bert",
    "rembert",
    "funnel",
}


_WEIGHT_GLOBS = (
    "*.safetensors",
    "*.bin",
    "*.gguf",
    "config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "*.model",
)


_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


_GGUF_STRING, _GGUF_ARRAY = 8, 9


_WEIGHT_FILES = ("*.safetensors", "*.bin", "*.safetensors.index.json", "*.bin.index.json")


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes") or os.environ.get(
        "TRANSFORMERS_OFFLINE", ""
    ).lower() in ("1", "true", "yes")


def _hub_revision(repo_id: str) -> str | None:
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id=repo_id, filename="config.json")
    except Exception:
        return None
    return Path(found).parent.name if isinstance(found, str) else None


def folder_weights_id(folder: Path) -> str:
    """Hash of a checkpoint folder's weight, config and tokenizer files."""
    files = [p for pattern in _WEIGHT_GLOBS for p in folder.glob(pattern) if p.is_file()]
    if not files:
        raise unavailable(str(folder), "the folder holds no weights or config files")
    return "sha256-" + combined_sha256(files)[:20]


def kind_from_config(config: Any) -> str:
    """ "causal" or "bidirectional" from a transformers config; encoder-decoder models are refused."""
    if getattr(config, "is_encoder_decoder", False):
        raise FeatureError(f"{config.model_type}: encoder-decoder models are not supported")
    if config.model_type in _BIDIRECTIONAL_TYPES:
        return "bidirectional"
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    archs = getattr(config, "architectures", None) or []
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
        return "causal"
    return "causal" if config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES else "bidirectional"


def gguf_header(path: str | Path, keys: tuple[str, ...] = ()) -> dict[str, Any]:
    """Scalar and string metadata of a GGUF file's header (arrays skipped), read without its tensors; stops
    early once ``general.architecture`` and every ``keys`` entry (``{arch}`` replaced) have been read."""
    import struct

    def read(handle: Any, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        data = handle.read(size)
        if len(data) != size:
            raise FeatureError(f"{path}: truncated GGUF header")
        return struct.unpack(fmt, data)[0]

    def string(handle: Any) -> str:
        return handle.read(read(handle, "<Q")).decode("utf-8", errors="replace")

    def skip(handle: Any, kind: int) -> None:
        if kind == _GGUF_STRING:
            handle.seek(read(handle, "<Q"), 1)
        elif kind == _GGUF_ARRAY:
            item, count = read(handle, "<I"), read(handle, "<Q")
            if item in _GGUF_SCALARS:
                handle.seek(struct.calcsize(_GGUF_SCALARS[item]) * count, 1)
            else:
                for _ in range(count):
                    skip(handle, item)
        elif kind in _GGUF_SCALARS:
            handle.seek(struct.calcsize(_GGUF_SCALARS[kind]), 1)
        else:
            raise FeatureError(f"{path}: unknown GGUF value type {kind}")

    fields: dict[str, Any] = {}
    with open(path, "rb") as handle:
        if handle.read(4) != b"GGUF":
            raise FeatureError(f"{path} is not a GGUF file (bad magic number)")
        version = read(handle, "<I")
        if version < 2:
            raise FeatureError(f"{path}: GGUF version {version} is not supported")
        read(handle, "<Q")  # tensor count
        for _ in range(read(handle, "<Q")):
            key, kind = string(handle), read(handle, "<I")
            if kind in _GGUF_SCALARS:
                fields[key] = read(handle, _GGUF_SCALARS[kind])
            elif kind == _GGUF_STRING:
                fields[key] = string(handle)
            else:
                skip(handle, kind)
            arch = fields.get("general.architecture")
            if arch is not None and all(k.format(arch=arch) in fields for k in keys):
                break
    return fields


def gguf_shape(path: str | Path, name: str | None = None) -> ModelShape:
    """Layers (embeddings included) and hidden size of a GGUF checkpoint, from its header metadata."""
    fields = gguf_header(path, ("{arch}.block_count", "{arch}.embedding_length"))
    arch = fields.get("general.architecture")
    blocks, width = fields.get(f"{arch}.block_count"), fields.get(f"{arch}.embedding_length")
    if arch is None or blocks is None or width is None:
        raise FeatureError(f"{path}: GGUF metadata lacks the architecture's block_count / embedding_length")
    kind = "bidirectional" if arch in _BIDIRECTIONAL_TYPES else "causal"
    return ModelShape(name or str(path), int(blocks) + 1, int(width), kind)


def config_shape(config: Any, name: str, has_weights: bool = True) -> ModelShape:
    """Layers (embeddings included), hidden size and kind from a transformers config."""
    text = getattr(config, "text_config", None)
    if getattr(config, "num_hidden_layers", None) is None and text is not None:
        config = text
    layers, width = getattr(config, "num_hidden_layers", None), getattr(config, "hidden_size", None)
    if layers is None or width is None:
        raise FeatureError(f"model {name!r}: its config ({config.model_type}) names no num_hidden_layers / hidden_size")
    return ModelShape(name, int(layers) + 1, int(width), kind_from_config(config), has_weights)


def _has_weights(folder: Path) -> bool:
    return any(any(folder.glob(pattern)) for pattern in _WEIGHT_FILES)


def _plain_config_shape(folder: Path, name: str) -> ModelShape | None:
    """The shape from config.json read as plain JSON (no transformers import) when it is unambiguous."""
    import json

    try:
        raw = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    layers, width, model_type = raw.get("num_hidden_layers"), raw.get("hidden_size"), raw.get("model_type")
    if not isinstance(layers, int) or not isinstance(width, int) or raw.get("is_encoder_decoder"):
        return None
    archs = raw.get("architectures") or []
    if model_type in _BIDIRECTIONAL_TYPES:
        kind = "bidirectional"
    elif any(str(a).endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
        kind = "causal"
    else:
        return None
    return ModelShape(name, layers + 1, width, kind, _has_weights(folder))


def folder_shape(folder: str | Path, name: str | None = None) -> ModelShape:
    """The shape of a checkpoint folder, from its config.json (``has_weights``: weight files are present)."""
    folder = Path(folder)
    shape = _plain_config_shape(folder, name or str(folder))
    if shape is not None:
        return shape
    from transformers import AutoConfig

    return config_shape(AutoConfig.from_pretrained(str(folder)), name or str(folder), _has_weights(folder))


def _hub_shape(repo_id: str) -> ModelShape:
    """A hub model's shape from its config in the local Hugging Face cache (fetched only when online)."""
    from huggingface_hub import try_to_load_from_cache
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(repo_id, local_files_only=True)
    except Exception:
        if _offline():
            raise
        config = AutoConfig.from_pretrained(repo_id)
        return config_shape(config, repo_id)
    found = try_to_load_from_cache(repo_id=repo_id, filename="config.json")
    has_weights = _has_weights(Path(found).parent) if isinstance(found, str) else True
    return config_shape(config, repo_id, has_weights)


def _auto_class(kind: str) -> Any:
    from transformers import AutoModel, AutoModelForCausalLM

    return AutoModelForCausalLM if kind == "causal" else AutoModel


def load_folder(folder: str) -> tuple[Any, Any]:
    """(model, tokenizer) of a checkpoint folder or hub id: a causal-LM class for decoders, else AutoModel."""
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(folder)
    model = _auto_class(kind_from_config(config)).from_pretrained(folder, dtype=torch.float32)
    return model, AutoTokenizer.from_pretrained(folder)


def folder_skeleton(folder: str) -> tuple[Any, Any]:
    """(config, tokenizer) of a checkpoint folder or hub id, without reading weights."""
    from transformers import AutoConfig, AutoTokenizer

    return AutoConfig.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)


def load_gguf(path: Path, skeleton: bool) -> tuple[Any, Any]:
    """(model or config, tokenizer) of a GGUF file, through its cached float conversion."""
    folder = converted_gguf(path)
    try:
        return (folder_skeleton if skeleton else load_folder)(str(folder))
    except Exception:  # a damaged conversion: rebuild it once
        folder = converted_gguf(path, rebuild=True)
        return (folder_skeleton if skeleton else load_folder)(str(folder))
