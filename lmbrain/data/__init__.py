"""Datasets: declarative specs, readers for the field's formats, fetch with checksums, simulation."""

from lmbrain.data.checks import check_n_groups
from lmbrain.data.dataset import Dataset
from lmbrain.data.registry import list_datasets, load_dataset, register_reader
from lmbrain.data.specs import DataSpec, read_spec

__all__ = [
    "DataSpec",
    "Dataset",
    "check_n_groups",
    "list_datasets",
    "load_dataset",
    "read_spec",
    "register_reader",
]
