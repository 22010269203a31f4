"""Layer selection of a study unit: lmbrain's shared selection + covariance eigh vs the plain way.

A study scores, per (dataset, subject, model): the LLM alone with its layer chosen inside the training folds,
the LLM jointly with controls (which needs the same in-fold layer choice), and descriptive per-layer curves.
Side by side in one run, on a single-trial EEG-like workload (one target, ~1,450 words, 6 layers x 576 features,
10 alphas, 5 grouped outer x 5 grouped inner folds):

- **plain**: ``cross_validate_select`` for the LLM, again for the joint unit's layer choice, and a separate
  ``cross_validate`` of ``RidgeCV`` per layer (every inner CV redone), all with the SVD solver;
- **lmbrain**: one ``cross_validate_select(keep_cv_scores=True)`` with the covariance-eigh solver, shared by
  the three, and ``cross_validate_each`` (one refit per layer and fold from the kept inner-CV scores).

Prints the max abs difference of out-of-fold predictions (selection and every layer), the time ratio, and a
one-line summary last.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_info

from lmbrain.encoding import GroupedKFold, RidgeCV, cross_validate, cross_validate_each, cross_validate_select
from lmbrain.encoding.ridge import clear_memos


def workload(n: int, p: int, n_layers: int, t: int, seed: int = 0):
    """Correlated 'layers' (a shared latent plus layer-specific noise) and a weak signal, sentences of 8."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, p))
    layers = {f"layer={k}": latent + rng.normal(size=(n, p)) * (0.5 + 0.3 * k) for k in range(n_layers)}
    Y = latent[:, :10] @ rng.normal(size=(10, t)) * 0.1 + rng.normal(size=(n, t))
    return layers, Y, np.repeat(np.arange(n // 8 + 1), 8)[:n]


def plain(layers, Y, groups, alphas):
    """Selection twice (LLM and joint units) and one full nested CV per layer, SVD solver."""
    ridge = RidgeCV(alphas=alphas, cv=GroupedKFold(5), solver="svd")
    select = cross_validate_select(layers, Y, groups, GroupedKFold(5), ridge)
    cross_validate_select(layers, Y, groups, GroupedKFold(5), ridge)  # the joint unit's own layer choice
    each = {name: cross_validate(ridge, X, Y, groups, GroupedKFold(5)) for name, X in layers.items()}
    return select, each


def lmbrain(layers, Y, groups, alphas):
    """One selection (kept inner-CV scores) shared by the three, covariance eigh."""
    ridge = RidgeCV(alphas=alphas, cv=GroupedKFold(5))
    select = cross_validate_select(layers, Y, groups, GroupedKFold(5), ridge, keep_cv_scores=True)
    each = cross_validate_each(layers, Y, groups, GroupedKFold(5), ridge, select.cv_scores_folds)
    return select, each


def main() -> None:
    """Run both and print ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=1450)
    parser.add_argument("--features", type=int, default=576)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--targets", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(f"BLAS: {[(i['internal_api'], i['num_threads']) for i in threadpool_info()]}")
    layers, Y, groups = workload(args.samples, args.features, args.layers, args.targets)
    alphas = np.logspace(-2, 7, 10)
    times = {"plain": np.inf, "lmbrain": np.inf}
    out = {}
    for _ in range(args.repeats):  # interleaved
        for name, fn in (("plain", plain), ("lmbrain", lmbrain)):
            clear_memos()  # every repeat from scratch
            start = time.perf_counter()
            out[name] = fn(layers, Y, groups, alphas)
            times[name] = min(times[name], time.perf_counter() - start)
    (sel_a, each_a), (sel_b, each_b) = out["plain"], out["lmbrain"]
    diff = max([float(np.max(np.abs(sel_a.predictions - sel_b.predictions)))]
               + [float(np.max(np.abs(each_a[k].predictions - each_b[k].predictions))) for k in layers])
    same = sel_a.selected == sel_b.selected
    ratio = times["lmbrain"] / times["plain"]
    print(f"workload: n={args.samples}, p={args.features}, {args.layers} layers, {args.targets} target(s)")
    print(f"plain (SVD, selection x2, per-layer nested CV): {times['plain']:.2f} s")
    print(f"lmbrain (covariance eigh, one shared selection): {times['lmbrain']:.2f} s")
    print(f"SUMMARY lmbrain/plain {ratio:.3f} ({1 / ratio:.1f}x faster); same in-fold layers: {same}; "
          f"max abs prediction diff {diff:.1e}")


if __name__ == "__main__":
    main()
