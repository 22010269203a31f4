"""The noise-ceiling table: per dataset and method, how many targets have a ceiling, its median, and how many
sit at a bound of [0, 1]."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmbrain.results import R

CEILING_TABLE_COLUMNS = ["dataset", "method", "n_subjects", "n_targets", "median_ceiling", "share_at_0",
                         "share_at_least_0.99", "share_at_bound", "median_ci_width", "median_own",
                         "median_extrapolated", "median_inter_subject", "median_r_largest_pool", "largest_pool"]


def ceiling_table(results: pd.DataFrame) -> pd.DataFrame:
    """Per dataset: how its noise ceilings were estimated and how degenerate they are (shares at 0, at >= 0.99, of
    targets whose own estimate was missing or outside (0, 1)), the median CI width, and the alternative estimates."""
    from lmbrain.results import (
        CEILING,
        CEILING_AT_BOUND,
        CEILING_CI_HIGH,
        CEILING_CI_LOW,
        CEILING_EXTRAPOLATED,
        CEILING_INTER_SUBJECT,
        CEILING_OWN,
        pool_r_sources,
    )

    rows = []
    ceilings = results[results["feature_set"] == CEILING]
    for dataset, frame in ceilings.groupby("dataset", sort=True):
        wide = frame.drop_duplicates(["subject", "neuroid_id", "metric"]).set_index(
            ["subject", "neuroid_id", "metric"])["value"].unstack("metric")
        if R not in wide.columns:
            continue
        value = wide[R].to_numpy(float)

        def median(metric: str, wide: pd.DataFrame = wide) -> float:
            return float(np.nanmedian(wide[metric].to_numpy(float))) if metric in wide.columns \
                and np.isfinite(wide[metric].to_numpy(float)).any() else np.nan

        pools = sorted(k for k in (pool_r_sources(m) for m in wide.columns) if k is not None)
        n_subjects = int(frame["subject"].nunique())
        if CEILING_OWN in wide.columns and pools:
            split = min(pools[-1], (n_subjects - 1) // 2)
            method = f"two disjoint pools of {split} subjects, attenuation-corrected r, shrunk to the subject mean"
        else:
            method = "per-target saturation fit (legacy)"
        at_bound = wide[CEILING_AT_BOUND].to_numpy(float) if CEILING_AT_BOUND in wide.columns else \
            ((value <= 0) | (value >= 1)).astype(float)
        width = (wide[CEILING_CI_HIGH] - wide[CEILING_CI_LOW]).to_numpy(float) if CEILING_CI_LOW in wide.columns \
            else np.full(len(wide), np.nan)
        rows.append({
            "dataset": dataset, "method": method, "n_subjects": n_subjects, "n_targets": len(wide),
            "median_ceiling": float(np.nanmedian(value)), "share_at_0": float(np.mean(value <= 0)),
            "share_at_least_0.99": float(np.mean(value >= 0.99)), "share_at_bound": float(np.nanmean(at_bound)),
            "median_ci_width": float(np.nanmedian(width)) if np.isfinite(width).any() else np.nan,
            "median_own": median(CEILING_OWN), "median_extrapolated": median(CEILING_EXTRAPOLATED),
            "median_inter_subject": median(CEILING_INTER_SUBJECT),
            "median_r_largest_pool": median(f"pool_r_{pools[-1]}") if pools else np.nan,
            "largest_pool": pools[-1] if pools else np.nan,
        })
    return pd.DataFrame(rows, columns=CEILING_TABLE_COLUMNS)
