"""A unit's tidy rows (one per target x metric, :mod:`lmbrain.results`) and the statistics attached to them:
permutation p-values, bootstrap intervals, the unique-variance test and the partition's intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmbrain.analysis.permutation import permutation_test, prediction_permutation_test
from lmbrain.analysis.resamples import block_sign_flips, circular_shifts, group_permutations
from lmbrain.analysis.signflip import (
    INFLATION_RESAMPLES,
    contiguous_blocks,
    gain_inflation,
    paired_sign_flip_test,
    sign_flip_test,
)
from lmbrain.analysis.smoothers import FoldSmoother
from lmbrain.results import (
    INCREMENT,
    NULL_R2_MEAN,
    NULL_R_MEAN,
    OMEGA_CI_HIGH,
    OMEGA_CI_LOW,
    P_INCREMENT,
    P_R,
    P_R2,
    P_UNIQUE,
    R2,
    R2_CI_HIGH,
    R2_CI_LOW,
    R_CI_HIGH,
    R_CI_LOW,
    UNIQUE_CI_HIGH,
    UNIQUE_CI_LOW,
    R,
    increment_metric,
)
from lmbrain.study.context import Targets
from lmbrain.study.plan import Unit
from lmbrain.study.schema import Study


def base_rows(unit: Unit, neuroids: pd.DataFrame, layer: str | list[str]) -> pd.DataFrame:
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


def metric_rows(unit: Unit, neuroids: pd.DataFrame, layer: str | list[str],
                metrics: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row per target x metric."""
    frames = []
    for metric, values in metrics.items():
        frame = base_rows(unit, neuroids, layer)
        frame["metric"], frame["value"] = metric, np.asarray(values, dtype=np.float64)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def score_rows(unit: Unit, neuroids: pd.DataFrame, result, layer: str | list[str]) -> pd.DataFrame:
    """r and R² rows; ``result`` has ``r`` and ``r2`` or is (r, r2)."""
    r, r2 = (result.r, result.r2) if hasattr(result, "r") else result
    return metric_rows(unit, neuroids, layer, {R: r, R2: r2})


def resampling_blocks(study: Study, data: Targets) -> np.ndarray:
    """What sign flips (of responses or of out-of-fold gains) and bootstrap resamples move whole: the split
    unit's groups for event data, ``statistics.timeseries_block`` consecutive scans (within runs) for time
    series."""
    if data.dataset.is_timeseries:
        return contiguous_blocks(len(data.Y), study.statistics.timeseries_block, runs=data.groups)
    return data.dataset.groups()[data.rows]


def permutation_rows(study: Study, unit: Unit, data: Targets, per_fold: list[np.ndarray], result,
                     cols: np.ndarray, layer: str, standardize: bool | np.ndarray = True) -> pd.DataFrame:
    """p-values of r and R² for some targets (``statistics.permutation_method``, docs/statistics.md).

    ``auto``: ``p_r`` against refits on responses sign-flipped by whole groups (event data) or circularly
    shifted (time series); ``p_r2`` (R² > 0) by block sign flips of the gains over the training-fold mean.
    ``refit``: whole groups permuted among groups of the same size (order kept) or circular shifts, refitted;
    ``predictions``: out-of-fold predictions permuted within test folds. ``null_r_mean`` / ``null_r2_mean``: the
    means of the nulls that ``p_r`` / ``p_r2`` are read from.
    """
    Y = data.Y[:, cols]
    n_perm, seed = study.statistics.permutations, study.statistics.seed
    method = study.statistics.permutation_method
    timeseries = data.dataset.is_timeseries
    if method == "predictions":
        tested = result.folds >= 0
        folds = result.folds[tested]
        if timeseries:
            orders = circular_shifts(int(tested.sum()), n_perm, runs=folds, min_shift=10, seed=seed)
        else:
            orders = group_permutations(data.dataset.groups()[data.rows][tested], n_perm, seed=seed, strata=folds)
        test = prediction_permutation_test(Y, result.predictions[:, cols], result.baseline[:, cols], orders,
                                           tested=tested)
    else:
        splits = list(data.cv.split(per_fold[0], Y, data.groups))
        blocks = resampling_blocks(study, data) if method == "auto" else None
        flip_blocks = None
        if timeseries:
            orders = circular_shifts(len(Y), n_perm, runs=data.groups, min_shift=10, seed=seed)
        elif method == "auto":  # flipped whole blocks: the refits sum each training block once
            orders, flip_blocks = block_sign_flips(blocks, n_perm, seed=seed), blocks
        else:
            orders = group_permutations(data.dataset.groups()[data.rows], n_perm, seed=seed)
        test = permutation_test(per_fold, Y, splits, result.alphas[:, cols], orders, standardize=standardize,
                                blocks=blocks, flip_blocks=flip_blocks)
        if method == "auto":  # R² > 0: sign flips of the gains over the training mean, per block, widened by
            # the refits' two-role inflation
            gains = sign_flip_test(Y, result.predictions[:, cols], result.baseline[:, cols], blocks, result.folds,
                                   n_perm, seed=seed, inflation=test.gain_inflation)
            test.p_r2, test.null_r2_mean = gains.p_r2, gains.null_r2_mean
    neuroids = data.neuroids.iloc[cols].reset_index(drop=True)
    return metric_rows(unit, neuroids, layer, {P_R: test.p_r, P_R2: test.p_r2, NULL_R_MEAN: test.null_r_mean,
                                               NULL_R2_MEAN: test.null_r2_mean})


