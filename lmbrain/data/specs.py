"""Declarative dataset specs: one YAML file per dataset, validated on load (unknown keys are errors)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from lmbrain.errors import DataError
from lmbrain.paths import check_slug, inside, relative_problem

#: Environment variable naming extra folders (``:``-separated) searched for ``NAME.yaml`` specs.
SPECS_DIR_VAR = "LMBRAIN_SPECS_DIR"
#: The specs shipped with lmbrain (``data_specs/`` at the repository root).
BUILTIN_SPECS_DIR = Path(__file__).resolve().parents[2] / "data_specs"

Modality = Literal["fmri_sentences", "fmri_timeseries", "ecog_words", "eeg_words", "reading_times"]
MODALITIES: tuple[str, ...] = get_args(Modality)  # == lmbrain.data.dataset.MODALITIES, without importing xarray
StimulusUnit = Literal["word", "sentence", "passage", "story"]
#: modalities recorded while the text unfolds word by word (reading, RSVP, listening): at each word the brain has
#: seen only the words before it, so language-model features must use left context only
INCREMENTAL_MODALITIES: tuple[str, ...] = ("reading_times", "eeg_words", "ecog_words", "fmri_timeseries")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileSpec(_Strict):
    """One file of a dataset: its path under the dataset root, checksum and public download address."""

    path: str
    sha256: str | None = None
    url: str | None = None
    role: str | None = None
    size: int | None = None

    @field_validator("sha256")
    @classmethod
    def _hex64(cls, value: str | None) -> str | None:
        if value is not None and (len(value) != 64 or any(c not in "0123456789abcdef" for c in value)):
            raise ValueError(f"sha256 must be 64 lowercase hex digits, got {value!r}")
        return value

    @field_validator("path")
    @classmethod
    def _relative(cls, value: str) -> str:
        problem = relative_problem(value, "file path")
        if problem:
            raise ValueError(f"{problem} (files are given relative to the dataset root)")
        return value


class RoiSpec(_Strict):
    """What is known about one region of interest."""

    name: str | None = None
    hemisphere: Literal["left", "right", "bilateral"] | None = None
    network: str | None = None
    #: the ROI's centre in MNI152 space (mm, x y z), for the report's brain view; cite it in ``coordinates_source``
    mni: tuple[float, float, float] | None = None


class NeuroidSpec(_Strict):
    """Neuroid metadata: ROI descriptions and defaults for the network/hemisphere coordinates."""

    rois: dict[str, RoiSpec] = Field(default_factory=dict)
    network: str | None = None
    hemisphere: Literal["left", "right", "bilateral"] | None = None
    description: str | None = None
    #: where the ROIs' MNI centres come from (a paper's table, the data release): required with any ``mni``
    coordinates_source: str | None = None

    @model_validator(mode="after")
    def _cited(self) -> NeuroidSpec:
        """ROI coordinates are facts about a dataset: each set of them says where it comes from."""
        if any(roi.mni is not None for roi in self.rois.values()) and not self.coordinates_source:
            raise ValueError("rois give MNI centres (mni) but coordinates_source does not say where they come from")
        return self

    def roi_centres(self) -> dict[str, list[float]]:
        """Every ROI with an MNI centre: name -> [x, y, z] (mm)."""
        return {name: list(roi.mni) for name, roi in self.rois.items() if roi.mni is not None}


class TimingSpec(_Strict):
    """Timing of a time-series dataset: TR, scans kept, and how the stimulus clock maps to scans."""

    tr: float = Field(gt=0)
    n_scans: int | None = Field(default=None, gt=0)
    discarded_volumes: int = Field(default=0, ge=0)
    stimulus_start: float = 0.0
    word_onsets: str | None = None
    description: str | None = None


class DataSpec(_Strict):
    """A dataset described declaratively; ``reader`` turns its files into a ``Dataset``."""

    name: str
    description: str = ""
    citation: str
    licence: str
    modality: Modality
    reader: str
    stimulus_unit: StimulusUnit
    split_unit: str
    split_description: str | None = None
    root: str
    files: list[FileSpec] = Field(default_factory=list)
    subjects: list[str] | None = None
    timing: TimingSpec | None = None
    neuroids: NeuroidSpec = Field(default_factory=NeuroidSpec)
    options: dict[str, Any] = Field(default_factory=dict)
    source: str | None = None

    @field_validator("subjects", mode="before")
    @classmethod
    def _subjects_as_str(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [str(v) for v in value]
        return value

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        return check_slug(value)

    @field_validator("root")
    @classmethod
    def _inside_data_dir(cls, value: str) -> str:
        problem = relative_problem(value, "root")
        if problem:
            raise ValueError(f"{problem}: a dataset's folder lies under the data directory ($LMBRAIN_DATA_DIR)")
        return value

    def file(self, role: str) -> FileSpec:
        """The file with this role; a DataError if the spec has none."""
        for entry in self.files:
            if entry.role == role:
                return entry
        raise DataError(
            f"spec {self.name}: no file with role {role!r} (roles: {[f.role for f in self.files]})"
        )

    def root_dir(self, data_dir: Path) -> Path:
        """The dataset's folder: ``root`` under the data directory (never outside it)."""
        try:
            return inside(Path(data_dir), self.root, "root")
        except ValueError as err:
            raise DataError(f"spec {self.name}: {err}") from None

    def file_path(self, data_dir: Path, entry: FileSpec) -> Path:
        """Where one of the spec's files lies: under the dataset's folder (never outside it)."""
        root = self.root_dir(data_dir)
        try:
            return inside(root, entry.path, "file path")
        except ValueError as err:
            raise DataError(f"spec {self.name}: {err}") from None


