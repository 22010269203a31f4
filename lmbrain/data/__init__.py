"""Datasets: declarative specs, readers for the field's formats, fetch with checksums, simulation.

The public names are imported on first use, so that ``import lmbrain.data`` (and the command line) stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lmbrain.data.checks import check_n_groups
    from lmbrain.data.dataset import Dataset
    from lmbrain.data.registry import list_datasets, load_dataset, register_reader
    from lmbrain.data.specs import DataSpec, read_spec

_EXPORTS = {
    "DataSpec": "lmbrain.data.specs",
    "Dataset": "lmbrain.data.dataset",
    "check_n_groups": "lmbrain.data.checks",
    "list_datasets": "lmbrain.data.registry",
    "load_dataset": "lmbrain.data.registry",
    "read_spec": "lmbrain.data.specs",
    "register_reader": "lmbrain.data.registry",
}

__all__ = [
    "DataSpec",
    "Dataset",
    "check_n_groups",
    "list_datasets",
    "load_dataset",
    "read_spec",
    "register_reader",
]


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first access."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The module's names, lazy ones included."""
    return sorted({*globals(), *_EXPORTS})