def interval_rows(study: Study, unit: Unit, data: Targets, result, layer: str | list[str]) -> pd.DataFrame:
    """Per-target bootstrap CIs of r and R² over the split unit's groups (blocks of scans for time series)."""
    from lmbrain.analysis.stats import bootstrap_scores

    tested = result.folds >= 0
    blocks = resampling_blocks(study, data)
    n = len(data.Y)
    ci = bootstrap_scores(data.Y[tested], result.predictions.reshape(n, -1)[tested],
                          result.baseline.reshape(n, -1)[tested], blocks[tested], folds=result.folds[tested],
                          n_boot=study.statistics.bootstrap, seed=study.statistics.seed)
    return metric_rows(unit, data.neuroids, layer, {R_CI_LOW: ci.r_low, R_CI_HIGH: ci.r_high,
                                                    R2_CI_LOW: ci.r2_low, R2_CI_HIGH: ci.r2_high})


def unique_inflation(study: Study, data: Targets, Y: np.ndarray, llm: list[np.ndarray], controls: list[np.ndarray],
                     controls_standardize: bool | np.ndarray, joint, controls_alphas: np.ndarray) -> np.ndarray | None:
    """Two-role inflation of the unique-variance test (:func:`lmbrain.analysis.permutation.gain_inflation`): the
    joint model as a linear smoother (:func:`lmbrain.analysis.smoothers.joint_smoother`: per-fold penalties and
    stacking weights fixed; bands ``llm`` and ``controls``, one matrix per fold) and the controls alone refitted on
    the refit null's resamples (at most ``INFLATION_RESAMPLES``). Time series only: with a few blocks per fold their
    plain flips are liberal at the boundary, while on event data (tens of groups per fold) they are calibrated and κ
    would halve their power (docs/statistics.md). None (no widening) for event data, for a ``permutation_method``
    other than ``auto``, without permutations, or where the joint kind has no smoother."""
    from lmbrain.analysis.smoothers import joint_smoother

    stats = study.statistics
    if not data.dataset.is_timeseries or stats.permutation_method != "auto" or not stats.permutations:
        return None
    splits = list(data.cv.split(llm[0], Y, data.groups))
    from lmbrain.study.estimators import joint_kind

    full = joint_smoother(joint_kind(study, data.dataset.is_timeseries), llm, controls, splits, joint,
                          controls_standardize)
    if full is None:
        return None
    n = min(stats.permutations, INFLATION_RESAMPLES)
    resamples = circular_shifts(len(Y), n, runs=data.groups, min_shift=10, seed=stats.seed)  # as p_r draws them
    reduced = FoldSmoother.ridge(controls, splits, np.asarray(controls_alphas).reshape(len(splits), -1),
                                 controls_standardize)
    return gain_inflation(Y, full, reduced, resampling_blocks(study, data), resamples)


