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

import numpy as np
import pandas as pd

from lmbrain.analysis.sensitivity import NothingToImplantError
from lmbrain.encoding import RidgeCV, cross_validate_each, cross_validate_select, pool_ceiling
from lmbrain.encoding.joint import DEFAULT_JOINT, DEFAULT_JOINT_TIMESERIES, make_joint_estimator
from lmbrain.study.inputs import StudyInputs, Targets, cv_groups, make_cv, study_inputs, subject_targets
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

def alpha_choice(study: Study, timeseries: bool) -> str:
    """How the LLM-alone ridge's penalty is read off its inner-CV scores (``estimator.alpha_choice``; auto: for time
    series one penalty per subject by the one-standard-error rule on the mean curve of its targets, for event data
    each target's best mean)."""
    choice = study.estimator.alpha_choice
    return ("shared_one_se" if timeseries else "best") if choice == "auto" else choice


def make_ridge(study: Study, timeseries: bool, scheme: str, standardize: bool | np.ndarray = True,
               llm: bool = False) -> RidgeCV:
    """The ridge of single feature spaces; its inner CV follows the outer scheme (grouped or shuffled);
    ``estimator.alpha_choice`` applies to the LLM's ridges (``llm``), controls keep the best inner-CV mean."""
    inner = make_cv(scheme, study.cv.inner_splits, study.cv.seed, timeseries, study.timeseries.gap)
    return RidgeCV(alphas=np.asarray(study.estimator.alphas, dtype=float), cv=inner, standardize=standardize,
                   alpha_choice=alpha_choice(study, timeseries) if llm else "best")


def joint_kind(study: Study, timeseries: bool) -> str:
    """The joint estimator of a dataset (``estimator.joint``; auto: :data:`DEFAULT_JOINT` for event data,
    :data:`DEFAULT_JOINT_TIMESERIES` for time series)."""
    kind = study.estimator.joint
    if kind != "auto":
        return kind
    return DEFAULT_JOINT_TIMESERIES if timeseries else DEFAULT_JOINT


def joint_description(study: Study, timeseries: bool) -> str:
    """The joint model of a dataset in words, for the report (its kind, and how its LLM band's penalty is chosen)."""
    kind, choice = joint_kind(study, timeseries), alpha_choice(study, timeseries)
    how = {"shared_one_se": "one LLM penalty per subject, one-SE rule", "one_se": "LLM penalties by the one-SE rule"}
    return f"joint model {kind}" + (f" ({how[choice]})" if choice in how and kind != "hierarchical_pooled" else "")


def make_joint(study: Study, timeseries: bool, scheme: str, dims: tuple[int, int], standardize: np.ndarray):
    """The joint LLM + controls estimator of the study (:func:`joint_kind`), bands [LLM | controls]. The LLM band
    takes :func:`alpha_choice` (``shared_one_se`` within the subjects the caller sets: :func:`pool_labels`)."""
    inner = make_cv(scheme, study.cv.inner_splits, study.cv.seed, timeseries, study.timeseries.gap)
    slices = [slice(0, dims[0]), slice(dims[0], dims[0] + dims[1])]
    return make_joint_estimator(joint_kind(study, timeseries), slices, np.asarray(study.estimator.alphas, dtype=float),
                                inner, standardize=standardize, random_state=study.cv.seed,
                                alpha_choice=alpha_choice(study, timeseries))


def pool_labels(joint, subjects: np.ndarray) -> np.ndarray | None:
    """Who shares a penalty in a joint fit: each subject on its own when the LLM band's penalty is shared
    (``alpha_choice="shared_one_se"``), else None (the estimator's own rule over the fit's targets)."""
    return np.asarray(subjects) if joint.get_params().get("alpha_choice") == "shared_one_se" else None


def compute_unit(study: Study, unit: Unit) -> tuple[pd.DataFrame, dict]:
    """Fit and score one unit; returns its tidy rows and a record of the in-fold choices (and, under
    ``stage_seconds``, where its time went)."""
    with unit_stages() as seconds:
        table, record = KIND_FUNCTIONS[unit.kind](study, unit)
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


def compute_controls(study: Study, unit: Unit) -> tuple[pd.DataFrame, dict]:
    """A control set alone (its parts side by side; OASM's σ chosen inside each training fold)."""
    inputs = study_inputs(study)
    data = inputs.targets(unit.dataset, unit.subject, unit.scheme)
    controls = inputs.controls(unit.dataset, unit.features, unit.subject)
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
        frames += _increments(study, unit, data, result, layers)
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


