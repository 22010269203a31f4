"""Publication tables derived from a study's tidy results alone.

Aggregation: scores are averaged over the targets (electrodes, ROIs, voxels) of each subject; the overall
row averages the subject means, so every subject weighs the same.
"""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pandas as pd

from lmbrain.analysis.partition import omega, omega_subject_mean
from lmbrain.results import (
    CEILING,
    CI_OF,
    LLM,
    NO_MODEL,
    OMEGA_CI_HIGH,
    OMEGA_CI_LOW,
    P_R,
    P_R2,
    P_UNIQUE,
    R2,
    UNIQUE_CI_HIGH,
    UNIQUE_CI_LOW,
    UNIT_COLUMNS,
    FeatureSet,
    R,
    choice_value,
    layer_index,
    model_label,
    parse_feature_set,
)


def subject_means(results: pd.DataFrame) -> pd.DataFrame:
    """Mean of each metric over the targets of a subject, per unit (one row per unit x subject)."""
    keys = UNIT_COLUMNS
    wide = results.pivot_table(index=[*keys, "neuroid_id"], columns="metric", values="value", aggfunc="first")
    means = wide.groupby(level=keys, sort=True).mean()
    means["n_targets"] = wide.groupby(level=keys, sort=True).size()
    return means.reset_index()


def selected_layers(units: pd.DataFrame) -> pd.DataFrame:
    """Layers chosen inside the training folds, per (dataset, subject, model, feature set, scheme)."""
    rows = []
    for record in units.itertuples(index=False):
        if record.per_layer or not isinstance(getattr(record, "selected", None), str):
            continue
        selected = json.loads(record.selected)
        if not isinstance(selected, dict):  # one list of per-fold choices for the unit's subject
            selected = {str(record.subject): selected}
        model = model_label(None if pd.isna(record.model) else record.model,
                            None if pd.isna(record.untrained_seed) else int(record.untrained_seed))
        for subject, choices in selected.items():
            rows.append({
                "dataset": record.dataset, "subject": str(subject), "model": model,
                "feature_set": record.feature_set, "scheme": record.scheme,
                "choices": [choice_value(c) for c in choices],
            })
    return pd.DataFrame(rows, columns=["dataset", "subject", "model", "feature_set", "scheme", "choices"])


def describe_choices(choices: list[str]) -> str:
    """'12 (4/5)': the most frequent in-fold choice and how often it was chosen."""
    if not choices:
        return ""
    value, count = Counter(choices).most_common(1)[0]
    return f"{value} ({count}/{len(choices)})"


def controls_of(results: pd.DataFrame, dataset: str) -> list[str]:
    """The control feature sets scored on a dataset (those also scored jointly with the LLM)."""
    sets = [parse_feature_set(s) for s in results.loc[results["dataset"] == dataset, "feature_set"].unique()]
    return sorted({s.controls_label for s in sets if s is not None and s.is_joint})


