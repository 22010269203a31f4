"""Units of work of a study and how one unit is computed.

A unit is (dataset, subject, model, untrained seed, feature set, CV scheme). Its result is a tidy table with
one row per target x metric, plus a small record of what was chosen inside the training folds.

Feature sets: ``llm`` (the layer is chosen inside each training fold), a control name (``word_position``,
``sentence_length+sentence_position``, ``oasm``: σ chosen inside each training fold), and ``llm+CONTROL``
(a banded ridge on the layer chosen for the LLM alone in that fold, next to the controls). Per-layer units
score every layer separately, for the descriptive layer curves only. A ``ceiling`` unit per dataset predicts
each subject from pools of other subjects with the same CV and regression (where subjects share stimuli).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import itertools
import json
from collections import Counter
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import xarray as xr

from lmbrain.analysis.permutation import (
    circular_shifts,
    contiguous_blocks,
    group_permutations,
    paired_sign_flip_test,
    permutation_test,
    prediction_permutation_test,
)
from lmbrain.data import load_dataset
from lmbrain.data.dataset import Dataset
from lmbrain.encoding import (
    BandedRidgeCV,
    ContiguousBlockSplit,
    GroupedKFold,
    RidgeCV,
    ShuffledSplit,
    cross_validate,
    cross_validate_each,
    cross_validate_select,
    lanczos_resample,
    make_delays,
    mean_within_scans,
    pool_ceiling,
    sum_within_scans,
)
from lmbrain.errors import LmbrainError, StudyError
from lmbrain.features import get_features, resolve_layers
from lmbrain.features.controls import control_features
from lmbrain.study.schema import DatasetEntry, Study

LLM = "llm"
CEILING = "ceiling"
ALL_SUBJECTS = "*"
#: scan-level controls that are regressors already (no FIR delays)
UNDELAYED = {"motion", "sound_power", "oasm", "random"}


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
        return f"{self.dataset}/{self.subject} {self.model_label} {self.feature_set}{layers} [{self.scheme}]"


def model_variants(study: Study) -> list[tuple[str, int | None]]:
    """Every (model, untrained seed) pair of the study; seed None is the trained model."""
    variants: list[tuple[str, int | None]] = []
    for entry in study.models:
        if entry.trained:
            variants.append((entry.name, None))
        variants.extend((entry.name, seed) for seed in entry.untrained_seeds)
    return variants


CEILING_MAX_SOURCES = 8


def has_ceiling(dataset: Dataset) -> bool:
    """A pool ceiling needs at least 3 subjects with the same usable samples (at least half of them)."""
    if len(dataset.subjects) < 3:
        return False
    common = functools.reduce(np.intersect1d, [subject_targets(dataset, s)[0] for s in dataset.subjects])
    return len(common) >= 0.5 * len(dataset.samples)


def subject_groups(dataset: Dataset, feature_set: str) -> list[str]:
    """Unit subject labels: subjects with the same usable samples are fitted together ("*" = all of them),
    unless the feature set holds a subject-specific control (then one unit per subject)."""
    from lmbrain.features.controls import SUBJECT_CONTROLS

    if set(feature_set.split("+")) & SUBJECT_CONTROLS:
        return list(dataset.subjects)
    cached = _ROW_GROUPS.get(id(dataset))
    if cached is None or cached[0] is not dataset:
        by_rows: dict[bytes, list[str]] = {}
        for subject in dataset.subjects:
            rows = subject_targets(dataset, subject)[0]
            by_rows.setdefault(rows.tobytes(), []).append(subject)
        labels = [ALL_SUBJECTS] if len(by_rows) == 1 else [",".join(g) for g in by_rows.values()]
        cached = _ROW_GROUPS[id(dataset)] = (dataset, labels)
    return list(cached[1])


#: subjects grouped by their usable rows, per loaded dataset (kept with it, so an id is never reused)
_ROW_GROUPS: dict[int, tuple[Dataset, list[str]]] = {}


def unit_subjects(dataset: Dataset, label: str) -> list[str]:
    """The subjects a unit's subject label stands for."""
    return list(dataset.subjects) if label == ALL_SUBJECTS else label.split(",")


