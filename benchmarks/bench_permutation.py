"""Permutation test cost relative to one fit: 1,000 structure-respecting permutations x 10,000 targets.

"One fit" is what a score costs: ``cross_validate`` of lmbrain's ``RidgeCV`` (per-target penalty chosen by
grouped inner CV) with grouped outer folds. The permutation test refits the cross-validated ridge on
responses whose passages are permuted, reusing one decomposition per fold (``lmbrain.analysis.permutation``).
The naive reference refits ``cross_validate`` once per permutation; it is timed on a few permutations and
scaled. The cheaper null permutes out-of-fold predictions within test folds (``predictions``). Prints
times, ratios and a one-line summary (target: permutations <= 20x one fit).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_info

from lmbrain.analysis.permutation import group_permutations, permutation_test, prediction_permutation_test
from lmbrain.encoding import GroupedKFold, RidgeCV, cross_validate


def main() -> None:
    """Time one fit, the permutation test and the naive refit-per-permutation reference."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--features", type=int, default=768)
    parser.add_argument("--targets", type=int, default=10_000)
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--naive", type=int, default=2, help="permutations timed for the naive reference")
    args = parser.parse_args()
    print(f"BLAS: {[(i['internal_api'], i['num_threads']) for i in threadpool_info()]}")
    rng = np.random.default_rng(0)
    n, p, t = args.samples, args.features, args.targets
    groups = np.repeat(np.arange(n // 4 + 1), 4)[:n]
    X = rng.normal(size=(n, p)).astype(np.float32)
    Y = (X[:, :10] @ rng.normal(size=(10, t)) * 0.05 + rng.normal(size=(n, t))).astype(np.float32)
    cv = GroupedKFold(5)
    ridge = RidgeCV(alphas=np.logspace(-2, 6, 9), cv=GroupedKFold(5), dtype=np.float32)
    start = time.perf_counter()
    fit = cross_validate(ridge, X, Y, groups, cv)
    t_fit = time.perf_counter() - start
    splits = list(cv.split(X, Y, groups))
    start = time.perf_counter()
    result = permutation_test(X, Y, splits, fit.alphas, group_permutations(groups, args.permutations, seed=1))
    t_perm = time.perf_counter() - start
    start = time.perf_counter()
    within = group_permutations(groups, args.permutations, seed=1, strata=fit.folds)
    quick = prediction_permutation_test(Y, fit.predictions, fit.baseline, within)
    t_pred = time.perf_counter() - start
    start = time.perf_counter()
    for order in group_permutations(groups, args.naive, seed=2):
        cross_validate(ridge, X, Y[order], groups, cv)
    t_naive = (time.perf_counter() - start) / args.naive * args.permutations
    same = np.allclose(result.r, fit.r, atol=1e-4)
    print(f"n={n} p={p} targets={t}: one fit {t_fit:.2f} s; {args.permutations} permutations {t_perm:.2f} s "
          f"({t_perm / t_fit:.1f}x one fit); naive refits {t_naive:.0f} s (scaled from {args.naive}); "
          f"observed r reproduced: {same}; share p < 0.05 (weak real signal): {(result.p_r < 0.05).mean():.3f}")
    print(f"predictions method: {args.permutations} permutations {t_pred:.2f} s ({t_pred / t_fit:.2f}x one fit); "
          f"share p < 0.05: {(quick.p_r < 0.05).mean():.3f}")
    print(f"summary: permutations/fit refit {t_perm / t_fit:.1f}x, predictions {t_pred / t_fit:.2f}x (target <= 20x); "
          f"naive/refit {t_naive / t_perm:.1f}x")


if __name__ == "__main__":
    main()
