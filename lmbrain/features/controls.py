"""Control feature sets computed from the stimuli alone: what trivial features already explain.

Each control is a named function ``(dataset) -> ControlFeatures`` in a registry (:data:`CONTROLS`), so a
study refers to controls by name and combines them with ``+`` (``"sentence_length+sentence_position"``).
Candidate-valued controls (OASM, whose smoothing width σ is chosen inside the training folds) return
several matrices, one per candidate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lmbrain.data.dataset import Dataset
from lmbrain.errors import LmbrainError


@dataclass
class ControlFeatures:
    """One control feature set: a single matrix, or candidate matrices to choose among in inner CV."""

    name: str
    candidates: dict[str, np.ndarray]
    description: str = ""
    columns: list[str] = field(default_factory=list)

    @property
    def matrix(self) -> np.ndarray:
        """The feature matrix when there is exactly one candidate."""
        if len(self.candidates) != 1:
            raise LmbrainError(f"control {self.name!r} has {len(self.candidates)} candidates, not one matrix")
        return next(iter(self.candidates.values()))


ControlFn = Callable[..., ControlFeatures]
CONTROLS: dict[str, ControlFn] = {}
DESCRIPTIONS: dict[str, str] = {}


def register_control(name: str, description: str) -> Callable[[ControlFn], ControlFn]:
    """Decorator: register a control feature set under ``name``."""

    def wrap(fn: ControlFn) -> ControlFn:
        CONTROLS[name] = fn
        DESCRIPTIONS[name] = description
        return fn

    return wrap


def list_controls() -> dict[str, str]:
    """Registered control names with their one-line descriptions."""
    return dict(DESCRIPTIONS)


def one_hot(values: np.ndarray | pd.Series, prefix: str) -> tuple[np.ndarray, list[str]]:
    """One-hot encode values (levels in sorted order)."""
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
    return ControlFeatures(name, {name: np.asarray(matrix, dtype=np.float64)}, DESCRIPTIONS[name], columns)


@register_control("word_position", "one-hot position of the word in its sentence")
def word_position(dataset: Dataset) -> ControlFeatures:
    """One-hot word position within the sentence."""
    matrix, columns = one_hot(_word_position(dataset), "wp")
    return _single("word_position", matrix, columns)


@register_control("word_position_ramp", "linear position of the word in its sentence")
def word_position_ramp(dataset: Dataset) -> ControlFeatures:
    """Word position within the sentence as one linear regressor."""
    return _single("word_position_ramp", _word_position(dataset).to_numpy(float)[:, None], ["wp"])


@register_control("sentence_position", "one-hot position of the sentence in its passage")
def sentence_position(dataset: Dataset) -> ControlFeatures:
    """One-hot sentence position within the passage."""
    matrix, columns = one_hot(_sentence_position(dataset), "sp")
    return _single("sentence_position", matrix, columns)


@register_control("sentence_position_ramp", "linear position of the sentence in its passage")
def sentence_position_ramp(dataset: Dataset) -> ControlFeatures:
    """Sentence position within the passage as one linear regressor."""
    return _single("sentence_position_ramp", _sentence_position(dataset).to_numpy(float)[:, None], ["sp"])


@register_control("sentence_length", "sentence length in words and in characters")
def sentence_length(dataset: Dataset) -> ControlFeatures:
    """Number of words and of characters of the sentence (of the word's sentence for word units)."""
    texts = _sentence_texts(dataset)
    words = texts.str.split().str.len().to_numpy(float)
    chars = texts.str.strip().str.len().to_numpy(float)
    return _single("sentence_length", np.column_stack([words, chars]), ["sl_words", "sl_chars"])


@register_control("sentence_length_tokens", "sentence length in tokens of a model's tokenizer (default smollm2-135m)")
def sentence_length_tokens(dataset: Dataset, model: str = "smollm2-135m") -> ControlFeatures:
    """Number of tokens of the sentence (of the word's sentence for word units), special tokens excluded."""
    from lmbrain.features.models import load_tokenizer

    tokenizer = load_tokenizer(model)
    texts = _sentence_texts(dataset)
    unique = list(dict.fromkeys(texts.str.strip()))
    counts = {t: len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in unique}
    lengths = texts.str.strip().map(counts).to_numpy(float)
    return _single("sentence_length_tokens", lengths[:, None], [f"sl_tokens_{model}"])


@register_control("word_length", "number of letters of the word (punctuation excluded)")
def word_length(dataset: Dataset) -> ControlFeatures:
    """Word length in letters and digits, punctuation excluded."""
    if dataset.stimulus_unit != "word":
        raise LmbrainError(f"control word_length needs word stimuli; {dataset.name} has {dataset.stimulus_unit}")
    lengths = dataset.stimuli["text"].astype(str).str.count(r"\w").to_numpy(float)
    return _single("word_length", lengths[:, None], ["word_length"])


@register_control("word_frequency", "word frequency on the Zipf scale (wordfreq, English)")
def word_frequency(dataset: Dataset) -> ControlFeatures:
    """Zipf frequency of each word (wordfreq), punctuation stripped."""
    from wordfreq import zipf_frequency

    if dataset.stimulus_unit != "word":
        raise LmbrainError(f"control word_frequency needs word stimuli; {dataset.name} has {dataset.stimulus_unit}")
    zipf = [zipf_frequency(str(word), "en") for word in dataset.stimuli["text"]]
    return _single("word_frequency", np.asarray(zipf, float)[:, None], ["zipf"])


@register_control("passage_identity", "one-hot identity of the passage / story")
def passage_identity(dataset: Dataset) -> ControlFeatures:
    """One-hot passage (or story) identity."""
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


OASM_SIGMAS: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)


