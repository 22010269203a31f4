"""Helpers shared by readers: response arrays with the standard coordinates, text normalisation."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from lmbrain.data.specs import DataSpec
from lmbrain.errors import DataError

_NON_WORD = re.compile(r"[^\w]", flags=re.UNICODE)


def normalise_token(token: str) -> str:
    """Lower-case a token and strip everything but letters and digits (for cross-file matching)."""
    return _NON_WORD.sub("", str(token)).lower()


def neuroid_table(
    spec: DataSpec, neuroid_id: Sequence, subject: Sequence, roi: Sequence | None = None, **extra: Sequence
) -> pd.DataFrame:
    """Neuroid coordinates; ``network``/``hemisphere`` filled from the spec's ROI metadata when known."""
    table = pd.DataFrame({"neuroid_id": [str(v) for v in neuroid_id], "subject": [str(v) for v in subject]})
    meta = spec.neuroids
    if roi is not None:
        table["roi"] = [str(v) for v in roi]
        rois = meta.rois
        table["network"] = [
            (rois[r].network if r in rois and rois[r].network else meta.network) or "" for r in table["roi"]
        ]
        table["hemisphere"] = [
            (rois[r].hemisphere if r in rois and rois[r].hemisphere else meta.hemisphere) or ""
            for r in table["roi"]
        ]
    else:
        if meta.network:
            table["network"] = meta.network
        if meta.hemisphere:
            table["hemisphere"] = meta.hemisphere
    for name, values in extra.items():
        table[name] = list(values)
    if table["neuroid_id"].duplicated().any():
        dup = table["neuroid_id"][table["neuroid_id"].duplicated()].iloc[0]
        raise DataError(f"dataset {spec.name}: duplicate neuroid_id {dup!r}")
    return table


def _coords(table: pd.DataFrame, dim: str) -> dict[str, tuple[str, np.ndarray]]:
    return {str(c): (dim, table[c].to_numpy()) for c in table.columns}


def event_responses(values: np.ndarray, stimulus_ids: Sequence, neuroids: pd.DataFrame) -> xr.DataArray:
    """A ``(sample, neuroid)`` array for event data; samples carry ``stimulus_id``."""
    values = np.asarray(values, dtype=float)
    if values.shape != (len(stimulus_ids), len(neuroids)):
        raise DataError(
            f"response matrix is {values.shape}, "
            f"expected ({len(stimulus_ids)} stimuli, {len(neuroids)} neuroids)"
        )
    coords = {
        "stimulus_id": ("sample", np.asarray([str(s) for s in stimulus_ids])),
        **_coords(neuroids, "neuroid"),
    }
    return xr.DataArray(values, dims=("sample", "neuroid"), coords=coords)


def timeseries_responses(values: np.ndarray, scans: pd.DataFrame, neuroids: pd.DataFrame) -> xr.DataArray:
    """A ``(sample, neuroid)`` array for time series; samples carry the scan table's columns."""
    values = np.asarray(values, dtype=float)
    if values.shape != (len(scans), len(neuroids)):
        raise DataError(
            f"response matrix is {values.shape}, expected ({len(scans)} scans, {len(neuroids)} neuroids)"
        )
    for needed in ("time", "run"):
        if needed not in scans.columns:
            raise DataError(f"scan table lacks column {needed!r}")
    return xr.DataArray(
        values,
        dims=("sample", "neuroid"),
        coords={**_coords(scans, "sample"), **_coords(neuroids, "neuroid")},
    )


def contiguous_blocks(n: int, n_blocks: int) -> np.ndarray:
    """Block index (0..n_blocks-1) of each of ``n`` samples: contiguous blocks of (nearly) equal size."""
    if not 1 <= n_blocks <= n:
        raise DataError(f"cannot cut {n} samples into {n_blocks} contiguous blocks")
    return np.repeat(np.arange(n_blocks), [len(c) for c in np.array_split(np.arange(n), n_blocks)])


def check_unique(values: pd.Series, *, what: str, where: str) -> None:
    """A DataError naming the first duplicated value (and its row) of a column."""
    dup = values.duplicated()
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0])
        raise DataError(f"{where}: duplicate {what} {values.iloc[row]!r} at row {row}")
