"""What units fit on, built once and passed explicitly: a study's datasets, targets, LLM layers and controls.

:class:`StudyContext` holds a study and loads each of its datasets once; on request it builds a unit's targets
(:class:`Targets`), the candidate matrices of its LLM layers and its control matrices (each control with its own FIR
delays and standardisation flags, from the control registry). Its memos (datasets, subject groups, the last models'
layer candidates, the last in-fold layer selections) live on the instance (:class:`Memo`): the runner builds one
per process and hands it to planning, validation and every unit; a worker process keeps its own.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pandas as pd
import xarray as xr

from lmbrain.data import load_dataset
from lmbrain.data.dataset import Dataset
from lmbrain.encoding import ContiguousBlockSplit, GroupedKFold, ShuffledSplit
from lmbrain.encoding.timeseries import ScanFeatures, high_pass
from lmbrain.errors import LmbrainError, StudyError
from lmbrain.features.context import ContextPolicy, context_policy
from lmbrain.features.controls import ControlFeatures, combine_controls, control_features, control_info
from lmbrain.features.layers import resolve_layers
from lmbrain.results import ALL_SUBJECTS, FeatureSet, layer_label, parse_lag
from lmbrain.study.schema import DatasetEntry, Study

T = TypeVar("T")


@dataclass
class Targets:
    """A unit's responses: rows kept, Y, the neuroid table (with a subject column), CV groups and splitter."""

    dataset: Dataset
    rows: np.ndarray
    Y: np.ndarray
    neuroids: pd.DataFrame
    groups: np.ndarray
    cv: object

    @property
    def subjects(self) -> np.ndarray:
        """The subject of every target (column of Y)."""
        return self.neuroids["subject"].to_numpy()


