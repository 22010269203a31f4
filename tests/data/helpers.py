"""Test helpers: copy a fixture dataset and its spec to a temporary folder, with changes."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_spec(name: str) -> Path:
    """Path of a fixture spec YAML."""
    return FIXTURES / "specs" / f"{name}.yaml"


def copy_fixture(name: str, tmp: Path, *, drop_checksums: bool = False, **changes: Any) -> Path:
    """Copy fixture ``name``'s files and spec under ``tmp``; returns the new spec path (data_dir = tmp)."""
    spec = yaml.safe_load(fixture_spec(name).read_text())
    shutil.copytree(FIXTURES / spec["root"], tmp / spec["root"])
    spec.update(changes)
    if drop_checksums:
        for f in spec["files"]:
            f.pop("sha256", None)
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path
