"""The sensitivity table: how much of a known unique LLM contribution each dataset × model × control set recovers,
how often its tests detect it, and the smallest unique R² it detects with 80 % power (docs/statistics.md,
"Sensitivity"; the values are computed per joint unit by :mod:`lmbrain.study.sensitivity`), its caption, the trust
panel's line per trained model × control set and the headline's sentence on what would read as zero."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmbrain.analysis.sensitivity import TARGET_POWER, detectable
from lmbrain.results import (
    NO_MODEL,
    P_UNIQUE,
    R2,
    SENS_LIMIT,
    SENS_P,
    SENS_PREFIX,
    SENS_RECOVERED,
    SENS_UNIQUE,
    FeatureSet,
    parse_sensitivity_metric,
)

#: subjects needed for the across-subject test (as in the headline)
MIN_SUBJECTS = 3
COLUMNS = ["dataset", "model", "controls", "implanted_unique_r2", "mean_recovered", "recovery", "learnable_limit",
           "recovery_of_limit", "power", "power_across_subjects", "test", "n_subjects", "n_targets", "detectable",
           "real_p", "real_detected"]


def _sensitivity_rows(results: pd.DataFrame) -> pd.DataFrame:
    """The sensitivity rows of the grouped scheme with their parsed kind, level and replication."""
    rows = results[results["metric"].astype(str).str.startswith(SENS_PREFIX) & (results["scheme"] == "grouped")]
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


def _real_p(results: pd.DataFrame, dataset: str, model: str, feature_set: str, n_subjects: int, seed: int) -> float:
    """The real responses' own test of the unique LLM R², as the headline reads it: one-sided sign flips across
    subjects of the subject-mean R²(joint) − R²(controls) with 3 or more subjects, else the per-target p_unique
    (the smallest over targets; NaN without one)."""
    from lmbrain.analysis.second_level import across_subjects

    at = results[(results["dataset"] == dataset) & (results["scheme"] == "grouped") & (~results["per_layer"])]
    if n_subjects < MIN_SUBJECTS:
        p = at[(at["model"] == model) & (at["feature_set"] == feature_set) & (at["metric"] == P_UNIQUE)]["value"]
        return float(p.min()) if len(p) else float("nan")
    controls = FeatureSet.parse(feature_set).controls_label
    joint = at[(at["model"] == model) & (at["feature_set"] == feature_set) & (at["metric"] == R2)]
    alone = at[(at["model"] == NO_MODEL) & (at["feature_set"] == controls) & (at["metric"] == R2)]
    unique = (joint.groupby("subject")["value"].mean() - alone.groupby("subject")["value"].mean()).dropna()
    if len(unique) < MIN_SUBJECTS:
        return float("nan")
    return float(across_subjects(unique.to_numpy(float), alternative="greater", seed=seed).p_signflip)


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
        # the implanted responses carry the real unique part too: where the real test already detects it, the power
        # (and the detectable level) say nothing about a smaller effect; the report says so instead of a bound
        frame["real_p"] = _real_p(results, dataset, model, feature_set, n_subjects, seed)
        frame["real_detected"] = bool(np.isfinite(frame["real_p"].iloc[0]) and frame["real_p"].iloc[0] <= alpha)
        out.append(frame)
    return pd.concat(out, ignore_index=True)[COLUMNS]


#: the implanted level whose recovery the trust panel states (the nearest one in log scale where it is not tested)
REFERENCE_LEVEL = 0.02


def n_replications(results: pd.DataFrame) -> int:
    """The random directions implanted per level (the most any level has); 0 without sensitivity rows."""
    rows = _sensitivity_rows(results)
    rows = rows[rows["kind"] == SENS_UNIQUE]
    return int(rows.groupby("level")["rep"].nunique().max()) if len(rows) else 0


def sensitivity_caption(alpha: float, replications: int) -> str:
    """The sensitivity table's caption: what was implanted, what was refitted, what each column means and which
    test the power and the detectable unique R² use, at which α."""
    directions = f"{replications} random directions per level" if replications else "random directions"
    return (
        "Per joint unit (trained models, grouped CV), the real responses plus a known signal unique to the LLM: a "
        "random direction of the model's own features (the z-scored layer chosen most often in-fold), residualised "
        "on the controls and the intercept, added at the stated share of each response's variance "
        f"(implanted_unique_r2: the implanted unique R²); {directions}. The joint model and the controls alone are "
        "refitted on the implanted responses: ridge penalties and stacking weights are chosen again by inner CV "
        "inside each training fold, and so is the OASM width σ of the controls alone, while the joint model's LLM "
        "layer (and σ) stay at their in-fold choices for the real responses. mean_recovered: the implanted "
        "responses' unique R² minus the real responses' (times 1 − level, the real part diluted by the implant), "
        "mean over replications and targets (subject means first); recovery: mean_recovered / implanted. "
        "learnable_limit: the unique R² recovered by a ridge that knows where the signal lives (the layer's "
        "features residualised on the controls, fitted to the responses' residuals on the controls at its best "
        "common penalty), the most these samples allow; recovery_of_limit: mean_recovered / learnable_limit. power: "
        f"share of targets × replications whose p_unique (paired block sign flips) is ≤ α = {alpha:g}; "
        "power_across_subjects: share of replications whose one-sided sign-flip test across subjects of the "
        f"subject-mean unique R² gives p ≤ α = {alpha:g} (3 or more subjects). detectable: the smallest unique R² "
        f"detected with {100 * TARGET_POWER:.0f} % power by the headline's test (column test: across subjects with 3 "
        "or more subjects, else the per-target p_unique), interpolated linearly in log(level) between the levels "
        "around the first crossing; inf: not reached at the largest level. real_p: the real responses' own test "
        "of the unique R² (the headline's p); real_detected: real_p ≤ α, where the implanted responses are detected "
        "partly through the "
        "real unique contribution, so power and detectable bound nothing smaller (the report says so)."
    )


def _block(table: pd.DataFrame, dataset: str, controls: str, model: str) -> pd.DataFrame:
    """The rows of one dataset × control set × model, by implanted level."""
    if table.empty:
        return table
    rows = table[(table["dataset"] == dataset) & (table["controls"] == controls) & (table["model"] == model)]
    return rows.sort_values("implanted_unique_r2")


def _level(value: float) -> str:
    return f"{value:g}"


def _percent(value: float) -> str:
    return f"{100 * value:.0f} %" if np.isfinite(value) else "—"


def _test_words(row: pd.Series) -> str:
    """The test the detectable value is read with, in words."""
    if row["test"] == "sign flip across subjects":
        return f"sign flip across {int(row['n_subjects'])} subjects"
    return f"per-target p_unique over {int(row['n_targets'])} targets"


def _used_power(row: pd.Series) -> float:
    return float(row["power_across_subjects"] if row["test"] == "sign flip across subjects" else row["power"])


def _real_detected(row: pd.Series) -> bool:
    """Whether the real responses' own test detected their unique R² at the study's α (the table's column)."""
    return bool(row.get("real_detected", False))


def detectable_clause(block: pd.DataFrame) -> str:
    """'would detect a unique R² of 0.012 with 80 % power (sign flip across 5 subjects)' or, where the largest
    level is not detected that often, 'would not detect a unique R² of 0.05 ...'; '' without a power."""
    if block.empty:
        return ""
    value, power = float(block["detectable"].iloc[0]), f"{100 * TARGET_POWER:.0f} % power"
    first, last = block.iloc[0], block.iloc[-1]
    if np.isnan(value):
        return "power not estimated (no p-values of the implanted responses)"
    if _real_detected(first):
        return (f"the real unique contribution is already detected (p = {float(first['real_p']):.2g}), so the power of "
                "the implanted responses includes it and bounds no smaller effect")
    if np.isinf(value):
        return (f"would not detect a unique R² of {_level(last['implanted_unique_r2'])} with {power} "
                f"({_test_words(last)}: power {_percent(_used_power(last))} there)")
    smallest = " (the smallest level tested)" if value <= first["implanted_unique_r2"] else ""
    return f"would detect a unique R² of {value:.2g}{smallest} with {power} ({_test_words(first)})"


def recovery_clause(block: pd.DataFrame, reference: float = REFERENCE_LEVEL) -> str:
    """'recovers 13 % of an implanted 0.02; the learnable limit 64 %' (at the level nearest ``reference``)."""
    if block.empty:
        return ""
    row = block.iloc[int(np.argmin(np.abs(np.log(block["implanted_unique_r2"].to_numpy(float) / reference))))]
    level = float(row["implanted_unique_r2"])
    return (f"recovers {_percent(row['recovery'])} of an implanted {_level(level)}; the learnable limit "
            f"{_percent(row['learnable_limit'] / level)}")


def trust_items(table: pd.DataFrame, dataset: str) -> list[tuple[str, str]]:
    """The trust panel's sensitivity lines of a dataset: (label, text), one per trained model × control set."""
    if table.empty:
        return []
    rows = table[table["dataset"] == dataset]
    items = []
    for (model, controls), block in rows.groupby(["model", "controls"], sort=True):
        block = block.sort_values("implanted_unique_r2")
        text = "; ".join(part for part in (detectable_clause(block), recovery_clause(block)) if part)
        items.append((f"sensitivity ({model} vs {controls})", text))
    return items


def zero_sentence(table: pd.DataFrame, dataset: str, controls: str, model: str) -> str:
    """The headline's sentence next to omega: 'For m, a unique contribution below 0.012 would read as zero here.'
    ('even 0.05 could read as zero' where the largest level is not detected with 80 % power; '' without one)."""
    block = _block(table, dataset, controls, model)
    if block.empty or np.isnan(float(block["detectable"].iloc[0])) or _real_detected(block.iloc[0]):
        return ""  # without a power, or where the real unique contribution does not read as zero
    value = float(block["detectable"].iloc[0])
    if np.isinf(value):
        return (f"For {model}, even a unique contribution of {_level(block['implanted_unique_r2'].iloc[-1])} "
                "could read as zero here.")
    if value <= float(block["implanted_unique_r2"].iloc[0]):
        return (f"For {model}, a unique contribution of {_level(value)}, the smallest tested, would not read as "
                "zero here.")
    return f"For {model}, a unique contribution below {value:.2g} would read as zero here."
