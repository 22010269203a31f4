"""Where a model name's weights come from: one small class per source kind (a registry entry, a .gguf file, a local
checkpoint folder, a Hugging Face hub id), each answering the same questions -- identity of the weights, kind,
shape, pretrained model, weight-free skeleton, why it could not be loaded -- so no caller dispatches on the kind."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lmbrain.errors import ModelUnavailableError
from lmbrain.features.checkpoints import (
    _BIDIRECTIONAL_TYPES,
    _hub_revision,
    _hub_shape,
    _offline,
    config_shape,
    folder_shape,
    folder_skeleton,
    folder_weights_id,
    gguf_shape,
    kind_from_config,
    load_folder,
    load_gguf,
)
from lmbrain.features.gguf_cache import gguf_sha256
from lmbrain.features.registry import ModelShape, RegisteredModel, list_models, registered, unavailable


@dataclass(frozen=True)
class ModelSource:
    """A model name resolved to where its weights are (subclasses answer for one kind of source)."""

    base: str
    #: the source kind as recorded in a model's info ("registry:NAME" for registry entries)
    label = ""
    entry: RegisteredModel | None = None
    path: Path | None = None

    @property
    def source(self) -> str:
        """How the model's info names this source."""
        return self.label

    def why_not_loadable(self) -> str:
        """The reason of the one error raised when loading fails."""
        return f"{self.path} could not be loaded as a model"

    def not_loadable(self, error: BaseException) -> ModelUnavailableError:
        """The one error raised when the source cannot be loaded (``error`` the cause)."""
        return unavailable(self.base, self.why_not_loadable(), error)

    def weights_id(self) -> str | None:
        """A short identity of the weights (a hash or a revision); None when not knowable before loading."""
        raise NotImplementedError

    def kind(self) -> str:
        """"causal" or "bidirectional", read without the weights."""
        from transformers import AutoConfig

        return kind_from_config(AutoConfig.from_pretrained(str(self.path or self.base)))

    def shape(self) -> ModelShape | None:
        """Layers, hidden size and kind without the weights (None: only loading can tell)."""
        raise NotImplementedError

    def pretrained(self) -> tuple[Any, Any]:
        """(model, tokenizer) with the source's weights."""
        return load_folder(str(self.path or self.base))

    def skeleton(self) -> tuple[Any, Any]:
        """(config, tokenizer) without reading the weights."""
        return folder_skeleton(str(self.path or self.base))

    def config_built(self) -> bool:
        """Whether the model is built from a config (its weights always come from a seed)."""
        return False

    def quantised_file(self) -> Path | None:
        """The GGUF file the pretrained weights are read from (its formats are replayed on untrained variants)."""
        return None


@dataclass(frozen=True)
class RegistrySource(ModelSource):
    """A registered name (:mod:`lmbrain.features.catalog`)."""

    @property
    def source(self) -> str:
        return f"registry:{self.base}"

    def why_not_loadable(self) -> str:
        return "its installed package could not be loaded"

    def weights_id(self) -> str | None:
        return self.entry.weights_id()

    def kind(self) -> str:
        return self.entry.kind

    def shape(self) -> ModelShape | None:
        if self.entry.shape is not None:
            return self.entry.shape()
        if self.entry.skeleton is None:
            return None
        return config_shape(self.entry.skeleton()[0], self.base)

    def pretrained(self) -> tuple[Any, Any]:
        return self.entry.loader()

    def skeleton(self) -> tuple[Any, Any]:
        if self.entry.skeleton is not None:
            return self.entry.skeleton()
        model, tokenizer = self.entry.loader()
        return model.config, tokenizer

    def config_built(self) -> bool:
        return self.entry.config_built

    def quantised_file(self) -> Path | None:
        return Path(self.entry.gguf()) if self.entry.gguf is not None else None


@dataclass(frozen=True)
class GGUFSource(ModelSource):
    """A .gguf file, converted once to a float checkpoint folder (:mod:`lmbrain.features.gguf_cache`)."""

    label = "gguf"

    def weights_id(self) -> str | None:
        return "sha256-" + gguf_sha256(self.path)[:20]

    def kind(self) -> str:
        import gguf

        field = gguf.GGUFReader(self.path).fields.get("general.architecture")
        arch = bytes(field.parts[field.data[0]]).decode() if field is not None else ""
        return "bidirectional" if arch in _BIDIRECTIONAL_TYPES else "causal"

    def shape(self) -> ModelShape | None:
        return gguf_shape(self.path, self.base)

    def pretrained(self) -> tuple[Any, Any]:
        return load_gguf(self.path, skeleton=False)

    def skeleton(self) -> tuple[Any, Any]:
        return load_gguf(self.path, skeleton=True)

    def quantised_file(self) -> Path | None:
        return self.path


@dataclass(frozen=True)
class FolderSource(ModelSource):
    """A local checkpoint folder (config.json, weights, tokenizer)."""

    label = "dir"

    def weights_id(self) -> str | None:
        return folder_weights_id(self.path)

    def shape(self) -> ModelShape | None:
        return folder_shape(self.path, self.base)


@dataclass(frozen=True)
class HubSource(ModelSource):
    """A Hugging Face hub id, read from the local cache (or the hub when online)."""

    label = "hub"

    def why_not_loadable(self) -> str:
        where = ("not installed locally and not available offline (HF_HUB_OFFLINE is set and it is not in the local "
                 "Hugging Face cache)" if _offline() else "could not be loaded from the Hugging Face hub")
        names = ", ".join(list_models())
        return f"it is not a registered name ({names}), not a local folder or .gguf file, and {where}"

    def weights_id(self) -> str | None:
        revision = _hub_revision(self.base)
        return f"rev-{revision}" if revision else None

    def shape(self) -> ModelShape | None:
        return _hub_shape(self.base)


def model_source(base: str) -> ModelSource:
    """Where the weights of a model name (without ``:untrained``) come from: the registry first, then a .gguf file,
    a local folder, else a hub id; a path that does not exist is refused here."""
    entry = registered(base)
    if entry is not None:
        return RegistrySource(base, entry=entry)
    path = Path(base).expanduser()
    if base.endswith(".gguf"):
        if not path.is_file():
            raise unavailable(base, "no such .gguf file")
        return GGUFSource(base, path=path.resolve())
    if path.is_dir():
        return FolderSource(base, path=path.resolve())
    if base.startswith((".", "/", "~")) or os.sep + os.sep in base:
        raise unavailable(base, "no such local folder")
    return HubSource(base)
