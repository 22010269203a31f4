"""Second-level report tables on synthetic results: per-ROI tests across subjects with FDR across ROIs, model
comparisons whose every p-value is at the subject level, skipped datasets, and the report files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lmbrain.analysis.stats import fdr_bh
from lmbrain.report.across_subjects import ALL_TARGETS, across_subject_table, comparison_table, roi_summary_table

ROIS = ("A", "B", "C")
MODELS = ("m1", "m2")


def _rows(dataset: str, subject: str, model: str, feature_set: str, target: str, roi: str | None,
          r2: float, r: float) -> list[dict]:
    """The r and R² rows of one target of one unit."""
    base = {"dataset": dataset, "subject": subject, "model": model, "feature_set": feature_set,
            "scheme": "grouped", "per_layer": False, "layer": "", "neuroid_id": target, "roi": roi}
    return [{**base, "metric": "r2", "value": r2}, {**base, "metric": "r", "value": r}]


def synthetic_results(seed: int = 0) -> pd.DataFrame:
    """roi_ds: 6 subjects × 3 ROIs, m1 has unique variance in ROI A only; elec_ds: 5 subjects with 3-8
    electrodes and no ROI; single_ds: 1 subject."""
    rng = np.random.default_rng(seed)
    rows: list[dict] = []
    layout = {"roi_ds": [(f"s{i}", [(roi, f"s{i}_{roi}") for roi in ROIS]) for i in range(6)],
              "elec_ds": [(f"e{i}", [(None, f"e{i}_{j}") for j in range(3 + i)]) for i in range(5)],
              "single_ds": [("g", [("langnet", "g_0")])]}
    for dataset, subjects in layout.items():
        for subject, targets in subjects:
            for roi, target in targets:
                ctrl = rng.normal(0.02, 0.01)
                rows += _rows(dataset, subject, "-", "ctrl", target, roi, ctrl, 0.1)
                for model in MODELS:
                    unique = 0.03 + rng.normal(0, 0.005) if (model == "m1" and roi == "A") else rng.normal(0, 0.01)
                    llm = rng.normal(0.01, 0.01) + (0.02 if model == "m1" else 0.0)
                    rows += _rows(dataset, subject, model, "llm", target, roi, llm, 0.1 + llm)
                    rows += _rows(dataset, subject, model, "llm+ctrl", target, roi, ctrl + unique, 0.2)
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def results() -> pd.DataFrame:
    return synthetic_results()


@pytest.fixture(scope="module")
def across(results: pd.DataFrame) -> pd.DataFrame:
    return across_subject_table(results, n_flips=2000)


def test_across_subject_table_rows_values_and_skipped_datasets(results, across):
    assert set(across["dataset"]) == {"roi_ds", "elec_ds"}
    assert any(note.startswith("single_ds: 1 subject") for note in across.attrs["notes"])
    roi = across[across["dataset"] == "roi_ds"]
    assert len(roi) == len(ROIS) * len(MODELS) * 3 and set(roi["roi"]) == set(ROIS)
    assert set(across.loc[across["dataset"] == "elec_ds", "roi"]) == {ALL_TARGETS}
    assert (roi["n_subjects"] == 6).all() and (across.loc[across["dataset"] == "elec_ds", "n_subjects"] == 5).all()
    # unique LLM R²: per target joint − controls, averaged per subject, then over subjects
    r2 = results[results["metric"] == "r2"]
    elec = r2[r2["dataset"] == "elec_ds"]
    joint = elec[(elec["model"] == "m2") & (elec["feature_set"] == "llm+ctrl")].set_index("neuroid_id")["value"]
    ctrl = elec[elec["feature_set"] == "ctrl"].set_index("neuroid_id")
    per_subject = (joint - ctrl["value"]).groupby(ctrl["subject"]).mean()
    row = across[(across["dataset"] == "elec_ds") & (across["model"] == "m2") & (across["quantity"] == "unique_llm")]
    assert row["mean"].iloc[0] == pytest.approx(per_subject.mean())
    assert row["p_ttest"].iloc[0] == pytest.approx(stats.ttest_1samp(per_subject, 0, alternative="greater").pvalue)
    assert row["controls"].iloc[0] == "ctrl"


def test_unique_variance_is_found_across_subjects_with_fdr_across_rois(across):
    unique = across[(across["dataset"] == "roi_ds") & (across["quantity"] == "unique_llm")].set_index(["model",
                                                                                                       "roi"])
    # every one of 6 subjects positive: the exact one-sided sign-flip p is 1/64
    assert unique.loc[("m1", "A"), "p_signflip"] == pytest.approx(1 / 64)
    assert unique.loc[("m1", "A"), "significant"] and not unique.loc[("m2", "A"), "significant"]
    for _, family in across.groupby(["dataset", "model", "quantity", "controls"]):
        np.testing.assert_allclose(family["q"], fdr_bh(family["p_signflip"].to_numpy())[1])
    summary = roi_summary_table(across, "roi_ds")
    assert list(summary.columns) == ["roi", "model", "controls", "r2_llm", "q_r2_llm", "unique_llm", "unique_llm_ci",
                                     "q_unique_llm", "n_subjects"]
    assert len(summary) == len(ROIS) * len(MODELS)
    row = summary[(summary["roi"] == "A") & (summary["model"] == "m1")].iloc[0]
    assert row["unique_llm"] == pytest.approx(unique.loc[("m1", "A"), "mean"])
    # a second control set (the split audit's OASM next to the default set) gives rows of its own, each with the
    # LLM-alone R² of its ROI and model
    other = across[(across["dataset"] == "roi_ds") & (across["quantity"] == "unique_llm")].assign(controls="oasm")
    both = roi_summary_table(pd.concat([across, other], ignore_index=True), "roi_ds")
    assert len(both) == 2 * len(summary) and set(both["controls"]) == {"ctrl", "oasm"}
    np.testing.assert_allclose(both.groupby("controls")["r2_llm"].sum(), summary["r2_llm"].sum())


def test_model_comparisons_are_tested_at_the_subject_level(results):
    table = comparison_table(results, n_flips=2000)
    assert set(table["dataset"]) == {"roi_ds", "elec_ds"} and table.attrs["notes"]
    elec = table[table["dataset"] == "elec_ds"]
    assert len(elec) == 2 and (elec["n_subjects"] == 5).all() and (elec["roi"] == ALL_TARGETS).all()
    # 5 subjects: no two-sided exact p below 2/32, however many electrodes
    assert (elec["p_signflip"] >= 0.0625 - 1e-12).all()
    assert np.isfinite(elec["mixed_p"]).all()
    llm = results[(results["dataset"] == "elec_ds") & (results["feature_set"] == "llm") & (results["metric"] == "r2")]
    means = llm.groupby(["subject", "model"])["value"].mean().unstack("model")
    row = elec[elec["metric"] == "r2"].iloc[0]
    assert row["mean_a_minus_b"] == pytest.approx((means["m1"] - means["m2"]).mean())
    assert row["p_ttest"] == pytest.approx(stats.ttest_rel(means["m1"], means["m2"]).pvalue)
    roi = table[table["dataset"] == "roi_ds"]
    assert len(roi) == 2 * len(ROIS)
    for _, family in roi.groupby(["metric", "model_a", "model_b"]):
        np.testing.assert_allclose(family["q"], fdr_bh(family["p_signflip"].to_numpy())[1])


def test_report_writes_the_second_level_tables_with_captions(results, tmp_path):
    from lmbrain.report.build import _across_subject_tables

    bundle: list = []
    written = _across_subject_tables(results, {"seed": 0, "fdr_alpha": 0.05}, tmp_path, ["md", "csv", "tex"],
                                     bundle)
    names = {p.name for p in written}
    assert {"across_subjects.md", "across_subjects.csv", "across_subjects.tex", "model_comparisons.csv",
            "across_subjects_rois_roi_ds.md"} <= names
    assert "across_subjects_rois_elec_ds.md" not in names  # no ROIs there
    markdown = (tmp_path / "across_subjects.md").read_text()
    assert "Random effects" in markdown and "single_ds" in markdown
    latex = (tmp_path / "across_subjects.tex").read_text()
    caption = next(line for line in latex.splitlines() if line.startswith("\\caption"))
    assert "95\\%" in caption and "p\\_signflip" in caption
    title, _, _, files = bundle[0]
    assert title.startswith("Across subjects") and {p.name for p in files} <= names
