"""Loading language models by name (registry, hub id, local folder, .gguf file), untrained variants too."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import torch

from lmbrain.errors import LmbrainError, ModelUnavailableError
from lmbrain.features.checkpoints import _auto_class, kind_from_config
from lmbrain.features.errors import FeatureError
from lmbrain.features.layers import resolve_layers
from lmbrain.features.quant_roundtrip import describe_replay, replay_quantisation
from lmbrain.features.registry import (
    ModelInfo,
    ModelShape,
    list_models,
    register_model,
    unavailable,
)
from lmbrain.features.sources import ModelSource, model_source
from lmbrain.io import canonical_json, sha256_bytes

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


# -- identity ---------------------------------------------------------------------------------------


def _identity(base: str, weights_id: str, seed: int | None, replayed: bool = False) -> str:
    if seed is None:
        return f"{base}@{weights_id}"
    import transformers
    from packaging.version import Version

    versions = f"transformers-{transformers.__version__},torch-{Version(str(torch.__version__)).public}"  # no +cpu
    # untrained variants of a GGUF checkpoint go through its quantisation round trip: a different set of weights
    replay = ",gguf-roundtrip-1" if replayed else ""
    return f"{base}@{weights_id}:untrained-{seed}[{versions}{replay}]"


def _effective_seed(src: ModelSource, seed: int | None) -> int | None:
    if src.config_built() and seed is None:
        return 0
    return seed


def model_ref(name: str, untrained_seed: int | None = None) -> ModelRef:
    """A name's identity and kind without loading weights (raises if that cannot be done cheaply)."""
    base, seed = parse_model_name(name, untrained_seed)
    src = model_source(base)
    seed = _effective_seed(src, seed)
    try:
        weights_id = src.weights_id()
        kind = src.kind()
    except LmbrainError:
        raise
    except Exception as error:
        raise src.not_loadable(error) from error
    if weights_id is None:
        raise src.not_loadable(LookupError("revision not in the local cache"))
    replayed = seed is not None and src.quantised_file() is not None
    return ModelRef(
        name=name, base=base, untrained_seed=seed, identity=_identity(base, weights_id, seed, replayed), kind=kind
    )


# -- shapes without weights -------------------------------------------------------------------------


def model_shape(name: str) -> ModelShape | None:
    """A model's layers, hidden size and kind from its config or file metadata only: never its weights.

    Registry names use their registered ``shape`` (else their weight-free skeleton config); .gguf files their
    header; local folders and hub ids (local cache; the hub only when online) their config. ``has_weights`` is
    False when a folder or hub snapshot holds only the config (enough for untrained variants only). Raises
    ModelUnavailableError when the model cannot be found; None for a registered model that can tell its size
    only by loading it.
    """
    base, _ = parse_model_name(name)
    src = model_source(base)
    try:
        return src.shape()
    except LmbrainError:
        raise
    except Exception as error:
        raise src.not_loadable(error) from error


def model_layer_count(name: str) -> int:
    """Number of layers of a model (layer 0 = input embeddings included), read without loading weights."""
    shape = model_shape(name)
    if shape is None:
        raise unavailable(name, "its registry entry gives no way to read its size without loading it")
    return shape.n_layers


# -- loading ----------------------------------------------------------------------------------------


def init_from_config(config: Any, kind: str, seed: int) -> Any:
    """A model of ``config``'s architecture, weights from its own initialiser, seeded (global RNG kept)."""
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _auto_class(kind).from_config(config, dtype=torch.float32)


def untrained_training(seed: int | None, replayed: str = "") -> str:
    """How an untrained variant's weights were made, in words (``replayed``: the GGUF formats replayed on them)."""
    text = f"untrained: weights from the architecture's initialiser, seed {seed}"
    if replayed:
        text += f", then quantised and de-quantised in the checkpoint's own GGUF formats ({replayed})"
    return text


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


