"""The whole-brain control analysis built from himalaya's RidgeCV and GroupRidgeCV vs lmbrain, side by side.

The simulated study of ``bench_scale.py`` at a size both can run (defaults: 3 subjects x 1,700 voxels,
1,500 scans in 5 stories, 4 layers x 256 features x 4 delays = 1,024 features per layer, word rate and sound
power x 4 delays). Features are z-scored once on all scans and every ridge only centres inside its folds
(himalaya cannot standardise inside its inner folds), with the same outer folds (5 contiguous blocks, gap 5),
the same inner folds, the same 10 alphas and the same 9 band-weight vectors, in one loop that calls either
library's estimators:

* LLM: in each outer fold, one RidgeCV per layer on the training scans (per-target alpha by inner R²); each
  subject's layer is the best mean over its voxels of the best-alpha inner R² (lmbrain ``cv_scores_.max(0)``,
  himalaya ``cv_scores_``); the subject's voxels are predicted by that layer's fit;
* controls: RidgeCV;
* joint: banded ridge over [chosen layer | controls] (lmbrain ``BandedRidgeCV``, himalaya ``GroupRidgeCV``
  with the band weights ``n_iter`` and R² scoring), per subject.

Printed: each library's wall time and the ratio lmbrain / himalaya, the share of identical layer choices, and
the agreement of the out-of-fold predictions (max |diff| / max |prediction|, and the correlation) of the three
models; then the same problem through lmbrain's chunked analysis (``stacked_simplex`` joint, the study's
default) for reference.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.bench_scale import ALPHAS, make_problem  # noqa: E402

RATIOS = np.logspace(-3, 3, 9)
WEIGHTS = np.column_stack([1 / (1 + RATIOS), RATIOS / (1 + RATIOS)])


def fit_predict(lib: str, kind: str, X: np.ndarray, Y: np.ndarray, train: np.ndarray, test: np.ndarray,
                inner: list, p_llm: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(test predictions, per-target best inner R²) of a ridge (``kind`` "ridge") or banded ridge ("banded")."""
    if lib == "lmbrain":
        from lmbrain.encoding import BandedRidgeCV, RidgeCV

        if kind == "ridge":
            model = RidgeCV(alphas=ALPHAS, cv=inner, standardize=False).fit(X[train], Y[train])
            return model.predict(X[test]), model.cv_scores_.max(0)
        slices = [slice(0, p_llm), slice(p_llm, X.shape[1])]
        model = BandedRidgeCV(feature_slices=slices, alphas=ALPHAS, n_iter=WEIGHTS, cv=inner,
                              standardize=False).fit(X[train], Y[train])
        return model.predict(X[test]), None
    from himalaya.ridge import GroupRidgeCV
    from himalaya.ridge import RidgeCV as HRidgeCV
    from himalaya.scoring import r2_score

    if kind == "ridge":
        model = HRidgeCV(alphas=ALPHAS, cv=inner, fit_intercept=True,
                         solver_params=dict(score_func=r2_score, warn=False)).fit(X[train], Y[train])
        return np.asarray(model.predict(X[test])), np.asarray(model.cv_scores_)
    groups = np.r_[np.zeros(p_llm, dtype=int), np.ones(X.shape[1] - p_llm, dtype=int)]
    model = GroupRidgeCV(groups=groups, cv=inner, fit_intercept=True,
                         solver_params=dict(n_iter=WEIGHTS, alphas=ALPHAS, score_func=r2_score, progress_bar=False,
                                            warn=False)).fit(X[train], Y[train])
    return np.asarray(model.predict(X[test])), None


