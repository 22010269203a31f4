"""Sliding windows: every unit read whole, in a window no longer than the limit, with enough context."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lmbrain.features import FeatureError
from lmbrain.features.windows import plan_windows


def _ranges(lengths):
    out, start = [], 0
    for n in lengths:
        out.append((start, start + n))
        start += n
    return out


@given(
    lengths=st.lists(st.integers(1, 6), min_size=1, max_size=80),
    window=st.integers(6, 40),
    stride_frac=st.floats(0.05, 1.0),
    causal=st.booleans(),
)
def test_every_unit_is_read_whole_in_one_window(lengths, window, stride_frac, causal):
    units = _ranges(lengths)
    n = units[-1][1]
    stride = max(1, int(window * stride_frac))
    windows, owner = plan_windows(units, n, window, stride, causal)
    assert len(owner) == len(units)
    for (a, b), w in zip(units, owner, strict=True):
        s, e = windows[w]
        assert s <= a and b <= e, "the unit lies entirely in its window"
    for s, e in windows:
        assert 0 <= s < e <= n and e - s <= window
    assert sorted(set(owner)) == list(range(len(windows))), "no window without a unit"
    if n <= window:
        assert windows == [(0, n)]
    if causal:
        starts = {a for a, _ in units}
        for (a, b), w in zip(units, owner, strict=True):
            s, _ = windows[w]
            if b <= window:  # fits in the first window: the whole context so far, exactly as without windows
                assert s == 0
            else:  # otherwise at least window - stride - 2 * longest unit tokens of left context
                assert a - s >= window - stride - 2 * max(lengths)
            assert s in starts, "windows start at a unit boundary"


def test_unit_longer_than_window_is_refused_not_truncated():
    with pytest.raises(FeatureError, match="never truncates"):
        plan_windows([(0, 3), (3, 20)], 20, 10, 5, True)


@pytest.mark.parametrize(("window", "stride"), [(0, 1), (10, 0), (10, 11)])
def test_bad_window_or_stride(window, stride):
    with pytest.raises(FeatureError):
        plan_windows([(0, 1)], 1, window, stride, True)
