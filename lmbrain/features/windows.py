"""Sliding windows over a tokenised context longer than the model's window: no unit is ever truncated."""

from __future__ import annotations

from collections.abc import Sequence

from lmbrain.features.errors import FeatureError


def _best(window_list: list[tuple[int, int]], a: int, b: int, causal: bool) -> int | None:
    best, best_score = None, None
    for index, (s, e) in enumerate(window_list):
        if s <= a and b <= e:
            left, right = a - s, e - b
            score = (left,) if causal else (min(left, right), left)
            if best_score is None or score > best_score:
                best, best_score = index, score
    return best


def plan_windows(
    unit_ranges: Sequence[tuple[int, int]], n_tokens: int, window: int, stride: int, causal: bool
) -> tuple[list[tuple[int, int]], list[int]]:
    """Windows ``(start, end)`` over ``n_tokens`` tokens and, per unit ``[a, b)``, the window it is read in.

    Windows advance by ``stride`` tokens, each starting at a unit boundary, so every window begins with a
    whole unit. A unit is read in the containing window that gives it the most left context (causal) or is
    most central (bidirectional): a causal unit therefore sees at least about ``window - stride`` tokens of
    context. A unit longer than the window raises FeatureError instead of being truncated.
    """
    if window < 1:
        raise FeatureError(f"window must hold at least one token, got {window}")
    if not 1 <= stride <= window:
        raise FeatureError(f"stride must be in 1..{window} (the window), got {stride}")
    for a, b in unit_ranges:
        if b - a > window:
            raise FeatureError(
                f"a unit of {b - a} tokens does not fit in a {window}-token window; "
                "raise max_length or use smaller units (lmbrain never truncates a unit)"
            )
    if n_tokens <= window:
        return [(0, n_tokens)], [0] * len(unit_ranges)
    unit_starts = sorted({a for a, _ in unit_ranges})
    windows: list[tuple[int, int]] = []
    start = 0
    while True:
        windows.append((start, min(start + window, n_tokens)))
        if start + window >= n_tokens:
            break
        target = start + stride
        later = [a for a in unit_starts if a >= target]
        nxt = later[0] if later else target
        start = min(nxt, n_tokens - 1) if nxt > start else start + stride
    owner: list[int] = []
    for a, b in unit_ranges:
        index = _best(windows, a, b, causal)
        if index is None:  # a long unit straddling two planned windows: its own window, at a unit boundary
            fits = [x for x in unit_starts if b - window <= x <= a]
            centred = a - (window - (b - a)) // 2
            s = fits[0] if causal else min(fits, key=lambda x: (abs(x - centred), x))
            windows.append((s, min(s + window, n_tokens)))
            index = len(windows) - 1
        owner.append(index)
    used = sorted(set(owner))
    renumber = {old: new for new, old in enumerate(used)}
    return [windows[i] for i in used], [renumber[i] for i in owner]