def parse_spec(raw: Any, *, source: str) -> DataSpec:
    """Validate a spec mapping; one DataError naming the source and every bad field."""
    if not isinstance(raw, dict):
        raise DataError(f"spec {source}: expected a mapping at the top level, got {type(raw).__name__}")
    if "modality" in raw and raw["modality"] not in MODALITIES:
        raise DataError(f"spec {source}: unknown modality {raw['modality']!r}; expected one of {MODALITIES}")
    try:
        return DataSpec.model_validate(raw)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
            msg = "unknown key" if e["type"] == "extra_forbidden" else str(e["msg"]).removeprefix("Value error, ")
            problems.append(f"{loc}: {msg}")
        raise DataError(f"spec {source}: " + "; ".join(problems)) from None


def read_spec(path: str | Path) -> DataSpec:
    """Read and validate one spec YAML file (``yaml.safe_load`` only)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"spec file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise DataError(f"spec {path}: not valid YAML ({err})") from None
    return parse_spec(raw, source=str(path))


def spec_dirs() -> list[Path]:
    """Folders searched for specs: ``$LMBRAIN_SPECS_DIR`` entries first, then the built-in ``data_specs``."""
    extra = [Path(p).expanduser() for p in os.environ.get(SPECS_DIR_VAR, "").split(os.pathsep) if p]
    return [*extra, BUILTIN_SPECS_DIR]


def list_specs() -> list[str]:
    """Names of every spec found (sorted, first folder wins)."""
    names: set[str] = set()
    for folder in spec_dirs():
        if folder.is_dir():
            names.update(p.stem for p in folder.glob("*.yaml"))
    return sorted(names)


def find_spec(name_or_path: str | Path) -> DataSpec:
    """A spec by name (``NAME.yaml`` in the spec folders) or by path to a YAML file."""
    text = str(name_or_path)
    if text.endswith((".yaml", ".yml")) or os.sep in text or isinstance(name_or_path, Path):
        return read_spec(name_or_path)
    for folder in spec_dirs():
        candidate = folder / f"{text}.yaml"
        if candidate.is_file():
            spec = read_spec(candidate)
            if spec.name != text:
                raise DataError(f"spec {candidate}: name {spec.name!r} differs from its file name {text!r}")
            return spec
    raise DataError(f"unknown dataset {text!r}; known datasets: {list_specs()}")
