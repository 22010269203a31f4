"""Control feature sets computed from the stimuli alone: what trivial features already explain.

Each control is a named function ``(dataset) -> ControlFeatures`` in a registry of :class:`ControlInfo`
(:func:`control_info`), so a study refers to controls by name and combines them with ``+``
(``"sentence_length+sentence_position"``). The registry also says how the engine treats a control: what one
row is (``level``), whether it gets FIR delays in time series (``delayed``), whether it needs a subject
(``subject_specific``), whether the ridge z-scores its columns or only centres them (``standardize``) and
whether it has candidate matrices to choose among by inner CV (``candidates``: OASM and its width σ), and, for
the reference (``docs/controls.md``, generated from this registry by ``python -m lmbrain.docs_gen``), how its
columns are coded, in which units, from which stimulus column, with which fallback and NaN policy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd

from lmbrain.data.dataset import Dataset
from lmbrain.errors import LmbrainError
from lmbrain.features.spillover import lagged_parts
from lmbrain.registry import Registry
from lmbrain.results import FeatureSet, join_display, parse_lag

Level = Literal["word", "sentence", "sample", "scan"]
LEVELS: tuple[str, ...] = ("word", "sentence", "sample", "scan")
#: how a control's values become columns: one 0/1 column per level, the values as they are, or a smoothing kernel
Coding = Literal["one-hot", "linear", "kernel"]
CODINGS: tuple[str, ...] = ("one-hot", "linear", "kernel")
#: every control's NaN policy: what it does with a missing or infinite value (ControlFeatures and one_hot check it)
NAN_POLICY = ("a missing (NaN) or infinite value in what it reads is an error naming the control and the row (a "
              "study's validation builds the controls read from stimulus columns), never a silently zeroed or "
              "dropped row")


@dataclass
class ControlFeatures:
    """One control feature set: a single matrix, or candidate matrices to choose among in inner CV.

    ``standardize`` holds one flag per column (the same for every candidate): True = z-score the column on
    the training rows, False = centre it only (one-hot, indicator, position and identity-like columns).
    A scalar is broadcast to every column.
    """

    name: str
    candidates: dict[str, np.ndarray]
    description: str = ""
    columns: list[str] = field(default_factory=list)
    standardize: np.ndarray | bool = True

    def __post_init__(self) -> None:
        for key, X in self.candidates.items():
            bad = ~np.isfinite(np.asarray(X, dtype=np.float64))
            if bad.any():
                row, col = (int(v[0]) for v in np.nonzero(bad))
                raise LmbrainError(f"control {self.name!r} ({key}): {int(bad.sum())} missing or infinite value(s), "
                                   f"first at row {row} (0-based), column {col}")
        widths = {np.shape(X)[1] for X in self.candidates.values()}
        if len(widths) != 1:
            raise LmbrainError(f"control {self.name!r}: candidates need one common number of columns, got {widths}")
        width = widths.pop()
        flags = np.asarray(self.standardize, dtype=bool)
        if flags.ndim == 0:
            flags = np.full(width, bool(flags))
        if flags.shape != (width,):
            raise LmbrainError(f"control {self.name!r}: {flags.shape} standardize flags for {width} columns")
        self.standardize = flags

    @property
    def matrix(self) -> np.ndarray:
        """The feature matrix when there is exactly one candidate."""
        if len(self.candidates) != 1:
            raise LmbrainError(f"control {self.name!r} has {len(self.candidates)} candidates, not one matrix")
        return next(iter(self.candidates.values()))


ControlFn = Callable[..., ControlFeatures]


@dataclass(frozen=True)
class ControlInfo:
    """A registered control and how the engine treats it.

    ``level``: what the control describes and so what one row is: ``"word"`` a property of each word (word
    stimuli only), ``"sentence"`` a property of the stimulus' sentence or of its place in the passage (one row
    per stimulus, word or sentence), ``"sample"`` one row per response sample built from the presentation
    order (stimuli, or scans in time series), ``"scan"`` one row per scan (time series only).
    ``delayed``: gets FIR delays in time series like the LLM features (stimulus-level controls and word
    rate) or not (scan-level regressors that already are in scan time: sound power, motion; OASM; random).
    ``subject_specific``: built per subject (the dataset's nuisance regressors).
    ``standardize``: the ridge z-scores its columns on the training rows (True) or only centres them (False).
    ``candidates``: returns several candidate matrices to choose among by inner CV (OASM's σ).
    ``model_kind``: built by running a language model of this kind (``"causal"``: surprisal, entropy), named by
    the control's ``model`` option; the study computes it once before the units (cached like LLM features).
    For the reference only (no effect on the numbers): ``coding`` (``"one-hot"``: one 0/1 column per level,
    ``"linear"``: the values as they are, ``"kernel"``: OASM's smoothed identity), ``units`` of its values,
    ``reads`` (the stimulus or scan columns it is built from), ``fallback`` (what it does when that column is
    missing) and ``nan_policy`` (:data:`NAN_POLICY` unless said otherwise).
    """

    name: str
    fn: ControlFn
    description: str
    level: Level
    delayed: bool
    subject_specific: bool = False
    standardize: bool = True
    candidates: bool = False
    model_kind: str | None = None
    coding: Coding = "linear"
    units: str = ""
    reads: str = ""
    fallback: str = ""
    nan_policy: str = NAN_POLICY

    @property
    def definition(self) -> str:
        """What the control computes: its function's docstring."""
        return " ".join((self.fn.__doc__ or self.description).split())


#: The controls by name (:class:`~lmbrain.registry.Registry`), filled by :func:`register_control`.
REGISTRY: Registry[ControlInfo] = Registry("control", builtins=("lmbrain.features.scan_controls",
                                                               "lmbrain.features.lm_controls",
                                                               "lmbrain.features.glove"))


def register_control(
    name: str,
    description: str,
    *,
    level: Level,
    delayed: bool,
    standardize: bool,
    subject_specific: bool = False,
    candidates: bool = False,
    model_kind: str | None = None,
    coding: Coding = "linear",
    units: str = "",
    reads: str = "",
    fallback: str = "",
    nan_policy: str = NAN_POLICY,
) -> Callable[[ControlFn], ControlFn]:
    """Decorator: register a control feature set under ``name`` with its :class:`ControlInfo`."""
    if level not in LEVELS:
        raise LmbrainError(f"control {name!r}: unknown level {level!r}; expected one of {LEVELS}")
    if coding not in CODINGS:
        raise LmbrainError(f"control {name!r}: unknown coding {coding!r}; expected one of {CODINGS}")

    def wrap(fn: ControlFn) -> ControlFn:
        info = ControlInfo(name, fn, description, level, delayed, subject_specific, standardize, candidates,
                           model_kind, coding, units, reads, fallback, nan_policy)
        REGISTRY.add(name, info)
        return fn

    return wrap


def control_info(name: str) -> ControlInfo:
    """The registry entry of one control (not a ``+`` combination); for a lagged control (``NAME@K``) its base
    control's entry under the lagged name: every lag of a stimulus-level control is one."""
    base, lag = parse_lag(name.strip())
    info = REGISTRY.get(base)
    if not lag:
        return info
    if info.level == "scan" or info.candidates or info.subject_specific:
        raise LmbrainError(f"control {name!r}: only stimulus-level controls can be lagged ({base!r} is "
                           f"{'candidate-valued' if info.candidates else info.level + '-level'}); time series get FIR "
                           "delays instead")
    return replace(info, name=name.strip(), description=f"{info.description}, {lag} back in its context (spillover)")


def lagged(dataset: Dataset, features: ControlFeatures, name: str, lag: int) -> ControlFeatures:
    """A control ``lag`` stimuli back within each context, with an indicator column (:func:`spillover.lagged_parts`)."""
    contexts = _column(dataset, ("context_id", "sentence_id", "passage_id", "story"), name).to_numpy()
    matrix, columns, flags, description = lagged_parts(features.matrix, features.columns, features.standardize,
                                                       features.description, contexts, name, lag)
    return ControlFeatures(name, {name: matrix}, description, columns, flags)


def list_controls() -> dict[str, str]:
    """Registered control names with their one-line descriptions.

    Returns
    -------
    dict of str to str
        Control name -> description; a study combines names with ``+`` (``docs/controls.md``: every control).
    """
    return {name: info.description for name, info in REGISTRY.items()}


def one_hot(values: np.ndarray | pd.Series, prefix: str) -> tuple[np.ndarray, list[str]]:
    """One-hot encode values (levels in sorted order); a missing value (it would match no level) is an error."""
    absent = pd.isna(pd.Series(np.asarray(values, dtype=object))).to_numpy()
    if absent.any():
        raise LmbrainError(f"one-hot control columns {prefix}=...: {int(absent.sum())} missing value(s), first at "
                           f"row {int(np.flatnonzero(absent)[0])} (0-based)")
    levels = np.unique(np.asarray(values))
    matrix = (np.asarray(values)[:, None] == levels[None, :]).astype(np.float64)
    return matrix, [f"{prefix}={level}" for level in levels]


def _column(dataset: Dataset, names: tuple[str, ...], control: str) -> pd.Series:
    for name in names:
        if name in dataset.stimuli.columns:
            return dataset.stimuli[name]
    raise LmbrainError(
        f"control {control!r} needs one of the stimulus columns {list(names)} in dataset {dataset.name}"
    )


def _word_position(dataset: Dataset) -> pd.Series:
    if dataset.stimulus_unit != "word":
        raise LmbrainError(f"control word_position needs word stimuli; {dataset.name} has {dataset.stimulus_unit}")
    if "word_position" in dataset.stimuli.columns:
        return dataset.stimuli["word_position"]
    return dataset.stimuli["position"]


def _sentence_position(dataset: Dataset) -> pd.Series:
    if "sentence_position" in dataset.stimuli.columns:
        return dataset.stimuli["sentence_position"]
    if dataset.stimulus_unit == "sentence":
        return dataset.stimuli["position"]
    raise LmbrainError(f"control sentence_position needs a sentence_position column in dataset {dataset.name}")


def _sentence_texts(dataset: Dataset) -> pd.Series:
    """The sentence each stimulus belongs to (the stimulus itself for sentence units)."""
    stimuli = dataset.stimuli
    if dataset.stimulus_unit == "sentence":
        return stimuli["text"].astype(str)
    key = _column(dataset, ("sentence_id",), "sentence_length")
    order = stimuli.sort_values([key.name, "position"]) if "position" in stimuli else stimuli
    joined = order.groupby(key.name, sort=False)["text"].agg(lambda words: " ".join(map(str, words)))
    return key.map(joined)


def _single(name: str, matrix: np.ndarray, columns: list[str]) -> ControlFeatures:
    info = REGISTRY.get(name)
    return ControlFeatures(name, {name: np.asarray(matrix, dtype=np.float64)}, info.description, columns,
                           info.standardize)


# One-hot / indicator columns: z-scoring would divide each by sqrt(p(1 - p)), inflating rare levels (the last
# positions of long sentences) into high-leverage columns; centring keeps every level on the same 0/1 scale.
_WORD_POSITION_FALLBACK = ("without a `word_position` column (the table reader makes one only from a `sentence` "
                           "column) it reads `position`, the word's place in its whole context (text, passage or "
                           "story), not in its sentence")


@register_control("word_position", "one-hot position of the word in its sentence (in its whole context when the "
                  "dataset has no sentences)", level="word", delayed=True, standardize=False, coding="one-hot",
                  units="position (0-based), one column per value", reads="`word_position`",
                  fallback=_WORD_POSITION_FALLBACK)
def word_position(dataset: Dataset) -> ControlFeatures:
    """One 0/1 column per word position: the position in the word's sentence (column ``word_position``), or in
    its whole context (column ``position``) when the dataset has no sentences. Word stimuli only."""
    matrix, columns = one_hot(_word_position(dataset), "wp")
    return _single("word_position", matrix, columns)


# Position ramps: an ordinal position in natural units (0, 1, 2, ...); centred only, like the one-hot position,
# so that a ramp and its one-hot counterpart sit on the same scale.
@register_control("word_position_ramp", "linear position of the word in its sentence (in its whole context when the "
                  "dataset has no sentences)", level="word", delayed=True, standardize=False, coding="linear",
                  units="position (0-based)", reads="`word_position`", fallback=_WORD_POSITION_FALLBACK)
def word_position_ramp(dataset: Dataset) -> ControlFeatures:
    """The word position of ``word_position`` (in the sentence, else in the whole context) as one linear column
    (0, 1, 2, ...). Word stimuli only."""
    return _single("word_position_ramp", _word_position(dataset).to_numpy(float)[:, None], ["wp"])


_SENTENCE_POSITION_FALLBACK = ("sentence stimuli without that column: `position`, the sentence's place in its "
                               "context; word stimuli without it (no `sentence` column): an error")


@register_control("sentence_position", "one-hot position of the sentence in its passage", level="sentence",
                  delayed=True, standardize=False, coding="one-hot",
                  units="position (0-based), one column per value", reads="`sentence_position`",
                  fallback=_SENTENCE_POSITION_FALLBACK)
def sentence_position(dataset: Dataset) -> ControlFeatures:
    """One 0/1 column per sentence position: the place of the stimulus' sentence in its passage or story
    (column ``sentence_position``; for sentence stimuli without it, ``position``)."""
    matrix, columns = one_hot(_sentence_position(dataset), "sp")
    return _single("sentence_position", matrix, columns)


@register_control("sentence_position_ramp", "linear position of the sentence in its passage", level="sentence",
                  delayed=True, standardize=False, coding="linear", units="position (0-based)",
                  reads="`sentence_position`", fallback=_SENTENCE_POSITION_FALLBACK)
def sentence_position_ramp(dataset: Dataset) -> ControlFeatures:
    """The sentence position of ``sentence_position`` as one linear column (0, 1, 2, ...)."""
    return _single("sentence_position_ramp", _sentence_position(dataset).to_numpy(float)[:, None], ["sp"])


# Dense real-valued magnitudes in different units (words vs characters, ~5x apart): z-scored so that one
# ridge penalty treats both columns alike.
@register_control("sentence_length", "sentence length in words and in characters", level="sentence", delayed=True,
                  standardize=True, units="words; characters", reads="`text` (sentence stimuli); `sentence_id`, "
                  "`position` and `text` (word stimuli)",
                  fallback="word stimuli without `sentence_id` (no `sentence` column): an error")
def sentence_length(dataset: Dataset) -> ControlFeatures:
    """Two columns: the number of whitespace-separated words and of characters (spaces included, ends stripped)
    of the stimulus' sentence; for word stimuli the sentence is its words (same ``sentence_id``) in ``position``
    order joined by single spaces."""
    texts = _sentence_texts(dataset)
    words = texts.str.split().str.len().to_numpy(float)
    chars = texts.str.strip().str.len().to_numpy(float)
    return _single("sentence_length", np.column_stack([words, chars]), ["sl_words", "sl_chars"])


@register_control("sentence_length_tokens", "sentence length in tokens of a model's tokenizer (default smollm2-135m)",
                  level="sentence", delayed=True, standardize=True, units="tokens (option model)",
                  reads="as sentence_length", fallback="as sentence_length")
def sentence_length_tokens(dataset: Dataset, model: str = "smollm2-135m") -> ControlFeatures:
    """The number of tokens of the stimulus' sentence (built as for sentence_length, ends stripped) in the
    tokenizer of option ``model``, special tokens excluded."""
    from lmbrain.features.models import load_tokenizer

    tokenizer = load_tokenizer(model)
    texts = _sentence_texts(dataset)
    unique = list(dict.fromkeys(texts.str.strip()))
    counts = {t: len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in unique}
    lengths = texts.str.strip().map(counts).to_numpy(float)
    return _single("sentence_length_tokens", lengths[:, None], [f"sl_tokens_{model}"])


# Dense real-valued word properties (letters, Zipf frequency): z-scored.
@register_control("word_length", "number of letters and digits of the word (punctuation excluded)", level="word",
                  delayed=True, standardize=True, units="characters", reads="`text`", fallback="none needed",
                  nan_policy="cannot occur: every word has a count (0 for a word of punctuation only)")
def word_length(dataset: Dataset) -> ControlFeatures:
    """The number of word characters of the word as presented: letters and digits (regular-expression ``\\w``,
    which also counts ``_``); punctuation, spaces and other symbols are not counted. Word stimuli only."""
    if dataset.stimulus_unit != "word":
        raise LmbrainError(f"control word_length needs word stimuli; {dataset.name} has {dataset.stimulus_unit}")
    lengths = dataset.stimuli["text"].astype(str).str.count(r"\w").to_numpy(float)
    return _single("word_length", lengths[:, None], ["word_length"])


@register_control("word_frequency", "word frequency on the Zipf scale (wordfreq, English)", level="word",
                  delayed=True, standardize=True, units="Zipf (log10 of occurrences per billion words)",
                  reads="`text`", fallback="none needed",
                  nan_policy="cannot occur: a word wordfreq does not know gets 0, not NaN")
def word_frequency(dataset: Dataset) -> ControlFeatures:
    """wordfreq's English Zipf frequency of the raw word as presented (``zipf_frequency(text, "en")``): wordfreq's
    own tokenizer drops punctuation, a cell of several tokens gets their combined frequency, and a word wordfreq
    does not know gets 0. Word stimuli only."""
    from wordfreq import zipf_frequency

    if dataset.stimulus_unit != "word":
        raise LmbrainError(f"control word_frequency needs word stimuli; {dataset.name} has {dataset.stimulus_unit}")
    zipf = [zipf_frequency(str(word), "en") for word in dataset.stimuli["text"]]
    return _single("word_frequency", np.asarray(zipf, float)[:, None], ["zipf"])


# One-hot passage identity: centred only (see word_position).
@register_control("passage_identity", "one-hot identity of the passage / story", level="sentence", delayed=True,
                  standardize=False, coding="one-hot", units="0/1, one column per passage",
                  reads="`passage_id`", fallback="`story`, else `context_id` (the text each stimulus is read in)")
def passage_identity(dataset: Dataset) -> ControlFeatures:
    """One 0/1 column per passage (or story): the first of the columns ``passage_id``, ``story``, ``context_id``
    that the dataset has."""
    values = _column(dataset, ("passage_id", "story", "context_id"), "passage_identity")
    matrix, columns = one_hot(values, "passage")
    return _single("passage_identity", matrix, columns)


def oasm_matrix(positions: np.ndarray, blocks: np.ndarray, sigma: float) -> np.ndarray:
    """Identity smoothed by a Gaussian of width ``sigma`` (in positions) within each block, zero across blocks."""
    positions = np.asarray(positions, float)
    same = np.asarray(blocks)[:, None] == np.asarray(blocks)[None, :]
    if sigma <= 0:
        return np.eye(len(positions)) * 1.0
    dist = positions[:, None] - positions[None, :]
    return np.exp(-0.5 * (dist / sigma) ** 2) * same


# OASM widths σ (in positions: words, sentences or scans). A neighbour at distance 1 gets weight exp(-1 / 2σ²):
#   σ    0.25    0.5   0.75   1     1.5   2     4     8
#   w    3e-4    0.14  0.41   0.61  0.80  0.88  0.97  0.99
# 0.25 is the near-identity end (each sample sees almost only itself: OASM predicts almost nothing, even under
# shuffled splits); 0.5 to 2 resolve the range where the neighbour weight moves from 0.1 to 0.9, where the real
# data choose (Fedorenko2016 words mostly 0.5-0.75, Pereira2018 sentences 0.75-1 under shuffled splits); 4 and 8
# smooth over a whole sentence / passage or several scans (time series, slow drifts). σ = 0 (an exact identity)
# is left out: it can only predict a constant (its test columns are zero on every training row).
OASM_SIGMAS: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0, 8.0)


# OASM is identity-like: a test sample's own column is (almost) zero on every training row, so z-scoring with
# training statistics turns its test value into a huge outlier (Fedorenko2016, shuffled splits: R² -17 at σ = 1,
# -6e31 at σ = 0.5) and inner CV then never picks a small σ. Centred only, it is a kernel smoother of the
# sample's neighbours: the leakage probe. Its rows are response samples (scans in time series); not delayed.
@register_control("oasm", "OASM: identity smoothed within each passage by a Gaussian, σ chosen in inner CV (not "
                  "z-scored)", level="sample", delayed=False, standardize=False, candidates=True, coding="kernel",
                  units="Gaussian weights in [0, 1]; σ in samples (words, sentences or scans)",
                  reads="`passage_id` (event data); `run` (time series)",
                  fallback="event data: `story`, else `context_id`; time series without `run`: one block",
                  nan_policy="cannot occur: built from the presentation order and the blocks")
def oasm(dataset: Dataset, sigmas: tuple[float, ...] = OASM_SIGMAS) -> ControlFeatures:
    """One column per sample: each sample's own indicator smoothed along the presentation order by a Gaussian of
    width σ within its passage (event data) or run (time series), zero across them; one candidate per σ in
    OASM_SIGMAS, chosen by inner CV."""
    if dataset.is_timeseries:  # along time, within each run
        samples = dataset.samples
        blocks = samples["run"].to_numpy() if "run" in samples else np.zeros(len(samples))
        positions = np.arange(len(samples), dtype=float)
    else:  # along the presentation order, within each passage
        blocks = _column(dataset, ("passage_id", "story", "context_id"), "oasm").to_numpy()
        positions = np.arange(len(dataset.stimuli), dtype=float)
    candidates = {f"sigma={s:g}": oasm_matrix(positions, blocks, s) for s in sigmas}
    return ControlFeatures("oasm", candidates, REGISTRY.get("oasm").description, [], REGISTRY.get("oasm").standardize)


# Random Gaussian columns stand in for an LLM layer: z-scored like dense LLM features (already unit variance).
@register_control("random", "random Gaussian features (seeded); in a study, as many as the LLM layer has",
                  level="sample", delayed=False, standardize=True, units="standard normal draws",
                  reads="nothing (the number of samples)", fallback="none needed",
                  nan_policy="cannot occur: drawn from a seeded generator")
def random_features(dataset: Dataset, dim: int = 768, seed: int = 0) -> ControlFeatures:
    """``dim`` standard-normal columns drawn with ``seed`` (in a study ``dim`` defaults to the LLM layer's
    width): a baseline that knows nothing about the stimuli."""
    rng = np.random.default_rng(seed)
    return _single("random", rng.standard_normal((len(dataset.samples), dim)), [])


# -- by name (the scan-level controls of time series: lmbrain.features.scan_controls) --------------------
def control_features(
    dataset: Dataset, spec: str, options: Mapping[str, Mapping] | None = None, subject: str | None = None
) -> ControlFeatures:
    """Build a control by name, or a ``+``-joined combination of single-matrix controls.

    Controls have one row per stimulus, or (time series, e.g. word rate, nuisance) one row per scan.
    Subject-specific controls (the dataset's nuisance regressors) need ``subject``. A combination's
    ``standardize`` flags are its parts' flags side by side, in the order of its columns.

    Parameters
    ----------
    dataset : Dataset
        The dataset whose stimuli (or scans) the control describes (:func:`lmbrain.load_dataset`).
    spec : str
        A control name (:func:`list_controls`), ``NAME@K`` for it ``K`` stimuli back in its context, or several
        joined by ``+`` (``"sentence_length+sentence_position"``).
    options : mapping of str to mapping, optional
        Keyword options per control name (``{"surprisal": {"model": "gemma3-270m"}}``).
    subject : str, optional
        The subject of a subject-specific control (nuisance regressors).

    Returns
    -------
    ControlFeatures
        ``candidates``: name -> array of shape (n_samples, n_columns) (several only for OASM's σ);
        ``standardize``: one flag per column (z-scored, or only centred); ``columns``; ``description``.
    """
    names = list(FeatureSet.controls_only(spec).controls)
    unknown = [n for n in names if parse_lag(n)[0] not in REGISTRY]
    if unknown:
        raise LmbrainError(f"unknown control(s) {unknown}; known: {REGISTRY.names()}")
    options = options or {}
    parts = []
    for n in names:
        info = control_info(n)
        base, lag = parse_lag(n)
        kwargs = dict(options.get(n, options.get(base, {})))
        if info.subject_specific:
            kwargs["subject"] = subject
        features = info.fn(dataset, **kwargs)
        if len(names) > 1 and not lag:  # in a combination, each part is described by its registry entry
            features = replace(features, description=info.description)
        parts.append(lagged(dataset, features, n, lag) if lag else features)
    return combine_controls(spec, parts)


def combine_controls(label: str, parts: list[ControlFeatures]) -> ControlFeatures:
    """Controls side by side as one matrix named ``label``; one part as it is; never a candidate-valued one (OASM)."""
    if len(parts) == 1:
        return parts[0]
    if any(len(p.candidates) != 1 for p in parts):
        raise LmbrainError(f"control combination {label!r}: candidate-valued controls (oasm) cannot be combined")
    return ControlFeatures(label, {label: np.column_stack([p.matrix for p in parts])},
                           join_display([p.description for p in parts]),
                           [c for p in parts for c in p.columns], np.concatenate([p.standardize for p in parts]))