def unique_variance_rows(study: Study, unit: Unit, data: Targets, joint_pred: np.ndarray, controls,
                         layers: list[str], inflation: np.ndarray | None = None) -> pd.DataFrame:
    """p-value per target that the joint model beats the controls alone (unique LLM R² > 0): block sign
    flips of the paired squared-error differences of their out-of-fold predictions, widened by the two-role
    ``inflation`` (:func:`unique_inflation`)."""
    tested = controls.folds >= 0
    n = len(data.Y)
    test = paired_sign_flip_test(data.Y, joint_pred, controls.predictions.reshape(n, -1),
                                 controls.baseline.reshape(n, -1), resampling_blocks(study, data),
                                 study.statistics.permutations, seed=study.statistics.seed, tested=tested,
                                 folds=controls.folds, inflation=inflation)
    return metric_rows(unit, data.neuroids, layers, {P_UNIQUE: test.p})


def increment_rows(study: Study, unit: Unit, data: Targets, larger, smaller, smaller_label: str,
                   layers: list[str]) -> pd.DataFrame:
    """Per target, a larger control set against a smaller one it contains, fitted on the same samples and folds:
    the increment R²(larger) − R²(smaller) and the p-value that it is above 0 (the unique-variance test's paired
    block sign flips, without the two-role inflation κ)."""
    tested = smaller.folds >= 0
    n = len(data.Y)
    test = paired_sign_flip_test(data.Y, larger.predictions.reshape(n, -1), smaller.predictions.reshape(n, -1),
                                 smaller.baseline.reshape(n, -1), resampling_blocks(study, data),
                                 study.statistics.permutations, seed=study.statistics.seed, tested=tested,
                                 folds=smaller.folds)
    return metric_rows(unit, data.neuroids, layers, {increment_metric(P_INCREMENT, smaller_label): test.p,
                                                     increment_metric(INCREMENT, smaller_label):
                                                     np.asarray(larger.r2) - np.asarray(smaller.r2)})


def partition_interval_rows(study: Study, unit: Unit, data: Targets, llm_pred: np.ndarray, controls,
                            joint_pred: np.ndarray, layers: list[str]) -> pd.DataFrame:
    """Per-target bootstrap CIs (over the split unit's groups, the same resamples for the three models) of
    the unique LLM R² and of omega."""
    from lmbrain.analysis.stats import bootstrap_partition

    tested = controls.folds >= 0
    n = len(data.Y)
    ci = bootstrap_partition(data.Y[tested], llm_pred[tested], controls.predictions.reshape(n, -1)[tested],
                             joint_pred[tested], controls.baseline.reshape(n, -1)[tested],
                             resampling_blocks(study, data)[tested], controls.folds[tested],
                             n_boot=study.statistics.bootstrap, seed=study.statistics.seed)
    return metric_rows(unit, data.neuroids, layers, {UNIQUE_CI_LOW: ci.unique_low, UNIQUE_CI_HIGH: ci.unique_high,
                                                     OMEGA_CI_LOW: ci.omega_low, OMEGA_CI_HIGH: ci.omega_high})


def layer_interval_rows(study: Study, unit: Unit, data: Targets, each: dict) -> pd.DataFrame:
    """:func:`interval_rows` of every layer (the same resamples for all), in one bootstrap over the layers' columns."""
    import dataclasses
    from types import SimpleNamespace

    n, names = len(data.Y), list(each)
    stacked = SimpleNamespace(predictions=np.hstack([each[k].predictions.reshape(n, -1) for k in names]),
                              baseline=np.hstack([each[k].baseline.reshape(n, -1) for k in names]),
                              folds=each[names[0]].folds)
    tiled = dataclasses.replace(data, Y=np.tile(data.Y, len(names)),
                                neuroids=pd.concat([data.neuroids] * len(names), ignore_index=True))
    return interval_rows(study, unit, tiled, stacked, list(np.repeat(names, data.Y.shape[1])))


