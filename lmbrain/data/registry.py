"""Reader registry and ``load_dataset``: a spec names a reader, the reader turns files into a Dataset."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from lmbrain import config
from lmbrain.data.checks import mask_bad_neuroids, verify_files
from lmbrain.data.dataset import Dataset
from lmbrain.data.specs import DataSpec, find_spec, list_specs
from lmbrain.errors import DataError
from lmbrain.paths import inside
from lmbrain.registry import Registry

log = logging.getLogger(__name__)


@dataclass
class ReadContext:
    """What a reader gets: the spec, the dataset folder, the requested subjects and resolved options."""

    spec: DataSpec
    root: Path
    subjects: list[str] | None
    options: dict[str, Any]

    def path(self, relative: str | Path) -> Path:
        """A file under the dataset folder (never outside it); a DataError naming it when it is missing."""
        try:
            path = inside(self.root, relative, "path")
        except ValueError as err:
            raise DataError(f"dataset {self.spec.name}: {err}") from None
        if not path.exists():
            raise DataError(f"dataset {self.spec.name}: missing data file {path}")
        return path

    def role(self, role: str) -> Path:
        """The path of the spec file with this role (checked to exist)."""
        return self.path(self.spec.file(role).path)

    def wants(self, subject: str) -> bool:
        """True when the subject was requested (or no selection was made)."""
        return self.subjects is None or str(subject) in self.subjects

    def dataset(self, stimuli: pd.DataFrame, responses: xr.DataArray, **extra: Any) -> Dataset:
        """A Dataset carrying the spec's name, modality, units, citation and licence."""
        spec = self.spec
        return Dataset(
            name=spec.name,
            modality=spec.modality,
            stimulus_unit=spec.stimulus_unit,
            split_unit=spec.split_unit,
            stimuli=stimuli.reset_index(drop=True),
            responses=responses,
            tr=spec.timing.tr if spec.timing else None,
            citation=spec.citation,
            licence=spec.licence,
            **extra,
        )


ReaderFn = Callable[[ReadContext], Dataset]


@dataclass(frozen=True)
class Reader:
    """A registered reader: its function, accepted options with defaults, and a one-line description."""

    name: str
    fn: ReaderFn
    options: dict[str, Any] = field(default_factory=dict)
    description: str = ""


#: The readers by name; the built-in ones register when ``lmbrain.data.readers`` is imported (on first lookup).
READERS: Registry[Reader] = Registry("reader", DataError, builtins="lmbrain.data.readers")


def register_reader(
    name: str, *, options: dict[str, Any] | None = None, description: str = ""
) -> Callable[[ReaderFn], ReaderFn]:
    """Decorator registering a reader under ``name`` (accepted options and their defaults given)."""

    return READERS.register(name, lambda fn: Reader(name, fn, dict(options or {}),
                                                     description or (fn.__doc__ or "").strip()))


def reader_names() -> list[str]:
    """Names of every registered reader."""
    return READERS.names()


def get_reader(name: str) -> Reader:
    """The reader registered under ``name``; a DataError listing the known ones otherwise."""
    return READERS.get(name)


def resolve_options(spec: DataSpec, reader: Reader, overrides: dict[str, Any]) -> dict[str, Any]:
    """Reader defaults, then the spec's ``options``, then the caller's; unknown names are errors."""
    for source, given in (("spec options", spec.options), ("load_dataset options", overrides)):
        unknown = sorted(set(given) - set(reader.options))
        if unknown:
            raise DataError(
                f"dataset {spec.name}: unknown {source} {unknown} for reader {reader.name!r}; "
                f"accepted: {sorted(reader.options)}"
            )
    return {**reader.options, **spec.options, **overrides}


def list_datasets() -> list[str]:
    """Names of every dataset spec found in the spec folders.

    Returns
    -------
    list of str
        Names that :func:`load_dataset` accepts (``data_specs/*.yaml`` and ``$LMBRAIN_DATA_DIR``'s specs).
    """
    return list_specs()


def load_dataset(
    name_or_path: str | Path,
    *,
    subjects: Sequence[str] | None = None,
    data_dir: Path | None = None,
    verify: bool = True,
    **options: Any,
) -> Dataset:
    """Load a dataset by spec name (``data_specs/NAME.yaml``) or spec path, validated and masked.

    Files are checked to exist and (``verify=True``) to match their sha256 before reading; neuroids that
    are all NaN or constant are set to NaN and listed in ``dataset.masked``; subjects with no usable
    neuroid are removed and listed in ``dataset.excluded``; other missing (NaN) values are counted in
    ``dataset.missing`` and logged; an empty or whitespace-only stimulus text is a DataError.

    Parameters
    ----------
    name_or_path : str or Path
        A spec name (``lb.list_datasets()``) or the path of a spec YAML.
    subjects : sequence of str, optional
        Load only these subjects.
    data_dir : Path, optional
        Where the data live (default: ``LMBRAIN_DATA_DIR``).
    verify : bool
        Check every file's sha256 against the spec before reading it.
    **options
        The spec's reader options (e.g. ``roi_size`` for Brennan2016).

    Returns
    -------
    Dataset
        The stimulus table (one row per stimulus), the responses per subject (samples × neuroids) and the split
        groups.
    """
    spec = find_spec(name_or_path)
    reader = get_reader(spec.reader)
    opts = resolve_options(spec, reader, options)
    root = spec.root_dir(Path(data_dir) if data_dir is not None else config.data_dir())
    if not root.is_dir():
        raise DataError(
            f"dataset {spec.name}: folder {root} does not exist (try `lmbrain data fetch {spec.name}`)"
        )
    wanted = [str(s) for s in subjects] if subjects is not None else None
    if wanted is not None and spec.subjects is not None:
        unknown = [s for s in wanted if s not in spec.subjects]
        if unknown:
            raise DataError(
                f"dataset {spec.name}: unknown subject(s) {unknown}; subjects are {spec.subjects}"
            )
    verify_files(spec, root, checksums=verify)
    dataset = reader.fn(ReadContext(spec, root, wanted, opts))
    return finalize(dataset, spec, wanted)


def finalize(dataset: Dataset, spec: DataSpec, subjects: list[str] | None) -> Dataset:
    """Apply the subject selection, mask bad neuroids, exclude unusable subjects, re-validate."""
    responses = dataset.responses
    excluded = dict(dataset.excluded)
    if subjects is not None:
        keep = np.isin([str(s) for s in responses["subject"].values], subjects)
        responses = responses.isel(neuroid=np.flatnonzero(keep))
        excluded = {s: r for s, r in excluded.items() if s in subjects}
    responses, masked, newly_excluded = mask_bad_neuroids(responses)
    excluded.update(newly_excluded)
    if responses.sizes["neuroid"] == 0:
        raise DataError(
            f"dataset {spec.name}: no usable subject left "
            f"(requested {subjects or 'all'}; excluded: {excluded})"
        )
    found = list(dict.fromkeys(str(s) for s in responses["subject"].values))
    if spec.subjects is not None:
        stray = [s for s in found if s not in spec.subjects]
        if stray:
            raise DataError(f"dataset {spec.name}: data has subject(s) {stray} that the spec does not list")
    dataset.responses = responses
    dataset.excluded = excluded
    dataset.masked = {**dataset.masked, **masked}
    dataset.nuisance = {s: df for s, df in dataset.nuisance.items() if s in found}
    dataset.validate()
    missing = dataset.missing
    if missing:
        log.warning("dataset %s: %s", spec.name, missing.describe())
    return dataset
