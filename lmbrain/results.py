"""The results schema shared by :mod:`lmbrain.study` (which writes results) and :mod:`lmbrain.report` (which reads
them): column names, metric names, labels of models, layers and feature sets, and the one feature-set grammar.

A study's ``results.parquet`` holds one row per target x unit x metric with the columns :data:`COLUMNS`
(plus ``roi`` where targets have one). Nothing else in the package builds or parses these labels.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lmbrain.errors import DataError, LmbrainError

if TYPE_CHECKING:
    import pandas as pd

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
#: the 95 % CI metrics of r and R² (low, high)
CI_OF = {R: (R_CI_LOW, R_CI_HIGH), R2: (R2_CI_LOW, R2_CI_HIGH)}
#: p-values of r > 0 and of R² > 0 (statistics.permutation_method; default: r against refits on sign-flipped /
#: circularly shifted responses, R² against block sign flips of the gains over the training mean)
P_R, P_R2 = "p_r", "p_r2"
NULL_R_MEAN = "null_r_mean"  #: mean fold-mean r of the null that p_r is read from
NULL_R2_MEAN = "null_r2_mean"  #: mean R² of the null that p_r2 is read from (0 by construction for sign flips)
P_UNIQUE = "p_unique"  #: p-value of unique LLM R² > 0 (joint vs controls alone, paired block sign flips)
#: per-target test of a larger control set against a smaller one it contains: ``f"{P_INCREMENT}|{smaller}"`` (p of
#: R²(larger) − R²(smaller) > 0, paired block sign flips) and ``f"{INCREMENT}|{smaller}"`` (the increment), in the
#: larger set's controls unit
P_INCREMENT, INCREMENT = "p_increment", "increment"


def increment_metric(kind: str, smaller: str) -> str:
    """The metric name of a nested control-set increment (``kind``: P_INCREMENT or INCREMENT) against ``smaller``."""
    return f"{kind}|{smaller}"
UNIQUE_CI_LOW, UNIQUE_CI_HIGH = "unique_llm_ci_low", "unique_llm_ci_high"
OMEGA_CI_LOW, OMEGA_CI_HIGH = "omega_ci_low", "omega_ci_high"
#: layer curves' shape (per-layer units): the intermediate layer chosen for each test fold on other folds that
#: never use it in return (its test-fold predictions stitched together) against the last layer, same samples
R2_BEST_INTERMEDIATE = "r2_best_intermediate"
LAYER_DIFF = "layer_diff_best_vs_last"  #: R²(best intermediate, chosen without its test fold) − R²(last layer)
LAYER_DIFF_CI_LOW, LAYER_DIFF_CI_HIGH = "layer_diff_ci_low", "layer_diff_ci_high"
P_BEST_VS_LAST = "p_best_vs_last"  #: one-sided p of best intermediate > last layer (block sign flips)

#: noise ceilings (ceiling units, per target; ``r`` is the ceiling used, docs/statistics.md "Noise ceilings")
CEILING_CI_LOW, CEILING_CI_HIGH = "ceiling_ci_low", "ceiling_ci_high"
CEILING_AT_BOUND = "ceiling_at_bound"  #: 1 where the target's own estimate was missing or outside (0, 1)
CEILING_OWN = "ceiling_own"  #: the target's own attenuation-corrected r before shrinkage (NaN or outside [0, 1])
CEILING_RHO = "ceiling_rho"  #: one source subject's reliability implied by the two pools' agreement
CEILING_EXTRAPOLATED = "ceiling_extrapolated"  #: pool curve extrapolated with one shape for all targets
CEILING_COMMON_RHO = "ceiling_common_rho"  #: that shared shape's reliability parameter
CEILING_INTER_SUBJECT = "ceiling_inter_subject"  #: leave-one-subject-out, where targets correspond (same ROI)
POOL_R_PREFIX = "pool_r_"  #: ``pool_r_K``: mean r of the target from pools of K other subjects


def pool_r_metric(n_sources: int) -> str:
    """The metric of a target's mean r from pools of ``n_sources`` other subjects."""
    return f"{POOL_R_PREFIX}{int(n_sources)}"


