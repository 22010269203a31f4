"""The report's headline: one row per dataset × control set × model with the numbers a control analysis is read
by (R² of the LLM, of the controls and of both, the LLM's unique R² with its across-subject p, omega as measured
(of the mean R²s, and the mean of per-subject omegas), the ceiling-normalised score), and one generated sentence per
dataset that states the finding with its numbers (and, where the results have sensitivity rows, the unique R² that
would read as zero there). An omega above 100 (the joint model lost to the controls) or below
0 (the unique R² exceeds the LLM's own) is printed as measured and said in words."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmbrain.analysis.partition import LOST_TO_CONTROLS, UNIQUE_ABOVE_LLM, format_omega, omega_note
from lmbrain.report.across_subjects import MIN_SUBJECTS_SECOND_LEVEL
from lmbrain.report.seeds import base_model
from lmbrain.report.sensitivity import zero_sentence
from lmbrain.report.tables import controls_of, format_interval
from lmbrain.results import NO_MODEL, P_UNIQUE, R2, R2_CI_HIGH, R2_CI_LOW, FeatureSet, is_untrained

#: the numeric columns of :func:`headline_rows`
HEADLINE_COLUMNS = [
    "dataset", "controls", "model", "base", "untrained", "r2_llm", "r2_llm_low", "r2_llm_high", "r2_controls",
    "r2_controls_low", "r2_controls_high", "r2_joint", "unique_llm", "unique_low", "unique_high", "p_unique",
    "p_test", "n_subjects", "omega", "omega_low", "omega_high", "omega_ci", "omega_subject_mean",
    "omega_subject_mean_low", "omega_subject_mean_high", "omega_subject_mean_ci", "omega_subjects",
    "omega_subject_mean_clipped", "r_ceiled", "q_unique",
]
#: the family of tests the headline's claims are corrected over (Benjamini-Hochberg), in words
CLAIM_FAMILY = "the headline's unique-variance tests of trained models (every dataset x control set)"
#: the headline table's two omega columns: the headline's (of the mean R²s) and the mean of per-subject omegas
OMEGA_COLUMN, OMEGA_SUBJECTS_COLUMN = "Ω % [CI]", "Ω % per-subject mean [CI]"


def parse_interval(text: object) -> tuple[float, float]:
    """The bounds of a '[low, high]' string ('≤' / '≥' marks of a stored omega bound dropped); NaN for '' or
    'not defined'."""
    if not isinstance(text, str) or not text.startswith("["):
        return np.nan, np.nan
    low, high = (float(v.strip().lstrip("≤≥")) for v in text.strip("[]").split(","))
    return low, high


def _interval_text(text: object) -> str:
    """A family-table interval as shown ('[a, b]'), '' for none or 'not defined'."""
    return text if isinstance(text, str) and text.startswith("[") else ""


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
    r2 = rows[rows["metric"] == R2]
    if r2.empty:
        return np.nan, np.nan, np.nan
    if r2["subject"].nunique() >= 3:
        means = r2.groupby("subject")["value"].mean()
        ci = bootstrap_ci(means.to_numpy(float), n_boot=n_boot, seed=seed)
        return float(means.mean()), ci.low, ci.high
    if len(r2) == 1:
        value = rows.set_index("metric")["value"]
        return float(r2["value"].iloc[0]), float(value.get(R2_CI_LOW, np.nan)), float(value.get(R2_CI_HIGH,
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


def _clipped_subject_mean(main: pd.DataFrame, dataset: str, controls: str, model: str) -> float:
    """The mean of per-subject omegas each clipped to [0, 100], as Feghhi et al. (2024) published theirs: only to
    set next to a published value of that kind (labelled so); this study's own omegas are never clipped."""
    rows = main[(main["dataset"] == dataset) & (main["controls"] == controls) & (main["model"] == model)
                & (main["subject"] != "all")] if not main.empty else main
    values = rows["omega"].to_numpy(float) if "omega" in rows.columns else np.array([])
    values = values[np.isfinite(values)]
    return float(np.clip(values, 0, 100).mean()) if len(values) else np.nan


def headline_rows(results: pd.DataFrame, main: pd.DataFrame, family: pd.DataFrame, scheme: str = "grouped",
                  n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per dataset × control set × model (untrained seeds included): the headline numbers
    (:data:`HEADLINE_COLUMNS`; CIs as numbers and as the family table's text). ``omega_subject_mean_clipped`` is
    for the literature comparison only (published per-subject omegas were clipped), never shown as this study's."""
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
                omega_ci = _family_value(row, "omega_ci", controls, several)
                subject_ci = _family_value(row, "omega_subject_mean_ci", controls, several)
                omega_low, omega_high = parse_interval(omega_ci)
                subject_low, subject_high = parse_interval(subject_ci)
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
                    "omega_low": omega_low, "omega_high": omega_high, "omega_ci": _interval_text(omega_ci),
                    "omega_subject_mean": float(_family_value(row, "omega_subject_mean", controls, several)),
                    "omega_subject_mean_low": subject_low, "omega_subject_mean_high": subject_high,
                    "omega_subject_mean_ci": _interval_text(subject_ci),
                    "omega_subjects": str(_family_value(row, "omega_subjects", controls, several)),
                    "omega_subject_mean_clipped": (_clipped_subject_mean(main, dataset, controls, model) if np.isfinite(
                        float(_family_value(row, "omega_subject_mean", controls, several))) else np.nan),
                    "r_ceiled": float(row.get("r_ceiled", np.nan)),
                })
    return with_corrected_claims(pd.DataFrame(rows, columns=HEADLINE_COLUMNS))


