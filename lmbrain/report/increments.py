"""Nested control sets: where one control set of a dataset contains another (A, and A + surprisal, or A + its
lags), the increment R²(larger) − R²(smaller) of the controls alone, tested across subjects (one-sided sign flips
of the subject means, as the headline's unique LLM R²), with FDR over the dataset's increments."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmbrain.analysis.second_level import paired_across_subjects
from lmbrain.analysis.stats import fdr_bh
from lmbrain.results import INCREMENT, NO_MODEL, P_INCREMENT, R2, FeatureSet, increment_metric

#: subjects needed for the test across subjects (as in the headline)
MIN_SUBJECTS = 3
COLUMNS = ["dataset", "smaller", "added", "r2_smaller", "r2_larger", "increment", "ci_low", "ci_high", "p", "q",
           "n_subjects", "test", "targets_significant"]
CAPTION = ("Control sets of a dataset that contain another: the increment R²(larger) − R²(smaller) of the controls "
           "alone (out-of-sample, grouped CV), mean over subjects of subject means over the same targets; CI: 95 % t "
           "interval over subjects; p: one-sided sign-flip test across subjects that the larger set predicts better "
           "(exact with few subjects); q: Benjamini–Hochberg over the dataset's increments. With fewer than 3 "
           "subjects, p is the per-target test (one target: block sign flips of the paired squared-error differences "
           "over the split unit's groups, as the unique LLM R²'s, without its two-role inflation κ). "
           "targets_significant: targets whose per-target increment p survives Benjamini–Hochberg over the "
           "dataset's targets (q ≤ α), of all targets.")


def nested_pairs(sets: list[str]) -> list[tuple[str, str]]:
    """(smaller, larger) pairs of control-set labels where the larger strictly contains the smaller."""
    parsed = {s: set(FeatureSet.controls_only(s).controls) for s in sets}
    return [(a, b) for a in sets for b in sets if a != b and parsed[a] < parsed[b]]


def _added(smaller: str, larger: str) -> list[str]:
    return sorted(set(FeatureSet.controls_only(larger).controls) - set(FeatureSet.controls_only(smaller).controls))


def increments_table(results: pd.DataFrame, seed: int = 0, fdr_alpha: float = 0.05) -> pd.DataFrame:
    """One row per dataset × nested pair of its control sets (grouped CV, the controls alone): the increment's
    mean over subjects with its CI and across-subject p (:data:`CAPTION`)."""
    rows = results[(results["model"] == NO_MODEL) & (results["scheme"] == "grouped") & (~results["per_layer"])
                   & (results["metric"] == R2)]
    out = []
    for dataset, frame in rows.groupby("dataset", sort=True):
        sets = [s for s in dict.fromkeys(frame["feature_set"]) if not FeatureSet.parse(s).llm]
        block = []
        for smaller, larger in nested_pairs(sets):
            a = frame[frame["feature_set"] == smaller].set_index(["subject", "neuroid_id"])["value"]
            b = frame[frame["feature_set"] == larger].set_index(["subject", "neuroid_id"])["value"]
            common = a.index.intersection(b.index)
            means = pd.DataFrame({"a": a[common], "b": b[common]}).groupby(level="subject").mean()
            n = len(means)
            test = paired_across_subjects(means["b"].to_numpy(), means["a"].to_numpy(), alternative="greater",
                                          seed=seed) if n >= MIN_SUBJECTS else None
            added = _added(smaller, larger)
            per_target = results[(results["dataset"] == dataset) & (results["feature_set"] == larger)
                                 & (results["model"] == NO_MODEL) & (results["scheme"] == "grouped")
                                 & (results["metric"] == increment_metric(P_INCREMENT, smaller))]["value"]
            significant = ""
            if len(per_target):
                kept = fdr_bh(per_target.to_numpy(float), alpha=fdr_alpha)[0]
                significant = f"{int(kept.sum())}/{len(kept)}"
            if test is None and len(per_target) == 1:  # one target: its own block sign-flip test
                one = results[(results["dataset"] == dataset) & (results["feature_set"] == larger)
                              & (results["model"] == NO_MODEL) & (results["scheme"] == "grouped")
                              & (results["metric"] == increment_metric(INCREMENT, smaller))]["value"]
                block.append({
                    "dataset": dataset, "smaller": smaller, "added": ", ".join(_added(smaller, larger)),
                    "r2_smaller": float(means["a"].mean()), "r2_larger": float(means["b"].mean()),
                    "increment": float(one.iloc[0]) if len(one) else float((means["b"] - means["a"]).mean()),
                    "ci_low": np.nan, "ci_high": np.nan, "p": float(per_target.iloc[0]), "n_subjects": n,
                    "test": "block sign flip over the split unit's groups (one target)",
                    "targets_significant": significant,
                })
                continue
            block.append({
                "dataset": dataset, "smaller": smaller, "added": ", ".join(added),
                "r2_smaller": float(means["a"].mean()), "r2_larger": float(means["b"].mean()),
                "increment": float((means["b"] - means["a"]).mean()),
                "ci_low": test.ci_low if test else np.nan, "ci_high": test.ci_high if test else np.nan,
                "p": test.p_signflip if test else np.nan, "n_subjects": n,
                "test": "sign flip across subjects" if test else "none (fewer than 3 subjects)",
                "targets_significant": significant,
            })
        if not block:
            continue
        table = pd.DataFrame(block)
        table["q"] = fdr_bh(table["p"].to_numpy(float), alpha=fdr_alpha)[1]
        out.append(table)
    return pd.concat(out, ignore_index=True)[COLUMNS] if out else pd.DataFrame(columns=COLUMNS)
