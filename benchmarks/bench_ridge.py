"""Benchmark: lmbrain RidgeCV vs scikit-learn and himalaya on the same data and the same grouped splits.

Every method fits on the same training samples with the same 5 grouped inner folds (one alpha per target
chosen by mean R² over the folds, except scikit-learn, whose RidgeCV with a ``cv`` shares one alpha across
all targets), then predicts the same held-out samples. Printed per problem size:

* wall time of each method (best of ``--repeat`` runs; scikit-learn runs once);
* the "floor": numpy alone doing the unavoidable decompositions and matrix products of lmbrain's
  algorithm (per fold: one decomposition and one product giving the validation predictions of all
  alphas x targets; then one decomposition of all training rows, one projection of Y, one prediction);
* max relative difference of lmbrain's predictions and chosen alphas against himalaya's;
* time ratios: lmbrain / himalaya's best CPU backend, lmbrain / scikit-learn, lmbrain / floor.

Default sizes are the issue's: n=1000 training samples, p=1024 and p=4096 features, 20,000 targets,
10 alphas, 5 grouped inner folds. ``python benchmarks/bench_ridge.py --targets 2000 --skip sklearn`` is
a quick run.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.model_selection import GroupKFold

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # this checkout's lmbrain


def make_problem(n: int, n_test: int, p: int, t: int, dtype: str, seed: int = 0) -> dict[str, Any]:
    """Correlated features (decaying spectrum), targets with SNR varying over targets, 20-sample groups."""
    rng = np.random.default_rng(seed)
    n_all = n + n_test
    k = min(p, 200)
    latent = rng.standard_normal((n_all, k)) @ (rng.standard_normal((k, p)) / np.sqrt(k))
    X = latent * np.linspace(2.0, 0.2, p) + 0.5 * rng.standard_normal((n_all, p))
    W = rng.standard_normal((p, t)) / np.sqrt(p)
    snr = np.logspace(-2, 1, t)
    rng.shuffle(snr)
    signal = X @ W
    Y = signal / signal.std(0) * np.sqrt(snr) + rng.standard_normal((n_all, t))
    groups = np.arange(n) // 20
    splits = list(GroupKFold(5).split(np.zeros(n), None, groups))
    return dict(X=X[:n].astype(dtype), Y=Y[:n].astype(dtype), Xtest=X[n:].astype(dtype), splits=splits)


# -- the floor: numpy alone, the unavoidable decompositions and products of lmbrain's algorithm ---------
def floor(X: np.ndarray, Y: np.ndarray, Xtest: np.ndarray, alphas: np.ndarray, splits: list,
          alpha_index: np.ndarray) -> np.ndarray:
    """Per fold: decompose, validation predictions of all alphas x targets; then refit and predict."""

    def decompose(Xc: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if Xc.shape[0] >= Xc.shape[1]:  # SVD: Xc = U S Vt
            U, s, Vt = np.linalg.svd(Xc, full_matrices=False)
            return U, Vt.T * s, s**2
        ev, Q = np.linalg.eigh(Xc @ Xc.T)  # kernel: Xc Xc' = Q L Q'
        return Q, Xc.T @ Q, ev

    a = alphas.astype(X.dtype)
    for train, test in splits:
        mean = X[train].mean(0)
        B, R, ev = decompose(X[train] - mean)
        A = (X[test] - mean) @ R
        M = (A[None] / (ev + a[:, None])[:, None, :]).reshape(-1, len(ev)) @ B.T
        _ = M @ Y[train]  # validation predictions of every alpha and target
    mean = X.mean(0)
    B, R, ev = decompose(X - mean)
    C = B.T @ Y
    C *= 1.0 / (ev[:, None] + a[alpha_index][None, :])
    return ((Xtest - mean) @ R) @ C + Y.mean(0)


# -- the contenders --------------------------------------------------------------------------------------
def run_lmbrain(prob: dict, alphas: np.ndarray, backend: str) -> tuple[np.ndarray, np.ndarray]:
    from lmbrain.encoding import RidgeCV

    model = RidgeCV(alphas=alphas, cv=prob["splits"], standardize=False, backend=backend)
    model.fit(prob["X"], prob["Y"])
    return model.predict(prob["Xtest"]), model.alpha_


def run_himalaya(prob: dict, alphas: np.ndarray, backend: str, kernel: bool) -> tuple[np.ndarray, np.ndarray]:
    from himalaya.backend import set_backend
    from himalaya.kernel_ridge import KernelRidgeCV
    from himalaya.ridge import RidgeCV as HimalayaRidgeCV
    from himalaya.scoring import r2_score

    hb = set_backend(backend)
    params = dict(score_func=r2_score, n_targets_batch_refit=2000)
    if kernel:
        model = KernelRidgeCV(alphas=alphas, kernel="linear", cv=prob["splits"], fit_intercept=True,
                              solver_params=dict(score_func=r2_score, n_targets_batch_refit=2000))
    else:
        params["warn"] = False
        model = HimalayaRidgeCV(alphas=alphas, cv=prob["splits"], fit_intercept=True, solver_params=params)
    model.fit(prob["X"], prob["Y"])
    pred = hb.to_numpy(model.predict(prob["Xtest"]))
    out = np.asarray(pred), np.asarray(hb.to_numpy(model.best_alphas_))
    set_backend("numpy")
    return out


def run_sklearn(prob: dict, alphas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.linear_model import RidgeCV as SkRidgeCV

    model = SkRidgeCV(alphas=alphas, cv=prob["splits"], fit_intercept=True).fit(prob["X"], prob["Y"])
    return model.predict(prob["Xtest"]), np.full(prob["Y"].shape[1], model.alpha_)


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Best wall time of ``repeat`` calls, and the last result."""
    best, out = np.inf, None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def max_rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    """max over targets of max|a - b| / max|b| (per-target scale)."""
    a2, b2 = np.asarray(a, np.float64).reshape(len(a), -1), np.asarray(b, np.float64).reshape(len(b), -1)
    return float(np.max(np.abs(a2 - b2).max(0) / np.maximum(np.abs(b2).max(0), 1e-300)))


