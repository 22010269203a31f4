"""Study files: one YAML describing datasets x models x feature sets x CV schemes, validated with pydantic."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, ValidationError, field_validator, model_validator

from lmbrain.errors import StudyError

#: the most permutations or bootstrap resamples a study may ask for (each costs a refit or a resample per target)
MAX_RESAMPLES = 100_000
#: the most outer or inner cross-validation folds (each fold is a refit; more than this is a typo)
MAX_SPLITS = 100


class Strict(BaseModel):
    """A pydantic model that rejects unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # .inf / .nan: refused


def _check_known(names: list[str] | tuple[str, ...]) -> None:
    from lmbrain.errors import LmbrainError
    from lmbrain.features.controls import REGISTRY, control_info

    def known(name: str) -> bool:
        try:
            return bool(control_info(name))
        except LmbrainError:
            return False

    unknown = sorted({n for n in names if not known(n)})
    if unknown:
        raise ValueError(f"unknown control(s) {unknown}; known: {REGISTRY.names()}")


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

    @field_validator("controls")
    @classmethod
    def _control_sets(cls, value: list[str]) -> list[str]:
        """Each entry is one control set (controls joined by '+'), parsed once with the feature-set grammar;
        stored in its canonical label."""
        from lmbrain.errors import LmbrainError
        from lmbrain.results import FeatureSet

        labels = []
        for text in value:
            try:
                features = FeatureSet.parse(text)
            except LmbrainError as exc:
                raise ValueError(str(exc)) from exc
            if features.llm:
                raise ValueError(f"control set {text!r}: 'llm' is not a control (the study adds the LLM itself)")
            _check_known(features.controls)
            labels.append(features.label)
        if len(set(labels)) != len(labels):
            raise ValueError(f"a control set is listed twice: {labels}")
        return labels

    @field_validator("control_options")
    @classmethod
    def _known_options(cls, value: dict) -> dict:
        _check_known(list(value))
        return value

    @property
    def control_sets(self) -> list:
        """The control sets as typed :class:`lmbrain.results.FeatureSet` (controls alone)."""
        from lmbrain.results import FeatureSet

        return [FeatureSet.parse(label) for label in self.controls]

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


#: (section, option) pairs added after studies were run: left out of the hash when unset (None)
UNHASHED_WHEN_UNSET = (("features", "prefix_window"),)


class FeatureOptions(Strict):
    """Which layers, which context policy and which pooling to extract."""

    layers: Literal["all"] | list[int | float] = "all"
    context: str = "auto"
    pooling: Literal["last", "mean", "sum"] = "last"
    batch_size: int = 16
    prefix_window: int | None = Field(
        None, ge=8, description="on incremental data, the token window a bidirectional model reads each word's prefix "
        "in: the window that ends with the word, starting at a word boundary (windows every N/2 tokens), so each word "
        "sees between about N/2 and N tokens of left context, whole words only: a bounded window as story-listening "
        "encoding work uses; None: the model's whole window. Causal models read their contexts in one pass and "
        "ignore it")


class CVOptions(Strict):
    """Outer and inner cross-validation: grouped by the dataset's split unit unless auditing."""

    schemes: list[Literal["grouped", "shuffled"]] = Field(default_factory=lambda: ["grouped"])
    n_splits: int = Field(5, ge=2, le=MAX_SPLITS)
    inner_splits: int = Field(5, ge=2, le=MAX_SPLITS)
    seed: int = Field(0, ge=0)


class TimeseriesOptions(Strict):
    """How word-level features become scan-level regressors (naturalistic fMRI)."""

    resample: Literal["lanczos", "sum", "mean"] = "lanczos"
    delays: list[int] = Field(default_factory=lambda: [1, 2, 3, 4], description="FIR delays in scans")
    high_pass_s: float | None = Field(
        128.0, description="cosine (DCT) high-pass cut-off in seconds, applied per run to responses and features"
    )
    gap: int = Field(5, ge=0, description="scans dropped from training on each side of a test block")
    onset_s: list[PositiveFloat] = Field(
        default_factory=lambda: [10.0, 40.0, 160.0],
        description="time constants (s) of the run-onset transients regressed out with the high-pass, from "
        "responses and features alike (exp(-t/tau) from each run's first scan); [] for the cosines alone",
    )