def with_corrected_claims(rows: pd.DataFrame) -> pd.DataFrame:
    """``q_unique``: Benjamini-Hochberg q-values of the trained models' ``p_unique`` over :data:`CLAIM_FAMILY`
    (untrained seeds are baselines, not claims: NaN). "Significant" on the page means q <= the study's alpha."""
    from lmbrain.analysis.stats import fdr_bh

    rows = rows.copy()
    rows["q_unique"] = np.nan
    trained = ~rows["untrained"].astype(bool)
    if trained.any():
        rows.loc[trained, "q_unique"] = fdr_bh(rows.loc[trained, "p_unique"].to_numpy(float))[1]
    return rows


def generalises_over(r: pd.Series) -> str:
    """What a test's unit of generalisation is: subjects, or the split unit's groups (passages) for one target."""
    if r.n_subjects >= 3:
        return f"over {r.n_subjects} subjects"
    return "over passages of one averaged target, not over people"


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


def omega_cell(value: float, interval: str, digits: int = 1, extra: str = "") -> str:
    """'103.2 [95.1, 110.0] (joint lost to controls)': omega as measured with its CI (``interval``,
    as the family table writes it) and, outside [0, 100], what that means; ``extra`` adds to the parenthesis;
    'not defined' without a value."""
    if not np.isfinite(value):
        return "not defined"
    notes = ", ".join(n for n in (omega_note(value, short=True), extra) if n)
    text = f"{format_omega(value, digits)} {interval if isinstance(interval, str) else ''}".strip()
    return f"{text} ({notes})" if notes else text


def _seed_omega_text(values: pd.Series, digits: int = 1) -> str:
    """Omega over seeds: the mean with the range {min, max}, as measured, with what a mean outside [0, 100]
    means (:func:`_seed_text` for omega)."""
    finite = values.to_numpy(float)
    finite = finite[np.isfinite(finite)]
    if not len(finite):
        return "not defined" if len(values) else ""
    mean = finite.mean()
    text = (f"{format_omega(mean, digits)} {{{format_omega(finite.min(), digits)}, "
            f"{format_omega(finite.max(), digits)}}}")
    text = text if len(finite) == len(values) else f"{text} {len(finite)}/{len(values)} def."
    return f"{text} ({omega_note(mean, short=True)})" if omega_note(mean) else text


def headline_table(rows: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """The summary table shown first: trained models as they are; a model's untrained seeds in one row (one seed:
    its values and CIs; several: mean and range {min, max} over seeds, and how many seeds' unique R² has p <=
    ``alpha``)."""
    columns = ["dataset", "controls", "model", "R² LLM [CI]", "R² controls [CI]", "R² joint",
               "unique LLM R² [CI]", "p (unique)", "q (BH)", OMEGA_COLUMN, OMEGA_SUBJECTS_COLUMN, "r / ceiling"]
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
                    "q (BH)": _p_text(getattr(r, "q_unique", np.nan)),
                    OMEGA_COLUMN: omega_cell(r.omega, r.omega_ci),
                    OMEGA_SUBJECTS_COLUMN: omega_cell(r.omega_subject_mean, r.omega_subject_mean_ci,
                                                      extra=f"{r.omega_subjects} subj."),
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
            "p (unique)": f"{significant}/{len(group)} seeds ≤ {alpha:g}", "q (BH)": "",
            OMEGA_COLUMN: _seed_omega_text(group["omega"]),
            OMEGA_SUBJECTS_COLUMN: _seed_omega_text(group["omega_subject_mean"]),
            "r / ceiling": _seed_text(group["r_ceiled"], undefined=""),
        })
    table = pd.DataFrame(out, columns=columns)
    trained_first = table["model"].str.contains(" untrained").astype(int)
    table = table.assign(_order=trained_first).sort_values(["dataset", "controls", "_order", "model"],
                                                           kind="stable").drop(columns="_order")
    empty = [c for c in ("q (BH)", "r / ceiling") if not table[c].astype(str).str.strip().any()]
    return table.drop(columns=empty)  # no column the study cannot fill (no ceiling, no test)


