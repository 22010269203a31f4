"""Stimulus-to-scan alignment: canonical HRF, word-rate regressors, and a lag check against a reference."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.signal import fftconvolve
from scipy.stats import gamma

from lmbrain.errors import DataError


def spm_hrf(dt: float, *, length: float = 32.0) -> np.ndarray:
    """SPM's canonical double-gamma HRF (peak 6 s, undershoot 16 s, ratio 1/6) sampled every ``dt`` s."""
    t = np.arange(0.0, length, dt)
    h = gamma.pdf(t, 6.0) - gamma.pdf(t, 16.0) / 6.0
    return h / h.sum()


def event_regressor(
    onsets: np.ndarray,
    n_scans: int,
    tr: float,
    *,
    weights: np.ndarray | None = None,
    dt: float = 0.01,
    shift: float = 0.0,
) -> np.ndarray:
    """Impulses at ``onsets`` (scan-clock seconds) convolved with the HRF, sampled at ``k * tr + shift``."""
    onsets = np.asarray(onsets, dtype=float)
    weights = np.ones_like(onsets) if weights is None else np.asarray(weights, dtype=float)
    horizon = n_scans * tr + abs(shift) + 1.0
    lead = max(0.0, -float(onsets.min(initial=0.0))) + 1.0  # room for onsets before scan 0
    grid = np.zeros(int(np.ceil((horizon + lead) / dt)) + 1)
    idx = np.round((onsets + lead) / dt).astype(int)
    keep = (idx >= 0) & (idx < grid.size)
    np.add.at(grid, idx[keep], weights[keep])
    conv = fftconvolve(grid, spm_hrf(dt))[: grid.size]
    times = np.arange(n_scans) * tr + shift + lead
    return np.interp(times, np.arange(grid.size) * dt, conv)


@dataclass
class AlignmentCheck:
    """Correlation of a stimulus-derived regressor with a reference at each tested lag (in scans)."""

    chosen_lag: int
    best_lag: int
    correlations: dict[int, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when the chosen lag is the best one."""
        return self.chosen_lag == self.best_lag

    def as_dict(self) -> dict[str, object]:
        """A plain mapping for reports."""
        return {
            "chosen_lag_scans": self.chosen_lag,
            "best_lag_scans": self.best_lag,
            "correlations": {int(k): round(float(v), 4) for k, v in self.correlations.items()},
        }


def check_lag(
    onsets: np.ndarray,
    reference: np.ndarray,
    tr: float,
    *,
    lags: Sequence[int] = tuple(range(-5, 6)),
    chosen_lag: int = 0,
) -> AlignmentCheck:
    """Word rate from ``onsets`` (scan clock) shifted by each lag, HRF-convolved, vs ``reference`` per scan.

    A lag of ``+k`` scans means the stimulus started ``k`` scans later than assumed.
    """
    reference = np.asarray(reference, dtype=float)
    if reference.ndim != 1 or reference.size < 3 or not np.isfinite(reference).all():
        raise DataError("alignment reference must be a finite 1-D series of at least 3 scans")
    corrs = {}
    for lag in lags:
        predicted = event_regressor(np.asarray(onsets) + lag * tr, reference.size, tr)
        corrs[int(lag)] = float(np.corrcoef(predicted, reference)[0, 1])
    best = max(corrs, key=lambda k: corrs[k])
    return AlignmentCheck(chosen_lag=chosen_lag, best_lag=best, correlations=corrs)
