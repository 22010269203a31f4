"""Pearson r (whole and per fold) and pooled out-of-sample R² against scipy/scikit-learn references."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import pearsonr
from sklearn.metrics import r2_score

from lmbrain.encoding import pearson_r, r2_oos
from lmbrain.errors import LmbrainError


def test_pearson_r_matches_scipy_zero_for_constant_predictions_nan_for_constant_responses():
    rng = np.random.default_rng(0)
    y = rng.standard_normal((40, 5))
    p = y + rng.standard_normal((40, 5))
    p[:, 3] = 1.0
    p[:, 4] = 0.1 + 1e-17 * rng.standard_normal(40)  # constant up to rounding
    y[:, 2] = 2.0
    r = pearson_r(y, p)
    for j in range(2):
        assert r[j] == pytest.approx(pearsonr(y[:, j], p[:, j])[0], rel=1e-12)
    assert np.isnan(r[2]) and r[3] == 0.0 and r[4] == 0.0
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


def test_fold_r_and_its_nan_safe_mean():
    from lmbrain.encoding.metrics import mean_fold_r, pearson_r_folds

    rng = np.random.default_rng(2)
    y = rng.standard_normal((60, 3))
    p = y + rng.standard_normal((60, 3))
    folds = np.repeat([0, 1, 2, -1], 15)  # the last 15 samples were never tested
    y[15:30, 1] = 0.1  # constant response of target 1 in fold 1 (its mean is not exactly 0.1)
    y[:, 2] = 0.3
    r_folds = pearson_r_folds(y, p, folds)
    assert r_folds.shape == (3, 3)
    for k in range(3):
        rows = folds == k
        for j in range(2):
            if (k, j) != (1, 1):
                assert r_folds[k, j] == pytest.approx(pearsonr(y[rows, j], p[rows, j])[0], rel=1e-12)
    assert np.isnan(r_folds[1, 1]) and np.isnan(r_folds[:, 2]).all()
    r = mean_fold_r(r_folds)
    assert r[0] == pytest.approx(r_folds[:, 0].mean(), rel=1e-12)
    assert r[1] == pytest.approx(r_folds[[0, 2], 1].mean(), rel=1e-12)
    assert np.isnan(r[2])
    with pytest.raises(LmbrainError, match="folds"):
        pearson_r_folds(y, p, folds[:-1])
