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


def _some(values: list, limit: int) -> str:
    """The first ``limit`` values, then how many more."""
    shown = ", ".join(str(v) for v in values[:limit])
    return shown + (f", ... ({len(values) - limit} more)" if len(values) > limit else "")


@dataclass(frozen=True)
class MissingValues:
    """Missing response values (NaN, and ±inf, which no fit can use either) outside the masked neuroids: how
    many, in which subjects and neuroids, and at which sample rows (a row with a missing value is left out when
    that subject is fitted).

    ``rows`` are 0-based sample rows; ``lines`` (readers of one table: the 1-based lines of the file where the
    missing values were read, per subject) and ``absent`` (long tables: per subject, the stimuli that have no row
    at all) say where to look in the file; ``empty_rows`` are the 0-based sample rows with no usable response in
    any of several targets (no fit uses them), ``empty_lines`` the first file line of each (0: unknown)."""

    n_values: int
    n_total: int
    by_subject: dict[str, int]
    by_neuroid: dict[str, int]
    rows: dict[str, list[int]]
    n_infinite: int = 0
    lines: dict[str, list[int]] = field(default_factory=dict)
    absent: dict[str, list[str]] = field(default_factory=dict)
    empty_rows: list[int] = field(default_factory=list)
    empty_lines: list[int] = field(default_factory=list)

    def __bool__(self) -> bool:
        return self.n_values > 0

    @property
    def n_rows(self) -> int:
        """Number of distinct sample rows with a missing value in some subject."""
        return len({row for rows in self.rows.values() for row in rows})

    def where(self, subject: str, limit: int = 3) -> str:
        """Where one subject's missing values are: file lines (1-based) when known, else 1-based sample rows."""
        if subject in self.lines or subject in self.absent:
            parts = []
            if self.lines.get(subject):
                parts.append(f"at line(s) {_some(self.lines[subject], limit)}")
            if self.absent.get(subject):
                parts.append(f"no row for stimulus(es) {_some(self.absent[subject], limit)}")
            return " and ".join(parts)
        return f"in sample row(s) {_some([r + 1 for r in self.rows[subject]], limit)} (1-based)"

    def describe_empty(self, limit: int = 3) -> str:
        """The samples with no usable response in any subject ('' when there is none)."""
        if not self.empty_rows:
            return ""
        known = sorted(n for n in self.empty_lines if n > 0)
        at = (f"line(s) {_some(known, limit)}" if known else
              f"sample row(s) {_some([r + 1 for r in self.empty_rows], limit)} (1-based)")
        return f"{len(self.empty_rows)} sample(s) with no response at all, used by no fit: {at}"

    def describe(self, limit: int = 3) -> str:
        """How many values are missing and where: per subject (the first ``limit``) the count and the rows."""
        if not self.n_values:
            return "no missing response values"
        share = 100.0 * self.n_values / max(self.n_total, 1)
        infinite = f", {self.n_infinite} of them ±inf" if self.n_infinite else ""
        parts = [f"subject {s}: {n} {self.where(s, limit)}" for s, n in list(self.by_subject.items())[:limit]]
        more = len(self.by_subject) - limit
        if more > 0:
            parts.append(f"... {more} more subject(s)")
        if self.empty_rows:
            parts.append(self.describe_empty(limit))
        return (
            f"{self.n_values} missing (NaN) response value(s) ({share:.1f}%{infinite}) in {len(self.by_subject)} "
            f"subject(s), {len(self.by_neuroid)} neuroid(s) and {self.n_rows} sample row(s), each row left out of "
            f"its subject's fit ({'; '.join(parts)})"
        )

    def as_dict(self) -> dict[str, Any]:
        """Plain counts for manifests: totals, per subject, per neuroid, and the rows per subject."""
        return {
            "n_values": self.n_values,
            "n_total": self.n_total,
            "n_infinite": self.n_infinite,
            "n_rows": self.n_rows,
            "by_subject": dict(self.by_subject),
            "by_neuroid": dict(self.by_neuroid),
            "rows": {s: list(r) for s, r in self.rows.items()},
            "lines": {s: list(r) for s, r in self.lines.items()},
            "empty_rows": list(self.empty_rows),
        }


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
    Missing values are NaN (a rejected trial); they are counted in ``missing`` (and in ``summary()``), left out
    per subject when fitting, never silently dropped.

    ``split_unit`` names the column (of ``stimuli`` for event data, of the scan table for time series) whose
    values are the groups of cross-validation: no group is ever in both a training and a test fold.

    ``nuisance`` maps a subject to its per-scan regressors (time series); ``excluded`` maps a subject left
    out of ``responses`` to the reason; ``masked`` maps a neuroid set to NaN (all-NaN or constant) to the
    reason; ``meta`` holds reader facts worth reporting (e.g. a verified stimulus-to-scan alignment);
    ``lines`` (readers of one table) holds, per neuroid_id column and sample row, the 1-based line of the file
    each response was read from (0: the file has no row for it), so that missing values are named by line.
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
    lines: pd.DataFrame | None = None

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

    @property
    def missing(self) -> MissingValues:
        """The missing response values outside masked neuroids (rejected trials, literal NaN cells, ±inf)."""
        values = np.asarray(self.responses.values, dtype=float)
        ids = np.asarray([str(v) for v in self.responses["neuroid_id"].values])
        subjects = np.asarray([str(v) for v in self.responses["subject"].values])
        keep = ~np.isin(ids, list(self.masked)) if self.masked else np.ones(len(ids), dtype=bool)
        bad = ~np.isfinite(values[:, keep])
        infinite = int(np.isinf(values[:, keep]).sum())
        ids, subjects = ids[keep], subjects[keep]
        lines = self._lines(ids)
        per_neuroid = bad.sum(axis=0)
        by_subject: dict[str, int] = {}
        rows: dict[str, list[int]] = {}
        at_lines: dict[str, list[int]] = {}
        absent: dict[str, list[str]] = {}
        stimulus_ids = self.stimuli["stimulus_id"].astype(str).to_numpy() if not self.is_timeseries else None
        for subject in dict.fromkeys(subjects):
            mine = bad[:, subjects == subject]
            if mine.any():
                by_subject[subject] = int(mine.sum())
                rows[subject] = np.flatnonzero(mine.any(axis=1)).tolist()
                if lines is not None:
                    cells = lines[:, subjects == subject][mine]
                    at_lines[subject] = sorted({int(n) for n in cells if n > 0})
                    none = np.flatnonzero((mine & (lines[:, subjects == subject] <= 0)).any(axis=1))
                    if len(none) and stimulus_ids is not None:
                        absent[subject] = [str(stimulus_ids[r]) for r in none]
        empty = np.flatnonzero(bad.all(axis=1)).tolist() if bad.shape[1] > 1 else []  # one target: == rows
        empty_lines: list[int] = []
        for row in empty if lines is not None else []:  # per empty row, the first line it was read from (0: none)
            known = lines[row][lines[row] > 0]
            empty_lines.append(int(known.min()) if known.size else 0)
        return MissingValues(
            n_values=int(per_neuroid.sum()),
            n_total=int(bad.size),
            by_subject=by_subject,
            by_neuroid={nid: int(n) for nid, n in zip(ids, per_neuroid, strict=True) if n},
            rows=rows,
            n_infinite=infinite,
            lines=at_lines,
            absent=absent,
            empty_rows=empty,
            empty_lines=empty_lines,
        )

    def _lines(self, ids: np.ndarray) -> np.ndarray | None:
        """The file lines of the responses of neuroids ``ids`` (samples x ids), or None when unknown."""
        if self.lines is None or not set(ids) <= {str(c) for c in self.lines.columns}:
            return None
        table = self.lines.rename(columns=str)
        if len(table) != self.responses.sizes["sample"]:
            return None
        return table[list(ids)].to_numpy(dtype=np.int64)

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
        if len(self.stimuli) == 0:
            raise DataError(f"{where}: no stimuli (is the data file empty, a header without rows?)")
        texts = self.stimuli["text"]
        absent = texts.isna().to_numpy()
        blank = absent | texts.astype(str).str.strip().eq("").to_numpy()
        if blank.any():
            rows = np.flatnonzero(blank)
            row = int(rows[0])
            what = "no text (missing value)" if absent[row] else f"an empty text {texts.iloc[row]!r}"
            others = f"; also row(s) {_some(rows[1:].tolist(), 5)}" if len(rows) > 1 else ""
            raise DataError(
                f"{where}: stimulus {self.stimuli['stimulus_id'].iloc[row]!r} (row {row} of the stimulus table) "
                f"has {what}{others}"
            )
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
            + (f"; {missing.describe()}" if (missing := self.missing) else "")
        )
