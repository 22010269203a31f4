"""The shape of a layer curve: is the best intermediate layer better than the last one?

The field's recurring claim is that intermediate layers predict brain responses better than the last layer.
Choosing the best intermediate layer on the same outer-CV scores that then test it is biased (the maximum of
several noisy scores beats the last layer by chance). Here the layer that fold k's test samples get is chosen
on other folds only, and on folds that never use fold k in return (:func:`choice_folds`): fold k's choice uses
folds k-1, ..., k-m (m = (K-1) // 2, cyclically), so of two folds at most one informs the other's choice. A
choice on all the other folds (as the in-fold layer selection's inner-CV scores are) is unbiased too, but
then fold j's data shape fold k's choice and vice versa, the folds' contributions to the contrast are
positively correlated, and tests that treat the split unit's groups as independent become liberal (measured
on simulated predictions: 8 % false positives at a nominal 5 %, against 6 % with the one-way choice; see
docs/statistics.md). The test-fold predictions of the chosen layers are stitched together; the R² of that
composite against the last layer's, on the same samples, is an out-of-sample contrast, with a paired
percentile bootstrap over the split unit's groups (blocks of scans for time series; the same resamples for
both layers) and one-sided block sign flips of the paired squared-error differences
(:func:`lmbrain.analysis.permutation.paired_sign_flip_test`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from lmbrain.analysis.signflip import paired_sign_flip_test
from lmbrain.analysis.stats import _CHUNK, _as_2d, _bounds, _indicator, _resample_weights
from lmbrain.results import layer_index


def intermediate_layers(names: Sequence[str]) -> tuple[list[str], str | None]:
    """The intermediate layers (all but the shallowest and the deepest, by depth) and the deepest one."""
    order = sorted(names, key=layer_index)
    if len(order) < 3:
        return [], None
    return order[1:-1], order[-1]


def choice_folds(n_folds: int) -> list[list[int]]:
    """Per outer fold k, the folds its layer is chosen on: k-1, ..., k-m (mod K, m = (K-1) // 2), so that no two
    folds inform each other's choice; empty lists below 3 folds."""
    m = (n_folds - 1) // 2
    return [[(k - i) % n_folds for i in range(1, m + 1)] for k in range(n_folds)]


def best_in_fold(scores: np.ndarray, names: Sequence[str], among: Sequence[str]) -> np.ndarray:
    """Per outer fold (and target group), the layer of ``among`` with the best score (NaN: never chosen).

    ``scores``: (n_folds, n_candidates[, n_groups]) scores of ``names`` on data that fold k's test
    samples are not part of; returns (n_folds, n_groups) labels; ties go to the shallower layer.
    """
    scores = np.nan_to_num(np.asarray(scores, dtype=float), nan=-np.inf)
    if scores.ndim == 2:
        scores = scores[:, :, None]
    order = sorted(among, key=layer_index)
    columns = [list(names).index(name) for name in order]
    return np.asarray(order, dtype=object)[np.argmax(scores[:, columns, :], axis=1)]


def fold_choice_predictions(predictions: Mapping[str, np.ndarray], folds: np.ndarray, choices: np.ndarray,
                            target_groups: np.ndarray) -> np.ndarray:
    """Out-of-fold predictions of the layer chosen for each (fold, target group): ``choices[k, g]`` for fold k's
    test samples of the targets with ``target_groups == g`` (untested samples stay NaN)."""
    first = _as_2d(next(iter(predictions.values())))
    out = np.full(first.shape, np.nan)
    target_groups = np.asarray(target_groups)
    for k in range(choices.shape[0]):
        rows = np.flatnonzero(np.asarray(folds) == k)
        for g in range(choices.shape[1]):
            cols = np.flatnonzero(target_groups == g)
            out[np.ix_(rows, cols)] = _as_2d(predictions[choices[k, g]])[np.ix_(rows, cols)]
    return out


@dataclass(frozen=True)
class LayerContrast:
    """Per target: R²(a) − R²(b), its percentile bootstrap bounds and the one-sided sign-flip p of a > b."""

    difference: np.ndarray
    low: np.ndarray
    high: np.ndarray
    p: np.ndarray
    n_blocks: int


def r2_contrast(Y: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, baseline: np.ndarray, blocks: np.ndarray,
                folds: np.ndarray | None = None, n_boot: int = 1000, seed: int = 0,
                level: float = 0.95) -> LayerContrast:
    """Paired contrast of two models' out-of-sample R² per target, resampling whole ``blocks``.

    Both R² share the denominator (squared errors of the training-fold ``baseline``), so the difference is
    ``Σ d / SS`` with ``d = (y − b)² − (y − a)²``; every resample draws blocks with replacement and scores
    both models on the same draw. ``p``: one-sided block sign flips of the block sums of ``d`` (``n_boot``
    flips, seed ``seed``), ``(1 + #{null >= observed}) / (1 + n_boot)``. With ``folds`` (the outer test fold of
    every sample), samples never tested (fold < 0) are dropped and blocks are cut at the folds' boundaries.
    """
    Y, A, B, base = (_as_2d(a) for a in (Y, pred_a, pred_b, baseline))
    keep = np.ones(len(Y), dtype=bool) if folds is None else np.asarray(folds) >= 0
    blocks = np.asarray(blocks)
    if folds is not None:  # a block straddling two test folds (scans of a time series) counts as two
        blocks = np.unique(blocks, return_inverse=True)[1] * (int(np.max(folds)) + 2) + np.asarray(folds) + 1
    Y, A, B, base, kept_blocks = Y[keep], A[keep], B[keep], base[keep], blocks[keep]
    _, index = np.unique(kept_blocks, return_inverse=True)
    n_blocks = int(index.max()) + 1
    to_blocks = _indicator(index, n_blocks)
    weights = _resample_weights(n_blocks, n_boot, seed)
    n_targets = Y.shape[1]
    difference, low, high = (np.full(n_targets, np.nan) for _ in range(3))
    step = max(1, _CHUNK // (2 * max(n_boot, 1)))
    for start in range(0, n_targets, step):
        cols = slice(start, min(start + step, n_targets))
        c = Y[:, cols].shape[1]
        y = Y[:, cols]
        sums = to_blocks @ np.hstack([(y - B[:, cols]) ** 2 - (y - A[:, cols]) ** 2, (y - base[:, cols]) ** 2])
        with np.errstate(divide="ignore", invalid="ignore"):
            difference[cols] = sums[:, :c].sum(0) / sums[:, c:].sum(0)
            if n_boot:
                boot = weights @ sums
                low[cols], high[cols] = _bounds(boot[:, :c] / boot[:, c:], level)
    p = np.full(n_targets, np.nan)
    if n_boot:
        p = paired_sign_flip_test(Y, A, B, base, kept_blocks, n_boot, seed=seed).p
    return LayerContrast(difference, low, high, p, n_blocks)
