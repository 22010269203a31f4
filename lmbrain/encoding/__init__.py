"""Encoding engine: per-target ridge, banded ridge, leakage-proof CV, noise ceilings, time series.

Modules: ``splits`` (CV splitters), ``metrics`` (r, out-of-sample R²), ``ridge`` (backend-agnostic
solvers), ``estimators`` (RidgeCV, BandedRidgeCV, OLS), ``joint`` (joint LLM + controls estimators for
variance partitioning), ``evaluate`` (cross_validate,
cross_validate_select), ``ceiling`` (split-half and subject-pool ceilings), ``timeseries`` (Lanczos,
FIR delays, HRF, trimming), ``backend`` (numpy / torch).

The public names are imported on first use, so that importing one submodule loads only what it needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lmbrain._lazy import lazy_exports

if TYPE_CHECKING:
    from lmbrain.encoding.ceiling import (
        SplitHalfCeiling,
        fit_saturation,
        normalize_scores,
        spearman_brown,
        split_half_ceiling,
    )
    from lmbrain.encoding.estimators import DEFAULT_ALPHAS, OLS, BandedRidgeCV, RidgeCV
    from lmbrain.encoding.evaluate import EncodingResult, cross_validate, cross_validate_each, cross_validate_select
    from lmbrain.encoding.inner_cv import ridge_cv_predictions, ridge_cv_scores, select_alphas, solve_ridge_cv
    from lmbrain.encoding.joint import (
        DEFAULT_JOINT,
        DEFAULT_JOINT_TIMESERIES,
        JOINT_KINDS,
        ConditionalBandedRidge,
        HierarchicalRidgeCV,
        SingleAlphaBandedRidge,
        StackedRidgeCV,
        make_joint_estimator,
    )
    from lmbrain.encoding.metrics import pearson_r, r2_oos
    from lmbrain.encoding.pool_ceiling import PoolCeiling, pool_ceiling
    from lmbrain.encoding.ridge import check_standardize, ridge_fit
    from lmbrain.encoding.splits import (
        ContiguousBlockSplit,
        GroupedKFold,
        LeaveOneGroupOut,
        ShuffledSplit,
        SplitError,
        check_splits,
    )
    from lmbrain.encoding.timeseries import (
        hrf,
        hrf_convolve,
        lanczos_resample,
        make_delays,
        mean_within_scans,
        sum_within_scans,
        trim,
        trim_mask,
    )

_EXPORTS = {
    "DEFAULT_ALPHAS": "lmbrain.encoding.estimators",
    "DEFAULT_JOINT": "lmbrain.encoding.joint",
    "DEFAULT_JOINT_TIMESERIES": "lmbrain.encoding.joint",
    "JOINT_KINDS": "lmbrain.encoding.joint",
    "OLS": "lmbrain.encoding.estimators",
    "BandedRidgeCV": "lmbrain.encoding.estimators",
    "ConditionalBandedRidge": "lmbrain.encoding.joint",
    "ContiguousBlockSplit": "lmbrain.encoding.splits",
    "EncodingResult": "lmbrain.encoding.evaluate",
    "GroupedKFold": "lmbrain.encoding.splits",
    "HierarchicalRidgeCV": "lmbrain.encoding.joint",
    "LeaveOneGroupOut": "lmbrain.encoding.splits",
    "PoolCeiling": "lmbrain.encoding.pool_ceiling",
    "RidgeCV": "lmbrain.encoding.estimators",
    "ShuffledSplit": "lmbrain.encoding.splits",
    "SingleAlphaBandedRidge": "lmbrain.encoding.joint",
    "SplitError": "lmbrain.encoding.splits",
    "SplitHalfCeiling": "lmbrain.encoding.ceiling",
    "StackedRidgeCV": "lmbrain.encoding.joint",
    "check_splits": "lmbrain.encoding.splits",
    "check_standardize": "lmbrain.encoding.ridge",
    "cross_validate": "lmbrain.encoding.evaluate",
    "cross_validate_each": "lmbrain.encoding.evaluate",
    "cross_validate_select": "lmbrain.encoding.evaluate",
    "fit_saturation": "lmbrain.encoding.ceiling",
    "hrf": "lmbrain.encoding.timeseries",
    "hrf_convolve": "lmbrain.encoding.timeseries",
    "lanczos_resample": "lmbrain.encoding.timeseries",
    "make_delays": "lmbrain.encoding.timeseries",
    "make_joint_estimator": "lmbrain.encoding.joint",
    "mean_within_scans": "lmbrain.encoding.timeseries",
    "normalize_scores": "lmbrain.encoding.ceiling",
    "pearson_r": "lmbrain.encoding.metrics",
    "pool_ceiling": "lmbrain.encoding.pool_ceiling",
    "r2_oos": "lmbrain.encoding.metrics",
    "ridge_cv_predictions": "lmbrain.encoding.inner_cv",
    "ridge_cv_scores": "lmbrain.encoding.inner_cv",
    "ridge_fit": "lmbrain.encoding.ridge",
    "select_alphas": "lmbrain.encoding.inner_cv",
    "solve_ridge_cv": "lmbrain.encoding.inner_cv",
    "spearman_brown": "lmbrain.encoding.ceiling",
    "split_half_ceiling": "lmbrain.encoding.ceiling",
    "sum_within_scans": "lmbrain.encoding.timeseries",
    "trim": "lmbrain.encoding.timeseries",
    "trim_mask": "lmbrain.encoding.timeseries",
}

__all__ = [
    "DEFAULT_ALPHAS",
    "DEFAULT_JOINT",
    "DEFAULT_JOINT_TIMESERIES",
    "JOINT_KINDS",
    "OLS",
    "BandedRidgeCV",
    "ConditionalBandedRidge",
    "ContiguousBlockSplit",
    "EncodingResult",
    "GroupedKFold",
    "HierarchicalRidgeCV",
    "LeaveOneGroupOut",
    "PoolCeiling",
    "RidgeCV",
    "ShuffledSplit",
    "SingleAlphaBandedRidge",
    "SplitError",
    "SplitHalfCeiling",
    "StackedRidgeCV",
    "check_splits",
    "check_standardize",
    "cross_validate",
    "cross_validate_each",
    "cross_validate_select",
    "fit_saturation",
    "hrf",
    "hrf_convolve",
    "lanczos_resample",
    "make_delays",
    "make_joint_estimator",
    "mean_within_scans",
    "normalize_scores",
    "pearson_r",
    "pool_ceiling",
    "r2_oos",
    "ridge_cv_predictions",
    "ridge_cv_scores",
    "ridge_fit",
    "select_alphas",
    "solve_ridge_cv",
    "spearman_brown",
    "split_half_ceiling",
    "sum_within_scans",
    "trim",
    "trim_mask",
]


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
