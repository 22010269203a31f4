"""Shared by the benchmark scripts: replace a generated block of a Markdown document between two markers."""

from __future__ import annotations

import re
from pathlib import Path


def write_block(path: Path, begin: str, end: str, text: str) -> None:
    """Replace what stands between the markers ``begin`` and ``end`` in ``path`` with ``text``."""
    doc = path.read_text()
    if begin not in doc or end not in doc:
        raise SystemExit(f"{path} has no {begin} ... {end} block to replace")
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    path.write_text(pattern.sub(lambda _: f"{begin}\n{text}\n{end}", doc, count=1))
