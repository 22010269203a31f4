"""Naturalistic fMRI: word-level features to scans, hemodynamic delays, trimming at run boundaries.

* :func:`lanczos_resample` -- the Huth lab's Lanczos interpolation (``lanczosinterp2D``): each scan is a
  Lanczos-windowed sinc-weighted *sum* of the word features around it, cutoff = scan rate x
  ``cutoff_mult``. Call it per run/story, with word times and scan times on the same clock.
* :func:`sum_within_scans` / :func:`mean_within_scans` -- words binned into the scan interval
  ``[t_i, t_i + tr)`` that contains their onset (empty scans get 0).
* :func:`make_delays` -- FIR model: copies of X shifted by whole scans (default 1-4), zero-filled at the
  start of every run so no run sees another's stimulus.
* :func:`hrf_convolve` -- causal convolution of scan-level regressors with nilearn's Glover or SPM HRF
  sampled at the TR, within each run (identical to nilearn's ``compute_regressor`` with oversampling=1).
* :func:`trim_mask` / :func:`trim` -- drop the first/last scans of every run (onset transients, and the
  scans whose delayed features would come from outside the run).
* :func:`high_pass` -- slow drifts (DCT) and, optionally, run-onset transients (:func:`onset_terms`) regressed out
  per run.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.signal import lfilter

from lmbrain.errors import LmbrainError

#: Scans per block when building the Lanczos matrix (bounds its memory).
_LANCZOS_BLOCK = 256


def _as_2d(values: ArrayLike, n: int, name: str) -> tuple[np.ndarray, bool]:
    arr = np.asarray(values, dtype=np.float64)
    ravel = arr.ndim == 1
    if ravel:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] != n:
        raise LmbrainError(f"{name} must have {n} rows (one per time point), got shape {arr.shape}")
    return arr, ravel


def lanczos_kernel(t: np.ndarray, window: int = 3) -> np.ndarray:
    """The Lanczos kernel ``sinc(t) sinc(t / window)`` on |t| <= window (t in units of 1/cutoff)."""
    t = np.asarray(t, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        val = window * np.sin(np.pi * t) * np.sin(np.pi * t / window) / (np.pi**2 * t**2)
    val[t == 0] = 1.0
    val[np.abs(t) > window] = 0.0
    return val


def lanczos_resample(
    values: ArrayLike, times: ArrayLike, scan_times: Any, window: int = 3, cutoff_mult: float = 1.0
) -> np.ndarray:
    """Word features (n_words, n_features) at ``times`` to scans at ``scan_times`` (Huth lab Lanczos)."""
    times = np.asarray(times, dtype=np.float64)
    scan_times = np.asarray(scan_times, dtype=np.float64)
    X, ravel = _as_2d(values, len(times), "values")
    if len(scan_times) < 2:
        raise LmbrainError("lanczos_resample needs at least 2 scan times (the cutoff is the scan rate)")
    if window < 1 or cutoff_mult <= 0:
        raise LmbrainError(f"window must be >= 1 and cutoff_mult > 0, got {window}, {cutoff_mult}")
    cutoff = 1.0 / np.mean(np.diff(scan_times)) * cutoff_mult
    order = np.argsort(times, kind="stable")
    times, X = times[order], X[order]
    half = window / cutoff
    out = np.zeros((len(scan_times), X.shape[1]))
    for b0 in range(0, len(scan_times), _LANCZOS_BLOCK):
        block = scan_times[b0 : b0 + _LANCZOS_BLOCK]
        lo = np.searchsorted(times, block.min() - half, side="left")
        hi = np.searchsorted(times, block.max() + half, side="right")
        if hi > lo:
            kernel = lanczos_kernel(cutoff * (block[:, None] - times[None, lo:hi]), window)
            out[b0 : b0 + len(block)] = kernel @ X[lo:hi]
    return out[:, 0] if ravel else out


def _scan_index(times: np.ndarray, scan_times: np.ndarray, tr: float | None) -> np.ndarray:
    """Index of the scan interval [t_i, t_i + tr) holding each time; -1 outside all scans."""
    if tr is None:
        if len(scan_times) < 2:
            raise LmbrainError("give tr when there is a single scan time")
        tr = float(np.median(np.diff(scan_times)))
    if np.any(np.diff(scan_times) <= 0):
        raise LmbrainError("scan_times must be strictly increasing")
    idx = np.searchsorted(scan_times, times, side="right") - 1
    inside = (idx >= 0) & (times < scan_times[np.clip(idx, 0, None)] + tr)
    return np.where(inside, idx, -1)


def sum_within_scans(values: ArrayLike, times: ArrayLike, scan_times: Any, tr: float | None = None,
                     mean: bool = False) -> np.ndarray:
    """Sum (or mean) of the word features whose time falls in each scan's ``[t, t + tr)``."""
    times = np.asarray(times, dtype=np.float64)
    scan_times = np.asarray(scan_times, dtype=np.float64)
    X, ravel = _as_2d(values, len(times), "values")
    idx = _scan_index(times, scan_times, tr)
    keep = idx >= 0
    out = np.zeros((len(scan_times), X.shape[1]))
    np.add.at(out, idx[keep], X[keep])
    if mean:
        counts = np.bincount(idx[keep], minlength=len(scan_times))
        out[counts > 0] /= counts[counts > 0, None]
    return out[:, 0] if ravel else out


