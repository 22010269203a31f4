"""Spillover: a control's value some stimuli back within the same context (``CONTROL@K`` in a control set), for
reading times and other word-by-word responses, where the previous words' length and frequency still act."""

from __future__ import annotations

import numpy as np
import pandas as pd


def lag_within(X: np.ndarray, contexts: np.ndarray, lag: int) -> tuple[np.ndarray, np.ndarray]:
    """``X`` (n_stimuli, n_columns) shifted ``lag`` rows down within each context (rows in presentation order;
    never across contexts). Returns (the lagged values, with the column means over all stimuli where there is no
    value -- the first ``lag`` stimuli of each context --, a float indicator (1 there, else 0))."""
    X = np.asarray(X, dtype=np.float64)
    out = np.full_like(X, np.nan)
    rows = np.arange(len(X))
    for context in pd.unique(np.asarray(contexts)):
        members = rows[np.asarray(contexts) == context]
        if len(members) > lag:
            out[members[lag:]] = X[members[:-lag]]
    missing = np.isnan(out).any(axis=1)
    out[missing] = X.mean(axis=0)
    return out, missing.astype(float)


def lagged_parts(X: np.ndarray, columns: list[str], standardize: np.ndarray | bool, description: str,
                 contexts: np.ndarray, name: str, lag: int) -> tuple[np.ndarray, list[str], np.ndarray, str]:
    """A control's matrix ``lag`` stimuli back (:func:`lag_within`) with one indicator column (centred only) marking
    the stimuli without a value: (matrix, column names, standardize flags, description)."""
    values, missing = lag_within(X, contexts, lag)
    names = [f"{c}@{lag}" for c in columns] or [f"{name}_{j}" for j in range(values.shape[1])]
    flags = np.concatenate([np.broadcast_to(np.asarray(standardize, dtype=bool), values.shape[1]), [False]])
    text = (f"{description}, {lag} back within its context; {int(missing.sum())} of {len(values)} stimuli (the "
            f"first {lag} of each context) get the mean and an indicator column")
    return np.column_stack([values, missing]), [*names, f"{name}_missing"], flags, text