class EstimatorOptions(Strict):
    """Ridge settings: the alpha grid, and how joint LLM + control spaces are regularised."""

    alphas: list[PositiveFloat] = Field(default_factory=lambda: [10.0**k for k in range(-2, 8)], min_length=1)
    joint: str = Field("auto", description="joint LLM + controls estimator (lmbrain.encoding.joint.JOINT_KINDS); auto: "
                       "DEFAULT_JOINT (hierarchical_pooled) for event data, DEFAULT_JOINT_TIMESERIES (stacked_simplex, "
                       "its LLM band's penalty shared per subject on time series) for time series")
    alpha_choice: Literal["auto", "best", "one_se", "shared_one_se"] = Field(
        "auto", description="the LLM-alone ridge's alpha from its inner-CV scores: each target's best mean (best), the "
        "largest alpha within one standard error of it (one_se), or one alpha per subject by that rule on the mean "
        "curve of its targets (shared_one_se; lmbrain.encoding.inner_cv.alpha_scores); auto: shared_one_se for time "
        "series (few contiguous inner blocks, thousands of delayed columns: one target's best mean is often luck), "
        "best for event data (where one_se costs R², docs/statistics.md); also the LLM band's choice in the joint "
        "kinds that search it (per subject where the kind takes pool_groups, else one_se for shared_one_se; "
        "hierarchical_pooled's residual stage pools inner-CV curves instead)"
    )
    layer_curves: bool = True


    @field_validator("joint")
    @classmethod
    def _known_joint(cls, value: str) -> str:
        from lmbrain.encoding.joint import JOINT_KINDS

        if value != "auto" and value not in JOINT_KINDS:
            raise ValueError(f"unknown joint estimator {value!r}; known: auto, {', '.join(JOINT_KINDS)}")
        return value


class StatisticsOptions(Strict):
    """Permutation nulls, bootstrap confidence intervals and false-discovery control."""

    permutations: int = Field(0, ge=0, le=MAX_RESAMPLES)
    permutation_method: Literal["auto", "refit", "predictions"] = Field(
        "auto", description="auto: p_r against refits on responses sign-flipped by whole groups (event data) or "
        "circularly shifted (time series), p_r2 (R² > 0) by block sign flips of the gains over the training mean "
        "(calibrated: docs/statistics.md); refit (former default): whole groups permuted among groups of the same "
        "size, order kept (keeps position-locked structure), circular shifts for time series, the CV fit redone per "
        "permutation (~n² per target); predictions: out-of-fold predictions permuted within test folds (~n per target)"
    )
    timeseries_block: int = Field(
        20, ge=1, description="consecutive scans flipped or resampled together in the sign-flip tests (R² > 0, "
        "unique variance) and the bootstrap of time series"
    )
    bootstrap: int = Field(1000, ge=0, le=MAX_RESAMPLES)
    fdr_alpha: float = Field(0.05, gt=0, lt=1)
    ceiling: bool = True
    seed: int = Field(0, ge=0)
    sensitivity: list[float] = Field(
        default_factory=lambda: [0.005, 0.02, 0.05],
        description="unique R² levels of the known signals implanted into the real responses of every joint unit of "
        "a trained model (each in (0, 0.5)); [] turns the sensitivity analysis off (docs/statistics.md, 'Sensitivity')",
    )
    sensitivity_replications: int = Field(
        10, ge=1, le=100, description="random LLM directions implanted per level (power is read over them)")

    @field_validator("sensitivity")
    @classmethod
    def _levels(cls, value: list[float]) -> list[float]:
        if any(not (0 < v < 0.5) for v in value):
            raise ValueError(f"sensitivity levels must lie in (0, 0.5), got {value}")
        if len(set(value)) != len(value):
            raise ValueError(f"a sensitivity level is listed twice: {value}")
        return sorted(value)


class OutputOptions(Strict):
    """Which report artefacts to write."""

    formats: list[Literal["md", "csv", "tex"]] = Field(default_factory=lambda: ["md", "csv", "tex"])
    figures: bool = True
    html: bool = True


