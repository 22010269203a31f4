"""Pearson r and pooled out-of-sample R² against scipy/scikit-learn references."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import pearsonr
from sklearn.metrics import r2_score

from lmbrain.encoding import pearson_r, r2_oos
from lmbrain.errors import LmbrainError


def test_pearson_r_matches_scipy_and_nan_for_constant():
    rng = np.random.default_rng(0)
    y = rng.standard_normal((40, 4))
    p = y + rng.standard_normal((40, 4))
    p[:, 3] = 1.0
    r = pearson_r(y, p)
    for j in range(3):
        assert r[j] == pytest.approx(pearsonr(y[:, j], p[:, j])[0], rel=1e-12)
    assert np.isnan(r[3])
    assert pearson_r(y[:, 0], p[:, 0]).shape == (1,)


def test_r2_oos_pooled_against_training_mean():
    rng = np.random.default_rng(1)
    y = rng.standard_normal((30, 3))
    pred = y + 0.5 * rng.standard_normal((30, 3))
    # with the test mean as the baseline it is scikit-learn's R²
    np.testing.assert_allclose(r2_oos(y, pred, np.broadcast_to(y.mean(0), y.shape)),
                               r2_score(y, pred, multioutput="raw_values"), rtol=1e-12)
    # two folds with different training means: errors are pooled, not fold R² averaged
    base = np.where(np.arange(30)[:, None] < 15, 0.3, -0.2) * np.ones((1, 3))
    expected = 1 - ((y - pred) ** 2).sum(0) / ((y - base) ** 2).sum(0)
    np.testing.assert_allclose(r2_oos(y, pred, base), expected, rtol=1e-12)
    assert np.all(r2_oos(y, base, base) == 0.0)
    assert np.isnan(r2_oos(y[:, :1], y[:, :1], y[:, :1])[0])


def test_shape_mismatch_raises():
    with pytest.raises(LmbrainError, match="shape"):
        pearson_r(np.zeros((5, 2)), np.zeros((5, 3)))
