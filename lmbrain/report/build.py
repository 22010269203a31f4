"""Write a study's report (tables in Markdown, CSV and LaTeX) from its results directory alone."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from lmbrain.report import figures as figs
from lmbrain.report.html import render_html
from lmbrain.report.tables import (
    comparison_table,
    family_table,
    joint_check_table,
    layer_table,
    main_table,
    split_audit_table,
    to_markdown,
)
from lmbrain.study.runner import atomic_write_text

MAIN_COLUMNS = {
    "dataset": "dataset", "controls": "controls", "model": "model", "subject": "subject",
    "layer": "layer (in-fold)", "r_llm": "r LLM", "r_controls": "r CTRL", "r_joint": "r LLM+CTRL",
    "r2_llm": "R² LLM", "r2_controls": "R² CTRL", "r2_joint": "R² LLM+CTRL",
    "unique_llm": "unique LLM R²", "omega": "omega %", "n_targets": "targets",
}


def load_results(results_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The tidy results, the unit records and the manifest of a results directory."""
    results = pd.read_parquet(results_dir / "results.parquet")
    units = pd.read_parquet(results_dir / "units.parquet")
    manifest = json.loads((results_dir / "manifest.json").read_text())
    return results, units, manifest


def write_table(table: pd.DataFrame, stem: Path, formats: list[str], title: str) -> list[Path]:
    """Write one table in each requested format; returns the paths written."""
    written = []
    if "csv" in formats:
        atomic_write_text(stem.with_suffix(".csv"), table.to_csv(index=False))
        written.append(stem.with_suffix(".csv"))
    if "md" in formats:
        atomic_write_text(stem.with_suffix(".md"), f"## {title}\n\n" + to_markdown(table))
        written.append(stem.with_suffix(".md"))
    if "tex" in formats:
        latex = table.to_latex(index=False, float_format="%.3f", na_rep="", caption=title, escape=True)
        atomic_write_text(stem.with_suffix(".tex"), latex)
        written.append(stem.with_suffix(".tex"))
    return written


def leakage_warnings(audit: pd.DataFrame) -> list[str]:
    """Warnings for autocorrelation-only features (OASM) that score above zero under grouped splits."""
    if "r2_grouped" not in audit.columns:
        return []
    rows = audit[audit["feature_set"].str.contains("oasm") & (audit["r2_grouped"] > 0)]
    return [f"WARNING {r.dataset}: OASM scores R² = {r.r2_grouped:.3f} > 0 under grouped splits: "
            "the split unit may not separate autocorrelated samples (leakage)" for r in rows.itertuples()]


def write_report(
    results_dir: str | Path, formats: list[str] | None = None, figures: bool = True, html: bool = True
) -> list[Path]:
    """Regenerate every table (and figure, and the HTML page) of a results directory; returns the files written."""
    results_dir = Path(results_dir)
    formats = formats or ["md", "csv", "tex"]
    results, units, manifest = load_results(results_dir)
    tables_dir = results_dir / "tables"
    written: list[Path] = []
    bundle: list[tuple[str, pd.DataFrame, str]] = []
    main = main_table(results, units)
    title = f"{manifest['study']}: encoding scores with controls"
    shown = main.rename(columns=MAIN_COLUMNS)
    written += write_table(shown, tables_dir / "scores", formats, title)
    bundle.append((title, shown, "Mean over targets per subject; 'all' averages the subject means."))
    stats = manifest.get("statistics", {})
    family = family_table(results, units, n_boot=int(stats.get("bootstrap", 1000)), seed=int(stats.get("seed", 0)),
                          fdr_alpha=float(stats.get("fdr_alpha", 0.05)))
    if not family.empty:
        title = "Family comparison"
        written += write_table(family, tables_dir / "family_comparison", formats, title)
        bundle.append((title, family, "r and R²: mean over subjects with a bootstrap CI over subjects "
                       "(over targets when fewer than 3 subjects; over the split unit's groups for one "
                       "target); r is the mean over outer folds of the per-fold Pearson r, R² the pooled "
                       "out-of-sample R²; r_ceiled unclipped; unique LLM R² and omega with bootstrap CIs (over "
                       "subjects, or the split unit's groups for one target); omega not defined where the LLM's "
                       "R² CI does not lie above 0; significant: fraction of targets with permutation "
                       "p < FDR threshold; significant_unique: the same for the unique LLM variance "
                       "(LLM + controls better than controls alone)."))
    check = joint_check_table(main)
    if not check.empty:
        title = "Joint model vs its parts"
        written += write_table(check, tables_dir / "joint_check", formats, title)
        bundle.append((title, check, "Shortfall = max(R² LLM, R² controls) − R² joint per (model, subject) "
                       "row (subject means); a joint model that never lost to its parts would have shortfall <= 0. "
                       "share_joint_ge_best: rows within 0.002 of their best part."))
    comparisons = comparison_table(results)
    if not comparisons.empty:
        title = "Model comparisons (LLM alone, paired across subjects)"
        written += write_table(comparisons, tables_dir / "model_comparisons", formats, title)
        bundle.append((title, comparisons, "Paired t-test and Wilcoxon test of per-subject means; mixed model "
                       "(random intercept per subject, over targets) where there are at least 5 subjects."))
    audit = split_audit_table(results)
    if not audit.empty:
        title = "Split audit: grouped vs shuffled (leaky) outer CV"
        written += write_table(audit, tables_dir / "split_audit", formats, title)
        bundle.append((title, audit, "; ".join(leakage_warnings(audit)) or "No leakage warning."))
    layers = layer_table(results)
    if not layers.empty:
        written += write_table(layers, tables_dir / "layers", formats, "Per-layer scores (descriptive)")
        bundle.append(("Per-layer scores (descriptive)", layers, "Never used to choose a layer."))
    pictures: list[tuple[str, Path]] = []
    if figures:
        fig_dir = results_dir / "figures"
        for title, paths in (
            ("Layer curves", figs.layer_curves(results, fig_dir)),
            ("Variance partitions", figs.partition_bars(main, fig_dir) if not main.empty else []),
            ("Grouped vs shuffled splits", figs.split_audit(results, fig_dir)),
            ("Per-ROI scores", figs.roi_bars(results, fig_dir)),
        ):
            written += paths
            pictures += [(f"{title}: {p.stem}", p) for p in paths if p.suffix == ".png"]
    if html:
        page = render_html(manifest, bundle, pictures, results_dir)
        atomic_write_text(results_dir / "index.html", page)
        written.append(results_dir / "index.html")
    return written
