"""The model registry: names with family metadata, and the ModelInfo every loaded model carries."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from lmbrain.errors import ModelUnavailableError
from lmbrain.registry import Registry

KINDS = ("causal", "bidirectional", "static")

#: ``embed(texts, untrained_seed) -> (vectors (n_texts, dim), facts)`` of a static embedding (one "layer", no
#: context): the facts (words, out-of-vocabulary words) go into the feature cache's model info
Embed = Callable[[list[str], int | None], tuple[Any, dict[str, Any]]]

#: ``loader()`` returns (model, tokenizer) with pretrained weights; ``skeleton()`` returns (config, tokenizer)
#: without reading weights (used to build untrained variants); ``weights_id()`` a cheap stable identity of
#: the weights (file hash or revision), computed without loading the model; ``shape()`` the model's
#: :class:`ModelShape` read from its config or file metadata (no weights, nothing written).
Loader = Callable[[], tuple[Any, Any]]


@dataclass(frozen=True)
class ModelShape:
    """A model's size as read from its config or file metadata, without loading (or having) its weights;
    ``has_weights``: its pretrained weights are there, or it needs none (config-built models)."""

    name: str
    n_layers: int
    hidden_size: int
    kind: str
    has_weights: bool = True

    @property
    def layers_text(self) -> str:
        """``"31 layers: 0..30"`` (``n_layers`` counts layer 0, the input embeddings)."""
        return f"{self.n_layers} layers: 0..{self.n_layers - 1}"


@dataclass(frozen=True)
class ModelInfo:
    """What a loaded model is: family metadata, sizes, and a stable identity used as cache key."""

    name: str
    family: str
    architecture: str
    kind: str
    n_params: int
    n_layers: int
    hidden_size: int
    max_length: int
    identity: str
    untrained_seed: int | None = None
    training: str = ""
    source: str = ""
    dtype: str = "float32"

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (for manifests and reports)."""
        return asdict(self)


@dataclass(frozen=True)
class RegisteredModel:
    """A registry entry: how to load a named model and what it is."""

    name: str
    loader: Loader
    family: str
    architecture: str
    kind: str
    weights_id: Callable[[], str]
    skeleton: Loader | None = None
    tokenizer_loader: Callable[[], Any] | None = None
    training: str = ""
    config_built: bool = False
    description: str = ""
    shape: Callable[[], ModelShape] | None = None
    quantisation: str = "none"
    size: str = ""
    #: the quantised file the pretrained weights come from (its tensors' formats are replayed on untrained variants)
    gguf: Callable[[], Any] | None = None
    #: a static embedding's lookup (its features are computed by :func:`lmbrain.features.static.static_features`)
    embed: Embed | None = None


#: The models by name; the packaged ones register when ``lmbrain.features.catalog`` is imported (on first lookup).
MODELS: Registry[RegisteredModel] = Registry("model", ValueError, builtins="lmbrain.features.catalog")


def register_model(
    name: str,
    *,
    family: str,
    architecture: str,
    kind: str,
    weights_id: Callable[[], str] | str,
    skeleton: Loader | None = None,
    tokenizer_loader: Callable[[], Any] | None = None,
    training: str = "",
    config_built: bool = False,
    description: str = "",
    shape: Callable[[], ModelShape] | None = None,
    quantisation: str = "none",
    size: str = "",
    gguf: Callable[[], Any] | None = None,
    embed: Embed | None = None,
    replace: bool = False,
) -> Callable[[Loader], Loader]:
    """Decorator: register the decorated loader (``() -> (model, tokenizer)``) as the model ``name``
    (``config_built`` models always take their weights from a seed).

    ``training``: how its weights were obtained (base pretraining, instruction tuning, contrastive fine-tuning,
    untrained); ``quantisation``: how the shipped weights were stored ("none" for full precision); ``size``:
    parameters and shape in words; ``gguf``: the quantised file the weights are read from. All are shown by
    ``lmbrain models`` and recorded in study manifests. ``embed``: a static embedding's lookup (kind "static").
    """
    if ":" in name:
        raise ValueError(f"model name {name!r} must not contain ':' (reserved for ':untrained-SEED')")
    if kind not in KINDS:
        raise ValueError(f"model {name!r}: kind must be one of {KINDS}, got {kind!r}")
    wid = (lambda value=weights_id: value) if isinstance(weights_id, str) else weights_id

    def entry(loader: Loader) -> RegisteredModel:
        return RegisteredModel(name=name, loader=loader, family=family, architecture=architecture, kind=kind,
                               weights_id=wid, skeleton=skeleton, tokenizer_loader=tokenizer_loader,
                               training=training, config_built=config_built, description=description,
                               shape=shape, quantisation=quantisation, size=size, gguf=gguf, embed=embed)

    return MODELS.register(name, entry, replace=replace)


def list_models() -> list[str]:
    """Names of the registered models (any hub id, local folder or .gguf file works too).

    Returns
    -------
    list of str
        Names that :func:`load_model` and :func:`lmbrain.get_features` accept besides hub ids and paths.
    """
    return MODELS.names()


def registered(name: str) -> RegisteredModel | None:
    """The registry entry of a name, or None for a hub id / path."""
    return MODELS.find(name)


def describe_models() -> list[dict[str, Any]]:
    """Static metadata of every registered model, for listings."""
    return [
        {
            "name": e.name,
            "family": e.family,
            "architecture": e.architecture,
            "kind": e.kind,
            "training": e.training,
            "quantisation": e.quantisation,
            "size": e.size,
            "description": e.description,
        }
        for _, e in sorted(MODELS.items())
    ]


def describe_model(name: str, untrained_seed: int | None = None) -> dict[str, Any]:
    """What a model of a study is: a registry entry's metadata (training replaced by the initialiser's for an
    untrained variant), or, for a hub id / path, its name only."""
    base = name.split(":")[0]
    entry = MODELS.find(base)
    if entry is None:
        return {"name": name, "family": "", "kind": "", "training": "not in the registry", "quantisation": "",
                "size": "", "description": ""}
    out = next(d for d in describe_models() if d["name"] == base)
    if untrained_seed is not None or ":untrained" in name:
        replay = "the checkpoint's GGUF formats replayed (quantised, then de-quantised to float32)"
        training = (f"untrained: every word's vector replaced by a random one (seed {untrained_seed}) with the "
                    "table's per-dimension mean and standard deviation" if entry.kind == "static" else
                    f"untrained: weights from the architecture's initialiser, seed {untrained_seed}")
        out = {**out, "training": training, "quantisation": replay if entry.gguf is not None else "none"}
    return {**out, "name": name}


def unavailable(name: str, why: str, cause: BaseException | None = None) -> ModelUnavailableError:
    """The one error raised when a model cannot be loaded."""
    text = f"model {name!r} is not available: {why}"
    if cause is not None:
        text += f" ({type(cause).__name__}: {str(cause).splitlines()[0] if str(cause) else ''})"
    return ModelUnavailableError(text)
