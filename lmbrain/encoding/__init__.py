"""Encoding engine: per-target ridge, banded ridge, leakage-proof CV, noise ceilings, time series.

Modules: ``splits`` (CV splitters), ``metrics`` (r, out-of-sample R²), ``ridge`` (backend-agnostic
solvers), ``estimators`` (RidgeCV, BandedRidgeCV, OLS), ``joint`` (joint LLM + controls estimators for
variance partitioning), ``evaluate`` (cross_validate,
cross_validate_select), ``ceiling`` (split-half and subject-pool ceilings), ``timeseries`` (Lanczos,
FIR delays, HRF, trimming), ``backend`` (numpy / torch).
"""

from lmbrain.encoding.ceiling import (
    PoolCeiling,
    SplitHalfCeiling,
    fit_saturation,
    normalize_scores,
    pool_ceiling,
    spearman_brown,
    split_half_ceiling,
)
from lmbrain.encoding.estimators import DEFAULT_ALPHAS, OLS, BandedRidgeCV, RidgeCV
from lmbrain.encoding.evaluate import EncodingResult, cross_validate, cross_validate_each, cross_validate_select
from lmbrain.encoding.joint import (
    DEFAULT_JOINT,
    JOINT_KINDS,
    ConditionalBandedRidge,
    HierarchicalRidgeCV,
    SingleAlphaBandedRidge,
    StackedRidgeCV,
    make_joint_estimator,
)
from lmbrain.encoding.metrics import pearson_r, r2_oos
from lmbrain.encoding.ridge import (
    check_standardize,
    ridge_cv_predictions,
    ridge_cv_scores,
    ridge_fit,
    select_alphas,
    solve_ridge_cv,
)
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

__all__ = [
    "DEFAULT_ALPHAS",
    "DEFAULT_JOINT",
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