def _increments(study: Study, unit: Unit, data: Targets, result, layers: list[str]) -> list[pd.DataFrame]:
    """Per-target tests of the unit's control set against each smaller set it contains (same samples, same folds)."""
    inputs = study_inputs(study)
    frames = []
    for smaller in nested_smaller(study, unit):
        controls = inputs.controls(unit.dataset, smaller, unit.subject)
        ridge = make_ridge(study, data.dataset.is_timeseries, unit.scheme, controls.standardize)
        with stage("controls"):
            alone = cross_validate_select(controls.rows(data.rows), data.Y, data.groups, data.cv, ridge,
                                          target_groups=data.subjects)
        with stage("nulls"):
            frames.append(increment_rows(study, unit, data, result, alone, smaller.label, layers))
    return frames


#: how many layer selections a process keeps (on its :class:`StudyInputs`, ``selections``)
SELECTIONS_KEPT = 2


def layer_selection(study: Study, unit: Unit) -> tuple[Targets, dict[str, np.ndarray], object]:
    """The LLM layer chosen inside each training fold for every subject of the unit's LLM-alone unit
    (``cross_validate_select`` with every layer's inner-CV scores kept): (targets, candidates, result).

    Memoised on the study's inputs (``inputs.selections``): the LLM-alone, joint and per-layer units of one
    (dataset, subjects, model, scheme) run one after the other and share it; a unit's result is the same whether
    or not it was already computed (the same computation either way), so resumed and parallel runs agree.
    """
    inputs = study_inputs(study)
    llm_unit = llm_unit_of(inputs, unit)
    key = llm_unit.key
    if key not in inputs.selections:
        data = inputs.targets(llm_unit.dataset, llm_unit.subject, llm_unit.scheme)
        with stage("features"):
            layers = inputs.layer_candidates(llm_unit.dataset, llm_unit.model, llm_unit.untrained_seed)
        candidates = {k: X[data.rows] for k, X in layers.items()}
        ridge = make_ridge(study, data.dataset.is_timeseries, unit.scheme, llm=True)
        with stage("selection"):
            result = cross_validate_select(candidates, data.Y, data.groups, data.cv, ridge,
                                           target_groups=data.subjects, keep_cv_scores=True)
        inputs.selections[key] = (data, candidates, result)
        while len(inputs.selections) > SELECTIONS_KEPT:
            inputs.selections.popitem(last=False)
    return inputs.selections[key]


def _record(data: Targets, candidates: dict, chosen: dict, result) -> dict:
    return {"n_samples": len(data.rows), "n_targets": data.Y.shape[1], "candidates": list(candidates),
            "selected": chosen, "inner_scores": {s: result.inner_scores[s] for s in chosen}}


def compute_llm(study: Study, unit: Unit) -> tuple[pd.DataFrame, dict]:
    """The LLM alone, its layer chosen inside each training fold."""
    data, candidates, result = layer_selection(study, unit)
    chosen = _per_subject(result, data.subjects)
    layers = _most_common(chosen, data.subjects)
    frames = [score_rows(unit, data.neuroids, result, layers)]
    if study.statistics.bootstrap:
        with stage("bootstrap"):
            frames.append(interval_rows(study, unit, data, result, layers))
    frames += _permutations(study, unit, data, candidates, result, chosen)
    return pd.concat(frames, ignore_index=True), _record(data, candidates, chosen, result)


def compute_layers(study: Study, unit: Unit) -> tuple[pd.DataFrame, dict]:
    """Every layer scored on its own (descriptive layer curves), refit from the selection's inner-CV scores; with
    bootstrap, per-layer CIs and the best intermediate layer (chosen without its test fold) against the last."""
    data, candidates, result = layer_selection(study, unit)
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


def compute_joint(study: Study, unit: Unit) -> tuple[pd.DataFrame, dict]:
    """The LLM (the layer chosen for it alone in each training fold) jointly with a control set, next to the
    controls alone on the same samples: joint scores, the unique-variance test and the partition's CIs."""
    inputs: StudyInputs = study_inputs(study)
    llm_data, candidates, selection = layer_selection(study, unit)
    data = inputs.targets(unit.dataset, unit.subject, unit.scheme)
    cols = _columns_of(llm_data, data)
    chosen = {s: v for s, v in _per_subject(selection, llm_data.subjects).items() if s in set(data.subjects)}
    controls = inputs.controls(unit.dataset, unit.features, unit.subject)
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


def compute_ceiling(study: Study, unit: Unit) -> tuple[pd.DataFrame, dict]:
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

    dataset = study_inputs(study).dataset(unit.dataset)
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


KIND_FUNCTIONS = {
    "controls": compute_controls,
    "llm": compute_llm,
    "joint": compute_joint,
    "layers": compute_layers,
    "ceiling": compute_ceiling,
}