def enumerate_units(study: Study) -> list[Unit]:
    """All units of a study in a deterministic order."""
    units: list[Unit] = []
    for entry in study.datasets:
        dataset = cached_dataset(entry)
        if study.statistics.ceiling and has_ceiling(dataset):
            units.append(Unit(entry.name, ALL_SUBJECTS, None, None, CEILING, "grouped"))
        for scheme in study.cv.schemes:
            for control in entry.controls:
                units.extend(Unit(entry.name, g, None, None, control, scheme)
                             for g in subject_groups(dataset, control))
            for model, seed in model_variants(study):
                units.extend(Unit(entry.name, g, model, seed, LLM, scheme) for g in subject_groups(dataset, LLM))
                for control in entry.controls:
                    joint = f"{LLM}+{control}"
                    units.extend(Unit(entry.name, g, model, seed, joint, scheme)
                                 for g in subject_groups(dataset, joint))
                if study.estimator.layer_curves and scheme == "grouped":
                    units.extend(Unit(entry.name, g, model, seed, LLM, scheme, per_layer=True)
                                 for g in subject_groups(dataset, LLM))
    return units


def unit_chains(study: Study, units: list[Unit]) -> list[list[Unit]]:
    """Units grouped into chains that share one in-fold layer selection (the LLM-alone, joint and
    per-layer units of one model and subject group), in their original order; other units alone."""
    chains: dict[tuple, list[Unit]] = {}
    for unit in units:
        if unit.model is None:
            key: tuple = (unit.key,)
        else:
            entry = next(e for e in study.datasets if e.name == unit.dataset)
            key = ("llm", llm_unit_of(cached_dataset(entry), unit).key)
        chains.setdefault(key, []).append(unit)
    return list(chains.values())


# -- inputs -----------------------------------------------------------------------------------------


_DATASETS: dict[str, Dataset] = {}


def cached_dataset(entry: DatasetEntry) -> Dataset:
    """Load a study's dataset once per process, with its subject and ROI selection applied."""
    key = entry.model_dump_json()
    if key not in _DATASETS:
        _DATASETS[key] = _load_entry(entry)
    return _DATASETS[key]


def _load_entry(entry: DatasetEntry) -> Dataset:
    subjects = None if entry.subjects == "all" else list(entry.subjects)
    dataset = load_dataset(entry.name, subjects=subjects, **dict(entry.options))
    if entry.rois is not None:
        keep = np.isin(dataset.responses["roi"].values.astype(str), entry.rois)
        dataset.responses = dataset.responses.isel(neuroid=np.flatnonzero(keep))
    return dataset


def scan_runs(dataset: Dataset) -> np.ndarray:
    """Run label of every scan (one run when the dataset has none)."""
    samples = dataset.samples
    return samples["run"].to_numpy() if "run" in samples.columns else np.zeros(len(samples), dtype=int)


def high_pass(study: Study, dataset: Dataset, X: np.ndarray) -> np.ndarray:
    """Remove slow drifts per run with a cosine (DCT) basis, as SPM does (nilearn's ``signal.clean``)."""
    from nilearn.signal import clean

    cutoff = study.timeseries.high_pass_s
    if not cutoff:
        return X
    out = np.empty_like(X, dtype=np.float64)
    runs = scan_runs(dataset)
    for run in np.unique(runs):
        rows = runs == run
        out[rows] = clean(X[rows], detrend=False, standardize=None, filter="cosine", high_pass=1.0 / cutoff,
                          t_r=float(dataset.tr), ensure_finite=True)
    return out


def words_to_scans(study: Study, dataset: Dataset, X: np.ndarray, delays: bool = True) -> np.ndarray:
    """Word-level features to scan-level regressors: resample, high-pass, FIR delays (within runs)."""
    times = dataset.samples["time"].to_numpy(float)
    onsets = dataset.stimuli["onset"].to_numpy(float)
    method = study.timeseries.resample
    if method == "lanczos":
        scans = lanczos_resample(X, onsets, times)
    elif method == "sum":
        scans = sum_within_scans(X, onsets, times, tr=dataset.tr)
    else:
        scans = mean_within_scans(X, onsets, times, tr=dataset.tr)
    return scan_features(study, dataset, scans, delays)


