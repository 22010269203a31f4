"""The report's headline: one row per dataset × control set × model with the numbers a control analysis is read
by (R² of the LLM, of the controls and of both, the LLM's unique R² with its across-subject p, omega, the
ceiling-normalised score), and one generated sentence per dataset that states the finding with its numbers."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmbrain.report.seeds import base_model
from lmbrain.report.tables import MIN_SUBJECTS_SECOND_LEVEL, controls_of, format_interval
from lmbrain.results import NO_MODEL, P_UNIQUE, FeatureSet, is_untrained

#: the numeric columns of :func:`headline_rows`
HEADLINE_COLUMNS = [
    "dataset", "controls", "model", "base", "untrained", "r2_llm", "r2_llm_low", "r2_llm_high", "r2_controls",
    "r2_controls_low", "r2_controls_high", "r2_joint", "unique_llm", "unique_low", "unique_high", "p_unique",
    "p_test", "n_subjects", "omega", "omega_low", "omega_high", "r_ceiled",
]


def parse_interval(text: object) -> tuple[float, float]:
    """The bounds of a '[low, high]' string; NaN for '' or 'not defined'."""
    if not isinstance(text, str) or not text.startswith("["):
        return np.nan, np.nan
    low, high = (float(v) for v in text.strip("[]").split(","))
    return low, high


def _family_value(row: pd.Series, column: str, controls: str, several: bool) -> object:
    """A family-table value, whose column carries a ' [controls]' suffix where a dataset has several control sets."""
    key = f"{column} [{controls}]" if several else column
    return row.get(key, np.nan)


def _controls_interval(data: pd.DataFrame, dataset: str, controls: str, seed: int,
                       n_boot: int) -> tuple[float, float, float]:
    """R² of the controls alone: mean over subjects of subject means with a bootstrap CI over subjects (>= 3),
    the target's own CI over the split unit's groups (one target), else over targets."""
    from lmbrain.analysis.stats import bootstrap_ci

    rows = data[(data["dataset"] == dataset) & (data["model"] == NO_MODEL) & (data["feature_set"] == controls)]
    r2 = rows[rows["metric"] == "r2"]
    if r2.empty:
        return np.nan, np.nan, np.nan
    if r2["subject"].nunique() >= 3:
        means = r2.groupby("subject")["value"].mean()
        ci = bootstrap_ci(means.to_numpy(float), n_boot=n_boot, seed=seed)
        return float(means.mean()), ci.low, ci.high
    if len(r2) == 1:
        value = rows.set_index("metric")["value"]
        return float(r2["value"].iloc[0]), float(value.get("r2_ci_low", np.nan)), float(value.get("r2_ci_high",
                                                                                                    np.nan))
    ci = bootstrap_ci(r2["value"].to_numpy(float), n_boot=n_boot, seed=seed)
    return float(r2["value"].mean()), ci.low, ci.high


def _unique_test(data: pd.DataFrame, main: pd.DataFrame, dataset: str, controls: str, model: str,
                 seed: int) -> tuple[float, str, int]:
    """One-sided p of unique LLM R² > 0: a sign-flip test across subjects of their mean unique R² (>= 3 subjects),
    else the single target's block sign-flip p over the split unit's groups; with the test's name."""
    from lmbrain.analysis.second_level import across_subjects

    rows = main[(main["dataset"] == dataset) & (main["controls"] == controls) & (main["model"] == model)
                & (main["subject"] != "all")]
    n_subjects = len(rows)
    if n_subjects >= MIN_SUBJECTS_SECOND_LEVEL:
        test = across_subjects(rows["unique_llm"].to_numpy(float), alternative="greater", seed=seed)
        return float(test.p_signflip), "sign flip across subjects", n_subjects
    joint = FeatureSet.parse(controls).joint().label
    target = data[(data["dataset"] == dataset) & (data["model"] == model) & (data["feature_set"] == joint)
                  & (data["metric"] == P_UNIQUE)]
    if len(target) == 1:
        how = "one target: block sign flips over the split unit's groups"
        return float(target["value"].iloc[0]), how, n_subjects
    return np.nan, "", n_subjects


