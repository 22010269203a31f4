"""Inner cross-validation by exact deletion from one decomposition vs one decomposition per inner fold.

``RidgeCV(cv_method="leave_out")`` (the default) scales the training rows once, decomposes them once, and scores
every inner fold with the ridge refitted without its held-out rows (the deletion formula); ``"refit"`` scales and
decomposes each inner training fold. Side by side in one run, on the study's two shapes:

- **Frank2015-like** (n >= p, covariance eigh): ~1,100 training words x 576 features, 1 target, 6 layers;
- **Brennan2016-like** (n < p, kernel eigh): 290 training scans x 2,304 delayed features, 162 targets.

Both select the layer and alpha inside 5 grouped outer x 5 inner folds (``cross_validate_select``). Prints each
time, the ratio, and the max abs difference between the leave-out inner-CV scores and scikit-learn's ``Ridge``
refitted on every inner training fold of the once-scaled rows (the same method, computed plainly).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from sklearn.linear_model import Ridge

from lmbrain.encoding import GroupedKFold, RidgeCV, cross_validate_select
from lmbrain.encoding.inner_cv import ridge_cv_scores
from lmbrain.encoding.ridge import clear_memos


def workload(n: int, p: int, n_layers: int, t: int, group: int, seed: int = 0):
    """Correlated 'layers' (a shared latent plus layer noise), a weak signal, groups of ``group`` rows."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, p))
    layers = {f"layer={k}": latent + rng.normal(size=(n, p)) * (0.5 + 0.3 * k) for k in range(n_layers)}
    Y = latent[:, :10] @ rng.normal(size=(10, t)) * 0.1 + rng.normal(size=(n, t))
    return layers, Y, np.arange(n) // group


def plain_scores(X, Y, splits, alphas):
    """Inner-CV R² by scikit-learn: once-scaled rows, Ridge refitted on every inner training fold."""
    Xs = (X - X.mean(0)) / X.std(0)
    out = np.empty((len(splits), len(alphas), Y.shape[1]))
    for f, (tr, va) in enumerate(splits):
        for a, alpha in enumerate(alphas):
            pred = Ridge(alpha=alpha).fit(Xs[tr], Y[tr]).predict(Xs[va]).reshape(len(va), -1)
            out[f, a] = 1 - ((Y[va] - pred) ** 2).sum(0) / ((Y[va] - Y[va].mean(0)) ** 2).sum(0)
    return out


def run(name: str, n: int, p: int, n_layers: int, t: int, group: int, alphas: np.ndarray) -> float:
    """Time both methods on one workload and print a line; returns the ratio."""
    layers, Y, groups = workload(n, p, n_layers, t, group)
    times = {}
    for method in ("refit", "leave_out"):
        clear_memos()
        ridge = RidgeCV(alphas=alphas, cv=GroupedKFold(5), cv_method=method)
        start = time.perf_counter()
        cross_validate_select(layers, Y, groups, GroupedKFold(5), ridge)
        times[method] = time.perf_counter() - start
    X = next(iter(layers.values()))
    splits = list(GroupedKFold(5).split(X, Y, groups))
    fast = ridge_cv_scores(X, Y, alphas, splits, method="leave_out")
    plain = plain_scores(X, Y, splits, alphas)
    per_alpha = np.abs(fast - plain).max(axis=(0, 2))
    same = np.mean(np.argmax(fast.mean(0), 0) == np.argmax(plain.mean(0), 0))
    ratio = times["refit"] / times["leave_out"]
    print(f"{name}: {n} x {p} x {n_layers} layers, {t} targets: refit {times['refit']:.2f} s, "
          f"leave_out {times['leave_out']:.2f} s, ratio {ratio:.1f}x; max |score - sklearn| "
          f"{per_alpha.max():.1e} (alpha {alphas[per_alpha.argmax()]:g}; {per_alpha[alphas >= 1].max():.1e} for "
          f"alpha >= 1: conditioning), same alpha chosen for {100 * same:.0f}% of targets")
    return ratio


def main() -> None:
    """Run both workloads and print ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a ~10 s check)")
    args = parser.parse_args()
    alphas = np.logspace(-2, 7, 10)
    scale = 0.5 if args.quick else 1.0
    a = run("Frank2015-like", int(1380 * scale), int(576 * scale), 6, 1, 7, alphas)
    b = run("Brennan2016-like", int(362 * scale), int(2304 * scale), 6, 162, int(36 * scale), alphas)
    print(f"summary: leave-out inner CV is {a:.1f}x (Frank2015-like) and {b:.1f}x (Brennan2016-like) faster")


if __name__ == "__main__":
    main()
