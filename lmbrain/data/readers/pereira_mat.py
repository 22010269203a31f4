"""Pereira et al. 2018 per-participant MATLAB files (``examples_384sentences.mat``, ``..._243sentences.mat``).

Each file holds ``examples`` (sentences x voxels), ``keySentences``, ``labelsPassageForEachSentence``,
``labelsPassageCategory``, ``keyPassageCategory``, ``keyPassages`` and a ``meta`` struct with voxel
coordinates (``colToCoord``) and atlas ROI masks: ``atlases`` (names), ``rois`` (ROI names per atlas) and
``roiMultimask`` (per atlas, each voxel's 1-based ROI number, 0/NaN when outside every ROI).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.io

from lmbrain.data.dataset import Dataset
from lmbrain.data.readers.common import event_responses, neuroid_table
from lmbrain.data.registry import ReadContext, register_reader
from lmbrain.errors import DataError

_REQUIRED = ("examples", "keySentences", "labelsPassageForEachSentence", "meta")


def _strings(cell: Any) -> list[str]:
    """Flatten a MATLAB cell array of strings into Python strings."""
    out = []
    for item in np.asarray(cell, dtype=object).ravel():
        while isinstance(item, np.ndarray) and item.dtype == object and item.size == 1:
            item = item.ravel()[0]
        out.append(str(item.ravel()[0]) if isinstance(item, np.ndarray) and item.size == 1 else str(item))
    return out


def _field(meta: Any, name: str, path: Path) -> Any:
    if meta.dtype.names is None or name not in meta.dtype.names:
        raise DataError(f"{path}: meta has no field {name!r} (fields: {meta.dtype.names})")
    return meta[name][0, 0]


def load_pereira_mat(path: Path) -> dict[str, Any]:
    """Read one Pereira participant file (MATLAB v5 via scipy, v7.3 is not supported) and check its fields."""
    try:
        mat = scipy.io.loadmat(str(path))
    except NotImplementedError:
        raise DataError(f"{path}: MATLAB v7.3 file; re-save as v7 or convert with h5py") from None
    except (ValueError, OSError) as err:
        raise DataError(f"{path}: not a readable MATLAB file ({err})") from None
    missing = [k for k in _REQUIRED if k not in mat]
    if missing:
        raise DataError(f"{path}: missing variable(s) {missing}")
    examples = np.asarray(mat["examples"], dtype=float)
    sentences = _strings(mat["keySentences"])
    passage = np.asarray(mat["labelsPassageForEachSentence"]).ravel().astype(int)
    if not (examples.shape[0] == len(sentences) == len(passage)):
        raise DataError(
            f"{path}: examples has {examples.shape[0]} rows, keySentences {len(sentences)}, "
            f"labelsPassageForEachSentence {len(passage)}: counts must match"
        )
    out: dict[str, Any] = {
        "examples": examples,
        "sentences": sentences,
        "passage": passage,
        "meta": mat["meta"],
    }
    if "labelsPassageCategory" in mat and "keyPassageCategory" in mat:
        cat_of_passage = np.asarray(mat["labelsPassageCategory"]).ravel().astype(int)
        names = _strings(mat["keyPassageCategory"])
        if passage.max() > len(cat_of_passage) or cat_of_passage.max() > len(names):
            raise DataError(f"{path}: passage/category labels point past keyPassageCategory")
        out["category"] = [names[cat_of_passage[p - 1] - 1] for p in passage]
    if "keyPassages" in mat:
        names = _strings(mat["keyPassages"])
        out["passage_label"] = [names[p - 1] if p - 1 < len(names) else str(p) for p in passage]
    return out


def atlas_masks(meta: Any, path: Path) -> dict[str, tuple[list[str], np.ndarray]]:
    """Per atlas: ROI names and each voxel's 1-based ROI number (0 = none)."""
    atlases = _strings(_field(meta, "atlases", path))
    rois = np.asarray(_field(meta, "rois", path), dtype=object).ravel()
    masks = np.asarray(_field(meta, "roiMultimask", path), dtype=object).ravel()
    if not (len(atlases) == len(rois) == len(masks)):
        raise DataError(f"{path}: meta.atlases, meta.rois and meta.roiMultimask differ in length")
    out = {}
    for name, names, mask in zip(atlases, rois, masks, strict=True):
        numbers = np.nan_to_num(np.asarray(mask, dtype=float).ravel(), nan=0.0).astype(int)
        out[name] = (_strings(names), numbers)
    return out


