"""The page's words for the kind of data a study has: a study of behavioural data only (reading times) talks about
participants, words and measures, not brain scores, subjects and neuroids."""

from __future__ import annotations

import re

#: modalities whose responses are behaviour, not brain activity
BEHAVIOURAL_MODALITIES = ("reading_times",)
#: brain wording -> behavioural wording (whole words, case kept for the first letter)
_BEHAVIOURAL = (
    (r"brain scores", "scores"),
    (r"brain score", "score"),
    (r"brain responses", "responses"),
    (r"brain activity", "responses"),
    (r"neuroids", "measures"),
    (r"neuroid", "measure"),
    (r"subjects", "participants"),
    (r"subject", "participant"),
)
_MODALITY = re.compile(r"^\S+ \((?P<modality>[a-z_]+)\)")


def modalities(manifest: dict) -> set[str]:
    """The modalities of a study's datasets, read from the manifest's dataset summaries ('name (modality): ...')."""
    found = set()
    for summary in (manifest.get("datasets") or {}).values():
        match = _MODALITY.match(str(summary))
        if match:
            found.add(match["modality"])
    return found


def is_behavioural(manifest: dict) -> bool:
    """Whether every dataset of the study is behavioural (so the page uses behavioural wording)."""
    found = modalities(manifest)
    return bool(found) and found <= set(BEHAVIOURAL_MODALITIES)


def reword(text: str, behavioural: bool) -> str:
    """``text`` in the study's wording: unchanged for brain data; for behavioural data 'subjects' -> 'participants',
    'neuroids' -> 'measures', 'brain score' -> 'score', and '1 participants' -> '1 participant'."""
    if not behavioural or not isinstance(text, str):
        return text
    for pattern, replacement in _BEHAVIOURAL:
        text = re.sub(rf"\b({pattern})\b", lambda m, r=replacement: r[:1].upper() + r[1:] if m.group(1)[0].isupper()
                      else r, text, flags=re.IGNORECASE)
    return re.sub(r"\b1 (participant|measure)s\b", r"1 \1", text)
