"""The trust panel: per dataset, every caveat a reviewer asks about, read from the results, the unit records,
the manifest and the study file of a results directory (nothing recomputed but summaries)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import yaml

from lmbrain.report.ceilings import ceiling_table
from lmbrain.report.sensitivity import sensitivity_table, trust_items
from lmbrain.report.tables import joint_check_table
from lmbrain.results import CEILING, NO_MODEL, R2, FeatureSet, parse_feature_set

_SPLIT = re.compile(r"split by (?P<unit>[\w.-]+) \((?P<groups>\d+) groups\)")
_SHAPE = re.compile(r"(?P<samples>\d+) samples x (?P<neuroids>\d+) neuroids, (?P<subjects>\d+) subjects")


def read_study(results_dir: Path) -> dict:
    """The study file of a results directory (``study.yaml``, safe loader); {} when absent or unreadable."""
    path = Path(results_dir) / "study.yaml"
    try:
        study = yaml.safe_load(path.read_text()) if path.is_file() else {}
    except (OSError, yaml.YAMLError):
        return {}
    return study if isinstance(study, dict) else {}


def summary_parts(summary: str) -> list[str]:
    """A dataset summary split at its top-level '; ' (not inside parentheses)."""
    parts, depth, current = [], 0, ""
    for char in summary:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == ";" and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    return [p for p in [*parts, current.strip()] if p]


def _dataset_summary(manifest: dict, dataset: str) -> str:
    summary = manifest.get("datasets", {}).get(dataset, "")
    return summary if isinstance(summary, str) else str(summary)


def _cv_text(study: dict, summary: str) -> str:
    cv = study.get("cv", {}) if isinstance(study.get("cv"), dict) else {}
    split = _SPLIT.search(summary)
    unit = f"whole {split['unit']} groups ({split['groups']} of them)" if split else "the dataset's split unit"
    outer, inner = cv.get("n_splits", 5), cv.get("inner_splits", 5)
    schemes = ", ".join(cv.get("schemes", ["grouped"]))
    return (f"{outer}-fold outer CV holding out {unit}; layers, ridge penalties and control widths chosen by "
            f"{inner}-fold inner CV inside each training fold; schemes: {schemes}")


def _split_audit_text(results: pd.DataFrame, dataset: str) -> str:
    frame = results[(results["dataset"] == dataset) & (~results["per_layer"]) & (results["metric"] == R2)
                    & (results["model"] == NO_MODEL)]
    oasm = frame[frame["feature_set"].map(lambda label: parse_feature_set(label) == FeatureSet(False, ("oasm",)))]
    schemes = set(oasm["scheme"])
    if not {"grouped", "shuffled"} <= schemes:
        return ("not run in this study (OASM under grouped vs shuffled splits: see the split_audit study, "
                "reports/split_audit)")
    means = oasm.groupby(["scheme", "subject"])["value"].mean().groupby("scheme").mean()
    grouped, shuffled = float(means["grouped"]), float(means["shuffled"])
    verdict = "no leakage sign" if grouped <= 0.005 else "WARNING: OASM scores above 0 under grouped splits (leakage?)"
    return f"OASM R² {grouped:.3f} grouped vs {shuffled:.3f} shuffled (leaky) — {verdict}"


def _joint_text(check: pd.DataFrame, dataset: str, model: str | None = None) -> str:
    rows = check[check["dataset"] == dataset]
    if rows.empty:
        return "no joint model in this study"
    parts = [f"{r.controls}: median shortfall max(R² LLM, R² controls) − R² joint = {r.median_shortfall:+.4f} (max "
             f"{r.max_shortfall:+.4f}); joint ≥ best part − 0.002 in {r.share_joint_ge_best:.0%} of {r.n_rows} (model, "
             "subject) rows" for r in rows.itertuples()]
    return "; ".join(([model] if model else []) + parts)


def _ceiling_text(ceilings: pd.DataFrame, dataset: str) -> str:
    rows = ceilings[ceilings["dataset"] == dataset]
    if rows.empty:
        return "none (fewer than 3 subjects sharing samples, or ceilings off): no normalised score"
    r = rows.iloc[0]
    return (f"{r.method}; median {r.median_ceiling:.3f} over {r.n_targets} targets; degenerate: "
            f"{r.share_at_0:.1%} at 0, {r['share_at_least_0.99']:.1%} ≥ 0.99; own estimate missing or outside "
            f"(0, 1) for {r.share_at_bound:.1%} (shrunk to the subject mean)")


def _samples_text(units: pd.DataFrame, summary: str, dataset: str) -> str:
    shape = _SHAPE.search(summary)
    missing = next((part for part in summary_parts(summary) if "missing (NaN)" in part), "")
    used = units[(units["dataset"] == dataset) & units["n_samples"].notna()] if "n_samples" in units.columns \
        else pd.DataFrame()
    text = missing.split(" in ", 1)[0] if missing else "no missing (NaN) responses"
    if shape is not None and not used.empty:
        n = used["n_samples"].astype(float)
        total = int(shape["samples"])
        fits = (f"samples per fit {int(n.min())}–{int(n.max())} of {total}" if n.min() != n.max()
                else f"{int(n.min())} of {total} samples per fit")
        return f"{text}; {fits}" + (" (rows with NaN responses are left out of that subject's fit)" if missing else "")
    return text


def _exclusions_text(summary: str) -> str:
    parts = [p for p in summary_parts(summary)[1:] if "missing (NaN)" not in p]
    return "; ".join(parts) if parts else "none"


def _statistics_text(manifest: dict, n_subjects: int) -> str:
    stats = manifest.get("statistics", {})
    permutations = int(stats.get("permutations", 0))
    nulls = (f"{permutations} permutations ({stats.get('permutation_method', '?')} null)" if permutations
             else "no permutation tests (p-values of single targets not computed)")
    return (f"{nulls}; {stats.get('bootstrap', '?')} bootstrap resamples; Benjamini–Hochberg FDR at "
            f"{stats.get('fdr_alpha', 0.05)}; seed {stats.get('seed', '?')}; "
            + (f"p across subjects: exact sign-flip tests of subject means (with {n_subjects} subjects the "
               f"smallest possible p is {0.5 ** n_subjects:.2g})" if 3 <= n_subjects <= 13 else
               "p across subjects: sign-flip tests of subject means (10,000 random flips)" if n_subjects > 13 else
               "fewer than 3 subjects: p-values are per target (block sign flips over the split unit's groups)"))


def _context_text(manifest: dict, dataset: str) -> str:
    policies = manifest.get("context_policies")
    if not isinstance(policies, dict):
        return ""
    items = []
    for key, value in policies.items():
        if isinstance(value, dict) and dataset in value:  # {model: {dataset: policy}}
            items.append(f"{key}: {value[dataset]}")
        elif isinstance(value, dict) and key == dataset:  # {dataset: {model: policy or {policy, reason}}}
            groups: dict[str, list[str]] = {}
            for model, policy in value.items():
                if isinstance(policy, dict):  # the runner's record: what was run and why
                    policy = f"{policy.get('policy', '?')} ({policy.get('reason', '')})"
                groups.setdefault(str(policy), []).append(model)
            items.extend(f"{', '.join(models)}: {policy}" for policy, models in groups.items())
        elif isinstance(value, str) and dataset in key:  # {"dataset/model": policy}
            items.append(f"{key.replace(dataset, '').strip('/|: ')}: {value}")
    return "; ".join(items)


def trust_panel(results: pd.DataFrame, units: pd.DataFrame, manifest: dict, main: pd.DataFrame,
                study: dict | None = None, sensitivity: pd.DataFrame | None = None) -> dict[str, list[tuple[str, str]]]:
    """Per dataset: (label, text) items — split unit and CV, the leakage check, the joint-vs-parts check, the
    ceiling, exclusions and masked neuroids, missing samples, the statistics, one sensitivity line per trained model
    × control set where the results have sensitivity rows (``sensitivity``: the sensitivity table, computed from the
    results at the manifest's α and seed when not given), and context policies when the manifest records them."""
    study = study or {}
    check = joint_check_table(main)
    ceilings = ceiling_table(results)
    if sensitivity is None:
        stats = manifest.get("statistics", {})
        sensitivity = sensitivity_table(results, float(stats.get("fdr_alpha", 0.05)), int(stats.get("seed", 0)))
    panel: dict[str, list[tuple[str, str]]] = {}
    for dataset in sorted(results["dataset"].unique()):
        summary = _dataset_summary(manifest, dataset)
        controls = sorted({FeatureSet.parse(s).controls_label for s in
                           results.loc[(results["dataset"] == dataset) & (results["model"] == NO_MODEL)
                                       & (results["feature_set"] != CEILING), "feature_set"].unique()})
        items = [
            ("data", (summary_parts(summary) or [dataset])[0]),
            ("controls", ", ".join(controls) or "none"),
            ("cross-validation", _cv_text(study, summary)),
            ("leakage check", _split_audit_text(results, dataset)),
            ("joint vs parts", _joint_text(check, dataset, manifest.get("joint_models", {}).get(dataset))),
            ("noise ceiling", _ceiling_text(ceilings, dataset)),
            ("excluded / masked", _exclusions_text(summary)),
            ("missing samples", _samples_text(units, summary, dataset)),
            ("statistics", _statistics_text(manifest, int(results.loc[results["dataset"] == dataset,
                                                                        "subject"].nunique()))),
            *trust_items(sensitivity, dataset),
        ]
        context = _context_text(manifest, dataset)
        if context:
            items.append(("context policy", context))
        panel[dataset] = items
    return panel