def _choice_scores(study: Study, unit: Unit, data: Targets, candidates: dict[str, np.ndarray], layers: list[str],
                   folds: np.ndarray) -> np.ndarray:
    """(n_folds, n_layers, n_subjects) scores that choose fold k's layer on its :func:`choice_folds` alone: the
    mean over a subject's targets of the best-alpha R² of a 2-fold grouped CV (contiguous halves with the study's
    gap for time series, whose rows within the gap of fold k are left out)."""
    from lmbrain.analysis.layers import choice_folds
    from lmbrain.encoding import RidgeCV
    from lmbrain.study.context import make_cv

    timeseries = data.dataset.is_timeseries
    gap = study.timeseries.gap
    ridge = RidgeCV(alphas=np.asarray(study.estimator.alphas, dtype=float),
                    cv=make_cv(unit.scheme, 2, study.cv.seed, timeseries, gap))
    subjects = np.asarray(data.subjects).astype(str)
    labels = list(dict.fromkeys(subjects.tolist()))
    n_folds = int(folds.max()) + 1
    scores = np.full((n_folds, len(layers), len(labels)), np.nan)
    position = np.arange(len(folds))
    for k, others in enumerate(choice_folds(n_folds)):
        rows = np.flatnonzero(np.isin(folds, others))
        if timeseries:  # no scan within the gap of fold k's test scans (same run) informs its choice
            test = np.flatnonzero(folds == k)
            near = np.abs(position[rows][:, None] - test[None, :]) <= gap
            rows = rows[~(near & (data.groups[rows][:, None] == data.groups[test][None, :])).any(1)]
        if len(np.unique(data.groups[rows])) < 2 and not timeseries:
            continue
        for j, name in enumerate(layers):
            best = ridge.inner_cv_scores(candidates[name][rows], data.Y[rows], data.groups[rows]).max(0)
            scores[k, j] = [np.nanmean(best[subjects == s]) for s in labels]
    return scores


def layer_shape_rows(study: Study, unit: Unit, data: Targets, candidates: dict[str, np.ndarray],
                     each: dict) -> list[pd.DataFrame]:
    """Best intermediate layer vs the last, per target (no rows with fewer than 3 layers or 3 folds): R² of the
    layers chosen per test fold (:mod:`lmbrain.analysis.layers`), the difference with a paired bootstrap CI over
    the split unit's groups, a one-sided block sign-flip p; layer column: the subject's most frequent choice."""
    from collections import Counter

    from lmbrain.analysis.layers import best_in_fold, fold_choice_predictions, intermediate_layers, r2_contrast
    from lmbrain.encoding.metrics import r2_oos
    from lmbrain.results import LAYER_DIFF, LAYER_DIFF_CI_HIGH, LAYER_DIFF_CI_LOW, P_BEST_VS_LAST, R2_BEST_INTERMEDIATE

    middle, last = intermediate_layers(list(each))
    folds = each[last].folds if last else np.zeros(0, dtype=int)
    if not middle or folds.max() < 2:
        return []
    subjects = np.asarray(data.subjects).astype(str)
    labels = list(dict.fromkeys(subjects.tolist()))
    target_group = np.array([labels.index(s) for s in subjects])
    choices = best_in_fold(_choice_scores(study, unit, data, candidates, middle, folds), middle, middle)
    n = len(data.Y)
    tested = folds >= 0
    best = fold_choice_predictions({k: v.predictions.reshape(n, -1) for k, v in each.items()}, folds, choices,
                                   target_group)
    baseline = each[last].baseline.reshape(n, -1)
    test = r2_contrast(data.Y, best, each[last].predictions.reshape(n, -1), baseline, resampling_blocks(study, data),
                       folds=folds, n_boot=study.statistics.bootstrap, seed=study.statistics.seed)
    modal = [Counter(choices[:, g].tolist()).most_common(1)[0][0] for g in range(len(labels))]
    metrics = {R2_BEST_INTERMEDIATE: r2_oos(data.Y[tested], best[tested], baseline[tested]),
               LAYER_DIFF: test.difference, LAYER_DIFF_CI_LOW: test.low, LAYER_DIFF_CI_HIGH: test.high,
               P_BEST_VS_LAST: test.p}
    return [metric_rows(unit, data.neuroids, [modal[g] for g in target_group], metrics)]
