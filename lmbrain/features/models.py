"""Loading language models by name (registry, hub id, local folder, .gguf file), untrained variants too."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lmbrain.errors import LmbrainError, ModelUnavailableError
from lmbrain.features.errors import FeatureError
from lmbrain.features.gguf_cache import converted_gguf, gguf_sha256
from lmbrain.features.layers import resolve_layers
from lmbrain.features.registry import (
    ModelInfo,
    ModelShape,
    RegisteredModel,
    list_models,
    register_model,
    registered,
    unavailable,
)
from lmbrain.io import canonical_json, combined_sha256, sha256_bytes

__all__ = [
    "LanguageModel",
    "ModelInfo",
    "ModelRef",
    "ModelShape",
    "build_gpt2",
    "list_models",
    "load_model",
    "load_tokenizer",
    "model_layer_count",
    "model_ref",
    "model_shape",
    "parse_model_name",
    "register_model",
    "resolve_layers",
]

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
_UNTRAINED = re.compile(r"^(?P<base>.+?):untrained(?:-(?P<seed>\d+))?$")
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


@dataclass
class LanguageModel:
    """A loaded model: metadata, the torch module (with its LM head when causal), tokenizer and device."""

    info: ModelInfo
    model: Any
    tokenizer: Any
    device: torch.device

    def hidden_states(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """Every layer's hidden states (layer 0 = input embeddings) of the base model, without the LM head."""
        kwargs: dict[str, Any] = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "output_hidden_states": True,
            "return_dict": True,
        }
        if self.info.kind == "causal":
            kwargs["use_cache"] = False
        return self.model.base_model(**kwargs).hidden_states

    def __repr__(self) -> str:
        i = self.info
        return f"LanguageModel({i.identity}, {i.kind}, {i.n_layers} layers x {i.hidden_size}, {self.device})"


@dataclass(frozen=True)
class ModelRef:
    """What a model name resolves to without loading weights: identity (cache key) and kind."""

    name: str
    base: str
    untrained_seed: int | None
    identity: str
    kind: str


@dataclass(frozen=True)
class _Source:
    base: str
    where: str  # "registry" | "gguf" | "dir" | "hub"
    entry: RegisteredModel | None = None
    path: Path | None = None


# -- names ------------------------------------------------------------------------------------------
def parse_model_name(name: str, untrained_seed: int | None = None) -> tuple[str, int | None]:
    """Split ``NAME[:untrained[-SEED]]`` into the base name and the untrained seed (None = pretrained)."""
    if not isinstance(name, str) or not name.strip():
        raise ModelUnavailableError(f"model name must be a non-empty string, got {name!r}")
    name = name.strip()
    match = _UNTRAINED.match(name)
    if match is None:
        seed = untrained_seed
    else:
        seed = int(match["seed"] or 0)
        if untrained_seed is not None and untrained_seed != seed:
            raise FeatureError(
                f"model {name!r} names untrained seed {seed} but untrained_seed={untrained_seed}"
            )
        name = match["base"]
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise FeatureError(f"untrained seed must be a non-negative int, got {seed!r}")
    return name, seed


def _source(base: str) -> _Source:
    entry = registered(base)
    if entry is not None:
        return _Source(base, "registry", entry=entry)
    path = Path(base).expanduser()
    if base.endswith(".gguf"):
        if not path.is_file():
            raise unavailable(base, "no such .gguf file")
        return _Source(base, "gguf", path=path.resolve())
    if path.is_dir():
        return _Source(base, "dir", path=path.resolve())
    if base.startswith((".", "/", "~")) or os.sep + os.sep in base:
        raise unavailable(base, "no such local folder")
    return _Source(base, "hub")


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes") or os.environ.get(
        "TRANSFORMERS_OFFLINE", ""
    ).lower() in ("1", "true", "yes")


def _not_loadable(src: _Source, error: BaseException) -> ModelUnavailableError:
    if src.where == "hub":
        where = (
            "not installed locally and not available offline (HF_HUB_OFFLINE is set and it is not in the "
            "local Hugging Face cache)"
            if _offline()
            else "could not be loaded from the Hugging Face hub"
        )
        names = ", ".join(list_models())
        why = f"it is not a registered name ({names}), not a local folder or .gguf file, and {where}"
    elif src.where == "registry":
        why = "its installed package could not be loaded"
    else:
        why = f"{src.path} could not be loaded as a model"
    return unavailable(src.base, why, error)


# -- identity ---------------------------------------------------------------------------------------
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


def _weights_id(src: _Source) -> str | None:
    if src.where == "registry":
        return src.entry.weights_id()
    if src.where == "gguf":
        return "sha256-" + gguf_sha256(src.path)[:20]
    if src.where == "dir":
        return folder_weights_id(src.path)
    revision = _hub_revision(src.base)
    return f"rev-{revision}" if revision else None


