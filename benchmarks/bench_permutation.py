"""Permutation test cost relative to one fit: 1,000 structure-respecting permutations x 10,000 targets.

"One fit" is what a score costs: ``cross_validate`` of lmbrain's ``RidgeCV`` (per-target penalty chosen by
grouped inner CV) with grouped outer folds. The permutation test refits the cross-validated ridge on
responses whose passages are permuted, reusing one decomposition per fold (``lmbrain.analysis.permutation``).
The naive reference refits ``cross_validate`` once per permutation; it is timed on a few permutations and
scaled. The cheaper null permutes out-of-fold predictions within test folds (``predictions``). The study's
default null (``auto``) refits on responses sign-flipped a whole group at a time; it is timed both ways: refits
of the flipped rows (every training row, as for any resample) and of block sums (``flip_blocks``: each training
group's contribution summed once, then one test-rows x groups product per draw), with their p-values compared.
Prints times, ratios and a one-line summary (target: permutations <= 20x one fit).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_info

from lmbrain.analysis.permutation import permutation_test, prediction_permutation_test
from lmbrain.analysis.resamples import block_sign_flips, group_permutations
from lmbrain.encoding import GroupedKFold, RidgeCV, cross_validate


def main() -> None:
    """Time one fit, the permutation test and the naive refit-per-permutation reference."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--features", type=int, default=768)
    parser.add_argument("--targets", type=int, default=10_000)
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--naive", type=int, default=2, help="permutations timed for the naive reference")
    parser.add_argument("--group-size", type=int, default=4, help="samples per group (sentence / passage)")
    args = parser.parse_args()
    print(f"BLAS: {[(i['internal_api'], i['num_threads']) for i in threadpool_info()]}")
    rng = np.random.default_rng(0)
    n, p, t = args.samples, args.features, args.targets
    size = args.group_size
    groups = np.repeat(np.arange(n // size + 1), size)[:n]
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
    flips = list(block_sign_flips(groups, args.permutations, seed=1))
    start = time.perf_counter()
    rows = permutation_test(X, Y, splits, fit.alphas, flips, blocks=groups)
    t_rows = time.perf_counter() - start
    start = time.perf_counter()
    sums = permutation_test(X, Y, splits, fit.alphas, flips, blocks=groups, flip_blocks=groups)
    t_sums = time.perf_counter() - start
    same_p = float(np.mean(sums.p_r == rows.p_r))
    dp = float(np.nanmax(np.abs(sums.p_r - rows.p_r)))
    dk = float(np.nanmax(np.abs(sums.gain_inflation - rows.gain_inflation) / np.abs(rows.gain_inflation)))
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
    print(f"auto null (sign flips by group of {size}): row refits {t_rows:.2f} s ({t_rows / t_fit:.1f}x one fit); "
          f"block-sum refits {t_sums:.2f} s ({t_sums / t_fit:.1f}x one fit), ratio {t_sums / t_rows:.3f}; "
          f"identical p_r for {same_p:.4%} of targets (max |diff| {dp:.4f}), kappa max rel. diff {dk:.1e}")
    print(f"summary: permutations/fit refit {t_perm / t_fit:.1f}x, auto (block sums) {t_sums / t_fit:.1f}x, "
          f"predictions {t_pred / t_fit:.2f}x (target <= 20x); naive/refit {t_naive / t_perm:.1f}x; "
          f"block sums/row refits {t_sums / t_rows:.3f}")


if __name__ == "__main__":
    main()
