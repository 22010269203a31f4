"""Every control's NaN policy (docs/controls.md): a missing or infinite value in what a control reads is an error
naming the control and the row, never a silently zeroed one-hot row or a NaN column handed to the ridge."""

from __future__ import annotations

import numpy as np
import pytest

from lmbrain.errors import LmbrainError
from lmbrain.features.controls import ControlFeatures, one_hot


def test_a_non_finite_control_value_is_an_error_naming_the_row() -> None:
    X = np.ones((4, 2))
    X[2, 1] = np.nan
    with pytest.raises(LmbrainError, match=r"control 'toy' \(toy\): 1 missing or infinite value\(s\), first at row 2"):
        ControlFeatures("toy", {"toy": X})
    X[2, 1] = np.inf
    with pytest.raises(LmbrainError, match="first at row 2"):
        ControlFeatures("toy", {"toy": X})
    assert ControlFeatures("toy", {"toy": np.ones((4, 2))}).matrix.shape == (4, 2)


def test_one_hot_refuses_a_missing_level() -> None:
    matrix, columns = one_hot(np.array([0.0, 1.0, 0.0]), "wp")
    assert columns == ["wp=0.0", "wp=1.0"] and matrix.sum(axis=1).tolist() == [1, 1, 1]
    with pytest.raises(LmbrainError, match=r"wp=\.\.\.: 1 missing value\(s\), first at row 1"):
        one_hot(np.array([0.0, np.nan, 1.0]), "wp")
