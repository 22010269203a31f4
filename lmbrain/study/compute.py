"""Computing one unit: one function per unit kind (controls, LLM, joint, layer curve, ceiling).

Every function returns the unit's tidy rows (:mod:`lmbrain.study.rows`) and a small record of what was
chosen inside the training folds. The subjects of a unit share their samples and features: one
decomposition per fold serves all of them, while the layer (or σ) is still chosen separately for every
subject inside the training folds.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from types import MappingProxyType

import numpy as np
import pandas as pd

from lmbrain.analysis.sensitivity import NothingToImplantError
from lmbrain.encoding import cross_validate_each, cross_validate_select, pool_ceiling
from lmbrain.study.context import StudyContext, Targets, cv_groups, make_cv, subject_targets
from lmbrain.study.estimators import make_joint, make_ridge, pool_labels
from lmbrain.study.plan import CEILING_MAX_SOURCES, Unit, llm_unit_of
from lmbrain.study.rows import (
    increment_rows,
    interval_rows,
    layer_interval_rows,
    layer_shape_rows,
    metric_rows,
    partition_interval_rows,
    permutation_rows,
    resampling_blocks,
    score_rows,
    unique_inflation,
    unique_variance_rows,
)
from lmbrain.study.schema import Study
from lmbrain.study.sensitivity import applies, joint_fits, same_choices, sensitivity_rows
from lmbrain.study.stages import stage, unit_stages

log = logging.getLogger("lmbrain")

def compute_unit(context: StudyContext, unit: Unit) -> tuple[pd.DataFrame, dict]:
    """Fit and score one unit of ``context.study``; returns its tidy rows and a record of the in-fold choices (and,
    under ``stage_seconds``, where its time went)."""
    with unit_stages() as seconds:
        table, record = KIND_FUNCTIONS[unit.kind](context, unit)
    return table, {**record, "stage_seconds": seconds}


def _per_subject(result, subjects: np.ndarray) -> dict[str, list[str]]:
    """Per subject, its per-fold choices (``selected`` of a selection with target groups)."""
    return {str(s): [fold[s] for fold in result.selected] for s in dict.fromkeys(subjects)}


def _most_common(chosen: dict[str, list[str]], subjects: np.ndarray) -> list[str]:
    """Every target's most frequent in-fold choice (its subject's)."""
    common = {s: Counter(v).most_common(1)[0][0] for s, v in chosen.items()}
    return [common[str(s)] for s in subjects]


def _permutations(study: Study, unit: Unit, data: Targets, candidates: dict[str, np.ndarray], result,
                  chosen: dict[str, list[str]], standardize: bool | np.ndarray = True) -> list[pd.DataFrame]:
    """Permutation rows of a single-space unit, one refit null per group of subjects with the same choices."""
    if not study.statistics.permutations:
        return []
    frames = []
    for choices, members in same_choices(chosen).items():
        cols = np.flatnonzero(np.isin(data.subjects, members))
        with stage("nulls"):
            frames.append(permutation_rows(study, unit, data, [candidates[c] for c in choices], result, cols,
                                           Counter(choices).most_common(1)[0][0], standardize))
    return frames


def compute_controls(context: StudyContext, unit: Unit) -> tuple[pd.DataFrame, dict]:
    """A control set alone (its parts side by side; OASM's σ chosen inside each training fold)."""
    study = context.study
    data = context.targets(unit.dataset, unit.subject, unit.scheme)
    controls = context.controls(unit.dataset, unit.features, unit.subject)
    candidates = controls.rows(data.rows)
    ridge = make_ridge(study, data.dataset.is_timeseries, unit.scheme, controls.standardize)
    with stage("controls"):
        result = cross_validate_select(candidates, data.Y, data.groups, data.cv, ridge, target_groups=data.subjects)
    chosen = _per_subject(result, data.subjects)
    layers = _most_common(chosen, data.subjects)
    frames = [score_rows(unit, data.neuroids, result, layers)]
    if study.statistics.bootstrap:
        with stage("bootstrap"):
            frames.append(interval_rows(study, unit, data, result, layers))
    frames += _permutations(study, unit, data, candidates, result, chosen, controls.standardize)
    if study.statistics.permutations:
        frames += _increments(context, unit, data, result, layers)
    record = {"n_samples": len(data.rows), "n_targets": data.Y.shape[1], "candidates": list(candidates),
              "n_features": controls.n_features}
    if len(candidates) > 1:
        record["selected"] = chosen
    return pd.concat(frames, ignore_index=True), record


def nested_smaller(study: Study, unit: Unit) -> list:
    """The dataset's control sets that the unit's (controls-only) set strictly contains."""
    entry = next(e for e in study.datasets if e.name == unit.dataset)
    own = set(unit.features.controls)
    return [fs for fs in entry.control_sets if set(fs.controls) < own]


def _increments(context: StudyContext, unit: Unit, data: Targets, result, layers: list[str]) -> list[pd.DataFrame]:
    """Per-target tests of the unit's control set against each smaller set it contains (same samples, same folds)."""
    study = context.study
    frames = []
    for smaller in nested_smaller(study, unit):
        controls = context.controls(unit.dataset, smaller, unit.subject)
        ridge = make_ridge(study, data.dataset.is_timeseries, unit.scheme, controls.standardize)
        with stage("controls"):
            alone = cross_validate_select(controls.rows(data.rows), data.Y, data.groups, data.cv, ridge,
                                          target_groups=data.subjects)
        with stage("nulls"):
            frames.append(increment_rows(study, unit, data, result, alone, smaller.label, layers))
    return frames


def layer_selection(context: StudyContext, unit: Unit) -> tuple[Targets, dict[str, np.ndarray], object]:
    """The LLM layer chosen inside each training fold for every subject of the unit's LLM-alone unit
    (``cross_validate_select`` with every layer's inner-CV scores kept): (targets, candidates, result).

    Memoised on the context (``context.selections``): the LLM-alone, joint and per-layer units of one
    (dataset, subjects, model, scheme) run one after the other and share it; a unit's result is the same whether
    or not it was already computed (the same computation either way), so resumed and parallel runs agree.
    """
    llm_unit = llm_unit_of(context, unit)
    return context.selections.get(llm_unit.key, lambda: _select_layers(context, llm_unit))


def _select_layers(context: StudyContext, llm_unit: Unit) -> tuple[Targets, dict[str, np.ndarray], object]:
    """:func:`layer_selection` computed (not memoised)."""
    data = context.targets(llm_unit.dataset, llm_unit.subject, llm_unit.scheme)
    with stage("features"):
        layers = context.layer_candidates(llm_unit.dataset, llm_unit.model, llm_unit.untrained_seed)
    candidates = {k: X[data.rows] for k, X in layers.items()}
    ridge = make_ridge(context.study, data.dataset.is_timeseries, llm_unit.scheme, llm=True)
    with stage("selection"):
        result = cross_validate_select(candidates, data.Y, data.groups, data.cv, ridge,
                                       target_groups=data.subjects, keep_cv_scores=True)
    return data, candidates, result


def _record(data: Targets, candidates: dict, chosen: dict, result) -> dict:
    return {"n_samples": len(data.rows), "n_targets": data.Y.shape[1], "candidates": list(candidates),
            "selected": chosen, "inner_scores": {s: result.inner_scores[s] for s in chosen}}


def compute_llm(context: StudyContext, unit: Unit) -> tuple[pd.DataFrame, dict]:
    """The LLM alone, its layer chosen inside each training fold."""
    study = context.study
    data, candidates, result = layer_selection(context, unit)
    chosen = _per_subject(result, data.subjects)
    layers = _most_common(chosen, data.subjects)
    frames = [score_rows(unit, data.neuroids, result, layers)]
    if study.statistics.bootstrap:
        with stage("bootstrap"):
            frames.append(interval_rows(study, unit, data, result, layers))
    frames += _permutations(study, unit, data, candidates, result, chosen)
    return pd.concat(frames, ignore_index=True), _record(data, candidates, chosen, result)


def compute_layers(context: StudyContext, unit: Unit) -> tuple[pd.DataFrame, dict]:
    """Every layer scored on its own (descriptive layer curves), refit from the selection's inner-CV scores; with
    bootstrap, per-layer CIs and the best intermediate layer (chosen without its test fold) against the last."""
    study = context.study
    data, candidates, result = layer_selection(context, unit)
    ridge = make_ridge(study, data.dataset.is_timeseries, unit.scheme, llm=True)
    with stage("layer curves"):
        each = cross_validate_each(candidates, data.Y, data.groups, data.cv, ridge, result.cv_scores_folds)
    frames = [score_rows(unit, data.neuroids, each[name], name) for name in candidates]
    if study.statistics.bootstrap:
        with stage("bootstrap"):
            frames += [layer_interval_rows(study, unit, data, each),
                       *layer_shape_rows(study, unit, data, candidates, each)]
    return pd.concat(frames, ignore_index=True), {"n_samples": len(data.rows), "n_targets": data.Y.shape[1],
                                                  "candidates": list(candidates)}


def _columns_of(llm_data: Targets, data: Targets) -> np.ndarray:
    """Columns of the LLM unit's targets that are this unit's targets (a subset of its subjects)."""
    if not np.array_equal(llm_data.rows, data.rows):
        raise RuntimeError("a joint unit and its LLM unit must fit the same samples")
    index = {(s, n): i for i, (s, n) in enumerate(zip(llm_data.subjects, llm_data.neuroids["neuroid_id"],
                                                      strict=True))}
    return np.array([index[(s, n)] for s, n in zip(data.subjects, data.neuroids["neuroid_id"], strict=True)])


def compute_joint(context: StudyContext, unit: Unit) -> tuple[pd.DataFrame, dict]:
    """The LLM (the layer chosen for it alone in each training fold) jointly with a control set, next to the
    controls alone on the same samples: joint scores, the unique-variance test and the partition's CIs."""
    study = context.study
    llm_data, candidates, selection = layer_selection(context, unit)
    data = context.targets(unit.dataset, unit.subject, unit.scheme)
    cols = _columns_of(llm_data, data)
    chosen = {s: v for s, v in _per_subject(selection, llm_data.subjects).items() if s in set(data.subjects)}
    controls = context.controls(unit.dataset, unit.features, unit.subject)
    ctrl = controls.rows(data.rows)
    timeseries = data.dataset.is_timeseries
    ridge = make_ridge(study, timeseries, unit.scheme, controls.standardize)
    # the controls alone on these targets (σ chosen in-fold for OASM), the joint model's reference
    with stage("controls"):
        alone = cross_validate_select(ctrl, data.Y, data.groups, data.cv, ridge, target_groups=data.subjects)
    ctrl_chosen = _per_subject(alone, data.subjects)
    record = _record(data, candidates, chosen, selection)
    if len(ctrl) > 1:
        record["selected_control"] = ctrl_chosen
    r, r2 = np.full(len(cols), np.nan), np.full(len(cols), np.nan)
    joint_pred = np.full_like(data.Y, np.nan)
    dims = (next(iter(candidates.values())).shape[1], controls.n_features)
    mask = np.concatenate([np.ones(dims[0], dtype=bool), controls.standardize])
    joint = make_joint(study, timeseries, unit.scheme, dims, mask)
    both = {s: [f"{a}|{b}" for a, b in zip(chosen[s], ctrl_chosen[s], strict=True)] for s in chosen}
    inflation = np.ones(len(cols))
    with stage("joint"):  # subjects with the same in-fold choices share a fit
        fits = joint_fits(joint, candidates, ctrl, both, data.groups, data.cv, data.Y, data.subjects,
                          pool_labels(joint, data.subjects))
    for subset, bands, result in fits:
        r[subset], r2[subset] = result.r, result.r2
        joint_pred[:, subset] = result.predictions.reshape(len(data.Y), -1)
        with stage("nulls"):
            kappa = unique_inflation(study, data, data.Y[:, subset], [x for x, _ in bands], [c for _, c in bands],
                                     controls.standardize, result, alone.alphas[:, subset])
        if kappa is not None:
            inflation[subset] = kappa
    layers = _most_common(chosen, data.subjects)
    frames = [score_rows(unit, data.neuroids, (r, r2), layers)]
    llm_pred = selection.predictions.reshape(len(data.Y), -1)[:, cols]
    if study.statistics.bootstrap:
        with stage("bootstrap"):
            frames.append(partition_interval_rows(study, unit, data, llm_pred, alone, joint_pred, layers))
    if study.statistics.permutations:  # is the unique LLM variance above zero? (paired sign flips)
        with stage("nulls"):
            frames.append(unique_variance_rows(study, unit, data, joint_pred, alone, layers, inflation))
    if applies(study, unit):  # what unique contribution could this unit have seen? (known signals implanted)
        with stage("sensitivity"):
            try:
                frames.append(sensitivity_rows(study, unit, data, candidates, layers, ctrl,
                                               _most_common(ctrl_chosen, data.subjects), joint, ridge, both,
                                               r2 - alone.r2, resampling_blocks(study, data),
                                               inflation if study.statistics.permutations else None))
            except NothingToImplantError as error:  # the controls span the LLM features (OASM near-identity)
                log.warning("%s: no sensitivity analysis: %s", unit.describe(), error)
    return pd.concat(frames, ignore_index=True), record


#: pools per subject and pool size (and disjoint pairs per subject) of the ceiling; bootstrap resamples of its SE
CEILING_DRAWS, CEILING_BOOT = 20, 200


def _corresponding(per_subject: list) -> list[np.ndarray] | None:
    """Column order that aligns every subject's targets by ROI, where every subject has the same ROIs once each."""
    rois = [n["roi"].astype(str).to_numpy() if "roi" in n.columns else None for _, _, n in per_subject]
    if any(r is None or len(set(r)) != len(r) for r in rois) or len({frozenset(r) for r in rois}) != 1:
        return None
    order = sorted(rois[0])
    return [np.array([list(r).index(name) for name in order]) for r in rois]


def compute_ceiling(context: StudyContext, unit: Unit) -> tuple[pd.DataFrame, dict]:
    """Noise ceiling of every subject's targets from disjoint pools of other subjects (:func:`pool_ceiling`, the
    models' CV and regression), its interval and pool curves; the inter-subject ceiling where ROIs correspond."""
    from lmbrain.analysis.signflip import contiguous_blocks
    from lmbrain.encoding.pool_ceiling import inter_subject_ceiling
    from lmbrain.results import (
        CEILING_AT_BOUND,
        CEILING_CI_HIGH,
        CEILING_CI_LOW,
        CEILING_COMMON_RHO,
        CEILING_EXTRAPOLATED,
        CEILING_INTER_SUBJECT,
        CEILING_OWN,
        CEILING_RHO,
        R,
        pool_r_metric,
    )

    study = context.study
    dataset = context.dataset(unit.dataset)
    per_subject = [subject_targets(dataset, s, study) for s in dataset.subjects]
    common = functools.reduce(np.intersect1d, [rows for rows, _, _ in per_subject])
    responses = [Y[np.searchsorted(rows, common)] for rows, Y, _ in per_subject]
    groups = cv_groups(dataset)[common]
    cv = make_cv("grouped", study.cv.n_splits, study.cv.seed, dataset.is_timeseries, study.timeseries.gap)
    ridge = make_ridge(study, dataset.is_timeseries, "grouped")
    blocks = (contiguous_blocks(len(common), study.statistics.timeseries_block, runs=groups)
              if dataset.is_timeseries else groups)
    with stage("ceiling"):
        ceiling = pool_ceiling(responses, ridge, groups, cv, n_draws=CEILING_DRAWS, max_sources=CEILING_MAX_SOURCES,
                               random_state=study.statistics.seed, blocks=blocks, n_boot=CEILING_BOOT)
    inter = None
    order = _corresponding(per_subject)
    if order is not None:
        folds = np.full(len(common), -1)
        for k, (_, test) in enumerate(cv.split(np.empty((len(common), 0)), None, groups)):
            folds[test] = k
        aligned, _ = inter_subject_ceiling(np.stack([Y[:, o] for Y, o in zip(responses, order, strict=True)]), folds)
        inter = [np.empty_like(a) for a in aligned]
        for values, a, o in zip(inter, aligned, order, strict=True):
            values[o] = a
    frames = []
    for s, (_, _, neuroids) in enumerate(per_subject):
        metrics = {R: ceiling.ceiling[s], CEILING_CI_LOW: ceiling.ci_low[s], CEILING_CI_HIGH: ceiling.ci_high[s],
                   CEILING_AT_BOUND: ceiling.at_bound[s].astype(float), CEILING_OWN: ceiling.raw[s],
                   CEILING_RHO: ceiling.rho[s], CEILING_EXTRAPOLATED: ceiling.extrapolated[s],
                   CEILING_COMMON_RHO: np.full(len(neuroids), ceiling.theta)}
        if inter is not None:
            metrics[CEILING_INTER_SUBJECT] = inter[s]
        metrics.update({pool_r_metric(k): ceiling.scores[s][i] for i, k in enumerate(ceiling.n_sources)})
        frames.append(metric_rows(unit, neuroids, "", metrics))
    record = {"n_samples": len(common), "n_sources": ceiling.n_sources.tolist(),
              "split_sources": ceiling.split_sources, "pairs_per_subject": ceiling.n_pairs.tolist(),
              "min_pools_per_subject": ceiling.n_pools.min(0).tolist(), "common_rho": ceiling.theta,
              "prior_sd": ceiling.prior_sd}
    return pd.concat(frames, ignore_index=True), record


#: the function that computes each unit kind (read-only)
KIND_FUNCTIONS = MappingProxyType({
    "controls": compute_controls,
    "llm": compute_llm,
    "joint": compute_joint,
    "layers": compute_layers,
    "ceiling": compute_ceiling,
})