@register_reader(
    "pereira2018_mat",
    options={
        "experiments": ["384sentences", "243sentences"],
        "atlas": None,
        "rois": None,
        "average_rois": False,
    },
)
def read_pereira_mat(ctx: ReadContext) -> Dataset:
    """Per-participant voxels (or ROI means) for the sentences of one or both experiments.

    Spec files with role ``participant`` are laid out ``SUBJECT/examples_EXPERIMENT.mat``. Options:
    ``atlas`` + ``rois`` keep the voxels of those ROIs (names from ``meta.rois``); ``average_rois`` averages
    each ROI's voxels into one neuroid. Sentences are matched across participants by experiment and index.
    """
    opts = ctx.options
    files = [Path(f.path) for f in ctx.spec.files if f.role == "participant"]
    if not files:
        raise DataError(f"spec {ctx.spec.name}: list the participant files with role: participant")
    experiments = list(opts["experiments"])
    stim_tables: dict[str, pd.DataFrame] = {}
    blocks: dict[tuple[str, str], np.ndarray] = {}
    neuroid_parts: list[pd.DataFrame] = []
    for rel in files:
        subject = rel.parent.name or rel.stem
        experiment = rel.stem.replace("examples_", "")
        if experiment not in experiments or not ctx.wants(subject):
            continue
        path = ctx.path(rel)
        data = load_pereira_mat(path)
        table = _stimuli(data, experiment)
        if experiment in stim_tables:
            if stim_tables[experiment]["text"].tolist() != table["text"].tolist():
                raise DataError(f"{path}: keySentences differ from another participant's {experiment} file")
        else:
            stim_tables[experiment] = table
        values, neuroids = _select_voxels(ctx, data, subject, path)
        blocks[(subject, experiment)] = values
        if not any(p["subject"].iloc[0] == subject for p in neuroid_parts):
            neuroid_parts.append(neuroids)
        elif not neuroid_parts[[p["subject"].iloc[0] for p in neuroid_parts].index(subject)].equals(neuroids):
            raise DataError(f"{path}: participant {subject}'s voxels differ between experiments")
    if not stim_tables:
        raise DataError(f"spec {ctx.spec.name}: no participant file matches experiments {experiments}")
    stimuli = pd.concat([stim_tables[e] for e in experiments if e in stim_tables], ignore_index=True)
    neuroids = pd.concat(neuroid_parts, ignore_index=True)
    full = np.full((len(stimuli), len(neuroids)), np.nan)
    for (subject, experiment), values in blocks.items():
        rows = np.flatnonzero(stimuli["experiment"].to_numpy() == experiment)
        cols = np.flatnonzero(neuroids["subject"].to_numpy() == subject)
        full[np.ix_(rows, cols)] = values
    return ctx.dataset(stimuli, event_responses(full, stimuli["stimulus_id"], neuroids))


def _stimuli(data: dict[str, Any], experiment: str) -> pd.DataFrame:
    passage = data["passage"]
    table = pd.DataFrame(
        {
            "stimulus_id": [f"{experiment}.{i}" for i in range(len(passage))],
            "text": [" ".join(s.split()) for s in data["sentences"]],
            "context_id": [f"{experiment}.p{p:03d}" for p in passage],
            "position": 0,
            "passage_id": [f"{experiment}.p{p:03d}" for p in passage],
            "experiment": experiment,
        }
    )
    table["position"] = table.groupby("passage_id", sort=False).cumcount()
    table["sentence_position"] = table["position"] + 1
    if "category" in data:
        table["passage_topic"] = data["category"]
    if "passage_label" in data:
        table["passage_label"] = data["passage_label"]
    return table


def _select_voxels(
    ctx: ReadContext, data: dict[str, Any], subject: str, path: Path
) -> tuple[np.ndarray, pd.DataFrame]:
    opts = ctx.options
    examples = data["examples"]
    coords = np.asarray(_field(data["meta"], "colToCoord", path), dtype=int)
    if coords.shape != (examples.shape[1], 3):
        raise DataError(f"{path}: meta.colToCoord is {coords.shape}, expected ({examples.shape[1]}, 3)")
    if opts["atlas"] is None:
        if opts["rois"] or opts["average_rois"]:
            raise DataError(f"dataset {ctx.spec.name}: options rois/average_rois need option atlas")
        ids = [f"{subject}.v{j}" for j in range(examples.shape[1])]
        table = neuroid_table(
            ctx.spec, ids, [subject] * len(ids), x=coords[:, 0], y=coords[:, 1], z=coords[:, 2]
        )
        return examples, table
    masks = atlas_masks(data["meta"], path)
    if opts["atlas"] not in masks:
        raise DataError(f"{path}: no atlas {opts['atlas']!r}; atlases are {sorted(masks)}")
    names, numbers = masks[opts["atlas"]]
    if numbers.size != examples.shape[1]:
        raise DataError(
            f"{path}: atlas {opts['atlas']} mask has {numbers.size} voxels, examples {examples.shape[1]}"
        )
    wanted = list(opts["rois"]) if opts["rois"] else names
    unknown = [r for r in wanted if r not in names]
    if unknown:
        raise DataError(f"{path}: atlas {opts['atlas']} has no ROI {unknown}; ROIs are {names}")
    roi_of_voxel = np.asarray([names[n - 1] if 0 < n <= len(names) else "" for n in numbers])
    if opts["average_rois"]:
        values = np.column_stack([examples[:, roi_of_voxel == r].mean(axis=1) for r in wanted])
        ids = [f"{subject}.{r}" for r in wanted]
        counts = [int((roi_of_voxel == r).sum()) for r in wanted]
        empty = [r for r, c in zip(wanted, counts, strict=True) if c == 0]
        if empty:
            raise DataError(f"{path}: ROI(s) {empty} of atlas {opts['atlas']} have no voxel")
        return values, neuroid_table(ctx.spec, ids, [subject] * len(ids), wanted, n_voxels=counts)
    keep = np.flatnonzero(np.isin(roi_of_voxel, wanted))
    ids = [f"{subject}.v{j}" for j in keep]
    table = neuroid_table(
        ctx.spec,
        ids,
        [subject] * len(ids),
        roi_of_voxel[keep],
        x=coords[keep, 0],
        y=coords[keep, 1],
        z=coords[keep, 2],
    )
    return examples[:, keep], table
