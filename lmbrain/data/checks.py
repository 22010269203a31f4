"""Integrity checks: file checksums, cross-validation group counts, bad-neuroid masking."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from lmbrain.data.specs import DataSpec
from lmbrain.errors import DataError
from lmbrain.io import memoised_sha256

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class FileStatus:
    """The verification outcome of one spec file."""

    path: Path
    status: str  # "ok", "missing", "mismatch", "unchecked"
    detail: str = ""


def check_files(spec: DataSpec, root: Path) -> list[FileStatus]:
    """Check every file of a spec under ``root``: present, and matching its sha256 when one is given."""
    out = []
    for entry in spec.files:
        path = root / entry.path
        if not path.is_file():
            out.append(FileStatus(path, "missing", f"missing data file {path}"))
        elif entry.sha256 is None:
            out.append(FileStatus(path, "unchecked", "no sha256 in the spec"))
        else:
            got = memoised_sha256(path)
            if got != entry.sha256:
                detail = (
                    f"checksum mismatch for {path}: sha256 {got}, spec {spec.name} expects {entry.sha256}"
                )
                out.append(FileStatus(path, "mismatch", detail))
            else:
                out.append(FileStatus(path, "ok"))
    return out


def verify_files(spec: DataSpec, root: Path, *, checksums: bool = True) -> None:
    """Raise one DataError naming the first missing file or checksum mismatch of a spec."""
    for entry in spec.files:
        path = root / entry.path
        if not path.is_file():
            raise DataError(f"dataset {spec.name}: missing data file {path} (spec file entry {entry.path!r})")
    if checksums:
        for status in check_files(spec, root):
            if status.status == "mismatch":
                raise DataError(f"dataset {spec.name}: {status.detail}")


def check_n_groups(groups: Sequence | np.ndarray, n_folds: int, *, split_unit: str = "split unit") -> int:
    """The number of distinct groups; a DataError when there are fewer than ``n_folds``."""
    if n_folds < 2:
        raise DataError(f"cross-validation needs at least 2 folds, got n_folds={n_folds}")
    values = np.asarray(groups)
    if values.size == 0:
        raise DataError(f"{split_unit}: no groups (empty sample table)")
    if values.dtype.kind == "f" and np.isnan(values).any():
        raise DataError(f"{split_unit}: group values contain NaN")
    n = len(np.unique(values.astype(str)))
    if n < n_folds:
        raise DataError(
            f"{split_unit} has {n} distinct group(s) but {n_folds} folds were requested: "
            f"use at most {n} folds or a finer split unit"
        )
    return n


def find_bad_neuroids(responses: xr.DataArray) -> dict[str, str]:
    """Neuroids that are all NaN or constant over samples, mapped to the reason."""
    values = np.asarray(responses.values, dtype=float)
    ids = [str(v) for v in responses["neuroid_id"].values]
    bad: dict[str, str] = {}
    finite = np.isfinite(values)
    n_finite = finite.sum(axis=0)
    with np.errstate(invalid="ignore"):
        lo = np.where(finite, values, np.inf).min(axis=0)
        hi = np.where(finite, values, -np.inf).max(axis=0)
    for j, nid in enumerate(ids):
        if n_finite[j] == 0:
            bad[nid] = "all values missing (NaN)"
        elif n_finite[j] > 1 and lo[j] == hi[j]:
            bad[nid] = f"constant value {lo[j]:g} over all {n_finite[j]} samples"
    return bad


def mask_bad_neuroids(responses: xr.DataArray) -> tuple[xr.DataArray, dict[str, str], dict[str, str]]:
    """Set all-NaN/constant neuroids to NaN; drop subjects with no usable neuroid.

    Returns ``(responses, masked, excluded)``: ``masked`` maps each masked neuroid id to its reason,
    ``excluded`` maps each subject whose every neuroid is bad to the reason (its neuroids are removed).
    """
    bad = find_bad_neuroids(responses)
    if not bad:
        return responses, {}, {}
    ids = np.asarray([str(v) for v in responses["neuroid_id"].values])
    subjects = np.asarray([str(v) for v in responses["subject"].values])
    is_bad = np.isin(ids, list(bad))
    excluded: dict[str, str] = {}
    for subject in dict.fromkeys(subjects):
        mine = subjects == subject
        if is_bad[mine].all():
            reasons = sorted({bad[i] for i in ids[mine]})
            excluded[subject] = f"every neuroid unusable ({len(ids[mine])} neuroids: {'; '.join(reasons)})"
    keep = ~np.isin(subjects, list(excluded))
    masked = {nid: reason for nid, reason in bad.items() if subjects[ids == nid][0] not in excluded}
    out = responses.isel(neuroid=np.flatnonzero(keep)).copy()
    if masked:
        cols = np.isin(np.asarray([str(v) for v in out["neuroid_id"].values]), list(masked))
        data = np.array(out.values, dtype=float)
        data[:, cols] = np.nan
        out = out.copy(data=data)
    for subject, reason in excluded.items():
        log.warning("excluding subject %s: %s", subject, reason)
    for nid, reason in masked.items():
        log.warning("masking neuroid %s: %s", nid, reason)
    return out, masked, excluded
