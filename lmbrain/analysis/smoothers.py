"""Joint models as linear smoothers: their out-of-fold predictions of any responses with the penalties (and stacking
weights) fixed per fold and target, for the unique-variance test's two-role inflation
(:func:`lmbrain.analysis.permutation.gain_inflation`).

:func:`joint_smoother` builds the smoother of a joint estimator kind from its outer-CV result: the stacked kinds
(:class:`lmbrain.analysis.permutation.StackedSmoother`) and the hierarchical kinds (:class:`HierarchicalSmoother`:
controls first, then the LLM on the controls' in-sample training residuals). Other kinds have none (None).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lmbrain.analysis.permutation import cv_predictions, fold_operators

Splits = list[tuple[np.ndarray, np.ndarray]]


@dataclass
class FoldSmoother:
    """Out-of-fold predictions that are linear in the responses: a cross-validated ridge with its penalties
    fixed at the values chosen per fold and target (:func:`fold_operators`)."""

    splits: list[tuple[np.ndarray, np.ndarray]]
    operators: list[dict[float, np.ndarray]]
    alphas: np.ndarray

    @classmethod
    def ridge(cls, X: np.ndarray | Sequence[np.ndarray], splits: Sequence[tuple[np.ndarray, np.ndarray]],
              alphas: np.ndarray, standardize: bool | np.ndarray = True, dtype=np.float64) -> FoldSmoother:
        """The ridge of features ``X`` (or one matrix per fold) with penalties ``alphas`` (n_folds, n_targets)."""
        alphas = np.asarray(alphas, dtype=np.float64)
        splits = list(splits)
        return cls(splits, fold_operators(X, splits, alphas, dtype=dtype, standardize=standardize), alphas)

    def predict(self, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Out-of-fold predictions and training-fold means of responses ``Y``."""
        return cv_predictions(Y, self.splits, self.operators, self.alphas)

    def tile(self, copies: int) -> FoldSmoother:
        """The same smoother for ``copies`` response matrices side by side (columns ``c * n_targets + j``)."""
        return FoldSmoother(self.splits, self.operators, np.tile(self.alphas, (1, copies)))


@dataclass
class StackedSmoother:
    """A stacked joint model with its weights fixed per fold: ``mean + Σ_b z_b (band_b − mean)``
    (:class:`lmbrain.encoding.joint.StackedRidgeCV`, each band a :class:`FoldSmoother`)."""

    bands: list[FoldSmoother]
    weights: np.ndarray  # (n_folds, n_bands, n_targets)

    @property
    def splits(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The outer folds (its bands')."""
        return self.bands[0].splits

    def predict(self, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Out-of-fold predictions and training-fold means of responses ``Y``."""
        parts = [band.predict(Y) for band in self.bands]
        base = parts[0][1]
        pred = base.copy()
        for k, (_, test) in enumerate(self.splits):
            for b, (band_pred, _) in enumerate(parts):
                pred[test] += self.weights[k, b] * (band_pred[test] - base[test])
        return pred, base

    def tile(self, copies: int) -> StackedSmoother:
        """The same smoother for ``copies`` response matrices side by side (columns ``c * n_targets + j``)."""
        return StackedSmoother([band.tile(copies) for band in self.bands], np.tile(self.weights, (1, 1, copies)))


def _apply(smoother: FoldSmoother, fold: int, Ytr: np.ndarray) -> np.ndarray:
    """One fold's operators applied to its training responses, each target at its own penalty."""
    out = np.empty((next(iter(smoother.operators[fold].values())).shape[0], Ytr.shape[1]))
    for alpha, B in smoother.operators[fold].items():
        cols = np.flatnonzero(smoother.alphas[fold] == alpha)
        out[:, cols] = B @ Ytr[:, cols]
    return out


@dataclass
class HierarchicalSmoother:
    """Controls first, then the LLM fitted on the controls' in-sample training residuals: per fold,
    ``B_c y + B_l (y − H_c y)`` with ``H_c`` the controls' fit of the training rows (:class:`HierarchicalRidgeCV`)."""

    controls: FoldSmoother  # test-row operators of the controls
    controls_train: FoldSmoother  # training-row operators of the controls (their in-sample fit)
    llm: FoldSmoother  # test-row operators of the residual stage

    @classmethod
    def ridge(cls, llm: Sequence[np.ndarray], controls: Sequence[np.ndarray], splits: Splits, alphas: np.ndarray,
              controls_standardize: bool | np.ndarray = True) -> HierarchicalSmoother:
        """From per-fold feature matrices and the joint result's ``alphas`` (n_folds, 2, n_targets) [LLM, controls]."""
        splits = list(splits)
        alphas = np.asarray(alphas, dtype=np.float64)
        inside = [(train, train) for train, _ in splits]
        return cls(FoldSmoother.ridge(list(controls), splits, alphas[:, 1], controls_standardize),
                   FoldSmoother.ridge(list(controls), inside, alphas[:, 1], controls_standardize),
                   FoldSmoother.ridge(list(llm), splits, alphas[:, 0]))

    @property
    def splits(self) -> Splits:
        """The outer folds."""
        return self.controls.splits

    def predict(self, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Out-of-fold predictions and training-fold means of responses ``Y``."""
        pred, base = self.controls.predict(Y)
        for k, (train, test) in enumerate(self.splits):
            residual = Y[train] - _apply(self.controls_train, k, Y[train])
            pred[test] += _apply(self.llm, k, residual)
        return pred, base

    def tile(self, copies: int) -> HierarchicalSmoother:
        """The same smoother for ``copies`` response matrices side by side (columns ``c * n_targets + j``)."""
        return HierarchicalSmoother(self.controls.tile(copies), self.controls_train.tile(copies),
                                    self.llm.tile(copies))


STACKED = ("stacked_simplex", "stacked_nnls", "stacked_nested")
HIERARCHICAL = ("hierarchical", "hierarchical_1se", "hierarchical_shared", "hierarchical_alone",
                "hierarchical_pooled")


def joint_smoother(kind: str, llm: Sequence[np.ndarray], controls: Sequence[np.ndarray], splits: Splits, result,
                   controls_standardize: bool | np.ndarray = True) -> StackedSmoother | HierarchicalSmoother | None:
    """The linear smoother of a joint model of ``kind`` fitted by outer CV (``result``: its per-fold ``alphas``
    (n_folds, 2, n_targets) and, when stacked, ``weights``); None for kinds without one."""
    n_folds = len(splits)
    if kind in STACKED and result.weights is not None:
        alphas = np.asarray(result.alphas).reshape(n_folds, 2, -1)
        return StackedSmoother([FoldSmoother.ridge(list(llm), splits, alphas[:, 0]),
                                FoldSmoother.ridge(list(controls), splits, alphas[:, 1], controls_standardize)],
                               result.weights)
    if kind in HIERARCHICAL:
        alphas = np.asarray(result.alphas).reshape(n_folds, 2, -1)
        return HierarchicalSmoother.ridge(llm, controls, splits, alphas, controls_standardize)
    return None
