"""Banded ridge: lmbrain's solver vs himalaya's, same band weights, penalties and grouped inner folds.

Both search the same (band weights x alphas) grid and must choose the same hyperparameters; the script
prints the max relative difference of predictions and the time ratio per workload, and a one-line summary.
Workloads mimic the joint LLM + control fits of a control analysis: an LLM layer (576 features) next to a
small control band (8), with fewer samples than features (sentences) and with more (words).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_info

from lmbrain.encoding import BandedRidgeCV, GroupedKFold
from lmbrain.encoding.ridge import clear_memos


def workload(n: int, p1: int, p2: int, t: int, seed: int = 0):
    """Random features with a real signal in both bands; 4 samples per group."""
    rng = np.random.default_rng(seed)
    X = np.hstack([rng.normal(size=(n, p1)), rng.normal(size=(n, p2))])
    Y = X[:, :20] @ rng.normal(size=(20, t)) * 0.1 + X[:, p1:] @ rng.normal(size=(p2, t)) + rng.normal(size=(n, t))
    return X, Y, np.repeat(np.arange(n // 4 + 1), 4)[:n], [slice(0, p1), slice(p1, p1 + p2)]


def timed(estimator: BandedRidgeCV, X, Y, groups, repeats: int) -> tuple[float, BandedRidgeCV]:
    """Best-of-``repeats`` wall time of one fit."""
    best = np.inf
    for _ in range(repeats):
        clear_memos()  # every repeat from scratch
        start = time.perf_counter()
        fitted = estimator.fit(X, Y, groups)
        best = min(best, time.perf_counter() - start)
    return best, fitted


def main() -> None:
    """Run the comparison and print ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--targets", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    blas = [(i["internal_api"], i["num_threads"]) for i in threadpool_info()]
    print(f"BLAS: {blas}")
    ratios = []
    ratios_w = np.logspace(-3, 3, 9)
    weights = np.column_stack([1 / (1 + ratios_w), ratios_w / (1 + ratios_w)])
    for name, (n, p1, p2) in {"sentences n=400 < p=584": (400, 576, 8),
                              "words n=1500 > p=584": (1500, 576, 8)}.items():
        X, Y, groups, slices = workload(n, p1, p2, args.targets)
        kw = dict(feature_slices=slices, alphas=np.logspace(-2, 6, 9), cv=GroupedKFold(5), n_iter=weights,
                  standardize=False)  # himalaya can only standardise once, outside the inner folds
        t_ours, ours = timed(BandedRidgeCV(solver="lmbrain", **kw), X, Y, groups, args.repeats)
        t_ref, ref = timed(BandedRidgeCV(solver="himalaya", **kw), X, Y, groups, args.repeats)
        pred, pred_ref = ours.predict(X), ref.predict(X)
        diff = float(np.max(np.abs(pred - pred_ref)) / np.max(np.abs(pred_ref)))
        same = float(np.mean(np.isclose(ours.deltas_, ref.deltas_).all(axis=0)))
        ratios.append(t_ours / t_ref)
        print(f"{name}: lmbrain {t_ours:.3f} s, himalaya {t_ref:.3f} s, ratio {t_ours / t_ref:.3f}; "
              f"max rel. prediction diff {diff:.1e}; same hyperparameters for {same:.0%} of targets")
    print("summary: lmbrain/himalaya time ratios " + ", ".join(f"{r:.3f}" for r in ratios))


if __name__ == "__main__":
    main()
