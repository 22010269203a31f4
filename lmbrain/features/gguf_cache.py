"""GGUF checkpoints converted once to safetensors + tokenizer in the cache (keyed by the file's sha256)."""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from pathlib import Path

from lmbrain.config import cache_dir
from lmbrain.io import cached_sha256, ensure_space, publish_dir, remove_dir, staging_dir

log = logging.getLogger(__name__)

_DONE = "lmbrain_source.json"


def _models_root() -> Path:
    return cache_dir() / "models"


def gguf_sha256(path: Path) -> str:
    """Content hash of a GGUF file (memoised)."""
    return cached_sha256(path)


def _complete(folder: Path, need_weights: bool) -> bool:
    if not (folder / _DONE).is_file() or not (folder / "tokenizer_config.json").is_file():
        return False
    if need_weights:
        return (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))
    return True


def _convert(gguf_path: Path, final: Path, with_weights: bool) -> Path:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lmbrain.progress import quiet_third_party_progress

    quiet_third_party_progress()  # transformers' GGUF de-quantisation bar draws with carriage returns
    staged = staging_dir(final.parent, final.name)
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
        tokenizer.save_pretrained(staged)
        if with_weights:
            log.info("de-quantising %s once into %s", gguf_path.name, final)
            model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
            # the de-quantised float weights are ordinary tensors: drop the GGUF quantizer so they serialise
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            model.hf_quantizer = None
            with contextlib.suppress(AttributeError):
                model.is_quantized = False
            weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
            ensure_space(staged, weights, f"the de-quantised weights of {gguf_path.name}")
            model.save_pretrained(staged)
        meta = {"gguf_file": gguf_path.name, "gguf_sha256": gguf_sha256(gguf_path), "weights": with_weights}
        (staged / _DONE).write_text(json.dumps(meta, indent=1))
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    publish_dir(staged, final)
    return final


def converted_gguf(gguf_path: str | Path, *, with_weights: bool = True, rebuild: bool = False) -> Path:
    """Folder holding the GGUF file as a float safetensors checkpoint and tokenizer (built on first use)."""
    path = Path(gguf_path).resolve()
    sha = gguf_sha256(path)
    suffix = "" if with_weights else "-tokenizer"
    final = _models_root() / f"gguf-{sha[:24]}{suffix}"
    if rebuild:
        remove_dir(final)
    if _complete(final, with_weights):
        return final
    if final.exists():
        remove_dir(final)
    return _convert(path, final, with_weights)


def gguf_tokenizer_dir(gguf_path: str | Path) -> Path:
    """A folder with the GGUF file's tokenizer: the full conversion if present, else a tokenizer-only one."""
    path = Path(gguf_path).resolve()
    full = _models_root() / f"gguf-{gguf_sha256(path)[:24]}"
    if _complete(full, True):
        return full
    return converted_gguf(path, with_weights=False)