def headline_rows(results: pd.DataFrame, main: pd.DataFrame, family: pd.DataFrame, scheme: str = "grouped",
                  n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per dataset × control set × model (untrained seeds included): the headline numbers, numeric
    (:data:`HEADLINE_COLUMNS`)."""
    if family.empty:
        return pd.DataFrame(columns=HEADLINE_COLUMNS)
    data = results[(results["scheme"] == scheme) & (~results["per_layer"])]
    rows = []
    for dataset, frame in family.groupby("dataset", sort=True):
        sets = controls_of(results, dataset)
        for controls in sets:
            several = len(sets) > 1
            ctrl, ctrl_low, ctrl_high = _controls_interval(data, dataset, controls, seed, n_boot)
            for _, row in frame.iterrows():
                model = row["model"]
                r2_low, r2_high = parse_interval(row.get("r2_ci"))
                unique_low, unique_high = parse_interval(_family_value(row, "unique_llm_ci", controls, several))
                omega_low, omega_high = parse_interval(_family_value(row, "omega_ci", controls, several))
                p, test, n_subjects = _unique_test(data, main, dataset, controls, model, seed)
                rows.append({
                    "dataset": dataset, "controls": controls, "model": model, "base": base_model(model),
                    "untrained": is_untrained(model), "r2_llm": float(row["r2"]), "r2_llm_low": r2_low,
                    "r2_llm_high": r2_high, "r2_controls": ctrl, "r2_controls_low": ctrl_low,
                    "r2_controls_high": ctrl_high,
                    "r2_joint": float(_family_value(row, "r2_joint", controls, several)),
                    "unique_llm": float(_family_value(row, "unique_llm", controls, several)),
                    "unique_low": unique_low, "unique_high": unique_high, "p_unique": p, "p_test": test,
                    "n_subjects": n_subjects, "omega": float(_family_value(row, "omega", controls, several)),
                    "omega_low": omega_low, "omega_high": omega_high,
                    "r_ceiled": float(row.get("r_ceiled", np.nan)),
                })
    return pd.DataFrame(rows, columns=HEADLINE_COLUMNS)


def _fmt(value: float, digits: int = 3) -> str:
    return "" if not np.isfinite(value) else f"{value:.{digits}f}"


def _with_interval(value: float, low: float, high: float, digits: int = 3) -> str:
    """'0.031 [0.012, 0.050]', '0.031' without a CI, '' without a value."""
    if not np.isfinite(value):
        return ""
    interval = format_interval(low, high, digits)
    return f"{value:.{digits}f} {interval}".strip()


def _p_text(p: float) -> str:
    if not np.isfinite(p):
        return ""
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _seed_text(values: pd.Series, digits: int = 3, undefined: str = "not defined") -> str:
    """Mean over seeds with the range ``{min, max}`` over seeds (braces: a range, not a CI)."""
    finite = values.to_numpy(float)
    finite = finite[np.isfinite(finite)]
    if not len(finite):
        return undefined if len(values) else ""
    text = f"{finite.mean():.{digits}f} {{{finite.min():.{digits}f}, {finite.max():.{digits}f}}}"
    return text if len(finite) == len(values) else f"{text} {len(finite)}/{len(values)} def."


def headline_table(rows: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """The summary table shown first: trained models as they are; a model's untrained seeds in one row (one seed:
    its values and CIs; several: mean and range {min, max} over seeds, and how many seeds' unique R² has p <=
    ``alpha``)."""
    columns = ["dataset", "controls", "model", "R² LLM [CI]", "R² controls [CI]", "R² joint",
               "unique LLM R² [CI]", "p (unique)", "Ω % [CI]", "r / ceiling"]
    out = []
    if rows.empty:
        return pd.DataFrame(columns=columns)
    keys = ["dataset", "controls", "base", "untrained"]
    for (dataset, controls, base, untrained), group in rows.groupby(keys, sort=True):
        if not untrained or len(group) == 1:
            for r in group.itertuples(index=False):
                out.append({
                    "dataset": dataset, "controls": controls,
                    "model": base if not untrained else f"{base} untrained (seed {r.model.rsplit('-', 1)[-1]})",
                    "R² LLM [CI]": _with_interval(r.r2_llm, r.r2_llm_low, r.r2_llm_high),
                    "R² controls [CI]": _with_interval(r.r2_controls, r.r2_controls_low, r.r2_controls_high),
                    "R² joint": _fmt(r.r2_joint),
                    "unique LLM R² [CI]": _with_interval(r.unique_llm, r.unique_low, r.unique_high),
                    "p (unique)": _p_text(r.p_unique) + (f" ({r.n_subjects} subj.)" if r.n_subjects >= 3 else ""),
                    "Ω % [CI]": (_with_interval(r.omega, r.omega_low, r.omega_high, 1) if np.isfinite(r.omega)
                                 else "not defined"),
                    "r / ceiling": _fmt(r.r_ceiled),
                })
            continue
        first = group.iloc[0]
        significant = int((group["p_unique"] <= alpha).sum())
        out.append({
            "dataset": dataset, "controls": controls, "model": f"{base} untrained ({len(group)} seeds)",
            "R² LLM [CI]": _seed_text(group["r2_llm"]),
            "R² controls [CI]": _with_interval(first.r2_controls, first.r2_controls_low, first.r2_controls_high),
            "R² joint": _seed_text(group["r2_joint"]), "unique LLM R² [CI]": _seed_text(group["unique_llm"]),
            "p (unique)": f"{significant}/{len(group)} seeds ≤ {alpha:g}",
            "Ω % [CI]": _seed_text(group["omega"], 1), "r / ceiling": _seed_text(group["r_ceiled"], undefined=""),
        })
    table = pd.DataFrame(out, columns=columns)
    trained_first = table["model"].str.contains(" untrained").astype(int)
    return table.assign(_order=trained_first).sort_values(["dataset", "controls", "_order", "model"],
                                                          kind="stable").drop(columns="_order")


def _pretty_controls(controls: str) -> str:
    parts = [p.replace("_", " ") for p in controls.split("+")]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _model_finding(r: pd.Series, alpha: float, controls: str) -> str:
    """What the controls and the LLM do for one trained model (a clause)."""
    subjects = f"{r.n_subjects} subjects" if r.n_subjects >= 3 else r.p_test
    p = _p_text(r.p_unique)
    p_part = f"p = {p}" if p and not p.startswith("<") else f"p {p}"
    unique = f"unique R² {r.unique_llm:.3f}" + (f" [{r.unique_low:.3f}, {r.unique_high:.3f}]"
                                                if np.isfinite(r.unique_low) else "")
    adds = (f"the LLM adds significant variance beyond the controls ({unique}, {p_part}, {subjects})"
            if np.isfinite(r.p_unique) and r.p_unique <= alpha else
            f"the LLM adds no significant variance ({unique}, {p_part}, {subjects})" if np.isfinite(r.p_unique)
            else f"no test of its unique variance ({unique})")
    if np.isfinite(r.omega):
        ci = f" [{r.omega_low:.0f}, {r.omega_high:.0f}]" if np.isfinite(r.omega_low) else ""
        verb = "account" if " and " in controls else "accounts"
        return f"{controls} {verb} for {r.omega:.0f}%{ci} of {r.base}'s R²; {adds}"
    return (f"{r.base}'s R² ({r.r2_llm:.3f} [{r.r2_llm_low:.3f}, {r.r2_llm_high:.3f}]) is not above chance, "
            f"so omega is not defined; {adds}")


def _seed_clause(group: pd.DataFrame) -> str:
    """What the untrained seeds of a model show (a clause), or ''."""
    if group.empty:
        return ""
    omega = group["omega"].to_numpy(float)
    defined = omega[np.isfinite(omega)]
    n = len(group)
    seeds = "its untrained seed" if n == 1 else f"its {n} untrained seeds"
    if not len(defined):
        return f"{seeds}: R² not above chance, omega not defined"
    low, high = f"{defined.min():.0f}", f"{defined.max():.0f}"
    spread = f"{defined.mean():.0f}%" if len(defined) == 1 else \
        f"{low}% in each" if low == high else f"{defined.mean():.0f}% (range {low}–{high}%)"
    return f"{seeds}: omega {spread}" + (f", defined for {len(defined)} of {n}" if len(defined) < n else "")


def findings(rows: pd.DataFrame, alpha: float = 0.05) -> dict[str, list[str]]:
    """One generated sentence per dataset × control set (a list per dataset), stating omega with its CI and
    whether the LLM adds significant variance, for every trained model (and the spread of its untrained seeds)."""
    out: dict[str, list[str]] = {}
    for (dataset, controls), frame in rows.groupby(["dataset", "controls"], sort=True):
        pretty = _pretty_controls(controls)
        clauses = []
        for base, group in frame.groupby("base", sort=True):
            trained = group[~group["untrained"]]
            seeds = _seed_clause(group[group["untrained"]])
            if trained.empty:
                clauses.append(f"{base}: {seeds}")
                continue
            clause = _model_finding(trained.iloc[0], alpha, pretty)
            clauses.append(clause + (f" ({seeds})" if seeds else ""))
        sentence = f"On {dataset}, " + "; ".join(clauses) + "."
        out.setdefault(dataset, []).append(sentence)
    return out