def _pretty_controls(controls: str) -> str:
    parts = [p.replace("_", " ") for p in FeatureSet.controls_only(controls).controls]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _model_finding(r: pd.Series, alpha: float, controls: str) -> str:
    """What the controls and the LLM do for one trained model (a clause); "significant" after BH correction."""
    over = generalises_over(r)
    p, q = _p_text(r.p_unique), _p_text(r.q_unique)
    p_part = f"p = {p}" if p and not p.startswith("<") else f"p {p}"
    q_part = f"BH q = {q}" if q and not q.startswith("<") else f"BH q {q}"
    unique = f"unique R² {r.unique_llm:.3f}" + (f" [{r.unique_low:.3f}, {r.unique_high:.3f}]"
                                                if np.isfinite(r.unique_low) else "")
    tested = f"{unique}, {p_part}, {q_part}, {over}"
    adds = (f"the LLM adds significant variance beyond the controls ({tested})"
            if np.isfinite(r.q_unique) and r.q_unique <= alpha else
            f"the LLM adds no significant variance after correction ({tested})" if np.isfinite(r.p_unique)
            else f"no test of its unique variance ({unique})")
    if np.isfinite(r.omega):
        ci = f" {_rounded_interval(r.omega_ci)}" if isinstance(r.omega_ci, str) and r.omega_ci else ""
        value = f"{format_omega(r.omega)}%{ci}"
        subjects_mean = (f"; the mean of per-subject omegas is {format_omega(r.omega_subject_mean)}% "
                         f"({r.omega_subjects} subjects)" if np.isfinite(r.omega_subject_mean)
                         and _n_used(r.omega_subjects) > 1 else "")
        if r.omega > 100:
            share = (f"{LOST_TO_CONTROLS} for {r.base} (R² joint {r.r2_joint:.3f}, below the controls' "
                     f"{r.r2_controls:.3f}): omega {value}, above 100 (of the mean R²s{subjects_mean})")
        elif r.omega < 0:
            share = (f"{UNIQUE_ABOVE_LLM} for {r.base} (unique {r.unique_llm:.3f}, above its R² {r.r2_llm:.3f}, "
                     f"against {controls}): omega {value}, below 0 (of the mean R²s{subjects_mean})")
        else:
            verb = "account" if " and " in controls else "accounts"
            share = f"{controls} {verb} for {value} of {r.base}'s R² (omega of the mean R²s{subjects_mean})"
        return f"{share}; {adds}"
    if not (np.isfinite(r.r2_llm_low) and np.isfinite(r.r2_llm_high)):  # no bootstrap: no CI to read chance by
        return f"{r.base}'s R² ({r.r2_llm:.3f}) has no CI, so omega is not defined; {adds}"
    return (f"{r.base}'s R² ({r.r2_llm:.3f} [{r.r2_llm_low:.3f}, {r.r2_llm_high:.3f}]) is not above chance, "
            f"so omega is not defined; {adds}")


def _rounded_interval(text: str, digits: int = 0) -> str:
    """An interval text '[85.5, ≥100.0]' with its bounds rounded ('[86, ≥100]'), marks kept."""
    bounds = []
    for part in text.strip("[]").split(","):
        part = part.strip()
        mark = part[0] if part[:1] in ("≤", "≥") else ""
        bounds.append(f"{mark}{float(part.lstrip('≤≥')):.{digits}f}")
    return f"[{', '.join(bounds)}]"


def _n_used(text: object) -> int:
    """The k of a 'k/n' count; 0 when there is none."""
    head = str(text).split("/", 1)[0]
    return int(head) if head.isdigit() else 0


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
    low, high = format_omega(defined.min()), format_omega(defined.max())
    spread = f"{format_omega(defined.mean())}%" if len(defined) == 1 else \
        f"{low}% in each" if low == high else f"{format_omega(defined.mean())}% (range {low}–{high}%)"
    above = int((defined > 100).sum())
    lost = (f"; {LOST_TO_CONTROLS} for {'it' if n == 1 else f'{above} of them'} (omega above 100)" if above
            else "")
    return f"{seeds}: omega {spread}" + (f", defined for {len(defined)} of {n}" if len(defined) < n else "") + lost


def findings(rows: pd.DataFrame, alpha: float = 0.05,
             sensitivity: pd.DataFrame | None = None) -> dict[str, list[str]]:
    """One generated sentence per dataset × control set (a list per dataset), stating omega with its CI and
    whether the LLM adds significant variance, for every trained model (and the spread of its untrained seeds);
    with a ``sensitivity`` table, a short sentence per trained model after it: the unique R² that would read as
    zero here (:func:`lmbrain.report.sensitivity.zero_sentence`)."""
    out: dict[str, list[str]] = {}
    sensitivity = sensitivity if sensitivity is not None else pd.DataFrame()
    for (dataset, controls), frame in rows.groupby(["dataset", "controls"], sort=True):
        pretty = _pretty_controls(controls)
        clauses, zero = [], []
        for base, group in frame.groupby("base", sort=True):
            trained = group[~group["untrained"]]
            seeds = _seed_clause(group[group["untrained"]])
            if trained.empty:
                clauses.append(f"{base}: {seeds}")
                continue
            clause = _model_finding(trained.iloc[0], alpha, pretty)
            clauses.append(clause + (f" ({seeds})" if seeds else ""))
            zero.append(zero_sentence(sensitivity, dataset, controls, str(trained.iloc[0]["model"])))
        sentence = " ".join([f"On {dataset}, " + "; ".join(clauses) + ".", *(z for z in zero if z)])
        out.setdefault(dataset, []).append(sentence)
    return out