@dataclass
class ControlMatrix:
    """A control set's candidate matrices (several only for OASM's σ), one row per response sample, and which
    of its columns the ridge z-scores (the others are only centred)."""

    candidates: dict[str, np.ndarray]
    standardize: np.ndarray

    @property
    def n_features(self) -> int:
        """Number of columns of every candidate."""
        return next(iter(self.candidates.values())).shape[1]

    def rows(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        """The candidates restricted to some response rows."""
        return {k: X[rows] for k, X in self.candidates.items()}


def scan_runs(dataset: Dataset) -> np.ndarray:
    """Run label of every scan (one run when the dataset has none)."""
    samples = dataset.samples
    return samples["run"].to_numpy() if "run" in samples.columns else np.zeros(len(samples), dtype=int)


def cv_groups(dataset: Dataset) -> np.ndarray:
    """What the splitters group by: the split unit for event data, the runs for time series."""
    return scan_runs(dataset) if dataset.is_timeseries else dataset.groups()


def make_cv(scheme: str, n_splits: int, seed: int, timeseries: bool = False, gap: int = 0):
    """The splitter of a scheme: grouped by split unit (contiguous blocks with a gap for time series), or the
    leaky shuffled audit."""
    if scheme == "grouped":
        return ContiguousBlockSplit(n_splits=n_splits, gap=gap) if timeseries else GroupedKFold(n_splits=n_splits)
    if scheme == "shuffled":
        return ShuffledSplit(n_splits=n_splits, random_state=seed)
    raise LmbrainError(f"unknown CV scheme {scheme!r}; expected 'grouped' or 'shuffled'")


def subject_targets(dataset: Dataset, subjects: str | list[str], study: Study | None = None
                    ) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Responses of one or more subjects: (rows kept, Y, neuroid table with a subject column).

    Masked neuroids (all NaN: the reader found them constant or missing; see ``dataset.masked``) are left
    out, then rows where any remaining target is missing (rejected trials). Time series are high-passed, with
    the run-onset transients of ``timeseries.onset_s`` (as the features are)."""
    names = [subjects] if isinstance(subjects, str) else list(subjects)
    parts = [dataset.subject_responses(s) for s in names]
    responses = parts[0] if len(parts) == 1 else xr.concat(parts, dim="neuroid")
    Y = np.asarray(responses.values, dtype=np.float64)
    finite = np.isfinite(Y)
    usable = finite.any(axis=0)
    responses = responses.isel(neuroid=np.flatnonzero(usable))
    Y, finite = Y[:, usable], finite[:, usable]
    rows = np.flatnonzero(finite.all(axis=1))
    Y = Y[rows]
    if dataset.is_timeseries and study is not None and len(rows) == len(finite):
        Y = high_pass(Y, float(dataset.tr), study.timeseries.high_pass_s, scan_runs(dataset), study.timeseries.onset_s)
    neuroids = pd.DataFrame(
        {name: np.asarray(coord.values) for name, coord in responses.coords.items() if coord.dims == ("neuroid",)}
    )
    neuroids["subject"] = neuroids["subject"].astype(str)
    return rows, Y, neuroids


def load_entry(entry: DatasetEntry) -> Dataset:
    """A study's dataset with its subject and ROI selection applied."""
    subjects = None if entry.subjects == "all" else list(entry.subjects)
    dataset = load_dataset(entry.name, subjects=subjects, **dict(entry.options))
    if entry.rois is not None:
        keep = np.isin(dataset.responses["roi"].values.astype(str), entry.rois)
        dataset.responses = dataset.responses.isel(neuroid=np.flatnonzero(keep))
    return dataset


class StudyContext:
    """Datasets, targets, LLM layers and control matrices of one study, each built once.

    Parameters
    ----------
    study : lmbrain.Study
        The study whose units this context serves (``context.study``).
    """

    def __init__(self, study: Study) -> None:
        self.study = study
        self._datasets: dict[str, Dataset] = {}
        self._row_groups: dict[str, list[str]] = {}
        #: the last models' layer candidates: the units of one model variant (every subject, every kind) follow
        #: one another in a worker, so the feature cache is read (and hashed) once per model, not per unit
        self._candidates = Memo(2)
        #: recent in-fold layer selections (:func:`lmbrain.study.compute.layer_selection`): the LLM-alone, joint and
        #: per-layer units of one (dataset, subjects, model, scheme) follow one another and share it
        self.selections = Memo(2)
        self._widths: dict[tuple[str, int | None], int] = {}

    def entry(self, name: str) -> DatasetEntry:
        """The study's entry of a dataset."""
        for entry in self.study.datasets:
            if entry.name == name:
                return entry
        raise StudyError(f"dataset {name!r} is not in study {self.study.name!r}")

    def dataset(self, name: str) -> Dataset:
        """A dataset of the study, loaded once."""
        if name not in self._datasets:
            self._datasets[name] = load_entry(self.entry(name))
        return self._datasets[name]

    # -- subjects -------------------------------------------------------------------------------------

    def subject_groups(self, name: str, feature_set: FeatureSet) -> list[str]:
        """Unit subject labels: subjects with the same usable samples are fitted together (``*`` = all of
        them), unless the feature set holds a subject-specific control (then one unit per subject)."""
        dataset = self.dataset(name)
        if any(control_info(c).subject_specific for c in feature_set.controls):
            return list(dataset.subjects)
        if name not in self._row_groups:
            by_rows: dict[bytes, list[str]] = {}
            for subject in dataset.subjects:
                rows = subject_targets(dataset, subject)[0]
                by_rows.setdefault(rows.tobytes(), []).append(subject)
            self._row_groups[name] = [ALL_SUBJECTS] if len(by_rows) == 1 else [",".join(g) for g in by_rows.values()]
        return list(self._row_groups[name])

    def unit_subjects(self, name: str, label: str) -> list[str]:
        """The subjects a unit's subject label stands for."""
        return list(self.dataset(name).subjects) if label == ALL_SUBJECTS else label.split(",")

    def targets(self, name: str, subject_label: str, scheme: str) -> Targets:
        """Targets, groups and outer splitter of a unit."""
        study = self.study
        dataset = self.dataset(name)
        rows, Y, neuroids = subject_targets(dataset, self.unit_subjects(name, subject_label), study)
        cv = make_cv(scheme, study.cv.n_splits, study.cv.seed, dataset.is_timeseries, study.timeseries.gap)
        return Targets(dataset, rows, Y, neuroids, cv_groups(dataset)[rows], cv)

    # -- features -------------------------------------------------------------------------------------

    def scan_transformer(self, dataset: Dataset, delays: bool) -> ScanFeatures:
        """The time-series transformer of a dataset: resample to scans, high-pass (drifts and run-onset
        transients), FIR delays (if ``delays``)."""
        ts = self.study.timeseries
        onsets = dataset.stimuli["onset"].to_numpy(float) if "onset" in dataset.stimuli else None
        return ScanFeatures(dataset.samples["time"].to_numpy(float), float(dataset.tr), runs=scan_runs(dataset),
                            onsets=onsets, resample=ts.resample, high_pass_s=ts.high_pass_s,
                            delays=tuple(ts.delays) if delays else (), onset_s=tuple(ts.onset_s))

    def sample_features(self, dataset: Dataset, X: np.ndarray, delays: bool = True) -> np.ndarray:
        """Features with one row per response sample (stimulus-level unless the dataset is a time series)."""
        if not dataset.is_timeseries:
            return X
        return self.scan_transformer(dataset, delays).fit_transform(X)

    def llm_layers(self, name: str, model: str, seed: int | None) -> dict[int, np.ndarray]:
        """Per-layer stimulus features of one model on one dataset, from the feature cache."""
        from lmbrain.features.cache import get_features  # torch: imported when features are needed

        study = self.study
        stimuli = self.dataset(name).stimuli
        policy = self.context_policy(name, model, seed)
        features = get_features(
            model,
            stimuli["text"].astype(str).tolist(),
            stimuli["context_id"].tolist(),
            stimuli["position"].tolist(),
            untrained_seed=seed,
            context=policy.policy,
            pooling=study.features.pooling,
            layers="all",
            batch_size=study.features.batch_size,
            max_length=self.prefix_window(policy, model, seed),
            progress=False,
        )
        layers = resolve_layers(study.features.layers, features.shape[0])
        return {layer: features[layer] for layer in layers}

    def prefix_window(self, policy: ContextPolicy, model: str, seed: int | None) -> int | None:
        """The token window of a bidirectional model reading prefixes on incremental data (``prefix_window``)."""
        from lmbrain.features.models import model_ref

        window = getattr(self.study.features, "prefix_window", None)  # a study pickled before the option existed
        if window is None or policy.policy != "passage-so-far" or model_ref(model, seed).kind != "bidirectional":
            return None
        return window

    def context_policy(self, name: str, model: str, seed: int | None) -> ContextPolicy:
        """The context policy of a model on a dataset: left context only on incremental data, for every model."""
        from lmbrain.features.models import model_ref

        kind = model_ref(model, seed).kind
        return context_policy(self.study.features.context, kind, self.dataset(name).modality)

    def llm_width(self, name: str, model: str, seed: int | None) -> int:
        """Columns of a model's layer features: its hidden size from its config or file header (no weights loaded),
        else from its cached features on the dataset."""
        from lmbrain.features.models import model_shape

        if (model, seed) not in self._widths:
            shape = model_shape(model)
            self._widths[model, seed] = (shape.hidden_size if shape is not None
                                         else next(iter(self.llm_layers(name, model, seed).values())).shape[1])
        return self._widths[model, seed]

    def layer_candidates(self, name: str, model: str, seed: int | None) -> dict[str, np.ndarray]:
        """One candidate per LLM layer, one row per response sample (the last two models' kept in memory)."""
        dataset = self.dataset(name)
        return self._candidates.get((name, model, seed), lambda: {
            layer_label(layer): self.sample_features(dataset, X)
            for layer, X in self.llm_layers(name, model, seed).items()})

    def control_options(self, name: str, control: str) -> dict:
        """Keyword options of one control; random features get the LLM layer's dimension (the hidden size of
        the study's models, which must then agree) unless ``dim`` is given."""
        entry = self.entry(name)
        options = dict(entry.control_options.get(control, entry.control_options.get(parse_lag(control)[0], {})))
        if control == "random" and "dim" not in options:
            sizes = {self.llm_width(name, model, seed) for model, seed in self.study.model_variants()}
            if len(sizes) > 1:
                raise StudyError(
                    f"dataset {name}: control 'random' should match the LLM layer's dimension, but the study's "
                    f"models have hidden sizes {sorted(sizes)}; set control_options: {{random: {{dim: N}}}}"
                )
            if sizes:
                options["dim"] = sizes.pop()
        return options

    def controls(self, name: str, feature_set: FeatureSet, subject: str) -> ControlMatrix:
        """A feature set's controls side by side, one row per response sample: each control with its own FIR
        delays (time series) and its own standardisation flags (from the control registry)."""
        dataset = self.dataset(name)
        parts = []
        for control in feature_set.controls:
            info = control_info(control)
            features = control_features(dataset, control, {control: self.control_options(name, control)},
                                        subject=subject if info.subject_specific else None)
            delays = info.delayed and dataset.is_timeseries
            n_copies = len(self.study.timeseries.delays) if delays else 1
            candidates = {k: self.sample_features(dataset, X, delays) for k, X in features.candidates.items()}
            flags = np.tile(np.asarray(features.standardize, dtype=bool), n_copies)
            parts.append(ControlFeatures(control, candidates, features.description, standardize=flags))
        combined = combine_controls(feature_set.controls_label, parts)
        return ControlMatrix(combined.candidates, combined.standardize)


class Memo:
    """A bounded memo: the last ``size`` values built, by key (the least recently used one dropped first)."""

    def __init__(self, size: int = 2) -> None:
        self.size = size
        self._values: collections.OrderedDict = collections.OrderedDict()

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def get(self, key: object, build: Callable[[], T]) -> T:
        """The value of ``key``, built by ``build()`` on first use."""
        if key not in self._values:
            self._values[key] = build()
            while len(self._values) > self.size:
                self._values.popitem(last=False)
        self._values.move_to_end(key)
        return self._values[key]
