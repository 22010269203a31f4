"""Layer addressing by index, relative depth and 'all'."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lmbrain.features import FeatureError, resolve_layers


def test_all_and_indices_count_layer_zero_as_embeddings():
    assert resolve_layers("all", 31) == list(range(31))
    assert resolve_layers(0, 31) == [0]
    assert resolve_layers(-1, 31) == [30]
    assert resolve_layers([3, "5", -2], 31) == [3, 5, 29]


def test_depths_map_ends_to_embeddings_and_last_layer():
    assert resolve_layers([0.0, 1.0], 31) == [0, 30]
    assert resolve_layers("0.5", 7) == [3]
    assert resolve_layers("0,0.5,1.0", 13) == [0, 6, 12]
    assert resolve_layers([1, 1.0], 13) == [1, 12]  # an int is an index, a float a depth


@given(st.integers(2, 60), st.floats(0, 1), st.floats(0, 1))
def test_depth_is_nearest_layer_and_monotone(n_layers, a, b):
    [i] = resolve_layers(a, n_layers)
    assert abs(i / (n_layers - 1) - a) <= 0.5 / (n_layers - 1) + 1e-12
    lo, hi = sorted((a, b))
    assert resolve_layers(lo, n_layers)[0] <= resolve_layers(hi, n_layers)[0]


def test_duplicates_dropped_in_first_order():
    assert resolve_layers([5, 0.0, 5, 0], 7) == [5, 0]


@pytest.mark.parametrize("bad", [31, -32, 1.5, -0.1, True, "abc", "", [], None, "1,,x"])
def test_bad_specs_raise_one_clear_error(bad):
    with pytest.raises(FeatureError):
        resolve_layers(bad, 31)
