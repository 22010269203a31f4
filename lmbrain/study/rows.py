"""A unit's tidy rows (one per target x metric, :mod:`lmbrain.results`) and the statistics attached to them:
permutation p-values, bootstrap intervals, the unique-variance test and the partition's intervals."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmbrain.analysis.permutation import (
    circular_shifts,
    contiguous_blocks,
    group_permutations,
    paired_sign_flip_test,
    permutation_test,
    prediction_permutation_test,
)
from lmbrain.results import (
    NULL_R_MEAN,
    OMEGA_CI_HIGH,
    OMEGA_CI_LOW,
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
)
from lmbrain.study.inputs import Targets
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
    """What sign flips and bootstrap resamples move whole: the split unit's groups for event data,
    ``statistics.timeseries_block`` consecutive scans (within runs) for time series."""
    if data.dataset.is_timeseries:
        return contiguous_blocks(len(data.Y), study.statistics.timeseries_block, runs=data.groups)
    return data.dataset.groups()[data.rows]


def permutation_rows(study: Study, unit: Unit, data: Targets, per_fold: list[np.ndarray], result,
                     cols: np.ndarray, layer: str, standardize: bool | np.ndarray = True) -> pd.DataFrame:
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
        test = permutation_test(per_fold, Y, splits, result.alphas[:, cols], orders, standardize=standardize)
    neuroids = data.neuroids.iloc[cols].reset_index(drop=True)
    return metric_rows(unit, neuroids, layer, {P_R: test.p_r, P_R2: test.p_r2, NULL_R_MEAN: test.null_r_mean})


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


def unique_variance_rows(study: Study, unit: Unit, data: Targets, joint_pred: np.ndarray, controls,
                         layers: list[str]) -> pd.DataFrame:
    """p-value per target that the joint model beats the controls alone (unique LLM R² > 0): block sign
    flips of the paired squared-error differences of their out-of-fold predictions."""
    tested = controls.folds >= 0
    n = len(data.Y)
    test = paired_sign_flip_test(data.Y, joint_pred, controls.predictions.reshape(n, -1),
                                 controls.baseline.reshape(n, -1), resampling_blocks(study, data),
                                 study.statistics.permutations, seed=study.statistics.seed, tested=tested)
    return metric_rows(unit, data.neuroids, layers, {P_UNIQUE: test.p})


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