def main_table(results: pd.DataFrame, units: pd.DataFrame, scheme: str = "grouped") -> pd.DataFrame:
    """Per dataset, control set and model: in-fold layer, r and R² of LLM, controls and joint, per subject."""
    means = subject_means(results[(results["scheme"] == scheme) & (~results["per_layer"])])
    layers = selected_layers(units)
    rows = []
    for dataset in sorted(means["dataset"].unique()):
        frame = means[means["dataset"] == dataset]
        models = sorted(m for m in frame["model"].unique() if m != NO_MODEL)
        for control in controls_of(results, dataset):
            ctrl = frame[(frame["model"] == NO_MODEL) & (frame["feature_set"] == control)].set_index("subject")
            for model in models:
                llm = frame[(frame["model"] == model) & (frame["feature_set"] == LLM)].set_index("subject")
                joint_label = FeatureSet.parse(control).joint().label
                joint = frame[(frame["model"] == model) & (frame["feature_set"] == joint_label)].set_index("subject")
                chosen = layers[
                    (layers["dataset"] == dataset) & (layers["model"] == model)
                    & (layers["feature_set"] == LLM) & (layers["scheme"] == scheme)
                ].set_index("subject")["choices"]
                subjects = sorted(llm.index, key=_natural)
                per_subject = []
                for subject in subjects:
                    row = _row(dataset, control, model, subject, llm.loc[subject], ctrl.loc[subject],
                               joint.loc[subject], describe_choices(chosen.get(subject, [])))
                    per_subject.append(row)
                if len(per_subject) > 1:
                    all_choices = [c for s in subjects for c in chosen.get(s, [])]
                    overall = {k: v for k, v in per_subject[0].items()}
                    for key in ("r_llm", "r_controls", "r_joint", "r2_llm", "r2_controls", "r2_joint"):
                        overall[key] = float(np.mean([r[key] for r in per_subject]))
                    overall["n_targets"] = int(sum(r["n_targets"] for r in per_subject))
                    overall["subject"] = "all"
                    overall["layer"] = describe_choices(all_choices)
                    _finish(overall)
                    per_subject.append(overall)
                rows.extend(per_subject)
    return pd.DataFrame(rows)


def _row(dataset: str, control: str, model: str, subject: str, llm: pd.Series, ctrl: pd.Series,
         joint: pd.Series, layer: str) -> dict:
    row = {
        "dataset": dataset, "controls": control, "model": model, "subject": subject, "layer": layer,
        "r_llm": llm["r"], "r_controls": ctrl["r"], "r_joint": joint["r"],
        "r2_llm": llm["r2"], "r2_controls": ctrl["r2"], "r2_joint": joint["r2"],
        "n_targets": int(llm["n_targets"]),
    }
    _finish(row)
    return row


def _finish(row: dict) -> None:
    row["unique_llm"] = row["r2_joint"] - row["r2_controls"]
    row["omega"] = float(omega(np.array([row["r2_llm"]]), np.array([row["r2_controls"]]),
                               np.array([row["r2_joint"]]))[0])


def _natural(value: str) -> tuple:
    return (0, int(value), "") if str(value).isdigit() else (1, 0, str(value))


#: what a layer-curve CI resamples: subjects (>= 3 of them), the split unit's groups (one target), or targets
CI_OVER_SUBJECTS, CI_OVER_GROUPS, CI_OVER_TARGETS = "subjects", "groups", "targets"


def _curve_interval(rows: pd.DataFrame, metric: str, seed: int, n_boot: int) -> tuple[float, float, float, str]:
    """Mean of a layer's scores with a 95 % CI: over subjects (>= 3), the target's own (one target), or targets."""
    from lmbrain.analysis.stats import bootstrap_ci

    values = rows[rows["metric"] == metric]
    if values["subject"].nunique() >= 3:
        ci = bootstrap_ci(values["value"].to_numpy(), values["subject"].to_numpy(), n_boot=n_boot, seed=seed)
        return ci.estimate, ci.low, ci.high, CI_OVER_SUBJECTS
    if len(values) == 1:  # one target: its bootstrap CI over the split unit's groups (passages, blocks)
        bounds = rows.set_index("metric")["value"]
        low, high = float(bounds.get(CI_OF[metric][0], np.nan)), float(bounds.get(CI_OF[metric][1], np.nan))
        return float(values["value"].iloc[0]), low, high, CI_OVER_GROUPS if np.isfinite(low) else ""
    ci = bootstrap_ci(values["value"].to_numpy(), n_boot=n_boot, seed=seed)
    return ci.estimate, ci.low, ci.high, CI_OVER_TARGETS


