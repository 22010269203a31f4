"""Write a study's report (tables in Markdown, CSV and LaTeX) from its results directory alone."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from lmbrain.report import figures as figs
from lmbrain.report.html import render_html
from lmbrain.report.seeds import seed_summary_table
from lmbrain.report.tables import (
    ALL_TARGETS,
    across_subject_table,
    ceiling_table,
    comparison_table,
    family_table,
    joint_check_table,
    layer_shape_table,
    layer_table,
    main_table,
    roi_summary_table,
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


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def latex_escape(text: str) -> str:
    """Text with LaTeX's special characters escaped (pandas leaves captions as they are)."""
    return "".join(_LATEX_SPECIAL.get(c, c) for c in text)


def write_table(table: pd.DataFrame, stem: Path, formats: list[str], title: str, caption: str = "") -> list[Path]:
    """Write one table in each requested format (``caption``: a paragraph under the title in Markdown and
    LaTeX); returns the paths written."""
    written = []
    if "csv" in formats:
        atomic_write_text(stem.with_suffix(".csv"), table.to_csv(index=False))
        written.append(stem.with_suffix(".csv"))
    if "md" in formats:
        atomic_write_text(stem.with_suffix(".md"), f"## {title}\n\n" + (f"{caption}\n\n" if caption else "")
                          + to_markdown(table))
        written.append(stem.with_suffix(".md"))
    if "tex" in formats:
        latex = table.to_latex(index=False, float_format="%.3f", na_rep="", escape=True,
                               caption=latex_escape(f"{title}. {caption}" if caption else title))
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


ACROSS_CAPTION = (
    "Random effects: each subject contributes one value per ROI (its mean over the ROI's targets; 'all targets' "
    "where targets have no ROI), and the test is across subjects, so no p-value claims more subjects than there "
    "are. Quantities: r and R² of the LLM alone; unique LLM R² = R²(LLM + controls) − R²(controls alone) per "
    "target, averaged per subject. mean: over subjects, with a 95% t interval; dz: mean / SD over subjects. "
    "p_signflip: one-sided (> 0) sign-flip test of the subject values (exact by enumeration up to 13 subjects; "
    "its smallest attainable p is 1/2 to the power n, 0.031 for 5 subjects); p_ttest, p_wilcoxon: one-sided t and "
    "Wilcoxon "
    "tests of the same values. q: Benjamini–Hochberg of p_signflip across the ROIs of a dataset × model × "
    "quantity; significant: q <= the study's FDR alpha. Calibration: docs/statistics.md, 'Across subjects'."
)
COMPARISON_CAPTION = (
    "Model a − model b on the LLM alone, per dataset × ROI ('all targets' where targets have no ROI), every "
    "p-value at the subject level: each subject's mean over the ROI's targets, then paired two-sided sign-flip "
    "(p_signflip, exact up to 13 subjects: with 5 subjects it cannot go below 0.0625), t and Wilcoxon tests "
    "across subjects, a 95% t interval and dz. q: Benjamini–Hochberg of p_signflip across the ROIs of a "
    "dataset × metric × pair; significant: q <= the study's FDR alpha. mixed_*: per-target differences with "
    "targets nested in subjects (random intercept per subject, REML), tested on n_subjects − 1 df; conservative "
    "when subjects barely differ (false-positive rate 0.007–0.05 in simulations), for reference only."
)


