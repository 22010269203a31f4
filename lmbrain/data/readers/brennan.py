"""Brennan et al. 2016 "Alice" fMRI: ROI time courses, per-subject regressors, TextGrid word times."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lmbrain.data.alignment import AlignmentCheck, check_lag
from lmbrain.data.dataset import Dataset
from lmbrain.data.readers.common import contiguous_blocks, neuroid_table, timeseries_responses
from lmbrain.data.registry import ReadContext, register_reader
from lmbrain.data.textgrid import read_words
from lmbrain.errors import DataError

ROIS = ("LATL", "RATL", "LPTL", "LIPL", "LPreM", "LIFG")
MOTION = ("motion_tx", "motion_ty", "motion_tz", "motion_rx", "motion_ry", "motion_rz")


def _matrix(path: Path, n_rows: int, n_cols: int, *, drop_leading: int = 0) -> np.ndarray:
    """A whitespace-separated numeric matrix with ``n_rows`` (after dropping leading rows) x ``n_cols``."""
    try:
        values = np.loadtxt(path, ndmin=2)
    except ValueError as err:
        raise DataError(f"{path}: not a numeric whitespace-separated matrix ({err})") from None
    if values.shape[0] == n_rows + drop_leading and drop_leading:
        values = values[drop_leading:]
    if values.shape != (n_rows, n_cols):
        expected = f"{n_rows} rows" + (
            f" (or {n_rows + drop_leading} with discarded volumes)" if drop_leading else ""
        )
        raise DataError(f"{path}: shape {values.shape}, expected {expected} x {n_cols} columns")
    if not np.isfinite(values).all():
        row = int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])
        raise DataError(f"{path}: row {row + 1} has a missing or infinite value")
    return values


def scan_words(ctx: ReadContext, n_scans: int, tr: float, offset: float) -> pd.DataFrame:
    """TextGrid words with onsets/offsets moved to the scan clock; an error if any lies outside the scans."""
    path = ctx.role("textgrid")
    words = read_words(path, tier=ctx.options["tier"])
    if words.empty:
        raise DataError(f"{path}: no words in the TextGrid")
    words["onset"] -= offset
    words["offset"] -= offset
    end = n_scans * tr
    outside = (words["onset"] < 0) | (words["offset"] > end)
    if outside.any():
        row = int(outside.to_numpy().argmax())
        w = words.iloc[row]
        raise DataError(
            f"{path}: word {row} ({w['text']!r}) at {w['onset'] + offset:.2f}-{w['offset'] + offset:.2f} s "
            f"(stimulus clock) = {w['onset']:.2f}-{w['offset']:.2f} s on the scan clock lies outside the "
            f"{n_scans} scans x TR {tr} s = [0, {end:g}] s; check timing.stimulus_start/discarded_volumes"
        )
    return words


def _read_subjects(
    ctx: ReadContext, folder: Path, sizes: list[str], n_scans: int, discarded: int
) -> tuple[list[np.ndarray], list[tuple[str, str, str, str]], dict[str, pd.DataFrame], dict[str, str]]:
    """ROI time courses (a matrix per subject and size), their neuroid rows, nuisance tables, excluded subjects."""
    columns, neuroid_rows, nuisance, excluded = [], [], {}, {}
    for subject in ctx.spec.subjects:
        if not ctx.wants(subject):
            continue
        courses = {
            size: _matrix(ctx.path(folder / size / f"{subject}-timecourses.txt"), n_scans, len(ROIS))
            for size in sizes
        }
        zero = [size for size, values in courses.items() if not np.any(values)]
        if zero:
            excluded[subject] = f"all-zero ROI time courses ({', '.join(zero)} files): no usable signal"
            continue
        for size, values in courses.items():
            columns.append(values)
            for roi in ROIS:
                suffix = f"_{size}" if len(sizes) > 1 else ""
                neuroid_rows.append((f"{subject}_{roi}{suffix}", subject, roi, size))
        nuisance[subject] = _nuisance(ctx, folder, subject, n_scans, discarded)
    return columns, neuroid_rows, nuisance, excluded


def _check_alignment(
    ctx: ReadContext, words: pd.DataFrame, nuisance: dict[str, pd.DataFrame], tr: float, offset: float
) -> AlignmentCheck:
    """Check the TextGrid word onsets against the subjects' mean word-rate regressor (a DataError if off)."""
    spec, opts = ctx.spec, ctx.options
    reference = np.mean([df["rate"].to_numpy() for df in nuisance.values()], axis=0)
    lags = range(-int(opts["alignment_lags"]), int(opts["alignment_lags"]) + 1)
    check = check_lag(words["onset"].to_numpy(), reference, tr, lags=lags, chosen_lag=0)
    if not check.passed or check.correlations[0] < float(opts["min_alignment_r"]):
        raise DataError(
            f"dataset {spec.name}: TextGrid word rate does not align with the provided rate regressor at the "
            f"chosen offset ({offset:g} s): best lag {check.best_lag} scans, r by lag {check.correlations}"
        )
    return check


