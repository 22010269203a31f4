"""Datasets: declarative specs, readers for the field's formats, fetch with checksums, simulation.

The public names are imported on first use, so that ``import lmbrain.data`` (and the command line) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lmbrain._lazy import lazy_exports

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


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
