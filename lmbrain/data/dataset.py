"""The in-memory dataset every reader returns and every analysis consumes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from lmbrain.errors import DataError

Modality = Literal["fmri_sentences", "fmri_timeseries", "ecog_words", "eeg_words", "reading_times"]
MODALITIES: tuple[str, ...] = (
    "fmri_sentences",
    "fmri_timeseries",
    "ecog_words",
    "eeg_words",
    "reading_times",
)
StimulusUnit = Literal["word", "sentence", "passage", "story"]

#: Columns every stimulus table has.
STIMULUS_COLUMNS = ("stimulus_id", "text", "context_id", "position")


@dataclass
class Dataset:
    """Stimuli, responses and the structure cross-validation must respect.

    ``stimuli`` has one row per unit that a language model represents (a word or a sentence), in
    presentation order, with at least ``stimulus_id`` (unique), ``text`` (as presented, punctuation kept),
    ``context_id`` (the text the unit is read in: its sentence, passage or story) and ``position`` (0-based
    order of the unit inside its context). Datasets add ``sentence_id``, ``passage_id``, ``word_position``,
    ``sentence_position``, ``onset``/``offset`` (seconds) and the like.

    ``responses`` is a ``(sample, neuroid)`` DataArray. For event data (one response per stimulus) the
    samples are the stimuli, in the same order, with coordinate ``stimulus_id``. For time series the samples
    are scans with coordinates ``time`` (seconds, same clock as the stimulus onsets) and ``run``.
    Neuroid coordinates: ``neuroid_id``, ``subject`` and, where known, ``roi``, ``network``, ``hemisphere``.
    Missing values are NaN (a rejected trial); they are masked per subject, never silently dropped.

    ``split_unit`` names the column (of ``stimuli`` for event data, of the scan table for time series) whose
    values are the groups of cross-validation: no group is ever in both a training and a test fold.

    ``nuisance`` maps a subject to its per-scan regressors (time series); ``excluded`` maps a subject left
    out of ``responses`` to the reason; ``masked`` maps a neuroid set to NaN (all-NaN or constant) to the
    reason; ``meta`` holds reader facts worth reporting (e.g. a verified stimulus-to-scan alignment).
    """

    name: str
    modality: str
    stimulus_unit: str
    split_unit: str
    stimuli: pd.DataFrame
    responses: xr.DataArray
    tr: float | None = None
    nuisance: dict[str, pd.DataFrame] = field(default_factory=dict)
    excluded: dict[str, str] = field(default_factory=dict)
    citation: str = ""
    licence: str = ""
    masked: dict[str, str] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    # -- structure ---------------------------------------------------------------------------------
    @property
    def is_timeseries(self) -> bool:
        """True when samples are scans rather than stimuli."""
        return self.modality == "fmri_timeseries"

    @property
    def subjects(self) -> list[str]:
        """Subject identifiers, in first-seen order."""
        return list(dict.fromkeys(str(s) for s in self.responses["subject"].values))

    @property
    def samples(self) -> pd.DataFrame:
        """One row per response sample: the stimulus table (event data) or the scan table (time series)."""
        if not self.is_timeseries:
            return self.stimuli
        coords = {
            name: np.asarray(coord.values)
            for name, coord in self.responses.coords.items()
            if coord.dims == ("sample",)
        }
        return pd.DataFrame(coords)

    def groups(self) -> np.ndarray:
        """The cross-validation group of every sample (values of ``split_unit``)."""
        return self.samples[self.split_unit].to_numpy()

    def subject_responses(self, subject: str) -> xr.DataArray:
        """The ``(sample, neuroid)`` responses of one subject."""
        mask = np.asarray([str(s) == str(subject) for s in self.responses["subject"].values])
        if not mask.any():
            raise DataError(f"dataset {self.name}: no subject {subject!r}; subjects are {self.subjects}")
        return self.responses.isel(neuroid=np.flatnonzero(mask))

    # -- checks ------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Check the invariants above; raise one DataError naming the problem."""
        where = f"dataset {self.name}"
        if self.modality not in MODALITIES:
            raise DataError(f"{where}: unknown modality {self.modality!r}; expected one of {MODALITIES}")
        missing = [c for c in STIMULUS_COLUMNS if c not in self.stimuli.columns]
        if missing:
            raise DataError(f"{where}: stimulus table lacks column(s) {missing}")
        dup = self.stimuli["stimulus_id"].duplicated()
        if dup.any():
            row = int(np.flatnonzero(dup.to_numpy())[0])
            raise DataError(
                f"{where}: duplicate stimulus_id {self.stimuli['stimulus_id'].iloc[row]!r} at row {row}"
            )
        if self.responses.dims != ("sample", "neuroid"):
            raise DataError(
                f"{where}: responses must have dims ('sample', 'neuroid'), got {self.responses.dims}"
            )
        for coord in ("neuroid_id", "subject"):
            if coord not in self.responses.coords:
                raise DataError(f"{where}: responses lack neuroid coordinate {coord!r}")
        if not self.is_timeseries:
            n_stim, n_resp = len(self.stimuli), self.responses.sizes["sample"]
            if n_stim != n_resp:
                raise DataError(f"{where}: {n_stim} stimuli but {n_resp} response samples")
            if "stimulus_id" in self.responses.coords:
                ids = np.asarray(self.responses["stimulus_id"].values)
                if not np.array_equal(ids.astype(str), self.stimuli["stimulus_id"].to_numpy().astype(str)):
                    raise DataError(f"{where}: response stimulus_id order differs from the stimulus table")
        if self.split_unit not in self.samples.columns:
            raise DataError(f"{where}: split unit {self.split_unit!r} is not a column of the sample table")
        n_samples = self.responses.sizes["sample"]
        for subject, table in self.nuisance.items():
            if len(table) != n_samples:
                raise DataError(f"{where}: nuisance of {subject}: {len(table)} rows, {n_samples} samples")
        present = set(self.subjects)
        both = sorted(present & set(self.excluded))
        if both:
            raise DataError(f"{where}: subject(s) {both} are both excluded and present in the responses")

    def summary(self) -> str:
        """A one-paragraph human description."""
        n_neuroids = self.responses.sizes["neuroid"]
        return (
            f"{self.name} ({self.modality}): {len(self.stimuli)} {self.stimulus_unit} stimuli, "
            f"{self.responses.sizes['sample']} samples x {n_neuroids} neuroids, "
            f"{len(self.subjects)} subjects, "
            f"split by {self.split_unit} ({len(np.unique(self.groups()))} groups)"
            + (f"; excluded {sorted(self.excluded)}" if self.excluded else "")
            + (f"; {len(self.masked)} neuroid(s) masked" if self.masked else "")
        )
