"""The joint unit's sensitivity: the same fits on its responses with known unique LLM signals implanted.

:mod:`lmbrain.analysis.sensitivity` builds the signals; here every implanted copy of the responses (levels ×
replications, side by side as extra columns) goes through the unit's own computation: the controls alone (σ chosen
again in-fold for OASM) and the joint model (penalties and stacking weights chosen again by inner CV), with the LLM
layer held at its in-fold choices for the real responses, then the paired sign-flip test of the unique R² (widened
by the real responses' two-role inflation on time series). Columns are ordered level, replication, target; all
copies are fitted side by side at once, and a joint estimator that shares something between targets (a common or
pooled penalty) is told which columns form one copy (``pool_groups``), so that nothing crosses copies.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
from sklearn.base import clone

from lmbrain.analysis.sensitivity import implant, implant_signals, limit_gains, residualise
from lmbrain.analysis.signflip import paired_sign_flip_test
from lmbrain.encoding import cross_validate, cross_validate_select
from lmbrain.encoding.joint import extended_alphas
from lmbrain.results import SENS_LIMIT, SENS_P, SENS_RECOVERED, SENS_UNIQUE, sensitivity_metric
from lmbrain.study.context import Targets
from lmbrain.study.plan import Unit
from lmbrain.study.schema import Study


def same_choices(chosen: dict[str, list[str]]) -> dict[tuple[str, ...], list[str]]:
    """Subjects grouped by their per-fold choices (those can share one fit)."""
    groups: dict[tuple[str, ...], list[str]] = {}
    for subject, layers in chosen.items():
        groups.setdefault(tuple(layers), []).append(subject)
    return groups


def joint_fits(joint, candidates: dict[str, np.ndarray], ctrl: dict[str, np.ndarray], both: dict[str, list[str]],
               groups: np.ndarray, cv, Y: np.ndarray, subjects: np.ndarray,
               pool: np.ndarray | None = None) -> list[tuple[np.ndarray, list, object]]:
    """The joint model's outer CV per group of subjects with the same in-fold (layer | control) choices ``both``:
    (their columns of ``Y`` (a mask over ``subjects``, one per column), the per-fold bands, the result). ``pool``
    (a label per column) keeps a joint model that shares between targets to columns with the same label."""
    fits = []
    for pairs, members in same_choices(both).items():
        subset = np.isin(subjects, members)
        bands = [(candidates[a], ctrl[b]) for a, b in (p.split("|") for p in pairs)]
        model = joint if pool is None else clone(joint).set_params(pool_groups=pool[subset])
        result = cross_validate(model, [np.hstack(x) for x in bands], Y[:, subset], groups, cv)
        fits.append((subset, bands, result))
    return fits


def applies(study: Study, unit: Unit) -> bool:
    """Whether a joint unit gets a sensitivity analysis: a trained model, grouped CV, levels asked for."""
    return bool(study.statistics.sensitivity) and unit.untrained_seed is None and unit.scheme == "grouped"


def sensitivity_rows(study: Study, unit: Unit, data: Targets, candidates: dict[str, np.ndarray],
                     layers: list[str], ctrl: dict[str, np.ndarray], ctrl_layers: list[str], joint, ridge,
                     both: dict[str, list[str]], unique_real: np.ndarray, blocks: np.ndarray,
                     inflation: np.ndarray | None) -> pd.DataFrame:
    """Per target: the implanted responses' unique R² and p per level and replication, the recovered unique R²
    and the learnable limit's per level (:mod:`lmbrain.analysis.sensitivity`)."""
    from lmbrain.study.rows import metric_rows

    stats = study.statistics
    levels, reps = list(stats.sensitivity), stats.sensitivity_replications
    n_targets = data.Y.shape[1]
    X = candidates[Counter(layers).most_common(1)[0][0]]
    C = ctrl[Counter(ctrl_layers).most_common(1)[0][0]]
    signals = implant_signals(X, C, reps, seed=stats.seed)
    Y = np.hstack([implant(data.Y, signals, u) for u in levels])
    copies = len(levels) * reps
    subjects = np.tile(data.subjects, copies)
    alone = cross_validate_select(ctrl, Y, data.groups, data.cv, ridge, target_groups=subjects)
    r2_joint = np.full(Y.shape[1], np.nan)
    joint_pred = np.full_like(Y, np.nan)
    # all copies go through one fit, side by side (they share its decompositions); an estimator that shares anything
    # between targets (a common or pooled penalty) shares it only within each implanted copy, as if fitted on its own
    pool = np.repeat(np.arange(copies), n_targets) if "pool_groups" in joint.get_params() else None
    if pool is not None and joint.get_params().get("alpha_choice") == "shared_one_se":  # and within each subject
        pool = np.char.add(pool.astype(str), np.char.add("|", subjects.astype(str)))
    for subset, _, result in joint_fits(joint, candidates, ctrl, both, data.groups, data.cv, Y, subjects, pool):
        r2_joint[subset] = result.r2
        joint_pred[:, subset] = result.predictions.reshape(len(Y), -1)
    unique = r2_joint - alone.r2
    level_of = np.repeat(levels, reps * n_targets)
    recovered = unique - (1 - level_of) * np.tile(unique_real, copies)
    tested = alone.folds >= 0
    test = None
    if stats.permutations:
        test = paired_sign_flip_test(Y, joint_pred, alone.predictions.reshape(len(Y), -1),
                                     alone.baseline.reshape(len(Y), -1), blocks, stats.permutations, seed=stats.seed,
                                     tested=tested, folds=alone.folds,
                                     inflation=None if inflation is None else np.tile(inflation, copies))
    limit = _limit(study, data, X, C, Y, levels, reps)
    metrics: dict[str, np.ndarray] = {}
    for i, u in enumerate(levels):
        per_level = slice(i * reps * n_targets, (i + 1) * reps * n_targets)
        for r in range(reps):
            cols = slice(i * reps * n_targets + r * n_targets, i * reps * n_targets + (r + 1) * n_targets)
            metrics[sensitivity_metric(SENS_UNIQUE, u, r)] = unique[cols]
            if stats.permutations:  # without sign flips there is no p to read power from
                metrics[sensitivity_metric(SENS_P, u, r)] = test.p[cols]
        metrics[sensitivity_metric(SENS_RECOVERED, u)] = recovered[per_level].reshape(reps, n_targets).mean(0)
        metrics[sensitivity_metric(SENS_LIMIT, u)] = limit[per_level].reshape(reps, n_targets).mean(0)
    return metric_rows(unit, data.neuroids, layers, metrics)


