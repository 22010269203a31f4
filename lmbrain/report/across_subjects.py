"""Tables of the tests across subjects (random effects: exact sign flips of subject means, FDR within each family)
and of the paired model comparisons, per dataset and ROI."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmbrain.report.tables import _natural, controls_of, format_interval
from lmbrain.results import (
    LLM,
    NO_MODEL,
    R2,
    FeatureSet,
    R,
)

#: datasets with fewer subjects get no test across subjects (a note instead)
MIN_SUBJECTS_SECOND_LEVEL = 3


#: the target group of datasets whose targets have no ROI (or one ROI)
ALL_TARGETS = "all targets"


def target_groups(frame: pd.DataFrame) -> pd.Series:
    """The ROI of every row where a dataset's targets span several ROIs, else :data:`ALL_TARGETS`."""
    if "roi" in frame.columns and frame["roi"].notna().any() and frame["roi"].nunique() > 1:
        return frame["roi"].astype(object).where(frame["roi"].notna(), "no ROI").astype(str)
    return pd.Series(ALL_TARGETS, index=frame.index, dtype=object)


def _subject_values(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean of ``value`` over the targets of each (ROI group, subject, model): index (roi, subject), one column
    per model."""
    frame = rows.assign(roi=target_groups(rows).to_numpy())
    return frame.groupby(["roi", "subject", "model"])["value"].mean().unstack("model")


def _second_level_quantities(data: pd.DataFrame, results: pd.DataFrame, dataset: str) -> list[tuple]:
    """(quantity, controls, per-subject values) of a dataset: LLM r and R², and unique LLM R² per control set
    (per target R²(joint) − R²(controls), then averaged over the subject's targets)."""
    frame = data[data["dataset"] == dataset]
    llm = frame[frame["feature_set"] == LLM]
    out = [(metric, "", _subject_values(llm[llm["metric"] == metric])) for metric in (R, R2)]
    r2 = frame[frame["metric"] == R2]
    for control in controls_of(results, dataset):
        ctrl = r2[(r2["model"] == NO_MODEL) & (r2["feature_set"] == control)]
        joint = r2[(r2["model"] != NO_MODEL) & (r2["feature_set"] == FeatureSet.parse(control).joint().label)]
        merged = joint.merge(ctrl[["subject", "neuroid_id", "value"]], on=["subject", "neuroid_id"],
                             suffixes=("", "_controls"))
        merged["value"] = merged["value"] - merged["value_controls"]
        out.append(("unique_llm", control, _subject_values(merged)))
    return out


def _fdr_within(table: pd.DataFrame, families: list[str], p: str, alpha: float) -> pd.DataFrame:
    """Benjamini–Hochberg q-values of column ``p`` within every family (here: across ROIs) and q <= alpha."""
    from lmbrain.analysis.stats import fdr_bh

    table["q"], table["significant"] = np.nan, False
    for _, index in table.groupby(families, sort=False).groups.items():
        rejected, q = fdr_bh(table.loc[index, p].to_numpy(float), alpha)
        table.loc[index, "q"], table.loc[index, "significant"] = q, rejected
    return table


def _few_subjects_note(dataset: str, n_subjects: int) -> str:
    """The note of a dataset skipped for having too few subjects."""
    return (f"{dataset}: {n_subjects} subject(s) (< {MIN_SUBJECTS_SECOND_LEVEL}): no test across subjects "
            "(see the per-target tests)")


ACROSS_COLUMNS = ["dataset", "roi", "model", "quantity", "controls", "mean", "ci_low", "ci_high", "dz",
                  "p_signflip", "p_ttest", "p_wilcoxon", "n_subjects", "q", "significant"]


def across_subject_table(results: pd.DataFrame, scheme: str = "grouped", n_flips: int = 10000, seed: int = 0,
                         fdr_alpha: float = 0.05, level: float = 0.95) -> pd.DataFrame:
    """Second-level (random-effects) tests, per dataset × ROI × model × quantity, of the LLM's scores.

    Quantities: ``r`` and ``r2`` of the LLM alone, ``unique_llm`` = R²(LLM + controls) − R²(controls) per
    target (one row per control set). Each subject contributes the mean over its targets in the ROI
    (:data:`ALL_TARGETS` where targets have no ROI); across subjects: the mean with a t interval at ``level``,
    Cohen's d_z, one-sided (> 0) sign-flip (``p_signflip``, exact up to 13 subjects), t and Wilcoxon p-values;
    ``q``: Benjamini–Hochberg over the ROIs of a dataset × model × quantity × controls; ``significant``:
    q <= ``fdr_alpha``. Datasets with fewer than :data:`MIN_SUBJECTS_SECOND_LEVEL` subjects are skipped;
    ``table.attrs["notes"]`` says which.
    """
    from lmbrain.analysis.second_level import across_subjects

    data = results[(results["scheme"] == scheme) & (~results["per_layer"]) & results["metric"].isin([R, R2])]
    rows, notes = [], []
    for dataset in sorted(data["dataset"].unique()):
        n_subjects = data.loc[data["dataset"] == dataset, "subject"].nunique()
        if n_subjects < MIN_SUBJECTS_SECOND_LEVEL:
            notes.append(_few_subjects_note(dataset, n_subjects))
            continue
        for quantity, controls, values in _second_level_quantities(data, results, dataset):
            for model in sorted(m for m in values.columns if m != NO_MODEL):
                for roi in sorted(values.index.get_level_values("roi").unique(), key=_natural):
                    test = across_subjects(values.xs(roi, level="roi")[model].to_numpy(float), alternative="greater",
                                           level=level, n_flips=n_flips, seed=seed)
                    rows.append({"dataset": dataset, "roi": roi, "model": model, "quantity": quantity,
                                 "controls": controls, "mean": test.mean, "ci_low": test.ci_low,
                                 "ci_high": test.ci_high, "dz": test.dz, "p_signflip": test.p_signflip,
                                 "p_ttest": test.p_ttest, "p_wilcoxon": test.p_wilcoxon,
                                 "n_subjects": test.n_subjects})
    table = pd.DataFrame(rows, columns=ACROSS_COLUMNS[:-2])
    table = _fdr_within(table, ["dataset", "model", "quantity", "controls"], "p_signflip", fdr_alpha)
    table.attrs["notes"] = notes
    return table[ACROSS_COLUMNS]


def roi_summary_table(across: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """One dataset's :func:`across_subject_table` as ROI × model × control set rows: LLM R² and unique LLM R² against
    that control set (mean over subjects, q across ROIs)."""
    frame = across[across["dataset"] == dataset]
    r2 = frame[frame["quantity"] == R2][["roi", "model", "mean", "q"]]
    r2 = r2.rename(columns={"mean": "r2_llm", "q": "q_r2_llm"})
    unique = frame[frame["quantity"] == "unique_llm"]
    table = unique[["roi", "model", "controls"]].merge(r2, on=["roi", "model"], how="left")
    table["unique_llm"] = unique["mean"].to_numpy()
    table["unique_llm_ci"] = [format_interval(lo, hi) for lo, hi in zip(unique["ci_low"], unique["ci_high"],
                                                                         strict=True)]
    table["q_unique_llm"] = unique["q"].to_numpy()
    table["n_subjects"] = unique["n_subjects"].to_numpy()
    return table[["roi", "model", "controls", "r2_llm", "q_r2_llm", "unique_llm", "unique_llm_ci", "q_unique_llm",
                  "n_subjects"]].reset_index(drop=True)


COMPARISON_COLUMNS = ["dataset", "roi", "metric", "model_a", "model_b", "mean_a_minus_b", "ci_low", "ci_high",
                      "dz", "t", "p_signflip", "p_ttest", "p_wilcoxon", "n_subjects", "mixed_coef_b_minus_a",
                      "mixed_p", "q", "significant"]


def comparison_table(results: pd.DataFrame, scheme: str = "grouped", n_flips: int = 10000, seed: int = 0,
                     fdr_alpha: float = 0.05) -> pd.DataFrame:
    """Every pair of models (untrained seeds included) on every dataset × ROI and LLM-alone r and R², with
    every p-value at the subject level.

    Each subject contributes its mean over the ROI's targets (:data:`ALL_TARGETS` where there is no ROI);
    paired two-sided sign-flip (``p_signflip``, exact up to 13 subjects), t and Wilcoxon tests of a − b across
    subjects with a t interval and Cohen's d_z; ``mixed_*``: a mixed model of the per-target differences with
    targets nested in subjects, tested on n_subjects − 1 df
    (:func:`lmbrain.analysis.stats.mixed_model_comparison`; its coefficient is b − a). ``q``: Benjamini–Hochberg
    of ``p_signflip`` over the ROIs of a dataset × metric × pair; ``significant``: q <= ``fdr_alpha``. Datasets
    with fewer than :data:`MIN_SUBJECTS_SECOND_LEVEL` subjects are skipped (``table.attrs["notes"]``).
    """
    import itertools

    from lmbrain.analysis.second_level import paired_across_subjects
    from lmbrain.analysis.stats import mixed_model_comparison

    data = results[(results["scheme"] == scheme) & (~results["per_layer"]) & (results["feature_set"] == LLM)
                   & results["metric"].isin([R, R2])]
    rows, notes = [], []
    for dataset in sorted(data["dataset"].unique()):
        frame = data[data["dataset"] == dataset]
        n_subjects = frame["subject"].nunique()
        if n_subjects < MIN_SUBJECTS_SECOND_LEVEL:
            notes.append(_few_subjects_note(dataset, n_subjects))
            continue
        frame = frame.assign(roi=target_groups(frame).to_numpy())
        for metric in (R, R2):
            rows_metric = frame[frame["metric"] == metric]
            values = _subject_values(rows_metric)
            for a, b in itertools.combinations(sorted(values.columns), 2):
                for roi in sorted(values.index.get_level_values("roi").unique(), key=_natural):
                    per_subject = values.xs(roi, level="roi")
                    test = paired_across_subjects(per_subject[a].to_numpy(float), per_subject[b].to_numpy(float),
                                                  n_flips=n_flips, seed=seed)
                    pair = rows_metric[(rows_metric["roi"] == roi) & rows_metric["model"].isin([a, b])]
                    mixed = mixed_model_comparison(pair, value="value", factor="model", target="neuroid_id")
                    effect = mixed.loc[f"model={b}"] if f"model={b}" in mixed.index else None
                    rows.append({
                        "dataset": dataset, "roi": roi, "metric": metric, "model_a": a, "model_b": b,
                        "mean_a_minus_b": test.mean, "ci_low": test.ci_low, "ci_high": test.ci_high, "dz": test.dz,
                        "t": test.t, "p_signflip": test.p_signflip, "p_ttest": test.p_ttest,
                        "p_wilcoxon": test.p_wilcoxon, "n_subjects": test.n_subjects,
                        "mixed_coef_b_minus_a": np.nan if effect is None else float(effect["coef"]),
                        "mixed_p": np.nan if effect is None else float(effect["p"]),
                    })
    table = pd.DataFrame(rows, columns=COMPARISON_COLUMNS[:-2])
    table = _fdr_within(table, ["dataset", "metric", "model_a", "model_b"], "p_signflip", fdr_alpha)
    table.attrs["notes"] = notes
    return table[COMPARISON_COLUMNS]
