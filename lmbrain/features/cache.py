"""The feature cache: content-addressed, a verified .npy per layer, atomic writes, shared by studies."""

from __future__ import annotations

import io
import json
import logging
import shutil
import time
import warnings
from collections.abc import Hashable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lmbrain.config import cache_dir
from lmbrain.errors import ModelUnavailableError
from lmbrain.features.errors import FeatureError
from lmbrain.features.extract import POOLINGS, Units, plan_runs, prepare_units, resolve_context, run_extraction
from lmbrain.features.layers import LayerSpec, resolve_layers
from lmbrain.features.models import LanguageModel, load_model, model_ref
from lmbrain.io import (
    canonical_json,
    clean_staging,
    ensure_space,
    publish_dir,
    remove_dir,
    reserve,
    sha256_bytes,
    sha256_file,
    staging_dir,
)

FORMAT = 1
MANIFEST = "manifest.json"
log = logging.getLogger(__name__)


class _CorruptError(Exception):
    pass


def _layer_file(layer: int) -> str:
    return f"layer_{layer:03d}.npy"


class EntryWriter:
    """Builds one cache entry in a private staging folder, layer files streamed to disk, then publishes it."""

    def __init__(
        self, cache: FeatureCache, key: str, spec: dict[str, Any], n_layers: int, n_units: int, hidden: int
    ) -> None:
        self.cache, self.key, self.spec = cache, key, spec
        self.shape = (n_units, hidden)
        self.n_layers = n_layers
        what = f"feature cache entry {key[:12]} ({n_layers} layers of {n_units} x {hidden} float32)"
        ensure_space(cache.root, n_layers * (n_units * hidden * 4 + 4096), what)
        self.staged = staging_dir(cache.root, key)
        self.maps: list[np.memmap] = []
        try:
            for layer in range(n_layers):
                path = self.staged / _layer_file(layer)
                array = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=self.shape)
                reserve(path, path.stat().st_size, what)  # no SIGBUS on a full disk while the map is written
                self.maps.append(array)
        except BaseException:
            self.abort()
            raise
        self.filled = np.zeros(n_units, dtype=bool)

    def __call__(self, rows: np.ndarray, values: np.ndarray) -> None:
        """Write the features of ``rows`` (all layers) into the layer files."""
        for layer, array in enumerate(self.maps):
            array[rows] = values[layer]
        self.filled[rows] = True

    def commit(self, model_info: dict[str, Any] | None = None) -> Path:
        """Hash the layer files, write the manifest last, and rename the entry into place atomically."""
        if not self.filled.all():
            raise RuntimeError(
                f"cache entry {self.key[:12]}: {int((~self.filled).sum())} units were never written"
            )
        # no msync: the shared mapping's pages are what every reader of the file sees; the OS writes them back
        # lazily, and a file damaged by a crash before that fails its sha256 check on read and is rebuilt
        self.maps = []
        files = {}
        for layer in range(self.n_layers):
            path = self.staged / _layer_file(layer)
            files[path.name] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
        manifest = {
            "format": FORMAT,
            "key": self.key,
            "spec": self.spec,
            "n_layers": len(files),
            "n_units": self.shape[0],
            "hidden_size": self.shape[1],
            "dtype": "float32",
            "files": files,
            "model": model_info or {},
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        path = self.staged / MANIFEST
        try:
            path.write_text(json.dumps(manifest, indent=1, sort_keys=True))
        except OSError as error:  # a full disk names no file
            error.filename = error.filename or str(path)
            raise
        final = self.cache.entry_dir(self.key)
        publish_dir(self.staged, final)  # if another process published the same key first, keep theirs
        return final

    def abort(self) -> None:
        """Drop the staging folder."""
        self.maps = []
        shutil.rmtree(self.staged, ignore_errors=True)

    def __enter__(self) -> EntryWriter:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self.staged.exists():
            self.abort()


class FeatureCache:
    """Features stored under ``root/<key[:2]>/<key>/`` as ``layer_NNN.npy`` files plus a JSON manifest."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else cache_dir() / "features"
        self.root.mkdir(parents=True, exist_ok=True)
        for folder in clean_staging(self.root):  # left by extractions that were killed
            log.info("feature cache: removed %s (its extraction was killed)", folder)

    def key(self, spec: dict[str, Any]) -> str:
        """Content address of a spec (model identity, units digest, context, pooling, window, dtype)."""
        return sha256_bytes(canonical_json({"format": FORMAT, **spec}).encode())

    def entry_dir(self, key: str) -> Path:
        """Folder of an entry."""
        return self.root / key[:2] / key

    def keys(self) -> list[str]:
        """Keys of the published entries."""
        return sorted(p.parent.name for p in self.root.glob(f"??/*/{MANIFEST}"))

    def _manifest(self, folder: Path, key: str) -> dict[str, Any]:
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
        except (OSError, ValueError) as error:
            raise _CorruptError(f"unreadable manifest: {error}") from None
        if not isinstance(manifest, dict) or manifest.get("key") != key or manifest.get("format") != FORMAT:
            raise _CorruptError("manifest does not describe this entry")
        return manifest

    def _layer(self, folder: Path, manifest: dict[str, Any], layer: int) -> np.ndarray:
        name = _layer_file(layer)
        expected = manifest["files"].get(name)
        if expected is None:
            raise _CorruptError(f"{name} is not in the manifest")
        try:
            data = (folder / name).read_bytes()
        except OSError as error:
            raise _CorruptError(f"{name}: {error}") from None
        if len(data) != expected["bytes"] or sha256_bytes(data) != expected["sha256"]:
            raise _CorruptError(f"{name} does not match its recorded size/sha256")
        array = np.load(io.BytesIO(data), allow_pickle=False)
        if array.dtype != np.float32 or array.shape != (manifest["n_units"], manifest["hidden_size"]):
            raise _CorruptError(f"{name} has shape {array.shape} {array.dtype}")
        return array

    def n_layers(self, key: str) -> int | None:
        """Number of layers stored in an entry (None when absent or unreadable)."""
        try:
            return int(self._manifest(self.entry_dir(key), key)["n_layers"])
        except _CorruptError:
            return None

    def read(self, key: str, layers: LayerSpec = "all") -> np.ndarray | None:
        """The ``(layers, units, hidden)`` features of an entry, each layer file verified against its sha256;
        None when absent. A corrupted entry is removed with a warning (and returns None, so it is rebuilt)."""
        folder = self.entry_dir(key)
        if not folder.exists():
            return None
        try:
            manifest = self._manifest(folder, key)
            layer_ids = resolve_layers(layers, int(manifest["n_layers"]))
            return np.stack([self._layer(folder, manifest, layer) for layer in layer_ids])
        except _CorruptError as reason:
            warnings.warn(
                f"feature cache entry {key[:12]} under {self.root} is corrupted ({reason}); rebuilding it",
                RuntimeWarning,
                stacklevel=2,
            )
            remove_dir(folder)
            return None

    def writer(self, key: str, spec: dict[str, Any], n_layers: int, n_units: int, hidden: int) -> EntryWriter:
        """A writer that streams an entry's layers to disk (use as a context manager, then ``commit``)."""
        return EntryWriter(self, key, spec, n_layers, n_units, hidden)

    def clear(self) -> None:
        """Remove every entry."""
        for key in self.keys():
            remove_dir(self.entry_dir(key))


#: the last model loaded on a cache miss, kept for the next miss of the same model (a study extracts one model
#: variant on every dataset in a row): {(name, untrained_seed, dtype, device): LanguageModel}
_LOADED: dict[tuple, LanguageModel] = {}


def _load(model_name: str, untrained_seed: int | None, dtype: str, device: str) -> LanguageModel:
    key = (model_name, untrained_seed, dtype, device)
    if key not in _LOADED:
        _LOADED.clear()  # one model in memory at a time
        _LOADED[key] = load_model(model_name, untrained_seed, dtype, device)
    return _LOADED[key]


def release_models() -> None:
    """Drop the model kept from the last cache miss (its memory is freed)."""
    _LOADED.clear()


def _model_identity(
    model_name: str | LanguageModel, untrained_seed: int | None, dtype: str, device: str
) -> tuple[LanguageModel | None, str, str, str]:
    """The model (when loaded already or loading was needed to know it), its identity, kind and dtype."""
    lm = model_name if isinstance(model_name, LanguageModel) else None
    if lm is not None:
        identity, kind, dtype = lm.info.identity, lm.info.kind, lm.info.dtype
    else:
        try:
            ref = model_ref(model_name, untrained_seed)
            identity, kind = ref.identity, ref.kind
        except (
            ModelUnavailableError
        ):  # e.g. a hub model not downloaded yet: loading says whether it can be had
            lm = _load(model_name, untrained_seed, dtype, device)
            identity, kind = lm.info.identity, lm.info.kind
    return lm, identity, kind, dtype


def _entry_spec(
    model_identity: str,
    units: Units,
    kind: str,
    context: str,
    pooling: str,
    max_length: int | None,
    stride: int | None,
    dtype: str,
) -> dict[str, Any]:
    """What a cache entry's key is made of: the model, the units and the extraction settings."""
    return {
        "model": model_identity,
        "units": units.digest(),
        "n_units": len(units.texts),
        "context": resolve_context(context, kind),
        "pooling": pooling,
        "max_length": max_length,
        "stride": stride,
        "dtype": dtype,
    }


def _write_static_entry(
    store: FeatureCache,
    key: str,
    spec: dict[str, Any],
    model_name: str,
    untrained_seed: int | None,
    identity: str,
    units: Units,
    layers: LayerSpec,
) -> None:
    """Compute a static (word-embedding) model's features and store them as a one-layer entry."""
    from lmbrain.features.static import static_features

    name = model_name if untrained_seed is None or ":untrained" in model_name else \
        f"{model_name}:untrained-{untrained_seed}"
    values, info = static_features(name, list(units.texts), identity)
    resolve_layers(layers, 1)
    with store.writer(key, spec, 1, len(units.texts), values.shape[2]) as writer:
        writer(np.arange(len(units.texts)), values)
        writer.commit(info)


def _write_model_entry(
    store: FeatureCache,
    key: str,
    spec: dict[str, Any],
    lm: LanguageModel,
    units: Units,
    layers: LayerSpec,
    *,
    pooling: str,
    max_length: int | None,
    stride: int | None,
    batch_size: int,
    progress: bool,
) -> None:
    """Extract every layer of a loaded model and stream it into a new entry."""
    resolve_layers(layers, lm.info.n_layers)
    runs = plan_runs(lm, units, spec["context"], max_length, stride)
    with store.writer(key, spec, lm.info.n_layers, len(units.texts), lm.info.hidden_size) as writer:
        run_extraction(lm, runs, list(range(lm.info.n_layers)), pooling, writer, batch_size, progress)
        writer.commit(lm.info.as_dict())


def get_features(
    model_name: str | LanguageModel,
    texts: Sequence[str],
    context_ids: Sequence[Hashable] | None = None,
    positions: Sequence[int] | None = None,
    *,
    untrained_seed: int | None = None,
    context: str = "auto",
    pooling: str = "last",
    layers: LayerSpec = "all",
    cache: FeatureCache | str | Path | None = None,
    dtype: str = "float32",
    device: str = "auto",
    batch_size: int = 16,
    max_length: int | None = None,
    stride: int | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Features ``(layers, units, hidden)`` from the cache; on a miss all layers are extracted to disk.

    The model is loaded only on a miss (a warm run reads the verified layer files); arguments: ``extract_features``.

    Parameters
    ----------
    model_name : str or LanguageModel
        A registered model (``lb.list_models()``), a hub id or an already loaded model.
    texts : sequence of str, length n_units
        The words (or sentences); ``context_ids`` and ``positions`` place each in its context.

    Returns
    -------
    ndarray of shape (n_layers, n_units, hidden)
    """
    if pooling not in POOLINGS:
        raise FeatureError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    store = cache if isinstance(cache, FeatureCache) else FeatureCache(cache)
    units = prepare_units(texts, context_ids, positions)
    lm, identity, kind, dtype = _model_identity(model_name, untrained_seed, dtype, device)
    spec = _entry_spec(identity, units, kind, context, pooling, max_length, stride, dtype)
    key = store.key(spec)
    stored_layers = store.n_layers(key)
    if stored_layers is not None:
        resolve_layers(layers, stored_layers)  # a bad spec is an error, not a cache miss
    found = store.read(key, layers)
    if found is not None:
        return found
    if lm is None and kind == "static":
        _write_static_entry(store, key, spec, model_name, untrained_seed, identity, units, layers)
        return store.read(key, layers)
    if lm is None:
        lm = _load(model_name, untrained_seed, dtype, device)
        if lm.info.identity != identity:
            spec = _entry_spec(lm.info.identity, units, kind, context, pooling, max_length, stride, dtype)
            key = store.key(spec)
    _write_model_entry(store, key, spec, lm, units, layers, pooling=pooling, max_length=max_length, stride=stride,
                       batch_size=batch_size, progress=progress)
    found = store.read(key, layers)
    if found is None:
        raise RuntimeError(f"feature cache entry {key[:12]} could not be read back after writing it")
    return found