def _limit(study: Study, data: Targets, X: np.ndarray, C: np.ndarray, Y: np.ndarray, levels: list[float],
           reps: int) -> np.ndarray:
    """The learnable limit's recovered unique R² per implanted column: ridge on the layer residualised on the
    controls, fitted to the responses' residuals on the controls, at the penalty of the extended grid that fits each
    level's implanted responses best on average; minus the same fit's gain on the real responses at their own best
    common penalty, diluted as the recovered value is."""
    n_targets = data.Y.shape[1]
    splits = list(data.cv.split(X, data.Y, data.groups))
    grid = extended_alphas(np.asarray(study.estimator.alphas, dtype=float))
    both = np.hstack([Y, data.Y])
    total = np.zeros(both.shape[1])
    for train, test in splits:  # squared errors of the training-fold means: the R² denominators
        total += ((both[test] - both[train].mean(0)) ** 2).sum(0)
    gains = limit_gains(residualise(X, C), residualise(both, C), splits, grid) / total
    implanted, real = gains[:, : Y.shape[1]], gains[:, Y.shape[1]:]
    real_best = real[np.argmax(real.mean(1))]  # the real responses at their own best common penalty
    level_of = np.repeat(levels, reps * n_targets)
    out = np.empty(Y.shape[1])
    for u in levels:  # each level's implanted responses at theirs
        cols = level_of == u
        best = implanted[np.argmax(implanted[:, cols].mean(1)), cols]
        out[cols] = best - (1 - u) * np.tile(real_best, reps)
    return out