def layer_table(results: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per-layer outer-CV scores with 95 % CIs and relative depth (descriptive only: never used to choose a layer).

    r and R² are means over subjects of subject means; their CIs resample subjects (>= 3 subjects), or are the
    target's own bootstrap CI over the split unit's groups (one target), or else resample targets (``ci_over``).
    ``depth``: the layer over the deepest layer scored for the model.
    """
    columns = ["dataset", "model", "layer", "depth", "r", "r_ci_low", "r_ci_high", "r2", "r2_ci_low", "r2_ci_high",
               "ci_over", "n_subjects", "n_targets"]
    curves = results[results["per_layer"]]
    if curves.empty:
        return pd.DataFrame(columns=columns)
    curves = curves.assign(layer_index=curves["layer"].map(layer_index))
    rows = []
    for (dataset, model), frame in curves.groupby(["dataset", "model"], sort=True):
        last = frame["layer_index"].max() or 1
        for layer, at_layer in frame.groupby("layer_index", sort=True):
            scores = at_layer[at_layer["metric"] == R]
            row: dict = {"dataset": dataset, "model": model, "layer": int(layer), "depth": layer / last}
            for metric in (R, R2):
                est, low, high, over = _curve_interval(at_layer, metric, seed, n_boot)
                row.update({metric: est, CI_OF[metric][0]: low, CI_OF[metric][1]: high, "ci_over": over})
            row.update({"n_subjects": scores["subject"].nunique(), "n_targets": len(scores)})
            rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def to_markdown(table: pd.DataFrame, floatfmt: str = ".3f") -> str:
    """A GitHub-flavoured Markdown table."""
    headers = [str(c) for c in table.columns]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in table.itertuples(index=False):
        cells = []
        for value in row:
            if isinstance(value, float | np.floating):
                cells.append("" if np.isnan(value) else format(value, floatfmt))
            else:
                cells.append(str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _interval(values: pd.DataFrame, seed: int, n_boot: int) -> tuple[float, float, float]:
    """Mean with a bootstrap CI over subjects (>= 3 subjects) or else over targets."""
    from lmbrain.analysis.stats import bootstrap_ci

    if values["subject"].nunique() >= 3:
        ci = bootstrap_ci(values["value"].to_numpy(), values["subject"].to_numpy(), n_boot=n_boot, seed=seed)
    else:
        ci = bootstrap_ci(values["value"].to_numpy(), n_boot=n_boot, seed=seed)
    return ci.estimate, ci.low, ci.high


def _ci_bounds(text: str) -> tuple[float, float]:
    """The bounds of a '[low, high]' interval string."""
    low, high = (float(v) for v in text.strip("[]").split(","))
    return low, high


def format_interval(low: float, high: float, digits: int = 3) -> str:
    """'[low, high]', or '' when the interval is not defined."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return ""
    return f"[{low:.{digits}f}, {high:.{digits}f}]"


def stored_omega_interval(low: float, high: float, digits: int = 1) -> str:
    """A per-target omega CI read from results: '[a, b]', where a bound of exactly 0 reads '≤0.0' and one of exactly
    100 '≥100.0'. Results written before omega was unclipped hold percentiles of clipped resamples, so such a bound
    only says on which side of 0 or 100 the measured one lies (either way the text is true)."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return ""

    def bound(value: float) -> str:
        return f"≤{value:.{digits}f}" if value == 0 else f"≥{value:.{digits}f}" if value == 100 else \
            f"{value:.{digits}f}"

    return f"[{bound(low)}, {bound(high)}]"


def _partition_summary(per_subject: pd.DataFrame, joint_rows: pd.DataFrame, r2_llm_low: float, seed: int,
                       n_boot: int) -> dict:
    """R² of the controls and of the joint model, the joint model's shortfall below its best part, unique LLM
    R² and omega with bootstrap CIs (over subjects with at least 3 of them; over the split unit's groups for
    one target), omega 'not defined' unless the LLM's R² CI lies above 0.

    Omega as measured (unclipped), two ways: ``omega``, of the mean R²s over subjects (the headline's), and
    ``omega_subject_mean``, the mean of per-subject omegas (each from the subject's mean R²s over its targets;
    subjects whose omega is not defined, R²(LLM) <= 0, left out: ``omega_subjects`` = used / all), with a
    bootstrap CI over subjects (3 or more used; a single target's own CI over groups)."""
    from lmbrain.analysis.stats import bootstrap_ci, bootstrap_partition_subjects

    r2_llm, r2_ctrl, r2_joint = (per_subject[c].to_numpy(float) for c in ("r2_llm", "r2_controls", "r2_joint"))
    ci = bootstrap_partition_subjects(r2_llm, r2_ctrl, r2_joint, n_boot=n_boot, seed=seed)
    unique_low, unique_high = float(ci.unique_low), float(ci.unique_high)
    omega_low, omega_high = float(ci.omega_low), float(ci.omega_high)
    targets = joint_rows[joint_rows["metric"] == R2]
    omega_text = format_interval(omega_low, omega_high, 1)
    if len(per_subject) < 3 and len(targets) == 1:  # one target: its CI over the split unit's groups
        value = joint_rows.set_index("metric")["value"]
        unique_low, unique_high = float(value.get(UNIQUE_CI_LOW, np.nan)), float(
            value.get(UNIQUE_CI_HIGH, np.nan))
        omega_low, omega_high = float(value.get(OMEGA_CI_LOW, np.nan)), float(value.get(OMEGA_CI_HIGH, np.nan))
        omega_text = stored_omega_interval(omega_low, omega_high)
    mean_llm, mean_ctrl, mean_joint = float(np.mean(r2_llm)), float(np.mean(r2_ctrl)), float(np.mean(r2_joint))
    defined = bool(np.isfinite(r2_llm_low) and r2_llm_low > 0)
    value = float(omega(np.array([mean_llm]), np.array([mean_ctrl]), np.array([mean_joint]))[0])
    subject_mean, n_used = omega_subject_mean(r2_llm, r2_ctrl, r2_joint)
    subject_text = ""
    if n_used >= 3:  # CI over the subjects whose omega is defined
        ci = bootstrap_ci(omega(r2_llm, r2_ctrl, r2_joint), n_boot=n_boot, seed=seed)
        subject_text = format_interval(ci.low, ci.high, 1)
    elif len(per_subject) == 1 and n_used == 1:  # one subject: its omega, with the CI of the ratio above
        subject_text = omega_text
    return {
        "r2_controls": mean_ctrl, "r2_joint": mean_joint,
        "joint_shortfall": float(np.median(np.maximum(r2_llm, r2_ctrl) - r2_joint)),
        "unique_llm": mean_joint - mean_ctrl, "unique_llm_ci": format_interval(unique_low, unique_high),
        "omega": value if defined else np.nan,
        "omega_ci": omega_text if defined else "not defined",
        "omega_subject_mean": subject_mean if defined else np.nan,
        "omega_subject_mean_ci": subject_text if defined else "not defined",
        "omega_subjects": f"{n_used}/{len(per_subject)}",
    }


def _llm_scores(llm: pd.DataFrame, seed: int, n_boot: int) -> dict:
    """The LLM's r and R² with bootstrap CIs (a single target's own CI over the split unit's groups)."""
    row: dict = {}
    for metric in (R, R2):
        est, low, high = _interval(llm[llm["metric"] == metric], seed, n_boot)
        single = llm[llm["metric"] == CI_OF[metric][0]]
        if llm["subject"].nunique() < 3 and llm[llm["metric"] == metric]["neuroid_id"].nunique() == 1 \
                and len(single) == 1:  # one target: its CI over the split unit's groups (passages)
            low = float(single["value"].iloc[0])
            high = float(llm[llm["metric"] == CI_OF[metric][1]]["value"].iloc[0])
        row[metric], row[f"{metric}_ci"] = est, f"[{low:.3f}, {high:.3f}]"
    return row


def _ceiling_columns(data: pd.DataFrame, dataset: str, llm: pd.DataFrame) -> dict:
    """The dataset's ceiling (mean over subjects) and the LLM's r over it; NaN where the dataset has none."""
    ceiling = data[(data["dataset"] == dataset) & (data["feature_set"] == CEILING) & (data["metric"] == R)]
    if ceiling.empty:
        return {"ceiling": np.nan, "r_ceiled": np.nan}
    merged = llm[llm["metric"] == R].merge(ceiling[["subject", "neuroid_id", "value"]],
                                             on=["subject", "neuroid_id"], suffixes=("", "_ceiling"))
    # Brain-Score style: the aggregate score over the aggregate ceiling (a per-target ratio explodes
    # where a ceiling is near zero); unclipped
    per_subject = merged.groupby("subject")[["value", "value_ceiling"]].mean()
    value = float(per_subject["value_ceiling"].mean())
    return {"ceiling": value, "r_ceiled": float(per_subject["value"].mean() / value)}


def _controls_columns(frame: pd.DataFrame, per_subject: pd.DataFrame, r2_low: float, seed: int, n_boot: int,
                      fdr_alpha: float) -> dict:
    """Per control set: its partition summary and the share of significant unique R² (suffixed when several)."""
    from lmbrain.analysis.stats import fdr_bh

    row: dict = {}
    for controls, part in per_subject.groupby("controls", sort=True):
        suffix = "" if per_subject["controls"].nunique() == 1 else f" [{controls}]"
        joint_label = FeatureSet.parse(controls).joint().label
        joint_rows = frame[frame["feature_set"] == joint_label]
        row[f"controls{suffix}"] = controls
        row.update({f"{k}{suffix}": v for k, v in _partition_summary(part, joint_rows, r2_low, seed,
                                                                      n_boot).items()})
        unique_p = joint_rows[joint_rows["metric"] == P_UNIQUE]["value"].to_numpy()
        row[f"significant_unique{suffix}"] = float(fdr_bh(unique_p, fdr_alpha)[0].mean()) if len(unique_p) \
            else np.nan
    return row


def _significant_share(llm: pd.DataFrame, fdr_alpha: float) -> float:
    """Share of the LLM's targets whose R² p-value survives BH FDR (p_r for the former refit null); NaN without."""
    from lmbrain.analysis.stats import fdr_bh

    # significant = out-of-sample R² above the training mean (p_r2: sign flips of per-group error sums under
    # the default null); results of the former refit null only have p_r
    pvalues = llm[llm["metric"] == P_R2] if (llm["metric"] == P_R2).any() else llm[llm["metric"] == P_R]
    if pvalues.empty:
        return np.nan
    rejected, _ = fdr_bh(pvalues["value"].to_numpy(), fdr_alpha)
    return float(rejected.mean())


def family_table(
    results: pd.DataFrame, units: pd.DataFrame, scheme: str = "grouped", n_boot: int = 1000, seed: int = 0,
    fdr_alpha: float = 0.05,
) -> pd.DataFrame:
    """Per dataset and model (untrained seeds included): the headline numbers of a control analysis.

    In-fold layer; r and R² of the LLM with bootstrap CIs (over subjects with at least 3 of them, else over
    targets; for a single target, over the split unit's groups, e.g. passages); ceiling-normalised r
    (unclipped) where the dataset has a ceiling; R² of the controls alone and of the joint model, the joint
    model's median shortfall below its best part (over subjects); unique LLM R² and omega (unclipped; of the mean
    R²s, and the mean of per-subject omegas) with bootstrap CIs (omega "not defined" where the LLM's R² CI does
    not lie above 0); the fraction
    of targets whose permutation p-value survives Benjamini–Hochberg FDR (where permutations were run), and
    the fraction whose unique LLM variance (joint over controls alone, paired block sign flips) survives it.
    """
    data = results[(results["scheme"] == scheme) & (~results["per_layer"])]
    layers = selected_layers(units)
    main = main_table(results, units, scheme)
    rows = []
    for (dataset, model), frame in data[data["model"] != NO_MODEL].groupby(["dataset", "model"], sort=True):
        llm = frame[frame["feature_set"] == LLM]
        row: dict = {"dataset": dataset, "model": model}
        chosen = layers[(layers["dataset"] == dataset) & (layers["model"] == model)
                        & (layers["feature_set"] == LLM) & (layers["scheme"] == scheme)]["choices"]
        row["layer"] = describe_choices([c for choices in chosen for c in choices])
        row.update(_llm_scores(llm, seed, n_boot))
        row.update(_ceiling_columns(data, dataset, llm))
        r2_low = _ci_bounds(row["r2_ci"])[0]
        per_subject = main[(main["dataset"] == dataset) & (main["model"] == model) & (main["subject"] != "all")]
        row.update(_controls_columns(frame, per_subject, r2_low, seed, n_boot, fdr_alpha))
        row["significant"] = _significant_share(llm, fdr_alpha)
        rows.append(row)
    return pd.DataFrame(rows)


def split_audit_table(results: pd.DataFrame) -> pd.DataFrame:
    """Grouped vs shuffled outer CV for every feature set: mean r and R² over subjects, and the inflation."""
    if results["scheme"].nunique() < 2:
        return pd.DataFrame()
    means = subject_means(results[~results["per_layer"]])
    table = (
        means.groupby(["dataset", "model", "feature_set", "scheme"])[["r", "r2"]].mean().unstack("scheme")
    )
    table.columns = [f"{metric}_{scheme}" for metric, scheme in table.columns]
    table = table.reset_index()
    if {"r2_grouped", "r2_shuffled"} <= set(table.columns):
        table["r2_inflation"] = table["r2_shuffled"] - table["r2_grouped"]
    return table


#: a joint model within this much of its best part counts as "not below it" (R², subject means)
JOINT_TOLERANCE = 0.002


def joint_check_table(main: pd.DataFrame) -> pd.DataFrame:
    """Does the joint model lose to its best part? Per dataset and control set, over (model, subject) rows of
    the main table: the median shortfall max(R² LLM, R² controls) − R² joint, and the share of rows whose
    joint R² is at least the best part's minus :data:`JOINT_TOLERANCE`."""
    columns = ["dataset", "controls", "n_rows", "median_shortfall", "max_shortfall", "share_joint_ge_best"]
    if main.empty:
        return pd.DataFrame(columns=columns)
    rows = main[main["subject"] != "all"] if (main["subject"] != "all").any() else main
    best = np.maximum(rows["r2_llm"].to_numpy(float), rows["r2_controls"].to_numpy(float))
    frame = rows.assign(shortfall=best - rows["r2_joint"].to_numpy(float))
    table = frame.groupby(["dataset", "controls"], sort=True).agg(
        n_rows=("shortfall", "size"), median_shortfall=("shortfall", "median"),
        max_shortfall=("shortfall", "max"),
        share_joint_ge_best=("shortfall", lambda s: float((s <= JOINT_TOLERANCE).mean())),
    ).reset_index()
    return table[columns]


def layer_shape_table(results: pd.DataFrame, n_boot: int = 1000, seed: int = 0,
                      fdr_alpha: float = 0.05) -> pd.DataFrame:
    """Per dataset and model: does the best intermediate layer (chosen without its test fold) beat the last one?

    ``best_layer``: the subjects' most frequent choice ('18 (4/5)': 4 of 5 subjects); ``r2_best``,
    ``r2_last`` and ``difference``: means over subjects of subject means. CI and one-sided p of difference > 0:
    with >= 3 subjects, a bootstrap over subjects and an exact sign-flip test of the subject means; for one
    target, its paired bootstrap CI and block sign-flip p over the split unit's groups; else a CI over targets
    and no p. ``q_descriptive``: Benjamini–Hochberg over the models of a dataset. Both p and q are descriptive
    (``p_descriptive``), never a significance call: the block sign flips of ``p_best_vs_last`` are not calibrated
    (7.7–8.8 % false positives at a nominal 5 % with real ridge refits, docs/statistics.md).
    """
    from lmbrain.analysis.second_level import sign_flip_test
    from lmbrain.analysis.stats import Interval, bootstrap_ci, fdr_bh
    from lmbrain.results import LAYER_DIFF, LAYER_DIFF_CI_HIGH, LAYER_DIFF_CI_LOW, P_BEST_VS_LAST, R2_BEST_INTERMEDIATE

    columns = ["dataset", "model", "best_layer", "best_depth", "last_layer", "r2_best", "r2_last", "difference",
               "difference_ci_low", "difference_ci_high", "p_descriptive", "q_descriptive", "test", "n_subjects",
               "n_targets"]
    curves = results[results["per_layer"]]
    metrics = [R2_BEST_INTERMEDIATE, LAYER_DIFF, LAYER_DIFF_CI_LOW, LAYER_DIFF_CI_HIGH, P_BEST_VS_LAST]
    shape = curves[curves["metric"].isin(metrics)]
    if shape.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for (dataset, model), frame in shape.groupby(["dataset", "model"], sort=True):
        scores = curves[(curves["dataset"] == dataset) & (curves["model"] == model) & (curves["metric"] == R2)]
        depth = scores["layer"].map(layer_index)
        last = int(depth.max())
        wide = frame.pivot_table(index=["subject", "neuroid_id"], columns="metric", values="value", aggfunc="first",
                                 dropna=False).reindex(columns=metrics)
        per_subject = wide.groupby(level="subject").mean()
        chosen = frame.groupby("subject")["layer"].first()
        modal = Counter(chosen).most_common(1)[0][0]
        diff = per_subject[LAYER_DIFF].dropna().to_numpy(float)
        row = {"dataset": dataset, "model": model,
               "best_layer": describe_choices([choice_value(c) for c in chosen]),
               "best_depth": layer_index(modal) / (last or 1), "last_layer": last,
               "r2_best": float(per_subject[R2_BEST_INTERMEDIATE].mean()),
               "r2_last": float(scores[depth == last].groupby("subject")["value"].mean().mean()),
               "difference": float(np.mean(diff)) if len(diff) else np.nan, "n_subjects": len(per_subject),
               "n_targets": len(wide)}
        if len(diff) >= 3:
            ci = bootstrap_ci(diff, n_boot=n_boot, seed=seed)
            p = float(sign_flip_test(diff, seed=seed, alternative="greater"))
            test = f"sign flip over {len(diff)} subjects"
        elif len(wide) == 1:  # one target: its paired bootstrap and block sign flips over the split unit's groups
            target = wide.iloc[0]
            ci = Interval(float(target[LAYER_DIFF]), float(target[LAYER_DIFF_CI_LOW]),
                          float(target[LAYER_DIFF_CI_HIGH]), 1)
            p, test = float(target[P_BEST_VS_LAST]), "block sign flips over groups (one target)"
        else:
            ci, p, test = bootstrap_ci(wide[LAYER_DIFF].to_numpy(float), n_boot=n_boot, seed=seed), np.nan, ""
        row.update({"difference_ci_low": ci.low, "difference_ci_high": ci.high, "p_descriptive": p, "test": test})
        rows.append(row)
    table = pd.DataFrame(rows, columns=columns).assign(q_descriptive=np.nan)
    for _, index in table.groupby("dataset", sort=False).groups.items():
        table.loc[index, "q_descriptive"] = fdr_bh(table.loc[index, "p_descriptive"].to_numpy(float), fdr_alpha)[1]
    return table


