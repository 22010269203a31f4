"""Joint encoding models of an LLM band next to control features, for variance partitioning.

A control analysis compares R²(joint) with R²(controls): unique LLM R² = R²(joint) − R²(controls). A
joint estimator that loses to its own parts biases that difference downward. The estimators here share
one contract: ``feature_slices`` lists the bands' columns (band 0 = LLM, band 1 = controls; more bands
where natural), ``fit(X, Y, groups)`` chooses every hyperparameter by inner (grouped) CV on the training
data only, ``standardize`` is a bool or a per-feature boolean mask (False = centre only: one-hot,
indicator, OASM columns), and every fitted model is linear (``coef_`` (n_features, n_targets),
``intercept_``), so ``predict`` is ``X @ coef_ + intercept_``.

* ``"banded"`` -- :class:`BandedRidgeCV` over 9 band-weight ratios 1e-3..1e3 × the alphas, per target.
* ``"banded_single"`` / ``"banded_single_scaled"`` -- :class:`SingleAlphaBandedRidge`: banded ridge with
  each band's penalty taken from its own single-space :class:`RidgeCV` (optionally × one common scale
  chosen by inner CV).
* ``"banded_conditional"`` -- :class:`ConditionalBandedRidge`: the controls' penalty from their own
  RidgeCV, the LLM's searched per target by inner CV of the joint model (grid extended so it can vanish).
* ``"stacked_simplex"`` / ``"stacked_nnls"`` -- :class:`StackedRidgeCV` (Lin et al., NeuroImage 2024):
  non-negative per-target weights (summing to 1, or free) of the bands' inner-CV out-of-fold predictions.
* ``"hierarchical"`` / ``"hierarchical_1se"`` / ``"hierarchical_orth"`` -- :class:`HierarchicalRidgeCV`:
  controls first, then the LLM on their residuals (its alpha grid extended so that it can vanish); "1se"
  chooses the LLM's penalty by the one-standard-error rule; "orth" also residualises the LLM features on the
  controls; "shared" shares one residual-stage penalty among a fit's targets, "alone" takes the LLM-alone
  penalty and "pooled" (the default) reads each target's penalty off its inner-CV curve pooled with the curves of
  the targets that want the stage (each kept per target only where inner CV prefers it to vanishing).
* ``"stacked_hierarchical"`` / ``"hierarchical_guarded"`` -- :class:`StackedHierarchicalRidgeCV`: stacking (or a
  per-target choice) over the controls, the LLM and the hierarchy.
* ``"hierarchical_pca"`` -- :class:`HierarchicalPCARidgeCV`: the LLM stage on the band's leading principal
  components, rank chosen by inner CV. ``"stacked_nested"``: stacking with nested out-of-fold predictions.

Each kind is registered in :data:`JOINT` (one factory per name, :mod:`lmbrain.registry`); the estimators live in
``base`` (shared), ``banded``, ``stacked`` and ``hierarchical``. The comparison that chose :data:`DEFAULT_JOINT` is
``benchmarks/compare_joint.py`` (docs/statistics.md, "Joint model: which estimator").
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from lmbrain.encoding.estimators import DEFAULT_ALPHAS, BandedRidgeCV
from lmbrain.encoding.joint.banded import ConditionalBandedRidge, SingleAlphaBandedRidge, fit_penalty_candidates
from lmbrain.encoding.joint.base import DEFAULT_SCALES, EXTRA_DECADES, band_mask, band_weight_grid, extended_alphas
from lmbrain.encoding.joint.hierarchical import (
    POOLED_OWN_WEIGHT,
    RULES,
    HierarchicalPCARidgeCV,
    HierarchicalRidgeCV,
    guarded_choice,
    one_se_choice,
    pooled_choice,
    shared_choice,
)
from lmbrain.encoding.joint.stacked import (
    StackedHierarchicalRidgeCV,
    StackedRidgeCV,
    selection_weights,
    stacking_weights,
)
from lmbrain.errors import LmbrainError
from lmbrain.registry import Registry

#: A joint kind's factory: (the common parameters: feature_slices, alphas, cv, standardize, backend; random_state;
#: cv_method) -> an unfitted estimator.
JointFactory = Callable[[dict, int, str], Any]
#: The joint estimators by name.
JOINT: Registry[JointFactory] = Registry("joint estimator")


@JOINT.register("banded")
def _banded(common: dict, random_state: int, cv_method: str) -> Any:
    return BandedRidgeCV(n_iter=band_weight_grid(len(common["feature_slices"])), random_state=random_state, **common)


@JOINT.register("banded_single")
def _banded_single(common: dict, random_state: int, cv_method: str) -> Any:
    return SingleAlphaBandedRidge(**common)


@JOINT.register("banded_single_scaled")
def _banded_single_scaled(common: dict, random_state: int, cv_method: str) -> Any:
    return SingleAlphaBandedRidge(scales=DEFAULT_SCALES, **common)


@JOINT.register("banded_conditional")
def _banded_conditional(common: dict, random_state: int, cv_method: str) -> Any:
    return ConditionalBandedRidge(**common)


def _stacked(constraint: str, nested: bool = False) -> JointFactory:
    return lambda common, random_state, cv_method: StackedRidgeCV(constraint=constraint, cv_method=cv_method,
                                                                  nested=nested, **common)


def _hierarchical(rule: str, residualize: bool = False) -> JointFactory:
    return lambda common, random_state, cv_method: HierarchicalRidgeCV(residualize=residualize, cv_method=cv_method,
                                                                       rule=rule, **common)


def _stacked_hierarchical(constraint: str) -> JointFactory:
    return lambda common, random_state, cv_method: StackedHierarchicalRidgeCV(constraint=constraint,
                                                                              cv_method=cv_method, **common)


JOINT.add("stacked_simplex", _stacked("simplex"))
JOINT.add("stacked_nnls", _stacked("nonneg"))
JOINT.add("hierarchical", _hierarchical("best"))
JOINT.add("hierarchical_1se", _hierarchical("1se"))
JOINT.add("hierarchical_orth", _hierarchical("best", residualize=True))
JOINT.add("stacked_hierarchical", _stacked_hierarchical("simplex"))
JOINT.add("hierarchical_guarded", _stacked_hierarchical("select"))
JOINT.add("hierarchical_pca", lambda common, random_state, cv_method: HierarchicalPCARidgeCV(cv_method=cv_method,
                                                                                             **common))
JOINT.add("hierarchical_shared", _hierarchical("shared"))
JOINT.add("stacked_nested", _stacked("simplex", nested=True))
JOINT.add("hierarchical_alone", _hierarchical("alone"))
JOINT.add("hierarchical_pooled", _hierarchical("pooled"))

#: Names accepted by :func:`make_joint_estimator`, in registration order.
JOINT_KINDS: tuple[str, ...] = tuple(name for name, _ in JOINT.items())
#: The joint estimator of control analyses: controls first, then the LLM on their residuals (its penalty grid extended
#: so that it can vanish), each target's residual-stage penalty read off its inner-CV curve pooled with the curves of
#: the targets that want the stage (:func:`pooled_choice`). Of the estimators of ``benchmarks/compare_joint.py`` its
#: unique R² stays unbiased (within ±0.001) where the LLM adds nothing, and it recovers the most of a known unique R²
#: of 0.02 among those that do (80 % of the learnable limit on Fedorenko-like data, 68 % on Brennan-like data;
#: stacking: 63 % / 61 % with a bias of -0.002); docs/statistics.md.
DEFAULT_JOINT = "hierarchical_pooled"
#: The joint estimator of control analyses on time series (``estimator.joint: auto``): stacked regressions with simplex
#: weights, the LLM band's penalty shared by each subject's targets by the one-standard-error rule
#: (``alpha_choice="shared_one_se"``, ``pool_groups`` = subjects). On Brennan-like data it recovers 81 % of the
#: learnable limit at a unique R² of 0.02 (the pooled hierarchy: 67 %) with a bias of +0.0007 without unique signal,
#: and on Brennan2016 it loses 0.001 to its best part at the median (the pooled hierarchy: 0.004); docs/statistics.md.
DEFAULT_JOINT_TIMESERIES = "stacked_simplex"


def make_joint_estimator(
    kind: str,
    feature_slices: Sequence[Any],
    alphas: Sequence[float] | np.ndarray = DEFAULT_ALPHAS,
    cv: Any = 5,
    standardize: bool | np.ndarray = True,
    random_state: int = 0,
    backend: str = "numpy",
    cv_method: str = "leave_out",
    alpha_choice: str = "best",
) -> Any:
    """The joint estimator ``kind`` (one of :data:`JOINT_KINDS`; :data:`DEFAULT_JOINT` is the default);
    ``cv_method`` and ``alpha_choice`` (:class:`RidgeCV`'s) apply to the kinds whose bands are RidgeCVs;
    ``"shared_one_se"`` (one penalty per ``pool_groups`` label) becomes ``"one_se"`` for kinds without ``pool_groups``.

    Parameters
    ----------
    kind : str
        A registered joint kind (``lmbrain.encoding.joint.JOINT_KINDS``).
    feature_slices : sequence of slices
        The bands' columns in the design, ``[LLM, controls]``.
    alphas : array of shape (n_alphas,)
        The ridge penalty grid.
    cv : int or splitter
        The inner CV that chooses penalties (and stacking weights).
    standardize : bool or array of shape (n_features,)
        Which columns are z-scored on the training rows (the others only centred).

    Returns
    -------
    estimator
        A scikit-learn-style estimator: ``fit(X, Y, groups)``, ``predict(X)`` of shape (n_samples, n_targets).
    """
    common = dict(feature_slices=feature_slices, alphas=alphas, cv=cv, standardize=standardize, backend=backend)
    est = JOINT.get(kind)(common, random_state, cv_method)
    if alpha_choice == "shared_one_se" and "pool_groups" not in est.get_params():
        alpha_choice = "one_se"  # a kind that cannot keep a shared penalty within subjects chooses it per target
    if alpha_choice != "best":
        if "alpha_choice" not in est.get_params():
            raise LmbrainError(f"joint estimator {kind!r} chooses its penalties itself; alpha_choice must be 'best'")
        est.set_params(alpha_choice=alpha_choice)
    return est


__all__ = [
    "DEFAULT_JOINT", "DEFAULT_JOINT_TIMESERIES",
    "DEFAULT_SCALES", "EXTRA_DECADES", "JOINT", "JOINT_KINDS", "POOLED_OWN_WEIGHT", "RULES",
    "ConditionalBandedRidge", "HierarchicalPCARidgeCV", "HierarchicalRidgeCV", "SingleAlphaBandedRidge",
    "StackedHierarchicalRidgeCV", "StackedRidgeCV", "band_mask", "band_weight_grid", "extended_alphas",
    "fit_penalty_candidates", "guarded_choice", "make_joint_estimator", "one_se_choice", "pooled_choice",
    "selection_weights", "shared_choice", "stacking_weights",
]