def _identity(base: str, weights_id: str, seed: int | None) -> str:
    if seed is None:
        return f"{base}@{weights_id}"
    import transformers

    versions = f"transformers-{transformers.__version__},torch-{torch.__version__.split('+')[0]}"
    return f"{base}@{weights_id}:untrained-{seed}[{versions}]"


def _effective_seed(src: _Source, seed: int | None) -> int | None:
    if src.entry is not None and src.entry.config_built and seed is None:
        return 0
    return seed


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


def _probe_kind(src: _Source) -> str:
    if src.where == "registry":
        return src.entry.kind
    if src.where == "gguf":
        import gguf

        field = gguf.GGUFReader(src.path).fields.get("general.architecture")
        arch = bytes(field.parts[field.data[0]]).decode() if field is not None else ""
        return "bidirectional" if arch in _BIDIRECTIONAL_TYPES else "causal"
    from transformers import AutoConfig

    return kind_from_config(AutoConfig.from_pretrained(str(src.path or src.base)))


def model_ref(name: str, untrained_seed: int | None = None) -> ModelRef:
    """A name's identity and kind without loading weights (raises if that cannot be done cheaply)."""
    base, seed = parse_model_name(name, untrained_seed)
    src = _source(base)
    seed = _effective_seed(src, seed)
    try:
        weights_id = _weights_id(src)
        kind = _probe_kind(src)
    except LmbrainError:
        raise
    except Exception as error:
        raise _not_loadable(src, error) from error
    if weights_id is None:
        raise _not_loadable(src, LookupError("revision not in the local cache"))
    return ModelRef(
        name=name, base=base, untrained_seed=seed, identity=_identity(base, weights_id, seed), kind=kind
    )


# -- shapes without weights -------------------------------------------------------------------------
_GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_GGUF_STRING, _GGUF_ARRAY = 8, 9
_WEIGHT_FILES = ("*.safetensors", "*.bin", "*.safetensors.index.json", "*.bin.index.json")


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


def model_shape(name: str) -> ModelShape | None:
    """A model's layers, hidden size and kind from its config or file metadata only: never its weights.

    Registry names use their registered ``shape`` (else their weight-free skeleton config); .gguf files their
    header; local folders and hub ids (local cache; the hub only when online) their config. ``has_weights`` is
    False when a folder or hub snapshot holds only the config (enough for untrained variants only). Raises
    ModelUnavailableError when the model cannot be found; None for a registered model that can tell its size
    only by loading it.
    """
    base, _ = parse_model_name(name)
    src = _source(base)
    try:
        if src.where == "registry":
            entry = src.entry
            if entry.shape is not None:
                return entry.shape()
            if entry.skeleton is None:
                return None
            return config_shape(entry.skeleton()[0], base)
        if src.where == "gguf":
            return gguf_shape(src.path, base)
        if src.where == "dir":
            return folder_shape(src.path, base)
        return _hub_shape(base)
    except LmbrainError:
        raise
    except Exception as error:
        raise _not_loadable(src, error) from error


def model_layer_count(name: str) -> int:
    """Number of layers of a model (layer 0 = input embeddings included), read without loading weights."""
    shape = model_shape(name)
    if shape is None:
        raise unavailable(name, "its registry entry gives no way to read its size without loading it")
    return shape.n_layers


# -- loading ----------------------------------------------------------------------------------------
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


def _pretrained(src: _Source) -> tuple[Any, Any]:
    if src.where == "registry":
        return src.entry.loader()
    if src.where == "gguf":
        return load_gguf(src.path, skeleton=False)
    return load_folder(str(src.path or src.base))


def _skeleton(src: _Source) -> tuple[Any, Any]:
    if src.where == "registry":
        if src.entry.skeleton is not None:
            return src.entry.skeleton()
        model, tokenizer = src.entry.loader()
        return model.config, tokenizer
    if src.where == "gguf":
        return load_gguf(src.path, skeleton=True)
    return folder_skeleton(str(src.path or src.base))


def init_from_config(config: Any, kind: str, seed: int) -> Any:
    """A model of ``config``'s architecture, weights from its own initialiser, seeded (global RNG kept)."""
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _auto_class(kind).from_config(config, dtype=torch.float32)


def _max_length(config: Any, tokenizer: Any) -> int:
    limits = [getattr(config, "max_position_embeddings", None), getattr(tokenizer, "model_max_length", None)]
    limits = [int(v) for v in limits if isinstance(v, int | float) and 0 < v < 10**7]
    return min(limits) if limits else 2048


def _device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError):
        raise FeatureError(
            f"unknown device {device!r} (use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps')"
        ) from None


