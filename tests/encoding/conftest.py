"""Shared simulated data for the encoding-engine tests (seeded)."""

from __future__ import annotations

import numpy as np
import pytest


def simulate(n: int = 120, p: int = 15, t: int = 6, n_groups: int = 12, seed: int = 0,
             noise: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """X with unequal column scales and offsets, Y linear in X with per-target SNR, contiguous groups."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)) * rng.uniform(0.2, 5.0, p) + rng.uniform(-3, 3, p)
    W = rng.standard_normal((p, t)) * np.linspace(0.0, 1.0, t)  # target 0 carries no signal
    Y = X @ W + noise * rng.standard_normal((n, t)) * rng.uniform(0.5, 4.0, t) + 2.0
    groups = np.repeat(np.arange(n_groups), int(np.ceil(n / n_groups)))[:n]
    return X, Y, groups


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A small n > p problem with 12 groups."""
    return simulate()
