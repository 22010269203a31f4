"""Joint models as linear smoothers: with the fitted penalties (and weights), they reproduce the outer-CV fits."""

from __future__ import annotations

import numpy as np
import pytest

from lmbrain.analysis.smoothers import joint_smoother
from lmbrain.encoding import ContiguousBlockSplit, GroupedKFold, cross_validate
from lmbrain.encoding.joint import make_joint_estimator


@pytest.mark.parametrize("kind", ["hierarchical", "hierarchical_shared", "hierarchical_1se", "hierarchical_pooled",
                                  "stacked_simplex"])
@pytest.mark.parametrize("timeseries", [False, True])
def test_smoother_reproduces_the_fit(kind: str, timeseries: bool):
    rng = np.random.default_rng(5)
    n, p, q, t = 120, 25, 4, 6
    C = rng.standard_normal((n, q))
    C[:, 0] = np.repeat(np.arange(4), n // 4) % 2  # an indicator column: centred only
    L = rng.standard_normal((n, p)) + C @ rng.standard_normal((q, p))
    Y = C @ rng.standard_normal((q, t)) + 0.3 * L @ rng.standard_normal((p, t)) / np.sqrt(p)
    Y += rng.standard_normal((n, t))
    groups = np.repeat(np.arange(12), n // 12)
    cv = ContiguousBlockSplit(n_splits=4, gap=2) if timeseries else GroupedKFold(4)
    mask = np.r_[np.ones(p, bool), False, np.ones(q - 1, bool)]
    est = make_joint_estimator(kind, [slice(0, p), slice(p, p + q)], np.logspace(-1, 4, 6), cv, standardize=mask)
    X = np.hstack([L, C])
    result = cross_validate(est, X, Y, groups, cv)
    splits = list(cv.split(X, Y, groups))
    smoother = joint_smoother(kind, [L] * len(splits), [C] * len(splits), splits, result, mask[p:])
    pred, base = smoother.predict(Y)
    tested = result.folds >= 0
    np.testing.assert_allclose(pred[tested], result.predictions[tested], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(base[tested], result.baseline[tested], rtol=1e-10)
    tiled, _ = smoother.tile(2).predict(np.hstack([Y, 2 * Y]))  # linear in the responses, column by column
    np.testing.assert_allclose(tiled[tested], np.hstack([pred, 2 * pred])[tested], rtol=1e-9, atol=1e-9)


def test_kinds_without_a_smoother():
    assert joint_smoother("banded", [], [], [], None) is None