def analysis(lib: str, layers: dict, C: np.ndarray, Y: np.ndarray, subjects: np.ndarray, problem) -> dict:
    """Out-of-fold predictions of the LLM (in-fold layer per subject), the controls and the joint model."""
    out = {k: np.full(Y.shape, np.nan) for k in ("llm", "controls", "joint")}
    chosen = []
    names = list(layers)
    for train, test in problem.splits():
        inner_rel = list(problem.ridge.cv.split(np.empty((len(train), 0)), None, problem.groups[train]))
        fits = {name: fit_predict(lib, "ridge", X, Y, train, test, inner_rel) for name, X in layers.items()}
        out["controls"][test] = fit_predict(lib, "ridge", C, Y, train, test, inner_rel)[0]
        for s in np.unique(subjects):
            cols = subjects == s
            name = names[int(np.argmax([np.mean(fits[n][1][cols]) for n in names]))]
            chosen.append(name)
            out["llm"][np.ix_(test, cols)] = fits[name][0][:, cols]
            both = np.hstack([layers[name], C])
            pred, _ = fit_predict(lib, "banded", both, Y[:, cols], train, test, inner_rel, layers[name].shape[1])
            out["joint"][np.ix_(test, cols)] = pred
    out["chosen"] = chosen
    return out


def main() -> None:
    """Run both libraries on one problem and print the ratio and the agreement."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voxels", type=int, default=1700, help="per subject")
    parser.add_argument("--subjects", type=int, default=3)
    parser.add_argument("--scans", type=int, default=1500)
    parser.add_argument("--stories", type=int, default=5)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--features", type=int, default=256)
    parser.add_argument("--delays", type=int, default=4)
    args = parser.parse_args()
    from himalaya.backend import set_backend

    from lmbrain.analysis.chunked import ArrayTargets, chunked_control_analysis

    set_backend("numpy")
    with tempfile.TemporaryDirectory() as folder:
        problem, _ = make_problem(args.voxels, args.subjects, args.scans, args.stories, args.layers, args.features,
                                  args.delays, 4096, folder, dtype=np.float64)
        Y = problem.targets.read(0, problem.n_targets)
    z = lambda X: (X - X.mean(0)) / np.where(X.std(0) > 0, X.std(0), 1.0)  # noqa: E731
    layers = {k: z(v) for k, v in problem.candidates.items()}
    C = z(problem.controls)
    print(f"problem: {Y.shape[0]} scans, {len(layers)} layers x {layers['layer=0'].shape[1]} features, "
          f"{C.shape[1]} control features, {Y.shape[1]} voxels ({args.subjects} subjects)", flush=True)
    results, seconds = {}, {}
    for lib in ("lmbrain", "himalaya"):
        start = time.perf_counter()
        results[lib] = analysis(lib, layers, C, Y, problem.target_groups, problem)
        seconds[lib] = time.perf_counter() - start
        print(f"{lib}: {seconds[lib]:.1f} s", flush=True)
    same = np.mean([a == b for a, b in zip(results["lmbrain"]["chosen"], results["himalaya"]["chosen"], strict=True)])
    agreement = {}
    for key in ("llm", "controls", "joint"):
        a, b = results["lmbrain"][key], results["himalaya"][key]
        ok = np.isfinite(a) & np.isfinite(b)
        agreement[key] = (float(np.max(np.abs(a - b)[ok]) / np.max(np.abs(b[ok]))),
                          float(np.corrcoef(a[ok], b[ok])[0, 1]))
        print(f"{key}: max |lmbrain - himalaya| / max |himalaya| {agreement[key][0]:.1e}, "
              f"correlation {agreement[key][1]:.12f}")
    problem.targets, problem.candidates, problem.controls = ArrayTargets(Y.astype(np.float64)), layers, C
    problem.ridge.set_params(standardize=False)
    problem.control_standardize, problem.spill_dir = False, None
    start = time.perf_counter()
    chunked_control_analysis(problem)
    chunked = time.perf_counter() - start
    print(f"lmbrain chunked analysis (stacked_simplex joint, unique-variance test): {chunked:.1f} s")
    print(f"SUMMARY lmbrain/himalaya time {seconds['lmbrain'] / seconds['himalaya']:.3f} "
          f"({seconds['lmbrain']:.1f} s vs {seconds['himalaya']:.1f} s); same layers {same:.0%}; prediction "
          f"max rel diff llm {agreement['llm'][0]:.1e}, controls {agreement['controls'][0]:.1e}, joint "
          f"{agreement['joint'][0]:.1e}; chunked lmbrain {chunked:.1f} s")


if __name__ == "__main__":
    main()
