"""The sensitivity table: how much of a known unique LLM contribution each dataset × model × control set recovers,
how often its tests detect it, and the smallest unique R² it detects with 80 % power (docs/statistics.md,
"Sensitivity"; the values are computed per joint unit by :mod:`lmbrain.study.sensitivity`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmbrain.analysis.sensitivity import TARGET_POWER, detectable
from lmbrain.results import (
    SENS_LIMIT,
    SENS_P,
    SENS_RECOVERED,
    SENS_UNIQUE,
    FeatureSet,
    parse_sensitivity_metric,
)

#: subjects needed for the across-subject test (as in the headline)
MIN_SUBJECTS = 3
COLUMNS = ["dataset", "model", "controls", "implanted_unique_r2", "mean_recovered", "recovery", "learnable_limit",
           "recovery_of_limit", "power", "power_across_subjects", "test", "n_subjects", "n_targets", "detectable"]


def _sensitivity_rows(results: pd.DataFrame) -> pd.DataFrame:
    """The sensitivity rows of the grouped scheme with their parsed kind, level and replication."""
    rows = results[results["metric"].astype(str).str.startswith("sens_") & (results["scheme"] == "grouped")]
    parsed = rows["metric"].map(parse_sensitivity_metric)
    rows = rows[parsed.notna()].copy()
    parsed = parsed[parsed.notna()]
    rows["kind"] = [p[0] for p in parsed]
    rows["level"] = [p[1] for p in parsed]
    rows["rep"] = [-1 if p[2] is None else p[2] for p in parsed]
    return rows


def _across_power(rows: pd.DataFrame, alpha: float, seed: int) -> tuple[float, int]:
    """Fraction of replications whose across-subject sign-flip test of the subject-mean unique R² is significant,
    and the number of subjects (NaN power with fewer than :data:`MIN_SUBJECTS`)."""
    from lmbrain.analysis.second_level import across_subjects

    unique = rows[rows["kind"] == SENS_UNIQUE]
    n_subjects = int(unique["subject"].nunique())
    if n_subjects < MIN_SUBJECTS:
        return float("nan"), n_subjects
    means = unique.groupby(["rep", "subject"])["value"].mean()
    hits = [across_subjects(means.loc[rep].to_numpy(float), alternative="greater", seed=seed).p_signflip <= alpha
            for rep in means.index.get_level_values(0).unique()]
    return float(np.mean(hits)), n_subjects


def sensitivity_table(results: pd.DataFrame, alpha: float = 0.05, seed: int = 0) -> pd.DataFrame:
    """One row per dataset × model × control set × implanted level (trained models; grouped CV): mean recovered
    unique R² (over targets, subject means first where there are several subjects), recovery (÷ implanted, and ÷ the
    learnable limit), the power of p_unique (targets × replications) and of the across-subject test, and the
    smallest unique R² detected with 80 % power by the test the headline uses (across subjects with at least 3,
    else the targets' p_unique)."""
    rows = _sensitivity_rows(results)
    if rows.empty:
        return pd.DataFrame(columns=COLUMNS)
    out = []
    for (dataset, model, feature_set), group in rows.groupby(["dataset", "model", "feature_set"], sort=True):
        controls = FeatureSet.parse(feature_set).controls_label
        block = []
        for level, at in group.groupby("level", sort=True):
            def mean_of(kind: str, at: pd.DataFrame = at) -> float:
                values = at[at["kind"] == kind].groupby("subject")["value"].mean()
                return float(values.mean()) if len(values) else float("nan")

            recovered, limit = mean_of(SENS_RECOVERED), mean_of(SENS_LIMIT)
            p = at[at["kind"] == SENS_P]["value"].to_numpy(float)
            across, n_subjects = _across_power(at, alpha, seed)
            block.append({
                "dataset": dataset, "model": model, "controls": controls, "implanted_unique_r2": float(level),
                "mean_recovered": recovered, "recovery": recovered / level,
                "learnable_limit": limit, "recovery_of_limit": recovered / limit if limit > 0 else float("nan"),
                "power": float((p <= alpha).mean()) if len(p) else float("nan"),
                "power_across_subjects": across,
                "test": "sign flip across subjects" if n_subjects >= MIN_SUBJECTS else "per-target p_unique",
                "n_subjects": n_subjects,
                "n_targets": int(at[at["kind"] == SENS_RECOVERED].groupby(["subject", "neuroid_id"]).ngroups),
            })
        frame = pd.DataFrame(block)
        used = frame["power_across_subjects"] if n_subjects >= MIN_SUBJECTS else frame["power"]
        frame["detectable"] = detectable(frame["implanted_unique_r2"].to_numpy(), used.to_numpy(), TARGET_POWER)
        out.append(frame)
    return pd.concat(out, ignore_index=True)[COLUMNS]


def detectable_text(value: float, levels: list[float] | None = None) -> str:
    """The smallest detectable unique R² in words: "0.012", "above 0.05" (none reached the power), "—" (unknown)."""
    if not np.isfinite(value):
        if np.isinf(value):
            return f"above {max(levels):g}" if levels else "above the largest level tested"
        return "—"
    return f"{value:.3g}"