def _build_weights(src: ModelSource, seed: int | None) -> tuple[Any, Any, str, str, str]:
    """The model (pretrained, or initialised from ``seed``), tokenizer, kind, replayed GGUF formats, weights id."""
    replayed = ""
    try:
        if seed is None:
            model, tokenizer = src.pretrained()
            kind = src.entry.kind if src.entry else kind_from_config(model.config)
        else:
            config, tokenizer = src.skeleton()
            kind = src.entry.kind if src.entry else kind_from_config(config)
            model = init_from_config(config, kind, seed)
            quantised = src.quantised_file()
            if quantised is not None:
                replayed = describe_replay(replay_quantisation(model, quantised))
        weights_id = src.weights_id()
    except LmbrainError:
        raise
    except Exception as error:
        raise src.not_loadable(error) from error
    if weights_id is None:  # a hub model just downloaded: its revision is known now
        weights_id = f"rev-{getattr(model.config, '_commit_hash', None) or 'unknown'}"
    return model, tokenizer, kind, replayed, weights_id


def _loaded_info(
    name: str, base: str, src: ModelSource, model: Any, tokenizer: Any, kind: str, seed: int | None,
    replayed: str, weights_id: str, dtype: str,
) -> ModelInfo:
    """The metadata of a loaded model: registry entry first, else read from its config."""
    config = model.config
    entry = src.entry
    training = (
        entry.training
        if entry and seed is None
        else untrained_training(seed, replayed)
        if seed is not None
        else "pretrained"
    )
    return ModelInfo(
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
        identity=_identity(base, weights_id, seed, bool(replayed)),
        untrained_seed=seed,
        training=training,
        source=src.source,
        dtype=dtype,
    )


def load_model(
    name: str, untrained_seed: int | None = None, dtype: str = "float32", device: str = "auto"
) -> LanguageModel:
    """Load a model by registry name, hub id, local folder or .gguf path; ``:untrained-SEED`` or
    ``untrained_seed`` gives the same architecture and tokenizer with weights from its initialiser.

    Parameters
    ----------
    name : str
        A registered name (:func:`lmbrain.list_models`), a Hugging Face hub id (from the local cache when offline),
        a local model folder or a ``.gguf`` file; ``NAME:untrained-SEED`` for the untrained variant.
    untrained_seed : int, optional
        Re-initialise the weights with this seed (same architecture and tokenizer).
    dtype : {"float32", "float16", "bfloat16"}
        Weight precision.
    device : str
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ...

    Returns
    -------
    LanguageModel
        The model, its tokenizer and ``info`` (family, kind: causal / bidirectional, layers, hidden size).

    Raises
    ------
    ModelUnavailableError
        The model cannot be found offline; the message names what was tried and how to make it available.
    """
    if dtype not in DTYPES:
        raise FeatureError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    from lmbrain.progress import quiet_third_party_progress

    quiet_third_party_progress()  # no "Loading weights" bars drawn with carriage returns into logs
    torch_device = _device(device)
    base, seed = parse_model_name(name, untrained_seed)
    src = model_source(base)
    seed = _effective_seed(src, seed)
    model, tokenizer, kind, replayed, weights_id = _build_weights(src, seed)
    if not getattr(tokenizer, "is_fast", False):
        raise FeatureError(
            f"model {name!r}: its tokenizer has no offset mapping (not a fast tokenizer); lmbrain "
            "aligns tokens to words by offsets only"
        )
    model.eval()
    model.to(device=torch_device, dtype=DTYPES[dtype])
    info = _loaded_info(name, base, src, model, tokenizer, kind, seed, replayed, weights_id, dtype)
    return LanguageModel(info=info, model=model, tokenizer=tokenizer, device=torch_device)


def load_tokenizer(name: str) -> Any:
    """The tokenizer of a model name (registry entries may provide it without loading weights)."""
    base, _ = parse_model_name(name)
    src = model_source(base)
    try:
        if src.entry is not None and src.entry.tokenizer_loader is not None:
            return src.entry.tokenizer_loader()
        return src.skeleton()[1]
    except LmbrainError:
        raise
    except Exception as error:
        raise src.not_loadable(error) from error


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
