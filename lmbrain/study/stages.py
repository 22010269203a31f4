"""Where a unit's time goes: named stages (selection, joint, nulls, bootstrap, ...) timed inside the unit.

``with unit_stages() as seconds:`` collects the stages of one unit into a dict; ``with stage("nulls"):`` adds
the block's wall time to the current unit's entry (no-op outside a unit). The runner sums them over the
units of a run into the manifest's ``timings_seconds.stages`` and the run log.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator

_CURRENT: contextvars.ContextVar[dict[str, float] | None] = contextvars.ContextVar("lmbrain_stages", default=None)

#: the stages in the order they are reported
STAGES = ("features", "selection", "controls", "joint", "layer curves", "nulls", "bootstrap", "sensitivity", "ceiling",
          "other")


@contextlib.contextmanager
def unit_stages() -> Iterator[dict[str, float]]:
    """Collect the stage times of one unit; ``other`` is what no stage covered."""
    seconds: dict[str, float] = {}
    token = _CURRENT.set(seconds)
    start = time.perf_counter()
    try:
        yield seconds
    finally:
        _CURRENT.reset(token)
        seconds["other"] = max(0.0, time.perf_counter() - start - sum(seconds.values()))


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Add the wall time of the block to stage ``name`` of the current unit (nested stages count once: in the
    outermost)."""
    current = _CURRENT.get()
    if current is None:
        yield
        return
    token = _CURRENT.set(None)  # a stage inside a stage is not counted twice
    start = time.perf_counter()
    try:
        yield
    finally:
        _CURRENT.reset(token)
        current[name] = current.get(name, 0.0) + time.perf_counter() - start


def sum_stages(per_unit: list[dict[str, float]]) -> dict[str, float]:
    """Seconds per stage summed over units, in :data:`STAGES` order (unknown stages after)."""
    total: dict[str, float] = {}
    for seconds in per_unit:
        for name, value in seconds.items():
            total[name] = total.get(name, 0.0) + float(value)
    order = [s for s in STAGES if s in total] + sorted(set(total) - set(STAGES))
    return {name: total[name] for name in order}


def stage_table(stages: dict[str, float], extraction: float | None = None) -> str:
    """A plain-text table of seconds and shares per stage (for the run log)."""
    rows = dict(stages)
    if extraction is not None:
        rows = {"extraction (features)": extraction, **rows}
    total = sum(rows.values()) or 1.0
    width = max(len(n) for n in rows) if rows else 5
    lines = [f"{'stage':<{width}}  {'seconds':>9}  {'share':>6}"]
    lines += [f"{name:<{width}}  {value:>9.1f}  {100 * value / total:>5.1f}%" for name, value in rows.items()]
    return "\n".join(lines)
