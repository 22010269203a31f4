"""The results schema shared by :mod:`lmbrain.study` (which writes results) and :mod:`lmbrain.report` (which reads
them): column names, metric names, labels of models, layers and feature sets, and the one feature-set grammar.

A study's ``results.parquet`` holds one row per target x unit x metric with the columns :data:`COLUMNS`
(plus ``roi`` where targets have one). Nothing else in the package builds or parses these labels.
"""

from __future__ import annotations

from dataclasses import dataclass

from lmbrain.errors import LmbrainError

# -- columns ----------------------------------------------------------------------------------------

COLUMNS = ["dataset", "subject", "model", "feature_set", "scheme", "per_layer", "layer", "neuroid_id", "metric",
           "value"]
#: the deterministic row order of ``results.parquet``
SORT_COLUMNS = ["dataset", "subject", "model", "feature_set", "scheme", "per_layer", "layer", "neuroid_id", "metric"]
#: the identifying columns of a unit's rows (everything but the target, metric and value)
UNIT_COLUMNS = ["dataset", "subject", "model", "feature_set", "scheme", "per_layer", "layer"]

# -- metrics ----------------------------------------------------------------------------------------

R = "r"  #: Pearson r of out-of-fold predictions, averaged over outer folds
R2 = "r2"  #: out-of-sample R² of the pooled out-of-fold predictions against each sample's training-fold mean
R_CI_LOW, R_CI_HIGH = "r_ci_low", "r_ci_high"
R2_CI_LOW, R2_CI_HIGH = "r2_ci_low", "r2_ci_high"
P_R, P_R2, NULL_R_MEAN = "p_r", "p_r2", "null_r_mean"  #: permutation p-values and the null's mean r
P_UNIQUE = "p_unique"  #: p-value of unique LLM R² > 0 (joint vs controls alone, paired block sign flips)
R2_LLM, R2_CONTROLS = "r2_llm", "r2_controls"  #: the parts' R² on the joint unit's own samples
UNIQUE_LLM = "unique_llm"  #: R²(joint) − R²(controls)
UNIQUE_CI_LOW, UNIQUE_CI_HIGH = "unique_llm_ci_low", "unique_llm_ci_high"
OMEGA = "omega"  #: % of the LLM's R² that the controls account for
OMEGA_CI_LOW, OMEGA_CI_HIGH = "omega_ci_low", "omega_ci_high"

# -- labels -----------------------------------------------------------------------------------------

NO_MODEL = "-"  #: the model label of rows that involve no language model (controls, ceilings)
ALL_SUBJECTS = "*"  #: a unit's subject label when it fits every subject of the dataset together
LLM = "llm"
CEILING = "ceiling"
JOINT = "+"
LAYER_PREFIX = "layer="


def model_label(model: str | None, untrained_seed: int | None) -> str:
    """The label of a model in results: its name, with ``:untrained-SEED`` for re-initialised variants."""
    if model is None:
        return NO_MODEL
    return model if untrained_seed is None else f"{model}:untrained-{untrained_seed}"


def is_untrained(label: str) -> bool:
    """Whether a model label names an untrained (re-initialised) variant."""
    return ":untrained-" in str(label)


def layer_label(layer: int) -> str:
    """The label of an LLM layer as stored in ``layer`` and in-fold choices."""
    return f"{LAYER_PREFIX}{int(layer)}"


def layer_index(label: str) -> int:
    """The layer index of a layer label (``'layer=12'`` -> 12)."""
    text = str(label)
    if not text.startswith(LAYER_PREFIX):
        raise LmbrainError(f"not a layer label: {label!r}")
    return int(text[len(LAYER_PREFIX):])


def choice_value(label: str) -> str:
    """The value part of a candidate label (``'layer=12'`` -> ``'12'``, ``'sigma=0.5'`` -> ``'0.5'``)."""
    return str(label).split("=", 1)[-1]


# -- feature sets -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureSet:
    """What a unit fits: the LLM (layer chosen in-fold), a set of controls, or the LLM jointly with controls.

    Parsed once from the study's strings (``"llm"``, ``"word_position"``, ``"sentence_length+sentence_position"``,
    ``"llm+word_rate+sound_power"``); :attr:`label` is the string stored in results.
    """

    llm: bool
    controls: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.llm and not self.controls:
            raise LmbrainError("a feature set needs the LLM or at least one control")
        if len(set(self.controls)) != len(self.controls):
            raise LmbrainError(f"feature set repeats a control: {'+'.join(self.controls)}")
        if LLM in self.controls or CEILING in self.controls:
            raise LmbrainError(f"{LLM!r} and {CEILING!r} are not controls")

    @classmethod
    def parse(cls, text: str) -> FeatureSet:
        """Parse ``llm``, ``CONTROL[+CONTROL...]`` or ``llm+CONTROL[+CONTROL...]``."""
        parts = [p.strip() for p in str(text).split(JOINT)]
        if not parts or any(not p for p in parts):
            raise LmbrainError(f"feature set {text!r}: empty part (expected names joined by '+')")
        llm = parts[0] == LLM
        controls = tuple(parts[1:] if llm else parts)
        if LLM in controls:
            raise LmbrainError(f"feature set {text!r}: 'llm' may only come first")
        return cls(llm, controls)

    @classmethod
    def controls_only(cls, controls: str | tuple[str, ...]) -> FeatureSet:
        """The controls of a set (a ``+``-joined string or a tuple) without the LLM."""
        return cls(False, tuple(FeatureSet.parse(controls).controls) if isinstance(controls, str) else controls)

    @property
    def label(self) -> str:
        """The string stored in the results' ``feature_set`` column."""
        return JOINT.join(((LLM,) if self.llm else ()) + self.controls)

    @property
    def controls_label(self) -> str:
        """The controls alone, as a label (``''`` for the LLM alone)."""
        return JOINT.join(self.controls)

    @property
    def is_joint(self) -> bool:
        """The LLM together with controls (a banded / stacked joint model)."""
        return self.llm and bool(self.controls)

    @property
    def is_llm(self) -> bool:
        """The LLM alone."""
        return self.llm and not self.controls

    @property
    def is_controls(self) -> bool:
        """Controls alone (one or several)."""
        return not self.llm

    def joint(self) -> FeatureSet:
        """This set's controls together with the LLM."""
        return FeatureSet(True, self.controls)

    def without_llm(self) -> FeatureSet:
        """This set's controls alone."""
        return FeatureSet(False, self.controls)

    def __str__(self) -> str:
        return self.label


LLM_ALONE = FeatureSet(True, ())


def parse_feature_set(label: str) -> FeatureSet | None:
    """A results ``feature_set`` label as a :class:`FeatureSet`; None for non-feature rows (ceilings)."""
    return None if label == CEILING else FeatureSet.parse(label)
