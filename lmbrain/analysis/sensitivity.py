"""What unique LLM contribution a study could have seen: known signals implanted into its real responses.

A control analysis that finds no unique LLM variance has to say how large a unique contribution it could have
detected. For a joint unit (the LLM with a control set) :func:`implant_signals` builds unit-variance signals from
the study's own LLM features: random directions of the z-scored layer, residualised on the controls and the
intercept over all rows, so that they are unique to the LLM by construction. :func:`implant` adds ``c·s`` to every
target with ``c² = u / (1 − u) · Var(y) / Var(s)``: the signal's share of the implanted response's variance is the
implanted unique R² ``u`` (exact where ``s`` is uncorrelated with the response, approximate otherwise). The study
refits its joint and controls-alone models on the implanted responses (:mod:`lmbrain.study.sensitivity`) and
records, per target:

* the **recovered** unique R²: unique(implanted) − (1 − u) · unique(real) (the real unique part, diluted by the
  larger variance of the implanted response, is not credited to the implant);
* the paired sign-flip p of the implanted responses' unique R² (its power at the study's α);
* the **learnable limit** (:func:`limit_gains`): the recovery of a ridge that knows where the signal lives (the
  layer's features residualised on the controls, fitted to the responses' residuals on the controls) at its
  best common penalty -- what these samples allow at best (``benchmarks/compare_joint.py`` defines the same limit
  on simulations).

:func:`detectable` reads the smallest unique R² detected with a given power off the levels' power curve.
"""

from __future__ import annotations

import numpy as np

#: implanted unique R² levels (share of the implanted response's variance)
DEFAULT_LEVELS = (0.005, 0.02, 0.05)
#: random directions (replications) per level
DEFAULT_REPLICATIONS = 10
#: the power at which the detectable unique R² is read
TARGET_POWER = 0.8


class NothingToImplantError(ValueError):
    """The controls span every direction of the LLM features (e.g. OASM at a near-identity σ): no signal can be
    unique to the LLM, so the design has no sensitivity to measure."""


def implant_signals(X: np.ndarray, controls: np.ndarray, n_signals: int, seed: int = 0) -> np.ndarray:
    """(n_samples, n_signals) unit-variance signals in the span of ``X`` (n_samples, n_features), orthogonal to the
    intercept and the columns of ``controls`` (n_samples, n_controls) over all rows: random Gaussian directions of
    the z-scored features (most of their variance along the features' leading components), residualised."""
    X = np.asarray(X, dtype=np.float64)
    sd = X.std(0)
    Z = (X - X.mean(0)) / np.where(sd > 0, sd, 1.0)
    rng = np.random.default_rng(seed)
    S = Z @ rng.standard_normal((X.shape[1], n_signals))
    C = np.column_stack([np.ones(len(X)), np.asarray(controls, dtype=np.float64)])
    S -= C @ np.linalg.lstsq(C, S, rcond=None)[0]
    scale = S.std(0)
    if np.any(scale <= 1e-12 * max(1.0, float(np.abs(Z).max()))):
        raise NothingToImplantError("the LLM features have no variance left after the controls: nothing unique to "
                                    "implant")
    return S / scale


def implant(Y: np.ndarray, signals: np.ndarray, level: float) -> np.ndarray:
    """``Y`` (n_samples, n_targets) plus each signal at unique R² ``level``: (n_samples, n_signals · n_targets),
    column ``r · n_targets + t`` = target t with signal r."""
    if not 0 < level < 1:
        raise ValueError(f"an implanted unique R² must lie in (0, 1), got {level}")
    Y = np.asarray(Y, dtype=np.float64)
    c = np.sqrt(level / (1 - level) * Y.var(0) / np.asarray(signals).var(0)[:, None])  # (n_signals, n_targets)
    return (Y[:, None, :] + signals[:, :, None] * c[None]).reshape(len(Y), -1)


def residualise(Y: np.ndarray, controls: np.ndarray) -> np.ndarray:
    """Least-squares residuals of ``Y``'s columns on the intercept and ``controls`` (all rows)."""
    C = np.column_stack([np.ones(len(Y)), np.asarray(controls, dtype=np.float64)])
    return Y - C @ np.linalg.lstsq(C, Y, rcond=None)[0]


def limit_gains(X: np.ndarray, targets: np.ndarray, splits: list[tuple[np.ndarray, np.ndarray]],
                alphas: np.ndarray) -> np.ndarray:
    """Out-of-fold squared-error gains (n_alphas, n_targets) of ridge on ``X`` (z-scored on each training fold) at
    each penalty, for ``targets`` (the responses' residuals on the controls): Σ (t − training mean)² − Σ (t − pred)²
    over the tested rows. Divided by the responses' total sum of squares they are the oracle's unique R²."""
    from lmbrain.analysis.permutation import fold_operators

    alphas = np.asarray(alphas, dtype=np.float64)
    gains = np.zeros((len(alphas), targets.shape[1]))
    ops = fold_operators(X, splits, np.tile(alphas, (len(splits), 1)))
    for (train, test), by_alpha in zip(splits, ops, strict=True):
        Ttr = targets[train]
        before = ((targets[test] - Ttr.mean(0)) ** 2).sum(0)
        for a, alpha in enumerate(alphas):
            gains[a] += before - ((targets[test] - by_alpha[float(alpha)] @ Ttr) ** 2).sum(0)
    return gains


def detectable(levels: np.ndarray, power: np.ndarray, target: float = TARGET_POWER) -> float:
    """The smallest implanted unique R² detected with power ``target``: interpolated linearly in log(level)
    between the levels around the first crossing; the smallest level if it already reaches it, inf if none does,
    NaN without a finite power."""
    levels, power = np.asarray(levels, dtype=float), np.asarray(power, dtype=float)
    order = np.argsort(levels)
    levels, power = levels[order], power[order]
    finite = np.isfinite(power)
    if not finite.any():
        return float("nan")
    levels, power = levels[finite], power[finite]
    above = np.flatnonzero(power >= target)
    if not len(above):
        return float("inf")
    i = int(above[0])
    if i == 0:
        return float(levels[0])
    lo, hi = np.log(levels[i - 1]), np.log(levels[i])
    frac = (target - power[i - 1]) / (power[i] - power[i - 1])
    return float(np.exp(lo + frac * (hi - lo)))