def mean_within_scans(values: ArrayLike, times: ArrayLike, scan_times: Any, tr: float | None = None) -> np.ndarray:
    """Mean of the word features in each scan's ``[t, t + tr)`` (0 for scans without words)."""
    return sum_within_scans(values, times, scan_times, tr=tr, mean=True)


def _run_spans(runs: ArrayLike, n: int) -> list[tuple[int, int]]:
    """(start, stop) of every run, in order (each run must be contiguous)."""
    if runs is None:
        return [(0, n)]
    runs = np.asarray(runs)
    if runs.shape != (n,):
        raise LmbrainError(f"runs must have one label per sample ({n}), got shape {runs.shape}")
    starts = np.concatenate([[0], np.flatnonzero(runs[1:] != runs[:-1]) + 1])
    if len(np.unique(runs[starts])) != len(starts):
        raise LmbrainError("each run must be one contiguous stretch of samples")
    stops = [*starts[1:].tolist(), n]
    return list(zip(starts.tolist(), stops, strict=True))


def make_delays(X: ArrayLike, delays: tuple[int, ...] = (1, 2, 3, 4), runs: ArrayLike | None = None) -> np.ndarray:
    """FIR design: [X shifted by d scans for d in delays] side by side (n, n_features x n_delays)."""
    X = np.asarray(X)
    ravel = X.ndim == 1
    X2 = X[:, None] if ravel else X
    n = X2.shape[0]
    spans = _run_spans(runs, n)
    out = np.zeros((n, X2.shape[1] * len(delays)), dtype=np.result_type(X2.dtype, np.float32))
    for j, d in enumerate(delays):
        cols = slice(j * X2.shape[1], (j + 1) * X2.shape[1])
        for a, b in spans:
            if d >= 0 and d < b - a:
                out[a + d : b, cols] = X2[a : b - d]
            elif d < 0 and -d < b - a:
                out[a : b + d, cols] = X2[a - d : b]
    return out


def hrf(tr: float, hrf_model: str = "glover", time_length: float = 32.0) -> np.ndarray:
    """nilearn's HRF (``glover`` or ``spm``) sampled every ``tr`` seconds from onset; sums to 1."""
    from nilearn.glm.first_level.hemodynamic_models import glover_hrf, spm_hrf

    models = {"glover": glover_hrf, "spm": spm_hrf}
    if hrf_model not in models:
        raise LmbrainError(f"unknown hrf_model {hrf_model!r}; expected one of {sorted(models)}")
    if tr <= 0:
        raise LmbrainError(f"tr must be > 0, got {tr}")
    return models[hrf_model](tr, oversampling=1, time_length=time_length, onset=0.0)


def hrf_convolve(X: ArrayLike, tr: float, hrf_model: str = "glover", runs: ArrayLike | None = None,
                 time_length: float = 32.0) -> np.ndarray:
    """Scan-level regressors convolved causally with the HRF within each run (same shape as X)."""
    X = np.asarray(X, dtype=np.float64)
    kernel = hrf(tr, hrf_model, time_length)
    out = np.empty_like(X)
    for a, b in _run_spans(runs, X.shape[0]):
        out[a:b] = lfilter(kernel, [1.0], X[a:b], axis=0)
    return out


def trim_mask(runs: ArrayLike, start: int, end: int, n_samples: int | None = None) -> np.ndarray:
    """Boolean mask keeping all but the first ``start`` and last ``end`` samples of every run."""
    if start < 0 or end < 0:
        raise LmbrainError(f"start and end must be >= 0, got {start}, {end}")
    n = len(runs) if runs is not None else n_samples
    if n is None:
        raise LmbrainError("give runs or n_samples")
    keep = np.zeros(n, dtype=bool)
    for a, b in _run_spans(runs, n):
        keep[a + start : max(a + start, b - end)] = True
    return keep


def trim(X: ArrayLike, runs: ArrayLike, start: int, end: int) -> np.ndarray:
    """Rows of X without the first ``start`` and last ``end`` samples of every run."""
    X = np.asarray(X)
    return X[trim_mask(runs, start, end, n_samples=X.shape[0])]


def onset_terms(n_scans: int, tr: float, onset_s: Any) -> np.ndarray | None:
    """Run-onset transients (n_scans, len(onset_s)): ``exp(-t / tau)`` from the run's first scan for every time
    constant ``tau`` in ``onset_s`` (seconds); None without time constants."""
    taus = np.asarray(onset_s if onset_s is not None else (), dtype=np.float64).ravel()
    if not len(taus):
        return None
    if np.any(~np.isfinite(taus)) or np.any(taus <= 0):
        raise LmbrainError(f"onset time constants must be finite and > 0 seconds, got {taus.tolist()}")
    return np.exp(-np.arange(n_scans)[:, None] * float(tr) / taus[None, :])


