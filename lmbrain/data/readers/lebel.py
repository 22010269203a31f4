"""LeBel et al. 2023 (OpenNeuro ds003020): one HDF5 response matrix per story and subject + TextGrids.

Layout (roles in the spec): ``response`` files ``SUBJECT/STORY.hf5`` holding dataset ``data`` (TRs x voxels);
``textgrid`` files ``STORY.TextGrid`` (tier ``word``). The response matrices were trimmed by the authors:
``trim_start`` TRs were dropped from their start, so response row k is TR ``k + trim_start`` of the
TextGrid clock; scan times are reported on that clock (seconds from the start of the story audio).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from lmbrain.data.dataset import Dataset
from lmbrain.data.readers.timeseries_common import Run, assemble_runs, check_words_in_range
from lmbrain.data.registry import ReadContext, register_reader
from lmbrain.data.textgrid import read_words
from lmbrain.errors import DataError


def read_hdf5_matrix(path: Path, dataset: str = "data") -> np.ndarray:
    """A 2-D float matrix from an HDF5 file (h5py)."""
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            if dataset not in handle:
                raise DataError(f"{path}: no HDF5 dataset {dataset!r} (keys: {list(handle.keys())})")
            values = np.asarray(handle[dataset][()], dtype=float)
    except OSError as err:
        raise DataError(f"{path}: not a readable HDF5 file ({err})") from None
    if values.ndim != 2:
        raise DataError(f"{path}: dataset {dataset!r} has shape {values.shape}, expected (TRs, voxels)")
    return values


@register_reader(
    "lebel2023",
    options={"dataset": "data", "tier": None, "trim_start": 10, "trim_end": 5, "voxels": None},
)
def read_lebel2023(ctx: ReadContext) -> Dataset:
    """Stories as runs (split unit ``run``); each subject's voxels as neuroids (option ``voxels`` subsets)."""
    spec, opts = ctx.spec, ctx.options
    if spec.timing is None:
        raise DataError(f"spec {spec.name}: timing.tr is required")
    tr = spec.timing.tr
    grids = {Path(f.path).stem: Path(f.path) for f in spec.files if f.role == "textgrid"}
    by_story: dict[str, dict[str, Path]] = defaultdict(dict)
    for f in spec.files:
        if f.role == "response":
            rel = Path(f.path)
            if ctx.wants(rel.parent.name):
                by_story[rel.stem][rel.parent.name] = rel
    if not by_story:
        raise DataError(f"spec {spec.name}: no response files (role: response, SUBJECT/STORY.hf5)")
    runs = []
    for story in sorted(by_story):
        if story not in grids:
            raise DataError(f"spec {spec.name}: story {story} has responses but no TextGrid (role: textgrid)")
        words = read_words(ctx.path(grids[story]), tier=opts["tier"])
        responses = {}
        for subject in sorted(by_story[story]):
            values = read_hdf5_matrix(ctx.path(by_story[story][subject]), opts["dataset"])
            if opts["voxels"] is not None:
                values = values[:, np.asarray(opts["voxels"], dtype=int)]
            responses[subject] = values
        run = Run(story, words, responses, first_scan_time=int(opts["trim_start"]) * tr)
        n = next(iter(responses.values())).shape[0]
        check_words_in_range(
            run,
            n,
            tr,
            str(ctx.root / grids[story]),
            slack=int(opts["trim_start"]) * tr + int(opts["trim_end"]) * tr,
        )
        runs.append(run)
    subjects = sorted({s for story in by_story.values() for s in story})
    for run in runs:
        if sorted(run.responses) != subjects:
            raise DataError(
                f"dataset {spec.name}: story {run.name} lacks subject(s) "
                f"{sorted(set(subjects) - set(run.responses))}"
            )
    return assemble_runs(ctx, runs, tr)