def bench(n: int, p: int, t: int, n_alphas: int, n_test: int, dtype: str, repeat: int,
          skip: set[str], quiet: bool = False) -> dict:
    """Run every method on one problem size; print a table; return the ratios."""
    if quiet:
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            return bench(n, p, t, n_alphas, n_test, dtype, repeat, skip)
    prob = make_problem(n, n_test, p, t, dtype)
    alphas = np.logspace(-2, 7, n_alphas)
    print(f"\n== n={n} p={p} targets={t} alphas={n_alphas} folds=5 (grouped) dtype={dtype} ==")
    res: dict[str, tuple[float, Any]] = {}
    res["lmbrain numpy"] = timed(lambda: run_lmbrain(prob, alphas, "numpy"), repeat)
    if "lmbrain-torch" not in skip:
        res["lmbrain torch-cpu"] = timed(lambda: run_lmbrain(prob, alphas, "torch_cpu"), repeat)
    him = []
    for backend in ("numpy", "torch"):
        if f"himalaya-{backend}" in skip:
            continue
        name = f"himalaya RidgeCV {backend}"
        res[name] = timed(lambda b=backend: run_himalaya(prob, alphas, b, kernel=False), repeat)
        him.append(name)
        if p > n:
            name = f"himalaya KernelRidgeCV {backend}"
            res[name] = timed(lambda b=backend: run_himalaya(prob, alphas, b, kernel=True), repeat)
            him.append(name)
    if "sklearn" not in skip:
        res["sklearn RidgeCV (shared alpha)"] = timed(lambda: run_sklearn(prob, alphas), 1)
    index = np.searchsorted(alphas, res["lmbrain numpy"][1][1])
    t_floor, _ = timed(lambda: floor(prob["X"], prob["Y"], prob["Xtest"], alphas, prob["splits"], index),
                       repeat)
    ours_t, (ours_pred, ours_alpha) = res["lmbrain numpy"]
    width = max(map(len, res)) + 2
    header = f"{'method':<{width}} {'time (s)':>9} {'lmbrain/x':>10} {'pred rel diff':>14}"
    print(f"{header} {'alpha rel diff':>15}")
    for name, (sec, (pred, alpha)) in res.items():
        print(f"{name:<{width}} {sec:9.2f} {ours_t / sec:10.3f} {max_rel_diff(ours_pred, pred):14.2e} "
              f"{float(np.max(np.abs(ours_alpha - alpha) / alpha)):15.2e}")
    print(f"{'floor (numpy products only)':<{width}} {t_floor:9.2f} {ours_t / t_floor:10.3f}")
    out = {"p": p, "floor": ours_t / t_floor}
    if him:
        best = min(him, key=lambda k: res[k][0])
        out["himalaya"] = ours_t / res[best][0]
        out["himalaya_best"] = best
        ref_pred, ref_alpha = res[best][1]
        out["pred_diff"] = max_rel_diff(ours_pred, ref_pred)
        out["alpha_same"] = float(np.mean(np.isclose(ours_alpha, ref_alpha, rtol=1e-5)))
        print(f"lmbrain / best himalaya ({best}) = {out['himalaya']:.3f}; predictions max rel diff "
              f"{out['pred_diff']:.1e}; identical alphas for {100 * out['alpha_same']:.2f}% of targets")
    if "sklearn" not in skip:
        out["sklearn"] = ours_t / res["sklearn RidgeCV (shared alpha)"][0]
    return out


def main() -> None:
    """Parse options, run the sizes, print a one-line summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="training samples")
    parser.add_argument("--n-test", type=int, default=200, help="held-out samples predicted")
    parser.add_argument("--p", type=int, nargs="+", default=[1024, 4096], help="feature counts")
    parser.add_argument("--targets", type=int, default=20000)
    parser.add_argument("--alphas", type=int, default=10)
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--repeat", type=int, default=2, help="best of N runs (scikit-learn: 1)")
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["sklearn", "himalaya-numpy", "himalaya-torch", "lmbrain-torch"])
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import torch

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"numpy {np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"load avg {os.getloadavg()[0]:.2f}")
    # warm-up: thread pools, BLAS kernels and imports, outside the timings
    bench(300, 50, 200, args.alphas, 50, args.dtype, 1, set(args.skip) | {"sklearn"}, quiet=True)
    results = [bench(args.n, p, args.targets, args.alphas, args.n_test, args.dtype, args.repeat,
                     set(args.skip)) for p in args.p]
    parts = []
    for r in results:
        part = f"p={r['p']}: floor x{r['floor']:.2f}"
        if "himalaya" in r:
            part += f", himalaya x{r['himalaya']:.2f} (pred diff {r['pred_diff']:.0e})"
        if "sklearn" in r:
            part += f", sklearn x{r['sklearn']:.3f}"
        parts.append(part)
    print("\nSUMMARY lmbrain time ratios: " + "; ".join(parts))


if __name__ == "__main__":
    main()