def high_pass(X: ArrayLike, tr: float, cutoff_s: float | None, runs: ArrayLike | None = None,
              onset_s: Any = ()) -> np.ndarray:
    """Remove slow drifts per run with a cosine (DCT) basis of cut-off ``cutoff_s`` seconds (SPM's filter,
    nilearn's ``signal.clean``) and, with ``onset_s``, transients that decay from the run's first scan with those
    time constants (:func:`onset_terms`, regressed out with the cosines); neither leaves X as it is (float64).

    The cosines cannot follow a transient that starts at the first scan: their regression leaves its sharp
    start in place and rings through the rest of the run. Such transients are in the responses (the scanner's
    and the sound's onset, seconds) and in a language model's features (a model reading a story from its first
    word: an untrained transformer's states drift with the context length for minutes, a trained one's first
    token is an attention sink), and only the first test block of a single run contains them.
    """
    from nilearn.signal import clean, create_cosine_drift

    X = np.asarray(X, dtype=np.float64)
    if onset_terms(1, tr, onset_s) is None:
        if not cutoff_s:
            return X
        out = np.empty_like(X)
        for start, stop in _run_spans(runs, len(X)):
            out[start:stop] = clean(X[start:stop], detrend=False, standardize=None, filter="cosine",
                                    high_pass=1.0 / cutoff_s, t_r=float(tr), ensure_finite=True)
        return out
    out = np.empty_like(X)
    for start, stop in _run_spans(runs, len(X)):
        n = stop - start
        terms = [onset_terms(n, tr, onset_s)]
        if cutoff_s:  # the cosines of filter="cosine" (without the constant), given as confounds: nilearn would
            # otherwise keep only the onset terms wherever one of them correlates above 0.9 with a cosine
            terms.append(create_cosine_drift(1.0 / cutoff_s, np.arange(n) * float(tr))[:, :-1])
        out[start:stop] = clean(X[start:stop], detrend=False, standardize=None, filter=False,
                                confounds=np.hstack(terms), ensure_finite=True)
    return out


class ScanFeatures:
    """Scikit-learn-style transformer: stimulus- or scan-level features to scan-level regressors.

    Word-level rows (one per word onset) are resampled to the scans (``"lanczos"``, ``"sum"`` or ``"mean"``);
    scan-level rows are taken as they are. Both are then high-passed per run (DCT, ``high_pass_s``, with the
    run-onset transients of time constants ``onset_s``: :func:`high_pass`) and, when ``delays`` is non-empty,
    expanded into FIR copies shifted by those numbers of scans within each run.
    Stateless (``fit`` learns nothing: the filter and the delays are fixed, so applying it to the whole
    series before cross-validation leaks nothing).
    """

    def __init__(self, scan_times: Any, tr: float, runs: ArrayLike | None = None, onsets: ArrayLike | None = None,
                 resample: str = "lanczos",
                 high_pass_s: float | None = 128.0, delays: tuple[int, ...] = (1, 2, 3, 4),
                 onset_s: tuple[float, ...] = ()) -> None:
        self.scan_times = scan_times
        self.tr = tr
        self.runs = runs
        self.onsets = onsets
        self.resample = resample
        self.high_pass_s = high_pass_s
        self.delays = delays
        self.onset_s = onset_s

    def fit(self, X: ArrayLike, y: ArrayLike | None = None) -> ScanFeatures:
        """Nothing to learn; returns self."""
        return self

    def to_scans(self, X: ArrayLike) -> np.ndarray:
        """Rows as scans: word rows resampled onto the scan clock, scan rows as they are."""
        X = np.asarray(X, dtype=np.float64)
        times = np.asarray(self.scan_times, dtype=np.float64)
        if X.shape[0] == len(times):
            return X
        if self.onsets is None or X.shape[0] != len(self.onsets):
            raise ValueError(f"{X.shape[0]} rows are neither one per scan ({len(times)}) nor one per word onset")
        if self.resample == "lanczos":
            return lanczos_resample(X, self.onsets, times)
        if self.resample == "sum":
            return sum_within_scans(X, self.onsets, times, tr=self.tr)
        if self.resample == "mean":
            return mean_within_scans(X, self.onsets, times, tr=self.tr)
        raise ValueError(f"unknown resampling {self.resample!r}; expected lanczos, sum or mean")

    def transform(self, X: ArrayLike) -> np.ndarray:
        """Scan-level, high-passed and (with ``delays``) FIR-delayed features."""
        scans = high_pass(self.to_scans(X), self.tr, self.high_pass_s, self.runs, self.onset_s)
        if not self.delays:
            return scans
        return make_delays(scans, tuple(self.delays), runs=self.runs)

    def fit_transform(self, X: ArrayLike, y: ArrayLike | None = None) -> np.ndarray:
        """``fit(X).transform(X)``."""
        return self.fit(X, y).transform(X)
