"""Le Petit Prince style fMRI: NIfTI runs per subject + one word-onset CSV + a brain mask (nibabel).

Roles in the spec: ``run`` files named ``...sub-ID..._run-N_bold.nii[.gz]`` (4-D); ``mask`` (3-D, nonzero =
keep); optional ``atlas`` (3-D integer labels: voxels are averaged per label, names from option
``atlas_labels``); ``words`` CSV with one row per word: text, onset, offset (seconds from the run start) and
the run number (column names set by options).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lmbrain.data.dataset import Dataset
from lmbrain.data.readers.tables import first_nan_row, read_table
from lmbrain.data.readers.timeseries_common import Run, assemble_runs, check_words_in_range
from lmbrain.data.registry import ReadContext, register_reader
from lmbrain.errors import DataError

_RUN = re.compile(r"run-0*(\d+)")
_SUB = re.compile(r"sub-([A-Za-z0-9]+)")


def _load_nifti(path: Path, ndim: int) -> tuple[np.ndarray, np.ndarray]:
    import nibabel as nib

    try:
        img = nib.load(str(path))
        data = np.asarray(img.dataobj)
    except Exception as err:  # nibabel raises several types on bad files
        raise DataError(f"{path}: not a readable NIfTI image ({err})") from None
    if data.ndim != ndim:
        raise DataError(f"{path}: {data.ndim}-D image, expected {ndim}-D")
    return data, img.affine


def _mask_and_atlas(ctx: ReadContext) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """The mask, its affine, the voxels it keeps and the atlas (None without one), checked to match."""
    mask, mask_affine = _load_nifti(ctx.role("mask"), 3)
    keep = mask != 0
    if not keep.any():
        raise DataError(f"{ctx.role('mask')}: mask selects no voxel")
    atlas = None
    if any(f.role == "atlas" for f in ctx.spec.files):
        atlas, _ = _load_nifti(ctx.role("atlas"), 3)
        if atlas.shape != mask.shape:
            raise DataError(f"{ctx.role('atlas')}: shape {atlas.shape} differs from the mask's {mask.shape}")
    return mask, mask_affine, keep, atlas


def _run_files(ctx: ReadContext) -> dict[int, dict[str, Path]]:
    """The requested subjects' run files: {run number: {subject: path}}."""
    spec = ctx.spec
    files: dict[int, dict[str, Path]] = {}
    for f in spec.files:
        if f.role != "run":
            continue
        run_m, sub_m = _RUN.search(f.path), _SUB.search(f.path)
        if not run_m or not sub_m:
            raise DataError(f"spec {spec.name}: run file {f.path} lacks sub-ID or run-N in its name")
        if ctx.wants(sub_m.group(1)):
            files.setdefault(int(run_m.group(1)), {})[sub_m.group(1)] = Path(f.path)
    if not files:
        raise DataError(f"spec {spec.name}: no run file (role: run) for the requested subjects")
    return files


def _run_words(table: pd.DataFrame, number: int, opts: dict[str, Any], words_path: Path) -> pd.DataFrame:
    """The words (text, onset, offset) of one run from the onset table."""
    rows = table[table[opts["run_column"]].astype(int) == number]
    if rows.empty:
        raise DataError(f"{words_path}: no word for run {number}")
    return pd.DataFrame(
        {
            "text": rows[opts["word_column"]].astype(str).to_numpy(),
            "onset": rows[opts["onset_column"]].astype(float).to_numpy(),
            "offset": rows[opts["offset_column"]].astype(float).to_numpy(),
        }
    )


def _run_series(
    path: Path, mask: np.ndarray, mask_affine: np.ndarray, keep: np.ndarray, atlas: np.ndarray | None,
    labels: np.ndarray | None,
) -> np.ndarray:
    """One subject's run as scans x masked voxels (or x atlas labels, averaged over their voxels)."""
    data, affine = _load_nifti(path, 4)
    if data.shape[:3] != mask.shape or not np.allclose(affine, mask_affine, atol=1e-3):
        raise DataError(f"{path}: grid {data.shape[:3]} / affine differ from the mask's {mask.shape}")
    series = data[keep].T.astype(float)  # scans x voxels
    if labels is not None:
        lab = atlas[keep]
        series = np.column_stack([series[:, lab == v].mean(axis=1) for v in labels])
    return series


def _add_voxel_coords(dataset: Dataset, keep: np.ndarray) -> None:
    """Give every neuroid its voxel indices (voxel_i/j/k) in the mask's grid."""
    ijk = np.argwhere(keep)
    n_sub = len(dataset.subjects)
    dataset.responses = dataset.responses.assign_coords(
        voxel_i=("neuroid", np.tile(ijk[:, 0], n_sub)),
        voxel_j=("neuroid", np.tile(ijk[:, 1], n_sub)),
        voxel_k=("neuroid", np.tile(ijk[:, 2], n_sub)),
    )


@register_reader(
    "lpp_nifti",
    options={
        "word_column": "word",
        "onset_column": "onset",
        "offset_column": "offset",
        "run_column": "section",
        "atlas_labels": None,
    },
)
def read_lpp(ctx: ReadContext) -> Dataset:
    """Runs x subjects of masked voxels (or atlas-label means); words per run from the onset CSV."""
    spec, opts = ctx.spec, ctx.options
    if spec.timing is None:
        raise DataError(f"spec {spec.name}: timing.tr is required")
    tr = spec.timing.tr
    mask, mask_affine, keep, atlas = _mask_and_atlas(ctx)
    words_path = ctx.role("words")
    cols = [opts["word_column"], opts["onset_column"], opts["offset_column"], opts["run_column"]]
    table = read_table(words_path, required=cols)
    bad = first_nan_row(table, cols)
    if bad:
        raise DataError(f"{words_path}: row {bad[0] + 2}: missing value in column {bad[1]!r}")
    files = _run_files(ctx)
    labels = np.unique(atlas[keep & (atlas > 0)]).astype(int) if atlas is not None else None
    runs = []
    for number in sorted(files):
        words = _run_words(table, number, opts, words_path)
        responses = {}
        for subject in sorted(files[number]):
            path = ctx.path(files[number][subject])
            responses[subject] = _run_series(path, mask, mask_affine, keep, atlas, labels)
        run = Run(f"run-{number}", words, responses)
        check_words_in_range(run, next(iter(responses.values())).shape[0], tr, str(words_path))
        runs.append(run)
    extra = None
    if labels is not None:
        names = {int(k): str(v) for k, v in (opts["atlas_labels"] or {}).items()}
        per_subject = [names.get(int(v), f"label{int(v)}") for v in labels]
        n_sub = len(runs[0].responses)
        extra = {"roi": per_subject * n_sub}
    dataset = assemble_runs(ctx, runs, tr, neuroid_extra=extra)
    if labels is None:
        _add_voxel_coords(dataset, keep)
    return dataset
