"""The LLM-alone ridge's penalty rule on a real time series: every ``alpha_choice`` side by side on Brennan2016.

For each model variant (``--variants``, default: the three trained models of ``analyses/default.yaml`` and two
untrained seeds), every layer candidate's inner-CV scores (per inner fold, per alpha, per target) and its test
predictions at every alpha are computed once per outer fold; each rule then chooses, inside every training fold, one
(layer, alpha per target) per subject exactly as ``cross_validate_select`` does, and the out-of-sample R² of the
choice is pooled over the outer folds. Printed per (variant, rule): the mean, median and minimum over subjects of the
subject-mean R², and how many subjects fall below -0.02 and -0.05. The rows of ``docs/statistics.md`` ("The LLM-alone
penalty on time series").

    python benchmarks/compare_alpha_choice.py [--variants smollm2-135m gemma3-270m:untrained-2 ...]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from lmbrain.encoding.estimators import check_splits
from lmbrain.encoding.inner_cv import alpha_scores, ridge_cv_scores, select_alphas
from lmbrain.encoding.ridge import ALPHA_CHOICES, ridge_fit
from lmbrain.study.context import StudyContext
from lmbrain.study.estimators import make_ridge
from lmbrain.study.schema import load_study

DATASET = "brennan2016_alice"
VARIANTS = ("smollm2-135m", "gemma3-270m", "minilm-l6", "smollm2-135m:untrained-0", "gemma3-270m:untrained-2")


def fold_tables(study, model: str, seed: int | None) -> tuple:
    """Per (outer fold, layer): raw inner-CV scores (n_inner, n_alphas, n_targets) and test predictions at every
    alpha (n_alphas, n_test, n_targets); with the responses, subjects and splits."""
    inputs = StudyContext(study)
    data = inputs.targets(DATASET, "*", "grouped")
    candidates = {k: X[data.rows] for k, X in inputs.layer_candidates(DATASET, model, seed).items()}
    ridge = make_ridge(study, True, "grouped", llm=True)
    alphas = np.asarray(study.estimator.alphas, dtype=float)
    kwargs = ridge._solver_kwargs()
    splits = list(data.cv.split(np.zeros(len(data.Y)), data.Y, data.groups))
    raw, test = {}, {}
    for k, (train, held) in enumerate(splits):
        first = next(iter(candidates.values()))
        inner = check_splits(ridge.cv, first[train], data.Y[train], data.groups[train])
        for name, X in candidates.items():
            raw[k, name] = ridge_cv_scores(X[train], data.Y[train], alphas, inner, scoring="r2",
                                           method=ridge.cv_method, **kwargs)
            test[k, name] = np.stack([
                ridge_fit(X[train], data.Y[train], alphas, np.full(data.Y.shape[1], a), **kwargs).predict(X[held])
                for a in range(len(alphas))])
    return data, list(candidates), splits, alphas, raw, test


def subject_r2(tables: tuple, choice: str) -> pd.Series:
    """Subject-mean out-of-sample R² of the layer and penalties ``choice`` picks inside each training fold."""
    data, names, splits, alphas, raw, test = tables
    Y, subjects = data.Y, data.subjects
    pred, base = np.zeros_like(Y), np.zeros_like(Y)
    for k, (train, held) in enumerate(splits):
        base[held] = Y[train].mean(0)
        for subject in dict.fromkeys(subjects):
            cols = np.flatnonzero(subjects == subject)
            best = None
            for name in names:
                scores = alpha_scores(raw[k, name][:, :, cols], alphas, choice)
                index = select_alphas(scores, alphas)
                value = float(np.nanmean(scores[index, np.arange(len(cols))]))
                if best is None or value > best[0]:  # ties: the earlier layer, as cross_validate_select
                    best = (value, name, index)
            _, name, index = best
            pred[np.ix_(held, cols)] = test[k, name][index, :, cols].T
    r2 = 1 - ((Y - pred) ** 2).sum(0) / ((Y - base) ** 2).sum(0)
    return pd.Series(r2).groupby(subjects).mean()


def main() -> None:
    """Run every rule on every variant and print one Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--study", default="analyses/default.yaml")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    args = parser.parse_args()
    study = load_study(args.study)
    start = time.process_time()
    print("| model | `alpha_choice` | mean | median | min | subjects < −0.02 | subjects < −0.05 |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for variant in args.variants:
        model, _, seed = variant.partition(":untrained-")
        tables = fold_tables(study, model, int(seed) if seed else None)
        for choice in ALPHA_CHOICES:
            r2 = subject_r2(tables, choice)
            print(f"| {variant} | `{choice}` | {r2.mean():+.4f} | {r2.median():+.4f} | {r2.min():+.4f} | "
                  f"{int((r2 < -0.02).sum())} | {int((r2 < -0.05).sum())} |", flush=True)
    print(f"\n{time.process_time() - start:.0f} CPU s")


if __name__ == "__main__":
    main()