class Study(Strict):
    """A whole study: every combination of its datasets, models, feature sets and CV schemes.

    Usually read from a YAML file with :func:`load_study`; every key, type, default and limit is listed in
    ``docs/study.md`` (generated from this schema). Unknown keys are errors.

    Attributes
    ----------
    name : str
        A slug; the default results folder is ``reports/NAME``.
    datasets : list of DatasetEntry
        Each dataset with its control sets (``controls``), subjects, ROIs and reader options.
    models : list of ModelEntry
        Language models by name, each optionally with untrained seeds.
    features, cv, estimator, timeseries, statistics, outputs
        Layer selection and context; the outer and inner folds; penalties and the joint estimator; FIR delays and
        filtering of time series; resamples, nulls and the sensitivity analysis; what is written.

    Examples
    --------
    >>> import lmbrain as lb
    >>> study = lb.Study(name="demo", datasets=[{"name": "fedorenko2016", "controls": ["word_position"]}],
    ...                  models=[{"name": "minilm-l6"}])
    >>> study.model_variants()
    [('minilm-l6', None)]
    """

    name: str
    description: str = ""
    #: the question the study's report page asks (its title and first line); the default control-analysis question
    #: where empty. Presentation only: not part of the study's hash, so editing it leaves finished units valid.
    question: str = ""
    datasets: list[DatasetEntry] = Field(min_length=1)
    models: list[ModelEntry] = Field(default_factory=list)
    features: FeatureOptions = FeatureOptions()
    cv: CVOptions = CVOptions()
    estimator: EstimatorOptions = Field(default_factory=EstimatorOptions)  # built on use: imports sklearn
    timeseries: TimeseriesOptions = TimeseriesOptions()
    statistics: StatisticsOptions = StatisticsOptions()
    outputs: OutputOptions = OutputOptions()

    @field_validator("name")
    @classmethod
    def _slug(cls, value: str) -> str:
        """The name becomes a folder name (reports/NAME): a slug, never a path."""
        from lmbrain.paths import check_slug

        return check_slug(value)

    @model_validator(mode="after")
    def _something_to_fit(self) -> Study:
        """A dataset with no control set in a study with no model would only get a ceiling: nothing is fitted."""
        bare = [f"datasets.{i} ({entry.name})" for i, entry in enumerate(self.datasets) if not entry.controls]
        if not self.models and bare:
            raise ValueError(f"models: none, and {', '.join(bare)} list no controls: nothing would be fitted there; "
                             "add a model (models: [{name: ...}]) or a control set (controls: [...])")
        return self

    def model_variants(self) -> list[tuple[str, int | None]]:
        """Every (model, untrained seed) pair of the study; seed None is the trained model."""
        return [(entry.name, seed) for entry in self.models
                for seed in ([None] if entry.trained else []) + list(entry.untrained_seeds)]

    def digest(self) -> str:
        """A stable hash of the study's content (key order and formatting do not matter)."""
        content = self.model_dump(mode="json", exclude={"question"})
        for section, key in UNHASHED_WHEN_UNSET:  # options added later: unset, a study keeps the hash it had
            if content.get(section, {}).get(key) is None:
                content[section].pop(key, None)
        text = json.dumps(content, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_study(path: str | Path) -> Study:
    """Read and validate a study YAML; one StudyError naming the file and the field on failure.

    Parameters
    ----------
    path : str or Path
        A study file (``analyses/*.yaml``; every field in ``docs/study.md``), read with a safe YAML loader.

    Returns
    -------
    lmbrain.Study
        The validated study with its defaults filled in.
    """
    path = Path(path)
    if not path.is_file():
        raise StudyError(f"study file {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise StudyError(f"study file {path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                         f"{exc.start}); a study is a YAML text file") from None
    except yaml.YAMLError as exc:
        raise StudyError(f"study file {path} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise StudyError(f"study file {path} must be a mapping of keys to values")
    try:
        return Study.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(_problem(err) for err in exc.errors())
        raise StudyError(f"study file {path}: {problems}") from exc


def _problem(err: Any) -> str:
    """One validation error as ``field.path: message`` (the message alone when it names its own fields)."""
    message = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = "unknown key"
    loc = ".".join(str(p) for p in err["loc"])
    return f"{loc}: {message}" if loc else message