def _across_subject_tables(results: pd.DataFrame, stats: dict, tables_dir: Path, formats: list[str],
                           bundle: list[tuple[str, pd.DataFrame, str]]) -> list[Path]:
    """The second-level tables (across subjects per ROI, per-ROI summaries, model comparisons); returns the
    files written and appends them to ``bundle``."""
    seed, alpha = int(stats.get("seed", 0)), float(stats.get("fdr_alpha", 0.05))
    written: list[Path] = []
    across = across_subject_table(results, seed=seed, fdr_alpha=alpha)
    notes = " ".join(f"Skipped: {note}." for note in across.attrs.get("notes", []))
    if not across.empty:
        title = "Across subjects (random effects): LLM and unique LLM per ROI"
        caption = f"{ACROSS_CAPTION} {notes}".strip()
        written += write_table(across, tables_dir / "across_subjects", formats, title, caption)
        bundle.append((title, across, caption))
        for dataset in sorted(across["dataset"].unique()):
            if set(across.loc[across["dataset"] == dataset, "roi"]) == {ALL_TARGETS}:
                continue
            summary = roi_summary_table(across, dataset)
            title = f"{dataset}: per-ROI tests across subjects"
            caption = ("R² of the LLM alone and unique LLM R² (mean over subjects; CI: 95% t interval), q: "
                       "one-sided sign-flip p across subjects after Benjamini–Hochberg across ROIs (per model "
                       "and quantity).")
            written += write_table(summary, tables_dir / f"across_subjects_rois_{dataset}", formats, title, caption)
            bundle.append((title, summary, caption))
    comparisons = comparison_table(results, seed=seed, fdr_alpha=alpha)
    if not comparisons.empty:
        title = "Model comparisons (LLM alone, across subjects)"
        notes = " ".join(f"Skipped: {note}." for note in comparisons.attrs.get("notes", []))
        caption = f"{COMPARISON_CAPTION} {notes}".strip()
        written += write_table(comparisons, tables_dir / "model_comparisons", formats, title, caption)
        bundle.append((title, comparisons, caption))
    return written


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
                       "R² CI does not lie above 0; significant: fraction of targets whose out-of-sample R² is "
                       "above the training mean (p_r2: sign flips of per-group error sums) after Benjamini–"
                       "Hochberg FDR; significant_unique: the same for the unique LLM variance (LLM + controls "
                       "better than controls alone, p_unique)."))
    seeds = seed_summary_table(family) if not family.empty else pd.DataFrame()
    if not seeds.empty and (seeds["n_untrained_seeds"] > 0).any():
        title = "Trained vs untrained seeds"
        written += write_table(seeds, tables_dir / "untrained_seeds", formats, title)
        bundle.append((title, seeds, "Per dataset and model: the trained model's value next to the mean and range "
                       "(min, max) over its untrained (re-initialised) seeds, from the family comparison; 'defined' "
                       "counts the seeds whose value is defined (omega needs the LLM above chance)."))
    check = joint_check_table(main)
    if not check.empty:
        title = "Joint model vs its parts"
        written += write_table(check, tables_dir / "joint_check", formats, title)
        bundle.append((title, check, "Shortfall = max(R² LLM, R² controls) − R² joint per (model, subject) "
                       "row (subject means); a joint model that never lost to its parts would have shortfall <= 0. "
                       "share_joint_ge_best: rows within 0.002 of their best part."))
    written += _across_subject_tables(results, stats, tables_dir, formats, bundle)
    audit = split_audit_table(results)
    if not audit.empty:
        title = "Split audit: grouped vs shuffled (leaky) outer CV"
        written += write_table(audit, tables_dir / "split_audit", formats, title)
        bundle.append((title, audit, "; ".join(leakage_warnings(audit)) or "No leakage warning."))
    layers = layer_table(results)
    if not layers.empty:
        written += write_table(layers, tables_dir / "layers", formats, "Per-layer scores (descriptive)")
        bundle.append(("Per-layer scores (descriptive)", layers, "Never used to choose a layer; CIs over subjects "
                       "(3 or more), else the target's own CI over the split unit's groups."))
    shape = layer_shape_table(results, n_boot=int(stats.get("bootstrap", 1000)), seed=int(stats.get("seed", 0)),
                              fdr_alpha=float(stats.get("fdr_alpha", 0.05)))
    if not shape.empty:
        title = "Best intermediate layer vs last layer"
        written += write_table(shape, tables_dir / "layer_shape", formats, title)
        bundle.append((title, shape, "The intermediate layer of each test fold is chosen without that fold (on "
                       "other folds only); difference of R² with a paired bootstrap CI; p one-sided (sign flips "
                       "across subjects with 3 or more, else over the split unit's groups), BH-FDR over the models "
                       "of a dataset."))
    ceilings = ceiling_table(results)
    if not ceilings.empty:
        title = "Noise ceilings"
        written += write_table(ceilings, tables_dir / "ceilings", formats, title)
        bundle.append((title, ceilings, "Per dataset: the ceiling method, its median, the share of ceilings at 0 "
                       "or >= 0.99 and of per-target estimates at a bound, the median CI width, and the "
                       "alternative estimates (docs/statistics.md, 'Noise ceilings')."))
    pictures: list[tuple[str, Path]] = []
    if figures:
        fig_dir = results_dir / "figures"
        for title, paths in (
            ("Layer curves", figs.layer_curves(results, fig_dir)),
            ("Variance partitions", figs.partition_bars(main, fig_dir) if not main.empty else []),
            ("Grouped vs shuffled splits", figs.split_audit(results, fig_dir)),
            ("Per-ROI scores", figs.roi_bars(results, fig_dir)),
            ("Noise ceilings", figs.ceiling_diagnostics(results, fig_dir)),
        ):
            written += paths
            pictures += [(f"{title}: {p.stem}", p) for p in paths if p.suffix == ".png"]
    if html:
        page = render_html(manifest, bundle, pictures, results_dir)
        atomic_write_text(results_dir / "index.html", page)
        written.append(results_dir / "index.html")
    return written
