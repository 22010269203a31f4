"""Simulated datasets with known ground truth: responses = weighted mix of feature sets + noise at an SNR.

Each feature set ``k`` (a stimuli x d_k matrix) drives every neuroid through random coefficients; its
contribution is standardised and scaled so that, for uncorrelated feature sets, it explains a share
``weight_k / sum(weights)`` of the signal variance. Noise has variance ``1 / snr`` relative to the unit
signal, so the best achievable R^2 is ``snr / (1 + snr)``. Everything is seeded. ``dataset.meta
["ground_truth"]`` holds the weights, SNR, expected R^2, coefficients and the noise-free signal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from lmbrain.data.alignment import event_regressor
from lmbrain.data.dataset import Dataset
from lmbrain.data.readers.common import contiguous_blocks
from lmbrain.errors import DataError


def _standardise(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=0)
    sd = x.std(axis=0)
    sd[sd == 0] = 1.0
    return x / sd


def mix_features(
    features: Mapping[str, np.ndarray],
    weights: Mapping[str, float] | None,
    n_neuroids: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, float]]:
    """Unit-variance signal (samples x neuroids) mixing the feature sets, coefficients, normalised weights."""
    if not features:
        raise DataError("simulation needs at least one feature set")
    n = {np.asarray(x).shape[0] for x in features.values()}
    if len(n) != 1:
        raise DataError(
            f"feature sets differ in number of samples: { {k: np.shape(v) for k, v in features.items()} }"
        )
    weights = dict(weights) if weights is not None else {k: 1.0 for k in features}
    unknown = sorted(set(weights) - set(features))
    if unknown:
        raise DataError(
            f"weights given for unknown feature set(s) {unknown}; feature sets: {sorted(features)}"
        )
    if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise DataError(f"weights must be non-negative with a positive sum, got {weights}")
    total = sum(weights.values())
    shares = {k: weights.get(k, 0.0) / total for k in features}
    signal = np.zeros((n.pop(), n_neuroids))
    coefs = {}
    for name, x in features.items():
        x = np.asarray(x, dtype=float)
        x = x[:, None] if x.ndim == 1 else x
        if not np.isfinite(x).all():
            raise DataError(f"feature set {name!r} has missing or infinite values")
        beta = rng.normal(size=(x.shape[1], n_neuroids))
        coefs[name] = beta
        if shares[name] > 0:
            signal += np.sqrt(shares[name]) * _standardise(_standardise(x) @ beta)
    return _standardise(signal), coefs, shares


def _noise(
    shape: tuple[int, int],
    snr: float,
    rng: np.random.Generator,
    *,
    groups: np.ndarray | None = None,
    group_corr: float = 0.0,
    ar: float = 0.0,
) -> np.ndarray:
    if snr <= 0:
        raise DataError(f"snr must be positive, got {snr}")
    if not 0 <= group_corr < 1 or not 0 <= ar < 1:
        raise DataError("passage_autocorr and noise_ar must be in [0, 1)")
    e = rng.normal(size=shape)
    if ar > 0:
        for t in range(1, shape[0]):
            e[t] = ar * e[t - 1] + np.sqrt(1 - ar**2) * e[t]
    if group_corr > 0 and groups is not None:
        _, index = np.unique(groups, return_inverse=True)
        shared = rng.normal(size=(index.max() + 1, shape[1]))[index]
        e = np.sqrt(1 - group_corr) * e + np.sqrt(group_corr) * shared
    return e / np.sqrt(snr)


def _neuroid_coords(n_subjects: int, n_neuroids: int) -> dict[str, tuple[str, np.ndarray]]:
    subj = np.repeat([f"sim{s + 1:02d}" for s in range(n_subjects)], n_neuroids)
    ids = [f"{s}.n{j}" for s, j in zip(subj, np.tile(np.arange(n_neuroids), n_subjects), strict=True)]
    return {
        "neuroid_id": ("neuroid", np.asarray(ids)),
        "subject": ("neuroid", subj),
        "roi": ("neuroid", np.asarray(["simulated"] * len(ids))),
        "network": ("neuroid", np.asarray(["simulated"] * len(ids))),
    }


def simulate_sentences(
    features: Mapping[str, np.ndarray],
    weights: Mapping[str, float] | None = None,
    *,
    stimuli: pd.DataFrame | None = None,
    passage_size: int = 4,
    n_neuroids: int = 20,
    n_subjects: int = 1,
    snr: float = 1.0,
    passage_autocorr: float = 0.0,
    seed: int = 0,
    name: str = "simulated_sentences",
) -> Dataset:
    """A sentence-level (event) dataset; passages of ``passage_size`` unless ``stimuli`` gives its own.

    ``passage_autocorr`` is the correlation of the noise of two sentences of one passage.
    """
    rng = np.random.default_rng(seed)
    n = np.asarray(next(iter(features.values()))).shape[0]
    if stimuli is None:
        passage = np.arange(n) // passage_size
        stimuli = pd.DataFrame(
            {
                "stimulus_id": [f"s{i:05d}" for i in range(n)],
                "text": [f"Simulated sentence {i}." for i in range(n)],
                "context_id": [f"p{p:04d}" for p in passage],
                "position": np.arange(n) % passage_size,
                "passage_id": [f"p{p:04d}" for p in passage],
                "sentence_position": np.arange(n) % passage_size + 1,
            }
        )
    elif len(stimuli) != n:
        raise DataError(f"stimuli has {len(stimuli)} rows but the features have {n}")
    split = "passage_id" if "passage_id" in stimuli.columns else "context_id"
    total = n_neuroids * n_subjects
    signal, coefs, shares = mix_features(features, weights, total, rng)
    noise = _noise((n, total), snr, rng, groups=stimuli[split].to_numpy(), group_corr=passage_autocorr)
    responses = xr.DataArray(
        signal + noise,
        dims=("sample", "neuroid"),
        coords={
            "stimulus_id": ("sample", stimuli["stimulus_id"].astype(str).to_numpy()),
            **_neuroid_coords(n_subjects, n_neuroids),
        },
    )
    truth = _truth(shares, snr, coefs, signal, passage_autocorr=passage_autocorr)
    return Dataset(
        name=name,
        modality="fmri_sentences",
        stimulus_unit="sentence",
        split_unit=split,
        stimuli=stimuli.reset_index(drop=True),
        responses=responses,
        meta={"ground_truth": truth},
        citation="simulated",
        licence="CC0",
    )


def _word_onsets(
    onsets: Sequence[float] | None, n_words: int, n_scans: int, tr: float, rng: np.random.Generator
) -> np.ndarray:
    """Word onsets in seconds: the given ones, else gamma-distributed gaps drawn from ``rng``; checked."""
    if onsets is None:
        gaps = rng.gamma(2.0, 0.15, size=n_words)
        onsets_arr = 1.0 + np.cumsum(gaps) - gaps[0]
        onsets_arr *= min(1.0, (n_scans * tr - 20.0) / max(onsets_arr[-1], 1e-9))
    else:
        onsets_arr = np.asarray(onsets, dtype=float)
    if onsets_arr.shape != (n_words,):
        raise DataError(f"{len(onsets_arr)} onsets for {n_words} words")
    if onsets_arr.min() < 0 or onsets_arr.max() > n_scans * tr:
        raise DataError(f"word onsets must lie within the {n_scans} scans x TR {tr} s")
    return onsets_arr


def _scan_features(
    word_features: Mapping[str, np.ndarray], onsets: np.ndarray, n_scans: int, tr: float
) -> dict[str, np.ndarray]:
    """Each word feature set convolved with the HRF at the word onsets and sampled at the scans."""
    scan_features = {}
    for key, x in word_features.items():
        x = np.asarray(x, dtype=float)
        x = x[:, None] if x.ndim == 1 else x
        scan_features[key] = np.column_stack(
            [event_regressor(onsets, n_scans, tr, weights=x[:, j]) for j in range(x.shape[1])]
        )
    return scan_features


def _word_stimuli(onsets: np.ndarray, texts: Sequence[str] | None) -> pd.DataFrame:
    """The word table of one story: ids, texts (given or ``wordN``), positions, onsets and offsets."""
    n_words = len(onsets)
    offsets = np.append(onsets[1:], onsets[-1] + 0.3)
    offsets = np.minimum(offsets, onsets + 0.5)
    return pd.DataFrame(
        {
            "stimulus_id": [f"w{i:05d}" for i in range(n_words)],
            "text": list(texts) if texts is not None else [f"word{i}" for i in range(n_words)],
            "context_id": "story",
            "position": np.arange(n_words),
            "onset": onsets,
            "offset": offsets,
        }
    )


def _scan_responses(values: np.ndarray, tr: float, n_blocks: int, n_subjects: int, n_neuroids: int) -> xr.DataArray:
    """A (scan x neuroid) response array with scan, time, run and block coordinates."""
    n_scans = values.shape[0]
    return xr.DataArray(
        values,
        dims=("sample", "neuroid"),
        coords={
            "scan": ("sample", np.arange(n_scans)),
            "time": ("sample", np.arange(n_scans) * tr),
            "run": ("sample", np.zeros(n_scans, dtype=int)),
            "block": ("sample", contiguous_blocks(n_scans, n_blocks)),
            **_neuroid_coords(n_subjects, n_neuroids),
        },
    )


def simulate_timeseries(
    word_features: Mapping[str, np.ndarray],
    weights: Mapping[str, float] | None = None,
    *,
    onsets: Sequence[float] | None = None,
    texts: Sequence[str] | None = None,
    n_scans: int = 300,
    tr: float = 2.0,
    n_blocks: int = 10,
    n_neuroids: int = 10,
    n_subjects: int = 1,
    snr: float = 1.0,
    noise_ar: float = 0.3,
    seed: int = 0,
    name: str = "simulated_timeseries",
) -> Dataset:
    """Time series: word features convolved with the HRF, sampled at scans, mixed, plus AR(1) noise."""
    rng = np.random.default_rng(seed)
    n_words = np.asarray(next(iter(word_features.values()))).shape[0]
    onsets_arr = _word_onsets(onsets, n_words, n_scans, tr, rng)
    scan_features = _scan_features(word_features, onsets_arr, n_scans, tr)
    total = n_neuroids * n_subjects
    signal, coefs, shares = mix_features(scan_features, weights, total, rng)
    noise = _noise((n_scans, total), snr, rng, ar=noise_ar)
    stimuli = _word_stimuli(onsets_arr, texts)
    responses = _scan_responses(signal + noise, tr, n_blocks, n_subjects, n_neuroids)
    truth = _truth(shares, snr, coefs, signal, noise_ar=noise_ar)
    truth["scan_features"] = scan_features
    return Dataset(
        name=name,
        modality="fmri_timeseries",
        stimulus_unit="word",
        split_unit="block",
        stimuli=stimuli,
        responses=responses,
        tr=tr,
        meta={"ground_truth": truth},
        citation="simulated",
        licence="CC0",
    )


def _truth(
    shares: dict[str, float], snr: float, coefs: dict[str, np.ndarray], signal: np.ndarray, **extra: Any
) -> dict[str, Any]:
    return {
        "weights": shares,
        "snr": snr,
        "expected_r2": snr / (1.0 + snr),
        "coefficients": coefs,
        "signal": signal,
        **extra,
    }
