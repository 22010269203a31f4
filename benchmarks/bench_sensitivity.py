"""The sensitivity analysis's joint fits with the pooled default: one side-by-side fit vs one fit per implanted copy.

A trained joint unit's sensitivity analysis implants ``levels x replications`` known unique LLM signals into its
responses and refits the joint model on each copy. The default joint model (``hierarchical_pooled``) pools each
target's residual-stage penalty curve with the other targets', so copies must not pool with each other. Side by
side in one run, on a Frank2015-like workload (24 single-target subjects, ~1,900 words in sentences, one 576-wide
layer, 4 controls, 3 levels x 10 replications, 5 grouped outer x 5 grouped inner folds):

- **per copy** (lmbrain until 2026-12-06): each of the 30 copies fitted on its own, every decomposition redone;
- **side by side** (now): all copies in one fit that shares the decompositions, the pooled penalty choice kept
  within a copy by ``pool_groups``.

Prints the max abs difference of the out-of-fold predictions and R², the time ratio, and a one-line summary last.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from lmbrain.encoding import GroupedKFold
from lmbrain.encoding.joint import make_joint_estimator
from lmbrain.encoding.ridge import clear_memos
from lmbrain.study.sensitivity import joint_fits


def workload(n: int, p: int, subjects: int, copies: int, seed: int = 0):
    """An LLM layer correlated with 4 controls, responses with a weak LLM signal per subject and copy."""
    rng = np.random.default_rng(seed)
    C = np.column_stack([rng.normal(size=n), rng.integers(1, 12, n), np.arange(n) % 9, rng.normal(size=n)])
    X = C @ rng.normal(size=(4, p)) * 0.3 + rng.normal(size=(n, p))
    t = subjects * copies
    Y = C @ rng.normal(size=(4, t)) * 0.2 + X[:, :8] @ rng.normal(size=(8, t)) * 0.05 + rng.normal(size=(n, t))
    return X, C, Y, np.repeat(np.arange(n // 9 + 1), 9)[:n]


def per_copy(joint, X, C, Y, groups, subjects, copies):
    """Each implanted copy fitted on its own (the previous code path)."""
    r2, pred = np.empty(Y.shape[1]), np.empty_like(Y)
    names = np.array([f"s{k}" for k in range(subjects)])
    both = {s: ["L|C"] * 5 for s in names}
    for k in range(copies):
        cols = np.arange(k * subjects, (k + 1) * subjects)
        for subset, _, result in joint_fits(joint, {"L": X}, {"C": C}, both, groups, GroupedKFold(5), Y[:, cols],
                                            names):
            r2[cols[subset]] = result.r2
            pred[:, cols[subset]] = result.predictions.reshape(len(Y), -1)
    return r2, pred


def side_by_side(joint, X, C, Y, groups, subjects, copies):
    """All copies in one fit, pooling kept within a copy."""
    r2, pred = np.empty(Y.shape[1]), np.empty_like(Y)
    names = np.tile(np.array([f"s{k}" for k in range(subjects)]), copies)
    both = {s: ["L|C"] * 5 for s in names[:subjects]}
    pool = np.repeat(np.arange(copies), subjects)
    for subset, _, result in joint_fits(joint, {"L": X}, {"C": C}, both, groups, GroupedKFold(5), Y, names, pool):
        r2[subset] = result.r2
        pred[:, subset] = result.predictions.reshape(len(Y), -1)
    return r2, pred


def main() -> None:
    """Run both and print ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=1900)
    parser.add_argument("--features", type=int, default=576)
    parser.add_argument("--subjects", type=int, default=24)
    parser.add_argument("--copies", type=int, default=30)
    args = parser.parse_args()
    X, C, Y, groups = workload(args.samples, args.features, args.subjects, args.copies)
    p = X.shape[1]
    mask = np.r_[np.ones(p, bool), np.zeros(C.shape[1], bool)]
    joint = make_joint_estimator("hierarchical_pooled", [slice(0, p), slice(p, p + C.shape[1])],
                                 np.logspace(-2, 7, 10), GroupedKFold(5), standardize=mask)
    times = {}
    out = {}
    for name, fn in (("per copy", per_copy), ("side by side", side_by_side)):
        clear_memos()  # neither reuses the other's decompositions
        start = time.perf_counter()
        out[name] = fn(joint, X, C, Y, groups, args.subjects, args.copies)
        times[name] = time.perf_counter() - start
        print(f"{name:>13}: {times[name]:7.1f} s")
    d_r2 = np.abs(out["per copy"][0] - out["side by side"][0]).max()
    d_pred = np.abs(out["per copy"][1] - out["side by side"][1]).max()
    print(f"max |diff| R2 {d_r2:.1e}, predictions {d_pred:.1e}")
    print(f"SUMMARY side by side is {times['per copy'] / times['side by side']:.1f}x faster than per copy "
          f"({args.copies} copies x {args.subjects} targets, n={args.samples}, p={p}); max |diff| R2 {d_r2:.1e}")


if __name__ == "__main__":
    main()
