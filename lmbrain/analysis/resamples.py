"""How a null resamples the responses while keeping their dependence: permutations of whole groups, circular
shifts of time series, sign flips of whole blocks (about the training mean), and the signs of a batch of flips."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np


def group_permutations(
    groups: np.ndarray, n_permutations: int, seed: int = 0, strata: np.ndarray | None = None
) -> Iterator[np.ndarray]:
    """Row orders that move whole groups onto other groups of the same size (order kept inside a group),
    only within a stratum when ``strata`` is given (e.g. the outer test fold of every sample)."""
    groups = np.asarray(groups)
    labels, first = np.unique(groups, return_index=True)
    labels = labels[np.argsort(first)]
    members = [np.flatnonzero(groups == label) for label in labels]
    sizes = np.array([len(m) for m in members])
    strata = np.zeros(len(groups), dtype=int) if strata is None else np.asarray(strata)
    stratum = np.array([strata[m[0]] for m in members])
    classes = [np.flatnonzero((sizes == size) & (stratum == st))
               for size in np.unique(sizes) for st in np.unique(stratum)]
    rng = np.random.default_rng(seed)
    for _ in range(n_permutations):
        order = np.arange(len(groups))
        for same in classes:
            for target, source in zip(same, rng.permutation(same), strict=True):
                order[members[target]] = members[source]
        yield order


def circular_shifts(
    n_samples: int, n_permutations: int, runs: np.ndarray | None = None, min_shift: int = 10, seed: int = 0
) -> Iterator[np.ndarray]:
    """Row orders that circularly shift each run by a random offset of at least ``min_shift`` samples."""
    runs = np.zeros(n_samples, dtype=int) if runs is None else np.asarray(runs)
    blocks = [np.flatnonzero(runs == r) for r in np.unique(runs)]
    rng = np.random.default_rng(seed)
    for _ in range(n_permutations):
        order = np.arange(n_samples)
        for idx in blocks:
            n = len(idx)
            low = min(min_shift, max(n // 2, 1))
            shift = int(rng.integers(low, max(n - low, low + 1)))
            order[idx] = idx[(np.arange(n) + shift) % n]
        yield order


def block_sign_flips(blocks: np.ndarray, n_flips: int, seed: int = 0) -> Iterator[np.ndarray]:
    """Per-sample signs (float ±1), one random sign per block (sentence, passage, consecutive scans): with
    :func:`permutation_test`, the responses are flipped about their mean a whole block at a time."""
    _, index = np.unique(np.asarray(blocks), return_inverse=True)
    rng = np.random.default_rng(seed)
    for _ in range(n_flips):
        yield rng.choice([-1.0, 1.0], size=int(index.max()) + 1)[index]


def resampled_responses(Y: np.ndarray, resample: np.ndarray, center: np.ndarray) -> np.ndarray:
    """Responses under one null draw: ``Y[order]`` for a row order (integers), or the rows flipped about
    ``center`` for per-sample signs (floats ±1, one sign per block: :func:`block_sign_flips`)."""
    resample = np.asarray(resample)
    if resample.dtype.kind == "f":
        return center + resample[:, None].astype(Y.dtype) * (Y - center)
    return Y[resample]


def block_signs(resamples: Iterator[np.ndarray] | Sequence[np.ndarray], blocks: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample sign draws (:func:`block_sign_flips`) as one sign per block: ``(signs (n_draws, n_blocks),
    block index of every sample)``; a draw that is not constant within every block is an error."""
    labels, first, index = np.unique(np.asarray(blocks), return_index=True, return_inverse=True)
    out = []
    for draw, s in enumerate(resamples):
        s = np.asarray(s)
        if s.dtype.kind != "f" or s.shape != index.shape:
            raise ValueError(f"draw {draw}: flip blocks need per-sample signs (floats, {len(index)} of them), "
                             f"got dtype {s.dtype} and shape {s.shape}")
        if not np.array_equal(s[first][index], s):
            raise ValueError(f"draw {draw}: its signs are not constant within the flip blocks")
        out.append(s[first])
    return np.array(out, dtype=np.float64).reshape(len(out), len(labels)), index
