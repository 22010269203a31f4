"""Units of work of a study and how one unit is computed.

A unit is (dataset, subject, model, untrained seed, feature set, CV scheme). Its result is a tidy table with
one row per target x metric, plus a small record of what was chosen inside the training folds.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from lmbrain.data import load_dataset
from lmbrain.data.dataset import Dataset
from lmbrain.encoding import (
    BandedRidgeCV,
    GroupedKFold,
    RidgeCV,
    ShuffledSplit,
    cross_validate,
    cross_validate_select,
)
from lmbrain.features import get_features, resolve_layers
from lmbrain.features.controls import control_features
from lmbrain.study.schema import DatasetEntry, Study

LLM = "llm"


@dataclass(frozen=True)
class Unit:
    """One independent piece of work; its key names its result files."""

    dataset: str
    subject: str
    model: str | None
    untrained_seed: int | None
    feature_set: str
    scheme: str
    per_layer: bool = False

    @property
    def key(self) -> str:
        """A stable file-name-safe identifier."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    @property
    def model_label(self) -> str:
        """The model name with its untrained seed, as shown in tables."""
        if self.model is None:
            return "-"
        return self.model if self.untrained_seed is None else f"{self.model}:untrained-{self.untrained_seed}"

    def describe(self) -> str:
        """A short human-readable description."""
        layers = " per-layer" if self.per_layer else ""
        return (
            f"{self.dataset}/{self.subject} {self.model_label} {self.feature_set}{layers} [{self.scheme}]"
        )


def model_variants(study: Study) -> list[tuple[str, int | None]]:
    """Every (model, untrained seed) pair of the study; seed None is the trained model."""
    variants: list[tuple[str, int | None]] = []
    for entry in study.models:
        if entry.trained:
            variants.append((entry.name, None))
        variants.extend((entry.name, seed) for seed in entry.untrained_seeds)
    return variants


def enumerate_units(study: Study) -> list[Unit]:
    """All units of a study in a deterministic order."""
    units: list[Unit] = []
    for entry in study.datasets:
        dataset = cached_dataset(entry)
        for scheme in study.cv.schemes:
            for subject in dataset.subjects:
                for control in entry.controls:
                    units.append(Unit(entry.name, subject, None, None, control, scheme))
                for model, seed in model_variants(study):
                    units.append(Unit(entry.name, subject, model, seed, LLM, scheme))
                    units.extend(
                        Unit(entry.name, subject, model, seed, f"{LLM}+{c}", scheme) for c in entry.controls
                    )
                    if study.estimator.layer_curves and scheme == "grouped":
                        units.append(Unit(entry.name, subject, model, seed, LLM, scheme, per_layer=True))
    return units


# -- inputs -----------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def cached_dataset(entry: DatasetEntry) -> Dataset:
    """Load a study's dataset once per process, with its subject and ROI selection applied."""
    subjects = None if entry.subjects == "all" else list(entry.subjects)
    dataset = load_dataset(entry.name, subjects=subjects, **dict(entry.options))
    if entry.rois is not None:
        keep = np.isin(dataset.responses["roi"].values.astype(str), entry.rois)
        dataset.responses = dataset.responses.isel(neuroid=np.flatnonzero(keep))
    return dataset


def llm_features(study: Study, entry: DatasetEntry, model: str, seed: int | None) -> dict[int, np.ndarray]:
    """Per-layer stimulus features of one model on one dataset, from the feature cache."""
    dataset = cached_dataset(entry)
    stimuli = dataset.stimuli
    features = get_features(
        model,
        stimuli["text"].astype(str).tolist(),
        stimuli["context_id"].tolist(),
        stimuli["position"].tolist(),
        untrained_seed=seed,
        context=study.features.context,
        pooling=study.features.pooling,
        layers="all",
        batch_size=study.features.batch_size,
        progress=False,
    )
    layers = resolve_layers(study.features.layers, features.shape[0])
    return {layer: features[layer] for layer in layers}