def _word_stimuli(words: pd.DataFrame, story: str, tr: float) -> pd.DataFrame:
    """The stimulus table of the story's words, with their onsets, offsets and scans."""
    return pd.DataFrame(
        {
            "stimulus_id": [f"w{i:04d}" for i in range(len(words))],
            "text": words["text"].to_numpy(),
            "context_id": story,
            "position": np.arange(len(words)),
            "story": story,
            "onset": words["onset"].to_numpy(),
            "offset": words["offset"].to_numpy(),
            "scan": np.floor(words["onset"].to_numpy() / tr).astype(int),
        }
    )


@register_reader(
    "brennan2016",
    options={
        "roi_size": "6mm",
        "n_blocks": 10,
        "tier": None,
        "folder": "alice_data_shared",
        "alignment_lags": 5,
        "min_alignment_r": 0.9,
        "story": "alice_chapter1",
    },
)
def read_brennan2016(ctx: ReadContext) -> Dataset:
    """362 scans x (6 ROIs x subjects); all-zero subjects excluded; word timing verified against word rate."""
    spec, opts = ctx.spec, ctx.options
    if spec.timing is None or spec.timing.n_scans is None:
        raise DataError(f"spec {spec.name}: timing.tr and timing.n_scans are required for this reader")
    if spec.subjects is None:
        raise DataError(f"spec {spec.name}: list the subjects")
    tr, n_scans = spec.timing.tr, spec.timing.n_scans
    discarded = spec.timing.discarded_volumes
    # Audio t=0 started at scanner volume 0 plus stimulus_start; the first `discarded` volumes were dropped.
    offset = discarded * tr - spec.timing.stimulus_start
    sizes = {"6mm": ["6mm"], "10mm": ["10mm"], "both": ["6mm", "10mm"]}.get(str(opts["roi_size"]))
    if sizes is None:
        raise DataError(
            f"dataset {spec.name}: option roi_size must be 6mm, 10mm or both, got {opts['roi_size']!r}"
        )
    folder = Path(opts["folder"])

    columns, neuroid_rows, nuisance, excluded = _read_subjects(ctx, folder, sizes, n_scans, discarded)
    if not columns:
        raise DataError(
            f"dataset {spec.name}: no usable subject among {ctx.subjects or spec.subjects}: {excluded}"
        )

    words = scan_words(ctx, n_scans, tr, offset)
    check = _check_alignment(ctx, words, nuisance, tr, offset)
    stimuli = _word_stimuli(words, opts["story"], tr)
    scans = pd.DataFrame(
        {
            "scan": np.arange(n_scans),
            "time": np.arange(n_scans) * tr,
            "run": 0,
            "block": contiguous_blocks(n_scans, int(opts["n_blocks"])),
        }
    )
    ids, subj, roi, size = zip(*neuroid_rows, strict=True)
    neuroids = neuroid_table(spec, ids, subj, roi, roi_size=size)
    responses = timeseries_responses(np.concatenate(columns, axis=1), scans, neuroids)
    meta = {
        "alignment": {
            "stimulus_clock_minus_scan_clock_s": offset,
            "reference": "mean of the subjects' provided word-rate regressors (sNN-rate.txt)",
            **check.as_dict(),
        }
    }
    return ctx.dataset(stimuli, responses, nuisance=nuisance, excluded=excluded, meta=meta)


def _nuisance(ctx: ReadContext, folder: Path, subject: str, n_scans: int, discarded: int) -> pd.DataFrame:
    """Word rate, sound power and the 6 SPM motion parameters on the kept scans."""
    rate = _matrix(ctx.path(folder / f"{subject}-rate.txt"), n_scans, 1)[:, 0]
    sndpwr = _matrix(ctx.path(folder / f"{subject}-sndpwr.txt"), n_scans, 1)[:, 0]
    candidates = sorted((ctx.root / folder).glob(f"{subject}-rp_*.txt"))
    if len(candidates) != 1:
        raise DataError(
            f"dataset {ctx.spec.name}: expected one motion file {ctx.root / folder}/{subject}-rp_*.txt, "
            f"found {len(candidates)}"
        )
    motion = _matrix(candidates[0], n_scans, 6, drop_leading=discarded)
    table = pd.DataFrame(motion, columns=list(MOTION))
    table.insert(0, "sndpwr", sndpwr)
    table.insert(0, "rate", rate)
    table.index.name = "scan"
    return table
