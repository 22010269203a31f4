"""The controls of time series, one row per scan: word rate, and the dataset's per-subject nuisance regressors
(sound power, head motion). Registered in :data:`lmbrain.features.controls.REGISTRY` when first looked up."""

from __future__ import annotations

import numpy as np

from lmbrain.data.dataset import Dataset
from lmbrain.errors import LmbrainError
from lmbrain.features.controls import ControlFeatures, _single, register_control


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


# Word rate: a dense count per scan, delayed like the LLM features (it is built from word onsets).
@register_control("word_rate", "number of words per scan (time series; delayed like every scan feature)",
                  level="scan", delayed=True, standardize=True, units="words per scan",
                  reads="`onset` (stimuli), `time` and `run` (scans)",
                  fallback="without `run` columns: one run")
def word_rate(dataset: Dataset) -> ControlFeatures:
    """The number of word onsets falling in each scan (scan i covers [time_i, time_i + TR)), per run. Time
    series only."""
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


# The dataset's nuisance regressors are already in scan time (not delayed); dense real values in their own
# units (sound power; mm and radians for motion): z-scored.
@register_control("sound_power", "the dataset's per-subject sound-power regressor (time series)", level="scan",
                  delayed=False, standardize=True, subject_specific=True, units="as provided with the dataset",
                  reads="the subject's nuisance columns starting with `sndpwr` or `sound`",
                  fallback="none: an error when the subject has no such column")
def sound_power(dataset: Dataset, subject: str | None = None) -> ControlFeatures:
    """The sound power at each scan, as provided with the dataset for the subject. Time series only."""
    return _nuisance(dataset, subject, "sound_power", ("sndpwr", "sound"))


@register_control("motion", "the subject's six head-motion parameters (time series)", level="scan", delayed=False,
                  standardize=True, subject_specific=True, units="as provided (mm and radians)",
                  reads="the subject's nuisance columns starting with `motion`",
                  fallback="none: an error when the subject has no such column")
def motion(dataset: Dataset, subject: str | None = None) -> ControlFeatures:
    """The subject's head-motion parameters at each scan, as provided with the dataset. Time series only."""
    return _nuisance(dataset, subject, "motion", ("motion",))