def scan_features(study: Study, dataset: Dataset, scans: np.ndarray, delays: bool = True) -> np.ndarray:
    """High-pass scan-level features and, unless they are regressors already, add FIR delays."""
    scans = high_pass(study, dataset, np.asarray(scans, dtype=np.float64))
    if not delays:
        return scans
    return make_delays(scans, tuple(study.timeseries.delays), runs=scan_runs(dataset))


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


def sample_features(study: Study, dataset: Dataset, X: np.ndarray, delays: bool = True) -> np.ndarray:
    """Features with one row per response sample (stimulus-level unless the dataset is a time series)."""
    if not dataset.is_timeseries:
        return X
    if X.shape[0] == len(dataset.stimuli):
        return words_to_scans(study, dataset, X, delays)
    return scan_features(study, dataset, X, delays)


def subject_targets(dataset: Dataset, subjects: str | list[str], study: Study | None = None
                    ) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Responses of one or more subjects: (rows kept, Y, neuroid table with a subject column).

    Masked neuroids (all NaN: the reader found them constant or missing; see ``dataset.masked``) are left
    out, then rows where any remaining target is missing (rejected trials)."""
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
    if dataset.is_timeseries and study is not None:
        Y = high_pass(study, dataset, Y) if len(rows) == len(finite) else Y
    neuroids = pd.DataFrame(
        {name: np.asarray(coord.values) for name, coord in responses.coords.items() if coord.dims == ("neuroid",)}
    )
    neuroids["subject"] = neuroids["subject"].astype(str)
    return rows, Y, neuroids


def cv_groups(dataset: Dataset) -> np.ndarray:
    """What the splitters group by: the split unit for event data, the runs for time series."""
    return scan_runs(dataset) if dataset.is_timeseries else dataset.groups()


def make_cv(scheme: str, n_splits: int, seed: int, timeseries: bool = False, gap: int = 0):
    """The splitter for a scheme: grouped by split unit (contiguous blocks with a gap for time series),
    or the leaky shuffled audit."""
    if scheme == "grouped":
        return ContiguousBlockSplit(n_splits=n_splits, gap=gap) if timeseries else GroupedKFold(n_splits=n_splits)
    if scheme == "shuffled":
        return ShuffledSplit(n_splits=n_splits, random_state=seed)
    raise LmbrainError(f"unknown CV scheme {scheme!r}; expected 'grouped' or 'shuffled'")


def make_estimator(study: Study, dataset: Dataset, scheme: str, band_sizes: list[int] | None = None):
    """The ridge estimator; its inner CV follows the outer scheme (grouped or shuffled)."""
    inner = make_cv(scheme, study.cv.inner_splits, study.cv.seed, dataset.is_timeseries, study.timeseries.gap)
    alphas = np.asarray(study.estimator.alphas, dtype=float)
    if band_sizes is not None and study.estimator.joint == "banded":
        edges = np.cumsum([0, *band_sizes])
        slices = [slice(int(a), int(b)) for a, b in itertools.pairwise(edges)]
        return BandedRidgeCV(feature_slices=slices, alphas=alphas, cv=inner, n_iter=band_weight_grid(len(slices)),
                             random_state=study.cv.seed)
    return RidgeCV(alphas=alphas, cv=inner)


def band_weight_grid(n_bands: int, n_ratios: int = 9) -> np.ndarray | int:
    """Deterministic band weights for two feature spaces (ratios 10^-3..10^3); himalaya's random search
    over the simplex (20 Dirichlet draws) for more."""
    if n_bands != 2:
        return 20
    ratios = np.logspace(-3, 3, n_ratios)
    return np.column_stack([1 / (1 + ratios), ratios / (1 + ratios)])


# -- computing a unit -------------------------------------------------------------------------------


@dataclass
class Inputs:
    """Everything a unit fits on: rows kept, targets, groups, the outer splitter."""

    dataset: Dataset
    rows: np.ndarray
    Y: np.ndarray
    neuroids: pd.DataFrame
    groups: np.ndarray
    cv: object


def unit_inputs(study: Study, unit: Unit, entry: DatasetEntry) -> Inputs:
    """Targets, groups and splitter of a unit."""
    dataset = cached_dataset(entry)
    rows, Y, neuroids = subject_targets(dataset, unit_subjects(dataset, unit.subject), study)
    cv = make_cv(unit.scheme, study.cv.n_splits, study.cv.seed, dataset.is_timeseries, study.timeseries.gap)
    return Inputs(dataset, rows, Y, neuroids, cv_groups(dataset)[rows], cv)


def control_options(study: Study, entry: DatasetEntry, name: str) -> dict[str, dict]:
    """The keyword options of a control set's parts; random features get the LLM layer's dimension (the
    hidden size of the study's models, which must then agree) unless ``dim`` is given."""
    options = {key: dict(value) for key, value in entry.control_options.items()}
    if "random" in name.split("+") and "dim" not in options.get("random", {}):
        sizes = {next(iter(llm_features(study, entry, model, seed).values())).shape[1]
                 for model, seed in model_variants(study)}
        if len(sizes) > 1:
            raise StudyError(
                f"dataset {entry.name}: control 'random' should match the LLM layer's dimension, but the "
                f"study's models have hidden sizes {sorted(sizes)}; set control_options: {{random: {{dim: N}}}}"
            )
        if sizes:
            options.setdefault("random", {})["dim"] = sizes.pop()
    return options


def control_matrix(study: Study, entry: DatasetEntry, name: str, subject: str) -> dict[str, np.ndarray]:
    """A control's candidate matrices, one row per response sample."""
    dataset = cached_dataset(entry)
    control = control_features(dataset, name, control_options(study, entry, name), subject=subject)
    delays = not (set(name.split("+")) & UNDELAYED)
    return {key: sample_features(study, dataset, X, delays) for key, X in control.candidates.items()}


def layer_candidates(study: Study, unit: Unit, entry: DatasetEntry) -> dict[str, np.ndarray]:
    """One candidate per LLM layer, one row per response sample."""
    assert unit.model is not None
    dataset = cached_dataset(entry)
    layers = llm_features(study, entry, unit.model, unit.untrained_seed)
    return {f"layer={layer}": sample_features(study, dataset, X) for layer, X in layers.items()}


def compute_unit(study: Study, unit: Unit) -> tuple[pd.DataFrame, dict]:
    """Fit and score one unit; returns its tidy rows and a record of the in-fold choices.

    The subjects of a unit share their samples and features: one decomposition per fold serves all of
    them, while the layer (or σ) is still chosen separately for every subject inside the training folds.
    """
    entry = next(e for e in study.datasets if e.name == unit.dataset)
    if unit.feature_set == CEILING:
        return compute_ceiling(study, unit, entry)
    data = unit_inputs(study, unit, entry)
    subjects = data.neuroids["subject"].to_numpy()
    record: dict = {"n_samples": len(data.rows), "n_targets": data.Y.shape[1]}
    llm, _, control = unit.feature_set.partition("+")
    if llm != LLM:
        matrices = control_matrix(study, entry, unit.feature_set, unit.subject)
    else:
        matrices = layer_candidates(study, unit, entry)
    candidates = {k: X[data.rows] for k, X in matrices.items()}
    record["candidates"] = list(candidates)
    ridge = make_estimator(study, data.dataset, unit.scheme)
    if llm == LLM:
        result = layer_selection(study, unit, entry, ridge, data, candidates)
    else:
        result = cross_validate_select(candidates, data.Y, data.groups, data.cv, ridge, target_groups=subjects)
    if unit.per_layer:
        each = cross_validate_each(candidates, data.Y, data.groups, data.cv, ridge, result.cv_scores_folds)
        frames = [_tidy(unit, data.neuroids, each[name], name) for name in candidates]
        return pd.concat(frames, ignore_index=True), record
    # (a joint unit's selection may hold more subjects: those fitted together for the LLM alone)
    chosen = {str(s): [fold[s] for fold in result.selected] for s in dict.fromkeys(subjects)}
    record["selected"] = chosen
    record["inner_scores"] = {str(s): result.inner_scores[s] for s in dict.fromkeys(subjects)}
    r, r2 = (np.full(len(subjects), np.nan), np.full(len(subjects), np.nan)) if control else (
        result.r.copy(), result.r2.copy())
    if control:  # joint: each subject's in-fold LLM layer next to the controls, one penalty per space
        ctrl = {k: X[data.rows] for k, X in control_matrix(study, entry, control, unit.subject).items()}
        picked = None
        if len(ctrl) == 1:
            ctrl_chosen = {s: [next(iter(ctrl))] * len(v) for s, v in chosen.items()}
        else:  # a candidate-valued control (OASM's σ): chosen inside the training folds, like the layer
            picked = cross_validate_select(ctrl, data.Y, data.groups, data.cv, ridge, target_groups=subjects)
            ctrl_chosen = {str(s): [fold[s] for fold in picked.selected] for s in dict.fromkeys(subjects)}
            record["selected_control"] = ctrl_chosen
        joint_pred = np.full_like(data.Y, np.nan)
        both = {s: [f"{a}|{b}" for a, b in zip(chosen[s], ctrl_chosen[s], strict=True)] for s in chosen}
        dims = [next(iter(candidates.values())).shape[1], next(iter(ctrl.values())).shape[1]]
        banded = make_estimator(study, data.dataset, unit.scheme, dims)
        for pairs, members in same_choices(both).items():  # subjects with the same in-fold choices share a fit
            cols = np.isin(subjects, members)
            per_fold = [np.hstack([candidates[a], ctrl[b]]) for a, b in (p.split("|") for p in pairs)]
            joint = cross_validate(banded, per_fold, data.Y[:, cols], data.groups, data.cv)
            r[cols], r2[cols] = joint.r, joint.r2
            joint_pred[:, cols] = joint.predictions.reshape(len(data.Y), -1)
    layer_of = {s: Counter(v).most_common(1)[0][0] for s, v in chosen.items()}
    table = _tidy(unit, data.neuroids, (r, r2), [layer_of[s] for s in subjects])
    if control and study.statistics.permutations:  # is the unique LLM variance above zero? (paired sign flips)
        if picked is None:
            picked = cross_validate(ridge, next(iter(ctrl.values())), data.Y, data.groups, data.cv)
        unique = unique_variance_rows(study, data, joint_pred, picked, unit, [layer_of[s] for s in subjects])
        table = pd.concat([table, unique], ignore_index=True)
    if llm == LLM and not control and study.statistics.bootstrap:
        table = pd.concat([table, interval_rows(study, data, result, unit, [layer_of[s] for s in subjects])],
                          ignore_index=True)
    n_perm = study.statistics.permutations
    if n_perm and not control:
        frames = [table]
        for layers, members in same_choices(chosen).items():
            cols = np.flatnonzero(np.isin(subjects, members))
            frames.append(permutation_rows(study, data, [candidates[n] for n in layers], result, cols, unit,
                                           layer_of[members[0]]))
        table = pd.concat(frames, ignore_index=True)
    return table, record


#: recent layer selections: the LLM-alone, joint and per-layer units of one (dataset, subjects, model,
#: scheme) run one after the other and share the in-fold layer choice and its inner-CV scores
_SELECTIONS: collections.OrderedDict = collections.OrderedDict()
_SELECTIONS_KEPT = 2


def llm_unit_of(dataset: Dataset, unit: Unit) -> Unit:
    """The LLM-alone unit whose subjects include this unit's (subjects are fitted together for the LLM
    alone when they share samples, but one by one with a subject-specific control)."""
    mine = set(unit_subjects(dataset, unit.subject))
    label = next(g for g in subject_groups(dataset, LLM) if mine <= set(unit_subjects(dataset, g)))
    return dataclasses.replace(unit, subject=label, feature_set=LLM, per_layer=False)


def layer_selection(study: Study, unit: Unit, entry: DatasetEntry, ridge, data: Inputs | None = None,
                    candidates: dict[str, np.ndarray] | None = None):
    """The LLM layer chosen inside each training fold for every subject of the unit's LLM-alone unit
    (``cross_validate_select`` with every layer's inner-CV scores kept).

    Memoised within a process: the LLM-alone, joint and per-layer units of one (dataset, subjects, model,
    scheme) run one after the other and share it; a unit's result is the same whether or not it was
    already computed (the same computation either way), so resumed and parallel runs agree.
    """
    llm_unit = llm_unit_of(cached_dataset(entry), unit)
    key = (study.digest(), llm_unit.key)
    if key not in _SELECTIONS:
        if data is None or candidates is None or llm_unit.subject != unit.subject:  # another unit's targets
            data = unit_inputs(study, llm_unit, entry)
            candidates = {k: X[data.rows] for k, X in layer_candidates(study, llm_unit, entry).items()}
        subjects = data.neuroids["subject"].to_numpy()
        _SELECTIONS[key] = cross_validate_select(candidates, data.Y, data.groups, data.cv, ridge,
                                                 target_groups=subjects, keep_cv_scores=True)
        while len(_SELECTIONS) > _SELECTIONS_KEPT:
            _SELECTIONS.popitem(last=False)
    return _SELECTIONS[key]


def same_choices(chosen: dict[str, list[str]]) -> dict[tuple[str, ...], list[str]]:
    """Subjects grouped by their per-fold choices (those can share one fit)."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for subject, layers in chosen.items():
        groups.setdefault(tuple(layers), []).append(subject)
    return groups


def permutation_rows(study: Study, data: Inputs, per_fold: list[np.ndarray], result, cols: np.ndarray, unit: Unit,
                     layer: str) -> pd.DataFrame:
    """Permutation p-values of r and R² for some targets: whole groups permuted (event data) or circular
    shifts (time series); refits per permutation, or out-of-fold predictions permuted within test folds."""
    Y = data.Y[:, cols]
    n_perm, seed = study.statistics.permutations, study.statistics.seed
    if study.statistics.permutation_method == "predictions":
        tested = result.folds >= 0
        folds = result.folds[tested]
        if data.dataset.is_timeseries:
            orders = circular_shifts(int(tested.sum()), n_perm, runs=folds, min_shift=10, seed=seed)
        else:
            orders = group_permutations(data.dataset.groups()[data.rows][tested], n_perm, seed=seed, strata=folds)
        test = prediction_permutation_test(Y, result.predictions[:, cols], result.baseline[:, cols], orders,
                                           tested=tested)
    else:
        splits = list(data.cv.split(per_fold[0], Y, data.groups))
        if data.dataset.is_timeseries:
            orders = circular_shifts(len(Y), n_perm, runs=data.groups, min_shift=10, seed=seed)
        else:
            orders = group_permutations(data.dataset.groups()[data.rows], n_perm, seed=seed)
        test = permutation_test(per_fold, Y, splits, result.alphas[:, cols], orders)
    neuroids = data.neuroids.iloc[cols].reset_index(drop=True)
    frames = []
    for metric, values in (("p_r", test.p_r), ("p_r2", test.p_r2), ("null_r_mean", test.null_r_mean)):
        frame = _base(unit, neuroids, layer)
        frame["metric"], frame["value"] = metric, values
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def resampling_blocks(study: Study, data: Inputs) -> np.ndarray:
    """What sign flips and bootstrap resamples move whole: the split unit's groups for event data,
    ``statistics.timeseries_block`` consecutive scans (within runs) for time series."""
    if data.dataset.is_timeseries:
        return contiguous_blocks(len(data.Y), study.statistics.timeseries_block, runs=data.groups)
    return data.dataset.groups()[data.rows]


def unique_variance_rows(study: Study, data: Inputs, joint_pred: np.ndarray, controls, unit: Unit,
                         layers: list[str]) -> pd.DataFrame:
    """p-value per target that the joint model beats the controls alone (unique LLM R² > 0): block sign
    flips of the paired squared-error differences of their out-of-fold predictions (the dataset's split
    unit for event data, ``statistics.timeseries_block`` consecutive scans for time series)."""
    tested = controls.folds >= 0
    blocks = resampling_blocks(study, data)
    test = paired_sign_flip_test(data.Y, joint_pred, controls.predictions.reshape(len(data.Y), -1),
                                 controls.baseline.reshape(len(data.Y), -1), blocks,
                                 study.statistics.permutations, seed=study.statistics.seed, tested=tested)
    frame = _base(unit, data.neuroids, layers)
    frame["metric"], frame["value"] = "p_unique", test.p
    return frame


def interval_rows(study: Study, data: Inputs, result, unit: Unit, layers: list[str]) -> pd.DataFrame:
    """Per-target bootstrap CIs of r and R² over the split unit's groups (blocks of scans for time series)."""
    from lmbrain.analysis.stats import bootstrap_scores

    tested = result.folds >= 0
    blocks = resampling_blocks(study, data)
    n = len(data.Y)
    ci = bootstrap_scores(data.Y[tested], result.predictions.reshape(n, -1)[tested],
                          result.baseline.reshape(n, -1)[tested], blocks[tested],
                          n_boot=study.statistics.bootstrap, seed=study.statistics.seed)
    frames = []
    for metric, values in (("r_ci_low", ci.r_low), ("r_ci_high", ci.r_high), ("r2_ci_low", ci.r2_low),
                           ("r2_ci_high", ci.r2_high)):
        frame = _base(unit, data.neuroids, layers)
        frame["metric"], frame["value"] = metric, values
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def compute_ceiling(study: Study, unit: Unit, entry: DatasetEntry) -> tuple[pd.DataFrame, dict]:
    """Brain-Score-style pool ceiling of every subject's targets, with the models' CV and regression."""
    dataset = cached_dataset(entry)
    per_subject = [subject_targets(dataset, s, study) for s in dataset.subjects]
    common = functools.reduce(np.intersect1d, [rows for rows, _, _ in per_subject])
    responses = [Y[np.searchsorted(rows, common)] for rows, Y, _ in per_subject]
    cv = make_cv("grouped", study.cv.n_splits, study.cv.seed, dataset.is_timeseries, study.timeseries.gap)
    ridge = make_estimator(study, dataset, "grouped")
    ceiling = pool_ceiling(responses, ridge, cv_groups(dataset)[common], cv, n_draws=3,
                           max_sources=CEILING_MAX_SOURCES, random_state=study.statistics.seed)
    frames = []
    for (_, _, neuroids), values in zip(per_subject, ceiling.ceiling, strict=True):
        frame = _base(unit, neuroids, "")
        frame["metric"], frame["value"] = "r", np.asarray(values, dtype=np.float64)
        frames.append(frame)
    record = {"n_samples": len(common), "pool_sizes": ceiling.pool_sizes.tolist()}
    return pd.concat(frames, ignore_index=True), record


def _base(unit: Unit, neuroids: pd.DataFrame, layer: str | list[str]) -> pd.DataFrame:
    """The identifying columns of a unit's rows, one row per target (its own subject)."""
    base = pd.DataFrame({
        "dataset": unit.dataset,
        "subject": neuroids["subject"].astype(str).to_numpy(),
        "model": unit.model_label,
        "feature_set": unit.feature_set,
        "scheme": unit.scheme,
        "per_layer": unit.per_layer,
        "layer": layer,
        "neuroid_id": neuroids["neuroid_id"].astype(str).to_numpy(),
    })
    if "roi" in neuroids.columns:
        base["roi"] = neuroids["roi"].astype(str).to_numpy()
    return base


def _tidy(unit: Unit, neuroids: pd.DataFrame, result, layer: str | list[str]) -> pd.DataFrame:
    """One row per target x metric (r, r2) for a unit; ``result`` has ``r`` and ``r2`` or is (r, r2)."""
    r, r2 = (result.r, result.r2) if hasattr(result, "r") else result
    frames = []
    for metric, values in (("r", r), ("r2", r2)):
        frame = _base(unit, neuroids, layer)
        frame["metric"], frame["value"] = metric, np.asarray(values, dtype=np.float64)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
