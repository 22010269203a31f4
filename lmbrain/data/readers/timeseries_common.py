"""Assembling multi-run time-series datasets (stories or runs) from per-run words and responses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from lmbrain.data.dataset import Dataset
from lmbrain.data.readers.common import neuroid_table, timeseries_responses
from lmbrain.data.registry import ReadContext
from lmbrain.errors import DataError


@dataclass
class Run:
    """One run: its words (text, onset, offset on the run's clock) and each subject's (scan x voxel) data."""

    name: str
    words: pd.DataFrame
    responses: dict[str, np.ndarray]
    first_scan_time: float = 0.0


def check_words_in_range(run: Run, n_scans: int, tr: float, source: str, *, slack: float = 0.0) -> None:
    """A DataError when a word of the run lies outside the run's scans (``slack`` seconds allowed)."""
    start = run.first_scan_time - slack
    end = run.first_scan_time + n_scans * tr + slack
    bad = (run.words["onset"] < start) | (run.words["offset"] > end)
    if bad.any():
        row = int(bad.to_numpy().argmax())
        w = run.words.iloc[row]
        raise DataError(
            f"{source}: run {run.name}: word {row} ({w['text']!r}) at {w['onset']:.2f}-{w['offset']:.2f} s "
            f"lies "
            f"outside the {n_scans} scans x TR {tr} s = [{start:g}, {end:g}] s"
        )


def assemble_runs(
    ctx: ReadContext, runs: list[Run], tr: float, *, neuroid_extra: dict | None = None
) -> Dataset:
    """Concatenate runs: scans get ``run``/``time``, words ``run``/``context_id``; neuroids per subject."""
    if not runs:
        raise DataError(f"dataset {ctx.spec.name}: no run to read")
    subjects = list(runs[0].responses)
    widths = {s: runs[0].responses[s].shape[1] for s in subjects}
    scan_tables, blocks, word_tables = [], [], []
    for run in runs:
        if list(run.responses) != subjects:
            raise DataError(
                f"dataset {ctx.spec.name}: run {run.name} has subjects {list(run.responses)}, "
                f"expected {subjects}"
            )
        lengths = {s: v.shape[0] for s, v in run.responses.items()}
        if len(set(lengths.values())) != 1:
            raise DataError(
                f"dataset {ctx.spec.name}: run {run.name}: subjects differ in scan count {lengths}"
            )
        for s, v in run.responses.items():
            if v.shape[1] != widths[s]:
                raise DataError(
                    f"dataset {ctx.spec.name}: run {run.name}: subject {s} has {v.shape[1]} "
                    f"voxels, {widths[s]} in run {runs[0].name}"
                )
        n = next(iter(lengths.values()))
        scan_tables.append(
            pd.DataFrame(
                {"run": run.name, "scan": np.arange(n), "time": run.first_scan_time + np.arange(n) * tr}
            )
        )
        blocks.append(np.concatenate([run.responses[s] for s in subjects], axis=1))
        words = run.words.reset_index(drop=True)
        word_tables.append(
            pd.DataFrame(
                {
                    "stimulus_id": [f"{run.name}.w{i:05d}" for i in range(len(words))],
                    "text": words["text"].astype(str).to_numpy(),
                    "context_id": run.name,
                    "position": np.arange(len(words)),
                    "run": run.name,
                    "onset": words["onset"].to_numpy(float),
                    "offset": words["offset"].to_numpy(float),
                }
            )
        )
    ids, subj = [], []
    for s in subjects:
        ids += [f"{s}.{j}" for j in range(widths[s])]
        subj += [s] * widths[s]
    extra = {k: list(v) for k, v in (neuroid_extra or {}).items()}
    roi = extra.pop("roi", None)
    neuroids = neuroid_table(ctx.spec, ids, subj, roi, **extra)
    responses = timeseries_responses(
        np.concatenate(blocks, axis=0), pd.concat(scan_tables, ignore_index=True), neuroids
    )
    return ctx.dataset(pd.concat(word_tables, ignore_index=True), responses)
