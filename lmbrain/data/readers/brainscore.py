"""Brain-Score netCDF assemblies (Pereira2018, Blank2014, Fedorenko2016, Tuckute2024) via xarray."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from lmbrain.data.dataset import Dataset
from lmbrain.data.readers.common import check_unique, event_responses, neuroid_table, normalise_token
from lmbrain.data.registry import ReadContext, register_reader
from lmbrain.errors import DataError

_SUBJECT_COORDS = ("subject", "subject_UID", "subject_id", "target_UID", "UID")
_TEXT_COORDS = ("sentence", "word", "stimulus", "text")


def read_assembly(path: Path, *, variable: str | None = None, time_bins: str = "mean") -> xr.DataArray:
    """Open a Brain-Score assembly as a ``(sample, neuroid)`` DataArray (time bins averaged or squeezed)."""
    try:
        ds = xr.open_dataset(path)
    except Exception as err:  # netCDF/HDF5 libraries raise many types
        raise DataError(f"{path}: not a readable netCDF assembly ({err})") from None
    with ds:
        names = list(ds.data_vars)
        if variable is None:
            variable = "data" if "data" in names else (names[0] if len(names) == 1 else None)
        if variable is None or variable not in names:
            raise DataError(f"{path}: no data variable {variable!r}; variables are {names}")
        arr = ds[variable].load()
    if "presentation" not in arr.dims or "neuroid" not in arr.dims:
        raise DataError(f"{path}: assembly dims {arr.dims} lack 'presentation' and 'neuroid'")
    for dim in [d for d in arr.dims if d not in ("presentation", "neuroid")]:
        if arr.sizes[dim] == 1:
            arr = arr.isel({dim: 0}, drop=True)
        elif time_bins == "mean":
            arr = arr.mean(dim, keep_attrs=True)
        else:
            raise DataError(f"{path}: assembly has {arr.sizes[dim]} {dim!r} bins; set time_bins: mean")
    arr = arr.transpose("presentation", "neuroid").rename(presentation="sample")
    return arr.drop_vars([c for c in arr.coords if arr[c].dims not in (("sample",), ("neuroid",))])


def _coord(arr: xr.DataArray, name: str, path: Path) -> np.ndarray:
    if name not in arr.coords:
        raise DataError(f"{path}: assembly has no coordinate {name!r}; coordinates are {sorted(arr.coords)}")
    return np.asarray(arr[name].values)


def _first_present(arr: xr.DataArray, names: tuple[str, ...], dim: str) -> str | None:
    for name in names:
        if name in arr.coords and arr[name].dims == (dim,):
            return name
    return None


def _select(arr: xr.DataArray, select: dict[str, Any], path: Path) -> xr.DataArray:
    for coord, wanted in select.items():
        values = _coord(arr, coord, path)
        wanted_list = [str(w) for w in (wanted if isinstance(wanted, list) else [wanted])]
        mask = np.isin(values.astype(str), wanted_list)
        if not mask.any():
            raise DataError(
                f"{path}: no value of {coord!r} in {wanted_list}; "
                f"values are {sorted(set(values.astype(str)))}"
            )
        dim = arr[coord].dims[0]
        arr = arr.isel({dim: np.flatnonzero(mask)})
    return arr


@register_reader(
    "brainscore_assembly",
    options={
        "variable": None,
        "text": None,
        "context": None,
        "position": None,
        "subject": None,
        "roi": None,
        "select": {},
        "time_bins": "mean",
        "keep_coords": [],
    },
)
def read_brainscore(ctx: ReadContext) -> Dataset:
    """Any Brain-Score event assembly: one sample per stimulus, named coordinates mapped by options."""
    path = ctx.role("assembly")
    opts = ctx.options
    arr = read_assembly(path, variable=opts["variable"], time_bins=opts["time_bins"])
    arr = _select(arr, dict(opts["select"]), path)
    text_name = opts["text"] or _first_present(arr, _TEXT_COORDS, "sample")
    subject_name = opts["subject"] or _first_present(arr, _SUBJECT_COORDS, "neuroid")
    if text_name is None:
        raise DataError(f"{path}: no text coordinate (tried {_TEXT_COORDS}); set option 'text'")
    if subject_name is None:
        raise DataError(f"{path}: no subject coordinate (tried {_SUBJECT_COORDS}); set option 'subject'")
    if ctx.subjects is not None:
        keep = np.isin(_coord(arr, subject_name, path).astype(str), ctx.subjects)
        arr = arr.isel(neuroid=np.flatnonzero(keep))
    ids = _coord(arr, "stimulus_id", path).astype(str)
    stimuli = pd.DataFrame({"stimulus_id": ids, "text": _coord(arr, text_name, path).astype(str)})
    check_unique(stimuli["stimulus_id"], what="stimulus_id", where=str(path))
    if opts["context"]:
        stimuli["context_id"] = _coord(arr, opts["context"], path).astype(str)
    else:
        stimuli["context_id"] = stimuli["stimulus_id"]
    if opts["position"]:
        stimuli["position"] = _coord(arr, opts["position"], path).astype(int)
    else:
        stimuli["position"] = stimuli.groupby("context_id", sort=False).cumcount().to_numpy()
    for name in opts["keep_coords"] or [c for c in arr.coords if arr[c].dims == ("sample",)]:
        if name not in stimuli.columns and name not in ("stimulus_id",):
            stimuli[name] = _coord(arr, name, path)
    roi_name = opts["roi"] or _first_present(arr, ("roi", "fROI_area", "region"), "neuroid")
    nid = _coord(arr, "neuroid_id", path) if "neuroid_id" in arr.coords else np.arange(arr.sizes["neuroid"])
    neuroids = neuroid_table(
        ctx.spec, nid, _coord(arr, subject_name, path), _coord(arr, roi_name, path) if roi_name else None
    )
    responses = event_responses(arr.values, stimuli["stimulus_id"], neuroids)
    return ctx.dataset(stimuli, responses)


@register_reader("fedorenko2016", options={})
def read_fedorenko2016(ctx: ReadContext) -> Dataset:
    """Fedorenko et al. 2016 ECoG: 416 words x 97 electrodes, texts from the stimulus-set sentences."""
    path = ctx.role("assembly")
    arr = read_assembly(path)
    sentences_path = ctx.role("stimulus_set")
    sentences = pd.read_csv(sentences_path, keep_default_na=False)
    if "Sentences" not in sentences.columns:
        raise DataError(f"{sentences_path}: no column 'Sentences' (columns: {list(sentences.columns)})")
    sentence_id = _coord(arr, "sentence_id", path).astype(int)
    word_num = _coord(arr, "word_num", path).astype(int)
    words = _coord(arr, "word", path).astype(str)
    tokens = [str(s).split() for s in sentences["Sentences"]]
    text = []
    for row, (sid, wnum, word) in enumerate(zip(sentence_id, word_num, words, strict=True)):
        if not 0 <= sid < len(tokens):
            raise DataError(f"{path}: row {row}: sentence_id {sid} has no sentence in {sentences_path}")
        if not 0 <= wnum < len(tokens[sid]):
            raise DataError(
                f"{path}: row {row}: word_num {wnum} beyond the {len(tokens[sid])} words of sentence {sid} "
                f"({sentences['Sentences'].iloc[sid]!r}) in {sentences_path}"
            )
        token = tokens[sid][wnum]
        if normalise_token(token) != normalise_token(word):
            raise DataError(
                f"{path}: row {row} (sentence_id {sid}, word_num {wnum}): "
                f"assembly word {word!r} does not match "
                f"token {token!r} of {sentences_path} row {sid}"
            )
        text.append(token)
    stimuli = pd.DataFrame(
        {
            "stimulus_id": _coord(arr, "stimulus_id", path).astype(str),
            "text": text,
            "context_id": [f"sentence_{s:02d}" for s in sentence_id],
            "position": word_num,
            "sentence_id": sentence_id,
            "word_position": word_num,
            "word": words,
        }
    )
    check_unique(stimuli["stimulus_id"], what="stimulus_id", where=str(path))
    subjects = _coord(arr, "subject_UID", path).astype(str)
    keep = np.flatnonzero([ctx.wants(s) for s in subjects])
    neuroids = neuroid_table(
        ctx.spec,
        _coord(arr, "neuroid_id", path)[keep],
        subjects[keep],
        electrode=_coord(arr, "electrode", path)[keep],
    )
    responses = event_responses(arr.values[:, keep], stimuli["stimulus_id"], neuroids)
    return ctx.dataset(stimuli, responses)
