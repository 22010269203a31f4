"""Praat TextGrid word tiers (via praatio) as tables of word onsets and offsets."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd
from praatio import textgrid as praat_textgrid

from lmbrain.errors import DataError

#: Interval labels that mark silence rather than a word.
SILENCE_LABELS = ("", "sp", "sil", "<sil>", "SIL", "{SL}", "{LG}", "{NS}")


def read_words(
    path: Path, *, tier: str | None = None, silence: Iterable[str] = SILENCE_LABELS
) -> pd.DataFrame:
    """Words of an interval tier as a table ``text``, ``onset``, ``offset`` (seconds), in time order.

    ``tier`` defaults to the tier named ``word`` or ``words`` (case-insensitive), else the only tier.
    Intervals labelled as silence are dropped.
    """
    try:
        tg = praat_textgrid.openTextgrid(str(path), includeEmptyIntervals=False)
    except FileNotFoundError:
        raise DataError(f"missing TextGrid file {path}") from None
    except Exception as err:  # praatio raises several types on malformed files
        raise DataError(f"{path}: not a readable Praat TextGrid ({type(err).__name__}: {err})") from None
    names = list(tg.tierNames)
    if tier is None:
        lowered = {n.lower(): n for n in names}
        tier = lowered.get("word") or lowered.get("words") or (names[0] if len(names) == 1 else None)
        if tier is None:
            raise DataError(f"{path}: no tier named 'word'/'words' among {names}; name the tier to read")
    if tier not in names:
        raise DataError(f"{path}: no tier {tier!r}; tiers are {names}")
    entries = tg.getTier(tier).entries
    if entries and not hasattr(entries[0], "end"):
        raise DataError(f"{path}: tier {tier!r} is a point tier, expected an interval tier")
    skip = set(silence)
    rows = [(e.label.strip(), float(e.start), float(e.end)) for e in entries if e.label.strip() not in skip]
    table = pd.DataFrame(rows, columns=["text", "onset", "offset"])
    table = table.sort_values("onset", kind="stable").reset_index(drop=True)
    bad = table["offset"] < table["onset"]
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise DataError(
            f"{path}: tier {tier!r}: word {row} ({table['text'].iloc[row]!r}) ends before it starts"
        )
    return table
