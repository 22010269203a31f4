"""Units joined into a context text, and tokens mapped back to units through the tokenizer's offsets."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

from lmbrain.errors import DataError


def normalize_unit(text: object, row: int | None = None) -> str:
    """A unit as the model reads it: whitespace stripped and every internal whitespace run made one space.

    Presentation whitespace (double spaces, tabs, trailing spaces in stimulus files) is typographic, not
    linguistic; normalising it keeps tokenisation identical across files that differ only in spacing.
    """
    where = f"unit {row}" if row is not None else "unit"
    if not isinstance(text, str):
        raise DataError(f"{where}: text must be a string, got {type(text).__name__} {text!r}")
    unit = " ".join(text.split())
    if not unit:
        raise DataError(f"{where}: text {text!r} is empty once whitespace is stripped")
    return unit


@dataclass(frozen=True)
class JoinedText:
    """Units joined with single spaces, with each unit's character span in the joined text."""

    text: str
    spans: tuple[tuple[int, int], ...]


def join_units(units: Sequence[str]) -> JoinedText:
    """Join already-normalised units with one space, recording where each unit lies."""
    spans, start = [], 0
    for unit in units:
        spans.append((start, start + len(unit)))
        start += len(unit) + 1
    return JoinedText(" ".join(units), tuple(spans))


def align_tokens(
    text: str,
    spans: Sequence[tuple[int, int]],
    offsets: Sequence[tuple[int, int]],
    special: Sequence[int],
) -> list[list[int]]:
    """Indices of the tokens of each unit, from the tokenizer's character offsets (never by counting).

    A token belongs to every unit its character span overlaps once its leading/trailing whitespace is
    trimmed (byte-level BPE tokens carry the preceding space). A pure whitespace token (BPE's lone "Ġ"
    before digits) belongs to the unit it lies in, or else to the next unit: like "Ġword", it is part of
    what that unit adds to the text, so the units' tokens partition the non-special tokens. Special tokens
    ([CLS], BOS...) belong to no unit. A unit whose characters the tokenizer drops gets an empty list.
    """
    starts = [s for s, _ in spans]
    owned: list[list[int]] = [[] for _ in spans]
    for index, ((s, e), is_special) in enumerate(zip(offsets, special, strict=True)):
        if is_special or s >= e:
            continue
        start = s
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if s >= e:  # whitespace only
            unit = bisect_right(starts, start) - 1
            if unit < 0 or start >= spans[unit][1]:
                unit += 1
            if unit < len(spans):
                owned[unit].append(index)
            continue
        unit = max(bisect_right(starts, s) - 1, 0)
        while unit < len(spans) and spans[unit][0] < e:
            if spans[unit][1] > s:
                owned[unit].append(index)
            unit += 1
    return owned
