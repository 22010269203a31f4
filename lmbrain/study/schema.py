"""Study files: one YAML describing datasets x models x feature sets x CV schemes, validated with pydantic."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lmbrain.errors import StudyError


class Strict(BaseModel):
    """A pydantic model that rejects unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetEntry(Strict):
    """A dataset of the study, with its subject / ROI selection and the controls scored on it."""

    name: str
    subjects: Literal["all"] | list[str] = "all"
    rois: list[str] | None = None
    controls: list[str] = Field(default_factory=list)
    control_options: dict[str, dict[str, str | int | float | bool]] = Field(
        default_factory=dict,
        description="keyword options of single controls, e.g. {random: {dim: 576, seed: 1}, "
        "sentence_length_tokens: {model: minilm-l6}}; random's dim defaults to the models' hidden size",
    )
    options: dict[str, str | int | float | bool] = Field(default_factory=dict)

    @field_validator("controls", "control_options")
    @classmethod
    def _known_controls(cls, value: object) -> object:
        from lmbrain.features.controls import CONTROLS

        names = value if isinstance(value, list) else list(value)
        parts = [p.strip() for name in names for p in str(name).split("+")]
        unknown = sorted({p for p in parts if p not in CONTROLS})
        if unknown:
            raise ValueError(f"unknown control(s) {unknown}; known: {sorted(CONTROLS)}")
        return value

    @field_validator("subjects", mode="before")
    @classmethod
    def _subjects_as_strings(cls, value: object) -> object:
        if isinstance(value, list):
            return [str(v) for v in value]
        return value


class ModelEntry(Strict):
    """A language model, optionally with untrained (re-initialised) variants from the given seeds."""

    name: str
    untrained_seeds: list[int] = Field(default_factory=list)
    trained: bool = True


class FeatureOptions(Strict):
    """Which layers, which context policy and which pooling to extract."""

    layers: Literal["all"] | list[int | float] = "all"
    context: str = "auto"
    pooling: Literal["last", "mean", "sum"] = "last"
    batch_size: int = 16


class CVOptions(Strict):
    """Outer and inner cross-validation: grouped by the dataset's split unit unless auditing."""

    schemes: list[Literal["grouped", "shuffled"]] = Field(default_factory=lambda: ["grouped"])
    n_splits: int = Field(5, ge=2)
    inner_splits: int = Field(5, ge=2)
    seed: int = 0


class TimeseriesOptions(Strict):
    """How word-level features become scan-level regressors (naturalistic fMRI)."""

    resample: Literal["lanczos", "sum", "mean"] = "lanczos"
    delays: list[int] = Field(default_factory=lambda: [1, 2, 3, 4], description="FIR delays in scans")
    high_pass_s: float | None = Field(
        128.0, description="cosine (DCT) high-pass cut-off in seconds, applied per run to responses and features"
    )
    gap: int = Field(5, ge=0, description="scans dropped from training on each side of a test block")


class EstimatorOptions(Strict):
    """Ridge settings: the alpha grid, and how joint LLM + control spaces are regularised."""

    alphas: list[float] = Field(default_factory=lambda: [10.0**k for k in range(-2, 8)])
    joint: Literal["banded", "ridge"] = "banded"
    layer_curves: bool = True


class StatisticsOptions(Strict):
    """Permutation nulls, bootstrap confidence intervals and false-discovery control."""

    permutations: int = Field(0, ge=0)
    permutation_method: Literal["refit", "predictions"] = Field(
        "refit", description="refit: the CV fit redone per permutation (exact, ~n² per target); "
        "predictions: out-of-fold predictions permuted within test folds (~n per target, slightly conservative)"
    )
    timeseries_block: int = Field(
        20, ge=1, description="consecutive scans flipped together in the unique-variance test of time series"
    )
    bootstrap: int = Field(1000, ge=0)
    fdr_alpha: float = Field(0.05, gt=0, lt=1)
    ceiling: bool = True
    seed: int = 0


class OutputOptions(Strict):
    """Which report artefacts to write."""

    formats: list[Literal["md", "csv", "tex"]] = Field(default_factory=lambda: ["md", "csv", "tex"])
    figures: bool = True
    html: bool = True


class Study(Strict):
    """A whole study: every combination of its datasets, models, feature sets and CV schemes."""

    name: str
    description: str = ""
    datasets: list[DatasetEntry] = Field(min_length=1)
    models: list[ModelEntry] = Field(default_factory=list)
    features: FeatureOptions = FeatureOptions()
    cv: CVOptions = CVOptions()
    estimator: EstimatorOptions = EstimatorOptions()
    timeseries: TimeseriesOptions = TimeseriesOptions()
    statistics: StatisticsOptions = StatisticsOptions()
    outputs: OutputOptions = OutputOptions()

    def digest(self) -> str:
        """A stable hash of the study's content (key order and formatting do not matter)."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_study(path: str | Path) -> Study:
    """Read and validate a study YAML; one StudyError naming the file and the field on failure."""
    path = Path(path)
    if not path.is_file():
        raise StudyError(f"study file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise StudyError(f"study file {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise StudyError(f"study file {path} must be a mapping of keys to values")
    try:
        return Study.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise StudyError(f"study file {path}: {problems}") from exc