def load_model(
    name: str, untrained_seed: int | None = None, dtype: str = "float32", device: str = "auto"
) -> LanguageModel:
    """Load a model by registry name, hub id, local folder or .gguf path; ``:untrained-SEED`` or
    ``untrained_seed`` gives the same architecture and tokenizer with weights from its initialiser."""
    if dtype not in DTYPES:
        raise FeatureError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    from lmbrain.progress import quiet_third_party_progress

    quiet_third_party_progress()  # no "Loading weights" bars drawn with carriage returns into logs
    torch_device = _device(device)
    base, seed = parse_model_name(name, untrained_seed)
    src = _source(base)
    seed = _effective_seed(src, seed)
    try:
        if seed is None:
            model, tokenizer = _pretrained(src)
            kind = src.entry.kind if src.entry else kind_from_config(model.config)
        else:
            config, tokenizer = _skeleton(src)
            kind = src.entry.kind if src.entry else kind_from_config(config)
            model = init_from_config(config, kind, seed)
        weights_id = _weights_id(src)
    except LmbrainError:
        raise
    except Exception as error:
        raise _not_loadable(src, error) from error
    if weights_id is None:  # a hub model just downloaded: its revision is known now
        weights_id = f"rev-{getattr(model.config, '_commit_hash', None) or 'unknown'}"
    if not getattr(tokenizer, "is_fast", False):
        raise FeatureError(
            f"model {name!r}: its tokenizer has no offset mapping (not a fast tokenizer); lmbrain "
            "aligns tokens to words by offsets only"
        )
    model.eval()
    model.to(device=torch_device, dtype=DTYPES[dtype])
    config = model.config
    entry = src.entry
    training = (
        entry.training
        if entry and seed is None
        else f"untrained: weights from the architecture's initialiser, seed {seed}"
        if seed is not None
        else "pretrained"
    )
    info = ModelInfo(
        name=name,
        family=entry.family if entry else config.model_type,
        architecture=entry.architecture
        if entry
        else (getattr(config, "architectures", None) or [type(model).__name__])[0],
        kind=kind,
        n_params=sum(p.numel() for p in model.parameters()),
        n_layers=int(config.num_hidden_layers) + 1,
        hidden_size=int(config.hidden_size),
        max_length=_max_length(config, tokenizer),
        identity=_identity(base, weights_id, seed),
        untrained_seed=seed,
        training=training,
        source=src.where if src.where != "registry" else f"registry:{base}",
        dtype=dtype,
    )
    return LanguageModel(info=info, model=model, tokenizer=tokenizer, device=torch_device)


def load_tokenizer(name: str) -> Any:
    """The tokenizer of a model name (registry entries may provide it without loading weights)."""
    base, _ = parse_model_name(name)
    src = _source(base)
    try:
        if src.entry is not None and src.entry.tokenizer_loader is not None:
            return src.entry.tokenizer_loader()
        return _skeleton(src)[1]
    except LmbrainError:
        raise
    except Exception as error:
        raise _not_loadable(src, error) from error


# -- config-built GPT-2 ---------------------------------------------------------------------------------
def build_gpt2(
    n_layer: int = 2,
    n_embd: int = 64,
    n_head: int = 2,
    n_positions: int = 512,
    tokenizer_from: str = "smollm2-135m",
) -> tuple[Any, Any]:
    """A GPT-2 architecture config (no weights) sized to a tokenizer borrowed from an installed model."""
    from transformers import GPT2Config

    tokenizer = load_tokenizer(tokenizer_from)
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=n_positions,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        architectures=["GPT2LMHeadModel"],
    )
    return config, tokenizer


def register_gpt2(
    name: str,
    *,
    n_layer: int,
    n_embd: int,
    n_head: int,
    n_positions: int = 1024,
    tokenizer_from: str = "smollm2-135m",
    description: str = "",
) -> None:
    """Register a config-built GPT-2 (weights always from the initialiser; seed 0 unless ``:untrained-N``)."""

    def skeleton() -> tuple[Any, Any]:
        return build_gpt2(n_layer, n_embd, n_head, n_positions, tokenizer_from)

    def loader() -> tuple[Any, Any]:  # never pretrained: seed 0
        config, tokenizer = skeleton()
        return init_from_config(config, "causal", 0), tokenizer

    def weights_id() -> str:
        spec = {"n_layer": n_layer, "n_embd": n_embd, "n_head": n_head, "n_positions": n_positions}
        tok = model_ref(tokenizer_from).identity
        return "config-" + sha256_bytes(canonical_json({"gpt2": spec, "tokenizer": tok}).encode())[:16]

    def shape() -> ModelShape:  # the borrowed tokenizer must be there; no weights are needed
        model_shape(tokenizer_from)
        return ModelShape(name, n_layer + 1, n_embd, "causal")

    register_model(
        name,
        shape=shape,
        family="gpt2",
        architecture="GPT2LMHeadModel",
        kind="causal",
        weights_id=weights_id,
        skeleton=skeleton,
        training="untrained: built from a config, weights from GPT-2's initialiser",
        quantisation="none",
        size=f"{n_layer} layers x {n_embd}",
        config_built=True,
        description=description
        or f"GPT-2 architecture, {n_layer} layers x {n_embd}, tokenizer of {tokenizer_from}",
    )(loader)