def pool_r_sources(metric: str) -> int | None:
    """The number of source subjects of a ``pool_r_K`` metric; None for any other metric."""
    rest = str(metric)[len(POOL_R_PREFIX):]
    return int(rest) if str(metric).startswith(POOL_R_PREFIX) and rest.isdigit() else None


#: sensitivity (joint units of trained models, docs/statistics.md "Sensitivity"): known unique signals implanted
#: into the real responses at unique R² ``level``; per replication ``rep``: the implanted responses' unique R²
#: (``sens_unique``) and its p (``sens_p``); per level, over replications: the recovered unique R²
#: (``sens_recovered``) and the learnable limit's (``sens_limit``)
SENS_PREFIX = "sens_"
SENS_UNIQUE, SENS_P, SENS_RECOVERED, SENS_LIMIT = "unique", "p", "recovered", "limit"
SENS_KINDS = (SENS_UNIQUE, SENS_P, SENS_RECOVERED, SENS_LIMIT)


def sensitivity_metric(kind: str, level: float, rep: int | None = None) -> str:
    """The metric of a sensitivity value: ``sens_KIND@LEVEL`` or, per replication, ``sens_KIND@LEVEL#REP``."""
    if kind not in SENS_KINDS:
        raise LmbrainError(f"unknown sensitivity metric kind {kind!r}; expected one of {SENS_KINDS}")
    return f"{SENS_PREFIX}{kind}@{float(level):g}" + ("" if rep is None else f"#{int(rep)}")


def parse_sensitivity_metric(metric: str) -> tuple[str, float, int | None] | None:
    """(kind, level, replication or None) of a sensitivity metric; None for any other metric."""
    text = str(metric)
    if not text.startswith(SENS_PREFIX) or "@" not in text:
        return None
    kind, rest = text[len(SENS_PREFIX):].split("@", 1)
    level, _, rep = rest.partition("#")
    try:
        return kind, float(level), (int(rep) if rep else None)
    except ValueError:
        return None


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

#: ``CONTROL@K``: the control's value K stimuli back within the same context (spillover), e.g. ``word_frequency@1``
LAG = "@"
#: the largest lag accepted (K in 1..MAX_LAG)
MAX_LAG = 5


def parse_lag(name: str) -> tuple[str, int]:
    """``'word_frequency@2'`` -> ``('word_frequency', 2)``; a name without ``@`` has lag 0."""
    base, sep, k = str(name).partition(LAG)
    if not sep:
        return base, 0
    if not k.isdigit() or not 1 <= int(k) <= MAX_LAG:
        raise LmbrainError(f"control {name!r}: a lag is written CONTROL@K with K in 1..{MAX_LAG} (stimuli back)")
    return base, int(k)



def label_parts(text: str) -> list[str]:
    """A feature-set label's '+'-separated parts as they are, unvalidated (for display; :meth:`FeatureSet.parse`
    checks them)."""
    return str(text).split(JOINT)


def file_label(label: str) -> str:
    """A feature-set label in a file name: its parts joined by ``-`` (``'a+b'`` -> ``'a-b'``)."""
    return "-".join(label_parts(label))


def from_file_label(text: str) -> str:
    """The label a :func:`file_label` stands for (``'a-b'`` -> ``'a+b'``)."""
    return JOINT.join(text.split("-"))