@register_control("oasm", "OASM: identity smoothed within each passage by a Gaussian, σ chosen in inner CV")
def oasm(dataset: Dataset, sigmas: tuple[float, ...] = OASM_SIGMAS) -> ControlFeatures:
    """OASM candidates, one per σ: each sample's own indicator smoothed along the presentation order."""
    if dataset.is_timeseries:  # along time, within each run
        samples = dataset.samples
        blocks = samples["run"].to_numpy() if "run" in samples else np.zeros(len(samples))
        positions = np.arange(len(samples), dtype=float)
    else:  # along the presentation order, within each passage
        blocks = _column(dataset, ("passage_id", "story", "context_id"), "oasm").to_numpy()
        positions = np.arange(len(dataset.stimuli), dtype=float)
    candidates = {f"sigma={s:g}": oasm_matrix(positions, blocks, s) for s in sigmas}
    return ControlFeatures("oasm", candidates, DESCRIPTIONS["oasm"], [])


@register_control("random", "random Gaussian features (seeded); in a study, as many as the LLM layer has")
def random_features(dataset: Dataset, dim: int = 768, seed: int = 0) -> ControlFeatures:
    """Random Gaussian features: a baseline that knows nothing about the stimuli."""
    rng = np.random.default_rng(seed)
    return _single("random", rng.standard_normal((len(dataset.samples), dim)), [])


# -- time series: scan-level controls ------------------------------------------------------------------

SUBJECT_CONTROLS = {"sound_power", "motion", "nuisance"}


def _require_timeseries(dataset: Dataset, control: str) -> None:
    if not dataset.is_timeseries:
        raise LmbrainError(f"control {control!r} is for time series; {dataset.name} is {dataset.modality}")


def words_per_scan(dataset: Dataset) -> np.ndarray:
    """Number of word onsets falling in each scan (scan i covers [time_i, time_i + TR))."""
    _require_timeseries(dataset, "word_rate")
    times = dataset.samples["time"].to_numpy(float)
    tr = float(dataset.tr or np.median(np.diff(times)))
    onsets = dataset.stimuli["onset"].to_numpy(float)
    runs = dataset.samples["run"].to_numpy() if "run" in dataset.samples else np.zeros(len(times))
    counts = np.zeros(len(times))
    stim_runs = dataset.stimuli["run"].to_numpy() if "run" in dataset.stimuli else np.zeros(len(onsets))
    for run in np.unique(runs):
        scans = np.flatnonzero(runs == run)
        edges = np.r_[times[scans], times[scans][-1] + tr]
        hist, _ = np.histogram(onsets[stim_runs == run], bins=edges)
        counts[scans] = hist
    return counts


@register_control("word_rate", "number of words per scan (time series; delayed like every scan feature)")
def word_rate(dataset: Dataset) -> ControlFeatures:
    """Words per scan, computed from the word onsets."""
    return _single("word_rate", words_per_scan(dataset)[:, None], ["word_rate"])


def _nuisance(dataset: Dataset, subject: str | None, control: str, prefixes: tuple[str, ...]) -> ControlFeatures:
    _require_timeseries(dataset, control)
    if subject is None:
        raise LmbrainError(f"control {control!r} is subject-specific: a subject is needed")
    table = dataset.nuisance.get(str(subject))
    if table is None:
        raise LmbrainError(f"dataset {dataset.name} has no nuisance regressors for subject {subject!r}")
    columns = [c for c in table.columns if c.startswith(prefixes)]
    if not columns:
        raise LmbrainError(
            f"dataset {dataset.name}, subject {subject}: no nuisance column starting with {prefixes}; "
            f"columns are {list(table.columns)}"
        )
    return _single(control, table[columns].to_numpy(float), columns)


@register_control("sound_power", "the dataset's per-subject sound-power regressor (time series)")
def sound_power(dataset: Dataset, subject: str | None = None) -> ControlFeatures:
    """Sound power at each scan, as provided with the dataset."""
    return _nuisance(dataset, subject, "sound_power", ("sndpwr", "sound"))


@register_control("motion", "the subject's six head-motion parameters (time series)")
def motion(dataset: Dataset, subject: str | None = None) -> ControlFeatures:
    """Head-motion parameters of the subject's run."""
    return _nuisance(dataset, subject, "motion", ("motion",))


def control_features(
    dataset: Dataset, spec: str, options: Mapping[str, Mapping] | None = None, subject: str | None = None
) -> ControlFeatures:
    """Build a control by name, or a ``+``-joined combination of single-matrix controls.

    Controls have one row per stimulus, or (time series, e.g. word rate, nuisance) one row per scan.
    Subject-specific controls (the dataset's nuisance regressors) need ``subject``.
    """
    names = [part.strip() for part in spec.split("+") if part.strip()]
    unknown = [n for n in names if n not in CONTROLS]
    if unknown:
        raise LmbrainError(f"unknown control(s) {unknown}; known: {sorted(CONTROLS)}")
    options = options or {}
    parts = []
    for n in names:
        kwargs = dict(options.get(n, {}))
        if n in SUBJECT_CONTROLS:
            kwargs["subject"] = subject
        parts.append(CONTROLS[n](dataset, **kwargs))
    if len(parts) == 1:
        return parts[0]
    if any(len(p.candidates) != 1 for p in parts):
        raise LmbrainError(f"control combination {spec!r}: candidate-valued controls (oasm) cannot be combined")
    matrix = np.column_stack([p.matrix for p in parts])
    columns = [c for p in parts for c in p.columns]
    return ControlFeatures(spec, {spec: matrix}, " + ".join(DESCRIPTIONS[n] for n in names), columns)
