"""The Gemma GGUF is assembled from its part wheels out of sight: a concurrent reader never sees a partial file."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from lmbrain.config import cache_dir
from lmbrain.errors import ModelUnavailableError
from lmbrain.features import catalog

PARTS = [b"GGUF" + bytes(range(256)) * 40, bytes(range(255, -1, -1)) * 40]


def _fake_package(target_seen: list[bool], fail: bool) -> types.SimpleNamespace:
    def assemble(path: str | Path) -> Path:
        out = Path(path)
        with out.open("wb") as handle:
            handle.write(PARTS[0])
            handle.flush()
            # half-way through, the published path must not exist yet
            target_seen.append((cache_dir() / "models" / "fake.gguf").exists())
            if fail:
                raise ValueError("Assembled file sha256 did not match expected value")
            handle.write(PARTS[1])
        return out

    return types.SimpleNamespace(MODEL_NAME="fake.gguf", assemble=assemble)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LMBRAIN_CACHE_DIR", str(tmp_path))
    return tmp_path


def test_assembled_file_appears_whole_or_not_at_all(cache, monkeypatch):
    seen: list[bool] = []
    monkeypatch.setattr(catalog, "_gemma3_package", lambda: _fake_package(seen, fail=False))
    path = catalog.gemma3_gguf_path()
    assert seen == [False]
    assert path == cache / "models" / "fake.gguf"
    assert path.read_bytes() == b"".join(PARTS)
    assert not list((cache / "models" / ".staging").iterdir())  # staging folder removed
    # a second call reuses the published file without assembling again
    assert catalog.gemma3_gguf_path() == path and seen == [False]


def test_failed_assembly_leaves_nothing_behind(cache, monkeypatch):
    seen: list[bool] = []
    monkeypatch.setattr(catalog, "_gemma3_package", lambda: _fake_package(seen, fail=True))
    with pytest.raises(ModelUnavailableError, match="could not be assembled"):
        catalog.gemma3_gguf_path()
    assert seen == [False]
    assert not (cache / "models" / "fake.gguf").exists()
    assert not list((cache / "models" / ".staging").iterdir())