def join_display(parts: Iterable[str]) -> str:
    """Parts of a feature set in words, joined as the label joins them, spaced (``'a + b'``)."""
    return f" {JOINT} ".join(parts)


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
    def parts(self) -> tuple[str, ...]:
        """The label's parts in order (``llm`` first when present)."""
        return ((LLM,) if self.llm else ()) + self.controls

    def describe(self, name: Callable[[str], str], sep: str = JOINT) -> str:
        """A display string: every part renamed by ``name``, joined by ``sep`` (the label's ``+`` by default)."""
        return sep.join(name(part) for part in self.parts)

    @property
    def controls_label(self) -> str:
        """The controls alone, as a label (``''`` for the LLM alone)."""
        return JOINT.join(self.controls)

    @property
    def is_joint(self) -> bool:
        """The LLM together with controls (a banded / stacked joint model)."""
        return self.llm and bool(self.controls)

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


# -- the results folder's files, verified --------------------------------------------------------------

RESULTS_FILE = "results.parquet"
UNITS_FILE = "units.parquet"
MANIFEST_FILE = "manifest.json"
#: the files whose sha256 ``lmbrain run`` records in ``manifest.json`` (key ``files``) and every reader verifies
CHECKSUMMED = (RESULTS_FILE, UNITS_FILE)


def file_checksum(data: bytes) -> dict[str, Any]:
    """The manifest's record of a file's content: its sha256 and size."""
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def read_manifest(results_dir: str | Path) -> dict[str, Any]:
    """A results folder's ``manifest.json`` (DataError naming it when it is not a JSON object)."""
    path = Path(results_dir) / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise DataError(f"{path} is not valid JSON ({error}); rerun the study") from None
    if not isinstance(manifest, dict):
        raise DataError(f"{path} is not a JSON object; rerun the study")
    return manifest


def rerun_hint(results_dir: Path) -> str:
    """What rewrites a results folder's files from its verified unit files."""
    return f"rerun `lmbrain run {results_dir / 'study.yaml'} --out {results_dir}` to rewrite it from the unit files"


def read_checked(results_dir: str | Path, name: str, manifest: dict[str, Any]) -> bytes:
    """The bytes of ``results_dir/name``, checked against the sha256 that ``manifest`` records for it (a DataError
    naming the file when they differ); read unchecked when the manifest records none (a folder written before
    checksums were recorded)."""
    results_dir = Path(results_dir)
    path = results_dir / name
    data = path.read_bytes()
    files = manifest.get("files")
    expected = files.get(name) if isinstance(files, dict) else None
    if expected is None:
        return data
    if not isinstance(expected, dict) or file_checksum(data) != {k: expected.get(k) for k in ("sha256", "bytes")}:
        raise DataError(f"{path} does not match the checksum in {MANIFEST_FILE}: the file was changed or "
                        f"damaged; {rerun_hint(results_dir)}")
    return data


def read_results_table(results_dir: str | Path, name: str, manifest: dict[str, Any]) -> pd.DataFrame:
    """``results.parquet`` or ``units.parquet`` of a results folder as a DataFrame, verified (:func:`read_checked`)."""
    import pandas as pd

    data = read_checked(results_dir, name, manifest)
    try:
        return pd.read_parquet(io.BytesIO(data))
    except Exception as error:  # pyarrow raises its own types on a damaged file
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(f"{Path(results_dir) / name} is not a readable parquet file ({detail}); "
                        f"{rerun_hint(Path(results_dir))}") from None


def load_results(results_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The tidy results, the unit records and the manifest of a results directory, each parquet file checked
    against the sha256 the manifest records (a DataError naming the file when it was changed or damaged).

    Parameters
    ----------
    results_dir : Path
        A folder written by :func:`lmbrain.run_study`.

    Returns
    -------
    results : pandas.DataFrame
        One row per target × unit × metric (columns: dataset, subject, model, feature_set, scheme, per_layer,
        layer, neuroid_id, roi, metric, value).
    units : pandas.DataFrame
        One row per unit: what was chosen inside the training folds, sizes, timings.
    manifest : dict
        ``manifest.json``: study hash, code version, seeds, timings, datasets, models, checksums.
    """
    manifest = read_manifest(results_dir)
    results = read_results_table(results_dir, RESULTS_FILE, manifest)
    units = read_results_table(results_dir, UNITS_FILE, manifest)
    return results, units, manifest