def subject_targets(dataset: Dataset, subject: str) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Responses of one subject: (rows kept, Y, neuroid table), rows with a missing value masked out."""
    responses = dataset.subject_responses(subject)
    Y = np.asarray(responses.values, dtype=np.float64)
    finite = np.isfinite(Y)
    # neuroids the reader masked (all NaN: constant or missing) are reported in dataset.masked, not fitted
    responses = responses.isel(neuroid=np.flatnonzero(finite.any(axis=0)))
    Y, finite = Y[:, finite.any(axis=0)], finite[:, finite.any(axis=0)]
    rows = np.flatnonzero(finite.all(axis=1))  # rejected trials of this subject
    Y = Y[rows]
    neuroids = pd.DataFrame(
        {
            name: np.asarray(coord.values)
            for name, coord in responses.coords.items()
            if coord.dims == ("neuroid",)
        }
    )
    return rows, Y, neuroids


def make_cv(scheme: str, n_splits: int, seed: int):
    """The outer splitter for a scheme: grouped by split unit, or the leaky shuffled audit."""
    if scheme == "grouped":
        return GroupedKFold(n_splits=n_splits)
    if scheme == "shuffled":
        return ShuffledSplit(n_splits=n_splits, random_state=seed)
    raise ValueError(f"unknown CV scheme {scheme!r}")


def make_estimator(study: Study, scheme: str, band_sizes: list[int] | None = None):
    """The ridge estimator; its inner CV follows the outer scheme (grouped or shuffled)."""
    inner = make_cv(scheme, study.cv.inner_splits, study.cv.seed)
    alphas = np.asarray(study.estimator.alphas, dtype=float)
    if band_sizes is not None and len(band_sizes) > 1 and study.estimator.joint == "banded":
        return BandedRidgeCV(band_sizes=band_sizes, alphas=alphas, cv=inner, random_state=study.cv.seed)
    return RidgeCV(alphas=alphas, cv=inner)


def feature_candidates(
    study: Study, unit: Unit, entry: DatasetEntry
) -> tuple[dict[str, np.ndarray], list[int] | None]:
    """The candidate feature matrices of a unit (one per layer or σ) and, for joint spaces, the band sizes."""
    dataset = cached_dataset(entry)
    parts = unit.feature_set.split("+", 1)
    if parts[0] != LLM:
        return control_features(dataset, unit.feature_set).candidates, None
    assert unit.model is not None
    layers = llm_features(study, entry, unit.model, unit.untrained_seed)
    candidates = {f"layer={layer}": X for layer, X in layers.items()}
    if len(parts) == 1:
        return candidates, None
    control = control_features(dataset, parts[1]).matrix
    joint = {name: np.hstack([X, control]) for name, X in candidates.items()}
    dim = next(iter(candidates.values())).shape[1]
    return joint, [dim, control.shape[1]]


def compute_unit(study: Study, unit: Unit) -> tuple[pd.DataFrame, dict]:
    """Fit and score one unit; returns its tidy rows and a record of the in-fold choices."""
    entry = next(e for e in study.datasets if e.name == unit.dataset)
    dataset = cached_dataset(entry)
    rows, Y, neuroids = subject_targets(dataset, unit.subject)
    groups = dataset.groups()[rows]
    candidates, bands = feature_candidates(study, unit, entry)
    candidates = {name: X[rows] for name, X in candidates.items()}
    cv = make_cv(unit.scheme, study.cv.n_splits, study.cv.seed)
    estimator = make_estimator(study, unit.scheme, bands)
    frames = []
    record: dict = {"n_samples": len(rows), "n_targets": Y.shape[1], "candidates": list(candidates)}
    if unit.per_layer:
        for name, X in candidates.items():
            result = cross_validate(estimator, X, Y, groups, cv)
            frames.append(_tidy(unit, neuroids, result.r, result.r2, layer=name))
    else:
        result = cross_validate_select(candidates, Y, groups, cv, estimator)
        selected = list(result.selected) if result.selected is not None else [next(iter(candidates))]
        record["selected"] = selected
        record["inner_scores"] = {k: float(v) for k, v in (result.inner_scores or {}).items()}
        frames.append(_tidy(unit, neuroids, result.r, result.r2, layer=Counter(selected).most_common(1)[0][0]))
    return pd.concat(frames, ignore_index=True), record


def _tidy(unit: Unit, neuroids: pd.DataFrame, r: np.ndarray, r2: np.ndarray, layer: str) -> pd.DataFrame:
    """One row per target x metric for a unit."""
    base = neuroids.copy()
    base["neuroid_id"] = base["neuroid_id"].astype(str)
    keep = [c for c in ("neuroid_id", "roi") if c in base.columns]
    base = base[keep]
    out = []
    for metric, values in (("r", r), ("r2", r2)):
        frame = base.copy()
        frame["metric"] = metric
        frame["value"] = np.asarray(values, dtype=np.float64)
        out.append(frame)
    table = pd.concat(out, ignore_index=True)
    table.insert(0, "dataset", unit.dataset)
    table.insert(1, "subject", str(unit.subject))
    table.insert(2, "model", unit.model_label)
    table.insert(3, "feature_set", unit.feature_set)
    table.insert(4, "scheme", unit.scheme)
    table.insert(5, "per_layer", unit.per_layer)
    table.insert(6, "layer", layer)
    return table
