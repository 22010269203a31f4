"""Write a study's report (tables in Markdown, CSV and LaTeX) from its results directory alone."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from lmbrain.io import atomic_write_text, pid_alive
from lmbrain.progress import Progress, duration
from lmbrain.report import figures as figs
from lmbrain.report import summary_figures
from lmbrain.report.across_subjects import ALL_TARGETS, across_subject_table, comparison_table, roi_summary_table
from lmbrain.report.brain import brain_views, unlocated_note
from lmbrain.report.ceilings import ceiling_table
from lmbrain.report.headline import findings, headline_rows, headline_table
from lmbrain.report.html import render_html
from lmbrain.report.increments import CAPTION as INCREMENTS_CAPTION
from lmbrain.report.increments import increments_table
from lmbrain.report.latex import _SPECIAL, LATEX_MAX_ROWS, latex_table
from lmbrain.report.literature import literature_table, load_literature
from lmbrain.report.names import figure_title
from lmbrain.report.seeds import seed_summary_table
from lmbrain.report.sensitivity import n_replications, sensitivity_caption, sensitivity_table
from lmbrain.report.tables import (
    family_table,
    joint_check_table,
    layer_shape_table,
    layer_table,
    main_table,
    split_audit_table,
    to_markdown,
)
from lmbrain.report.trust import read_study, trust_panel
from lmbrain.report.verdicts import untrained_beats_trained, verdicts
from lmbrain.results import NO_MODEL, FeatureSet, load_results, parse_feature_set

log = logging.getLogger(__name__)

MAIN_COLUMNS = {
    "dataset": "dataset", "controls": "controls", "model": "model", "subject": "subject",
    "layer": "layer (in-fold)", "r_llm": "r LLM", "r_controls": "r CTRL", "r_joint": "r LLM+CTRL",
    "r2_llm": "R² LLM", "r2_controls": "R² CTRL", "r2_joint": "R² LLM+CTRL",
    "unique_llm": "unique LLM R²", "omega": "omega %", "n_targets": "targets",
}


def latex_escape(text: str) -> str:
    """Text with LaTeX's special characters escaped (pandas leaves captions as they are)."""
    return "".join(c if c in "<>" else _SPECIAL.get(c, c) for c in text)  # latex.py's table, < and > left as they are


def write_table(table: pd.DataFrame, stem: Path, formats: list[str], title: str, caption: str = "",
                floatfmt: str = ".3f") -> list[Path]:
    """Write one table in each requested format (``caption``: a paragraph under the title in Markdown and
    LaTeX; ``floatfmt``: the Markdown number format); returns the paths written."""
    written = []
    if "csv" in formats:
        atomic_write_text(stem.with_suffix(".csv"), table.to_csv(index=False))
        written.append(stem.with_suffix(".csv"))
    if "md" in formats:
        atomic_write_text(stem.with_suffix(".md"), f"## {title}\n\n" + (f"{caption}\n\n" if caption else "")
                          + to_markdown(table, floatfmt))
        written.append(stem.with_suffix(".md"))
    if "tex" in formats and len(table) <= LATEX_MAX_ROWS:  # a longer table is read from its CSV, not typeset
        latex = latex_table(table, f"{title}. {caption}" if caption else title, f"tab:{stem.name}")
        atomic_write_text(stem.with_suffix(".tex"), latex)
        written.append(stem.with_suffix(".tex"))
    return written


#: a detailed table on the page: title, table, caption and its files under tables/
Detail = tuple[str, pd.DataFrame, str, list[Path]]


def _detail(bundle: list[Detail], table: pd.DataFrame, stem: Path, formats: list[str], title: str,
            caption: str, floatfmt: str = ".3f") -> list[Path]:
    """Write a detailed table (:func:`write_table`) and queue it for the page; returns the files written."""
    files = write_table(table, stem, formats, title, caption, floatfmt)
    bundle.append((title, table, caption, files))
    return files


#: the leakage probe: a control that knows nothing about language, only each sample's neighbours
LEAKAGE_PROBE = FeatureSet(False, ("oasm",))


def _probe_rows(audit: pd.DataFrame) -> pd.DataFrame:
    """The split-audit rows of OASM alone (not a joint LLM + OASM model, whose R² is the LLM's)."""
    if audit.empty or "feature_set" not in audit.columns:
        return audit.iloc[0:0]
    return audit[audit["feature_set"].map(lambda label: parse_feature_set(label) == LEAKAGE_PROBE)]


def leakage_warnings(audit: pd.DataFrame) -> list[str]:
    """Warnings for the autocorrelation-only control (OASM alone) where it scores above zero under grouped splits."""
    if "r2_grouped" not in audit.columns:
        return []
    rows = _probe_rows(audit)
    rows = rows[rows["r2_grouped"] > 0]
    return [f"WARNING {r.dataset}: OASM scores R² = {r.r2_grouped:.3f} > 0 under grouped splits: "
            "the split unit may not separate autocorrelated samples (leakage)" for r in rows.itertuples()]


def leakage_answers(audit: pd.DataFrame) -> list[str]:
    """The split audit's answer to 'does the split leak?', one sentence per dataset, from OASM alone under grouped
    and shuffled splits (mean over subjects of subject means)."""
    if not {"r2_grouped", "r2_shuffled"} <= set(audit.columns):
        return []
    sentences = []
    for r in _probe_rows(audit).sort_values("dataset").itertuples():
        verdict = (f"possibly: OASM, which knows nothing about language, scores R² {r.r2_grouped:.3f} > 0 under "
                   "grouped splits, so samples of one group may leak across folds" if r.r2_grouped > 0 else
                   f"no sign of it: OASM, which knows nothing about language, scores R² {r.r2_grouped:.3f} (not "
                   "above 0) under grouped splits")
        sentences.append(f"On {r.dataset}, {verdict}; under shuffled (leaky) splits it scores {r.r2_shuffled:.3f} "
                         f"({r.r2_shuffled - r.r2_grouped:+.3f} R²): what autocorrelation alone buys when neighbours "
                         "straddle train and test.")
    return sentences


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
                           bundle: list[Detail]) -> list[Path]:
    """The second-level tables (across subjects per ROI, per-ROI summaries, model comparisons); returns the
    files written and appends them to ``bundle``."""
    seed, alpha = int(stats.get("seed", 0)), float(stats.get("fdr_alpha", 0.05))
    written: list[Path] = []
    across = across_subject_table(results, seed=seed, fdr_alpha=alpha)
    notes = " ".join(f"Skipped: {note}." for note in across.attrs.get("notes", []))
    if not across.empty:
        title = "Across subjects (random effects): LLM and unique LLM per ROI"
        caption = f"{ACROSS_CAPTION} {notes}".strip()
        written += _detail(bundle, across, tables_dir / "across_subjects", formats, title, caption)
        for dataset in sorted(across["dataset"].unique()):
            if set(across.loc[across["dataset"] == dataset, "roi"]) == {ALL_TARGETS}:
                continue
            summary = roi_summary_table(across, dataset)
            title = f"{dataset}: per-ROI tests across subjects"
            caption = ("R² of the LLM alone and unique LLM R² (mean over subjects; CI: 95% t interval), q: "
                       "one-sided sign-flip p across subjects after Benjamini–Hochberg across ROIs (per model "
                       "and quantity).")
            written += _detail(bundle, summary, tables_dir / f"across_subjects_rois_{dataset}", formats, title, caption)
    comparisons = comparison_table(results, seed=seed, fdr_alpha=alpha)
    if not comparisons.empty:
        title = "Model comparisons (LLM alone, across subjects)"
        notes = " ".join(f"Skipped: {note}." for note in comparisons.attrs.get("notes", []))
        caption = f"{COMPARISON_CAPTION} {notes}".strip()
        written += _detail(bundle, comparisons, tables_dir / "model_comparisons", formats, title, caption)
    return written


HEADLINE_CAPTION = (
    "Per dataset × control set × model. R² (out-of-sample, pooled over outer folds) of the LLM alone (layer chosen "
    "inside each training fold), of the controls alone and of both (joint); mean over subjects of subject means "
    "(each subject's mean over its targets), 95% bootstrap CI over subjects ([a, b]; over the split unit's groups "
    "for one target). Unique LLM R² = R²(joint) − R²(controls). p (unique): one-sided sign-flip test across "
    "subjects of their mean unique R² (uncorrected); with one target, block sign flips over the split unit's "
    "groups (widened by the refits' two-role inflation κ for time series). q (BH): Benjamini–Hochberg q-value over "
    "the headline's unique-variance tests of trained models (every dataset × control set); 'significant' in the "
    "sentences means q ≤ the study's α, and each claim names what it generalises over (subjects, or passages for "
    "one averaged target). Ω: % of the LLM's R² the controls "
    "account for, 100 · (1 − unique LLM R² / R² LLM), as measured (never clipped): above 100 where the joint model "
    "lost to the controls (R² joint < R² controls), below 0 where the unique R² exceeds the LLM's own, each said in "
    "words; not defined where the LLM's R² CI does not lie above 0. The headline's Ω (Ω % [CI], and the sentences "
    "above) is the omega of the mean R²s over subjects (a ratio of means); Ω % per-subject mean is the mean of "
    "per-subject omegas, each from the subject's own mean R²s (k/n subj.: subjects whose omega is defined, R² LLM > "
    "0; CI over subjects), the definition of the published omegas (Feghhi et al. 2024). r / ceiling: Pearson r over "
    "the noise ceiling (unclipped). Untrained rows with several seeds: mean over seeds and {min, max} over seeds (a "
    "range, not a CI; 'k/n def.': defined for k of n seeds)."
)
FAMILY_CAPTION = (
    "r and R²: mean over subjects with a bootstrap CI over subjects (over targets when fewer than 3 subjects; over "
    "the split unit's groups for one target); r is the mean over outer folds of the per-fold Pearson r, R² the "
    "pooled out-of-sample R²; r_ceiled unclipped; unique LLM R² and omega with bootstrap CIs (over subjects, or the "
    "split unit's groups for one target); omega as measured, never clipped (above 100: the joint model lost to the "
    "controls; below 0: the unique R² exceeds the LLM's own), of the mean R²s over subjects (omega, the headline's) "
    "and as the mean of per-subject omegas (omega_subject_mean; omega_subjects: subjects whose omega is defined / "
    "all); omega not defined where the LLM's R² CI does not lie above 0; "
    "significant: fraction of targets whose out-of-sample R² is above the training mean (p_r2: sign flips of "
    "per-group error sums, widened by the refits' two-role inflation κ) after Benjamini–Hochberg FDR; "
    "significant_unique: the same for the unique LLM variance (LLM + controls better than controls alone, p_unique)."
)


LAYER_SHAPE_CAPTION = (
    "The intermediate layer of each test fold is chosen without that fold (on other folds only); difference of R² "
    "with a paired bootstrap CI. p_descriptive: one-sided sign flips (across subjects with 3 or more, else over the "
    "split unit's groups), q_descriptive: its Benjamini–Hochberg over the models of a dataset. Both are descriptive, "
    "not tests: the per-target block sign flips are not calibrated (7.7–8.8 % false positives at a nominal 5 % with "
    "real ridge refits, docs/statistics.md 'Layer curves'): read them as a description of the curves' shape."
)


def _table(key: str, title: str, table: pd.DataFrame, caption: str, collapsed: bool = True) -> dict:
    return {"key": key, "title": title, "table": table, "caption": caption, "collapsed": collapsed}


#: what a report consists of under its results folder: each is replaced whole by a new build, or left as it was
REPORT_PARTS = ("tables", "figures", "index.html")
#: a report is built in ``<results>/.report-staging-<pid>-<tag>/`` and swapped in from there
STAGING_PREFIX = ".report-staging-"


def _clean_stale_staging(results_dir: Path) -> None:
    """Remove the staging folders of report builds whose process is gone (killed while building)."""
    for folder in results_dir.glob(f"{STAGING_PREFIX}*"):
        pid = folder.name.removeprefix(STAGING_PREFIX).split("-")[0]
        if folder.is_dir() and pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def swap_in(staging: Path, results_dir: Path, parts: list[str]) -> None:
    """Replace ``parts`` of ``results_dir`` by those built under ``staging`` (a part the build did not make is
    removed), each by renames; if any rename fails, the ones done are undone, so the previous report stays whole.
    The previous parts are moved into ``staging/.previous`` (removed with the staging folder)."""
    previous = staging / ".previous"
    previous.mkdir()
    done: list[tuple[Path, Path, bool, bool]] = []  # (final, new, moved old aside, moved new in)
    try:
        for name in parts:
            final, new, aside = results_dir / name, staging / name, previous / name
            old = final.exists() or final.is_symlink()
            if old:
                os.rename(final, aside)
            done.append((final, new, old, False))
            if new.exists():
                os.rename(new, final)
                done[-1] = (final, new, old, True)
    except BaseException:
        for final, new, old, moved in reversed(done):
            with contextlib.suppress(OSError):
                if moved:
                    os.rename(final, new)
                if old:
                    os.rename(previous / final.name, final)
        raise


def build_report(
    results_dir: str | Path, formats: list[str] | None = None, figures: bool = True, html: bool = True
) -> list[Path]:
    """Regenerate every table (and figure, and the HTML page) of a results directory; returns the files written.

    The report is built in a staging folder inside ``results_dir`` and swapped in whole only once every file of it
    is written: a failure at any point leaves the previous report byte-identical. The parquet files are verified
    against the manifest's sha256 before anything is written.

    Parameters
    ----------
    results_dir : str or Path
        A folder written by :func:`lmbrain.run_study`.
    formats : list of {"md", "csv", "tex"}, optional
        The table formats (default: all three).
    figures, html : bool
        Also write ``figures/`` (PNG + SVG) and ``index.html``.

    Returns
    -------
    list of Path
        Every file written (``tables/``, ``figures/``, ``index.html``).
    """
    results_dir = Path(results_dir)
    formats = formats or ["md", "csv", "tex"]
    results, units, manifest = load_results(results_dir)
    _clean_stale_staging(results_dir)
    staging = Path(tempfile.mkdtemp(dir=results_dir, prefix=f"{STAGING_PREFIX}{os.getpid()}-"))
    try:
        built = _build_report(results_dir, staging, results, units, manifest, formats, figures, html)
        parts = [name for name in REPORT_PARTS if (name != "figures" or figures) and (name != "index.html" or html)]
        swap_in(staging, results_dir, parts)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [results_dir / path.relative_to(staging) for path in built]


#: the steps of a report build, in order (its progress lines count them)
REPORT_STEPS = ("scores, family comparison and headline", "sensitivity and headline tables",
                "across-subject tests and model comparisons", "split audit, layer shape and ceilings",
                "per-layer scores", "figures", "page")


def report_eta(manifest: dict, stage: Progress) -> tuple[float | None, str]:
    """The report's time left: the previous build's time (in the manifest) less the time elapsed; unknown before
    a first build."""
    previous = (manifest.get("timings_seconds") or {}).get("report")
    if not isinstance(previous, int | float):
        return None, "first build of this folder's report"
    elapsed = stage.clock() - stage.start
    return max(float(previous) - elapsed, 0.0), f"the last build took {duration(previous)}"


def _build_report(results_dir: Path, staging: Path, results: pd.DataFrame, units: pd.DataFrame, manifest: dict,
                  formats: list[str], figures: bool, html: bool) -> list[Path]:
    """Write the report's files under ``staging`` (laid out as under the results folder), logging its progress
    (a bar on a terminal, lines in run.log); returns the files."""
    stage = Progress("report", len(REPORT_STEPS), "step", logger=log, eta=lambda: report_eta(manifest, stage))
    try:
        written = _report_files(results_dir, staging, results, units, manifest, formats, figures, html,
                                lambda name: _next_step(stage, name))
    except BaseException:
        stage.close(ok=False)
        raise
    stage.update()
    stage.close()
    return written


def _next_step(stage: Progress, name: str) -> None:
    """Count the step before ``name`` as done (none before the first) and say that ``name`` runs now."""
    if name != REPORT_STEPS[0]:
        stage.update()
    stage.set_note(f"now: {name}")


#: a detailed table to write: (file stem, title, caption, table, Markdown number format); empty tables are skipped
TableSpec = tuple[str, str, str, pd.DataFrame, str]

SEEDS_CAPTION = ("Per dataset and model: the trained model's value next to the mean and range (min, max) over its "
                 "untrained (re-initialised) seeds, from the family comparison; 'defined' counts the seeds whose value "
                 "is defined (omega needs the LLM above chance).")
JOINT_CHECK_CAPTION = ("Shortfall = max(R² LLM, R² controls) − R² joint per (model, subject) row (subject means over "
                       "targets); a joint model that never lost to its parts would have shortfall <= 0. "
                       "share_joint_ge_best: rows within 0.002 of their best part.")
CEILINGS_CAPTION = ("Per dataset: the ceiling method, its median over targets, the share of ceilings at 0 or >= 0.99 "
                    "and of per-target estimates at a bound, the median CI width, and the alternative estimates "
                    "(docs/statistics.md, 'Noise ceilings').")
SCORES_CAPTION = ("Per subject: mean over its targets; 'all' averages the subject means. Layer: the in-fold choice "
                  "most often made (how often).")
LAYERS_CAPTION = ("Never used to choose a layer; mean over subjects of subject means, CIs over subjects (3 or more), "
                  "else the target's own CI over the split unit's groups.")


def _write_details(bundle: list[Detail], specs: list[TableSpec], tables_dir: Path, formats: list[str]) -> list[Path]:
    """Write each non-empty table of ``specs`` (its files, and its entry in the page's ``bundle``)."""
    written: list[Path] = []
    for stem, title, caption, table, floatfmt in specs:
        if not table.empty:
            written += _detail(bundle, table, tables_dir / stem, formats, title, caption, floatfmt)
    return written


def _summary_specs(results: pd.DataFrame, main: pd.DataFrame, family: pd.DataFrame, sensitivity: pd.DataFrame,
                   seed: int, alpha: float) -> list[TableSpec]:
    """The tables read with the headline: family comparison, untrained seeds, joint check, sensitivity, increments."""
    seeds = seed_summary_table(family) if not family.empty else pd.DataFrame()
    if not seeds.empty and not (seeds["n_untrained_seeds"] > 0).any():
        seeds = pd.DataFrame()
    return [
        ("family_comparison", "Family comparison", FAMILY_CAPTION, family, ".3f"),
        ("untrained_seeds", "Trained vs untrained seeds", SEEDS_CAPTION, seeds, ".3f"),
        ("joint_check", "Joint model vs its parts", JOINT_CHECK_CAPTION, joint_check_table(main), ".3f"),
        ("sensitivity", "Sensitivity: known unique LLM signals implanted into the responses",
         sensitivity_caption(alpha, n_replications(results)), sensitivity, ".4g"),
        ("control_increments", "Nested control sets: what the larger set adds", INCREMENTS_CAPTION,
         increments_table(results, seed=seed, fdr_alpha=alpha), ".4g"),
    ]


def _report_files(results_dir: Path, staging: Path, results: pd.DataFrame, units: pd.DataFrame, manifest: dict,
                  formats: list[str], figures: bool, html: bool, step: Callable[[str], None]) -> list[Path]:
    """The report's files, written under ``staging``; ``step(name)`` marks the start of each of REPORT_STEPS."""
    study = read_study(results_dir)
    tables_dir = staging / "tables"
    bundle: list[Detail] = []  # detailed tables, in page order
    stats = manifest.get("statistics", {})
    seed, n_boot = int(stats.get("seed", 0)), int(stats.get("bootstrap", 1000))
    alpha = float(stats.get("fdr_alpha", 0.05))
    step("scores, family comparison and headline")
    main = main_table(results, units)
    family = family_table(results, units, n_boot=n_boot, seed=seed, fdr_alpha=alpha)
    rows = headline_rows(results, main, family, n_boot=n_boot, seed=seed)
    headline = headline_table(rows, alpha)
    step("sensitivity and headline tables")
    sensitivity = sensitivity_table(results, alpha, seed)
    written = (write_table(headline, tables_dir / "headline", formats, "Headline: what the controls explain",
                           HEADLINE_CAPTION) if not headline.empty else [])
    written += _write_details(bundle, _summary_specs(results, main, family, sensitivity, seed, alpha), tables_dir,
                              formats)
    step("across-subject tests and model comparisons")
    written += _across_subject_tables(results, stats, tables_dir, formats, bundle)
    step("split audit, layer shape and ceilings")
    audit = split_audit_table(results)
    audit_caption = ("Mean over subjects of subject means (over targets). "
                     + ("; ".join(leakage_warnings(audit)) or "No leakage warning."))
    written += _write_details(bundle, [
        ("split_audit", "Split audit: grouped vs shuffled (leaky) outer CV", audit_caption, audit, ".3f"),
        ("layer_shape", "Best intermediate layer vs last layer (descriptive)", LAYER_SHAPE_CAPTION,
         layer_shape_table(results, n_boot=n_boot, seed=seed, fdr_alpha=alpha), ".3f"),
        ("ceilings", "Noise ceilings", CEILINGS_CAPTION, ceiling_table(results), ".3f"),
    ], tables_dir, formats)
    # the per-subject scores are always written (with a header only, in a study without models)
    written += _detail(bundle, main.rename(columns=MAIN_COLUMNS), tables_dir / "scores", formats,
                       f"{manifest['study']}: encoding scores with controls, per subject", SCORES_CAPTION)
    step("per-layer scores")
    written += _write_details(bundle, [("layers", "Per-layer scores (descriptive)", LAYERS_CAPTION,
                                        layer_table(results, n_boot=n_boot, seed=seed), ".3f")], tables_dir, formats)
    pictures: list[tuple[str, Path, str]] = []
    step("figures")
    if figures:
        pictures, figure_files = _figures(results, rows, manifest, staging / "figures", n_boot, seed, alpha)
        written += figure_files
    step("page")
    if html:
        kinds = {name: str(info.get("kind", "")) for name, info in (manifest.get("models") or {}).items()
                 if isinstance(info, dict)}
        page = render_html(manifest, study, headline, findings(rows, alpha, sensitivity),
                           trust_panel(results, units, manifest, main, study, sensitivity), pictures,
                           literature_table(sorted(results["dataset"].unique()), rows=rows), bundle, staging,
                           HEADLINE_CAPTION, leakage_answers(audit), verdict_lines=verdicts(rows, alpha, sensitivity),
                           untrained_notes=untrained_beats_trained(rows, kinds))
        atomic_write_text(staging / "index.html", page)
        written.append(staging / "index.html")
    return written


def _figures(results: pd.DataFrame, rows: pd.DataFrame, manifest: dict, fig_dir: Path, n_boot: int,
             seed: int, alpha: float) -> tuple[list[tuple[str, Path, str]], list[Path]]:
    """Every figure of the report: (title, PNG path, one-line caption) for the page, and the files written."""
    from lmbrain.report.models import model_info

    models = sorted(m for m in results["model"].unique() if m != NO_MODEL)
    colors = figs.model_colors(models)
    info = {base: model_info(base) for base in colors}
    family_of = {base: i["family"] for base, i in info.items()}
    across = across_subject_table(results, seed=seed, fdr_alpha=alpha)
    entries = [
        ("The answer at a glance", summary_figures.answer_figure(rows, fig_dir, colors, alpha),
         "Unique LLM R² (left) and Ω, the % of the LLM's R² the controls explain (right), per dataset × control set: "
         "trained models with 95% CIs (a star: unique R² above 0 after Benjamini–Hochberg correction), untrained "
         "seeds as their mean (open square) and range (bar)."),
        ("Omega per dataset and model", figs.omega_overview(rows, fig_dir, colors),
         "Ω with its 95% CI for each trained model (filled) and each untrained seed (open; bar: mean over seeds); "
         "n.d.: the LLM's R² is not above chance."),
        ("Variance partitions", figs.partition_bars(rows, fig_dir, colors, alpha),
         "R² of the controls alone (grey), the LLM alone (model colour), both (black outline) and the LLM's unique "
         "R² (hatched) side by side from 0, for each trained model (95% CIs; a star: unique R² above 0 after "
         "Benjamini–Hochberg) and its untrained seeds (pale; mean with a min–max bar)."),
        ("Per-ROI scores", figs.roi_panels(across, results, fig_dir, colors, alpha),
         "LLM R² (top) and unique LLM R² (bottom) per ROI, mean over subjects: trained models with 95% t intervals "
         "across subjects (a star: q ≤ α, Benjamini–Hochberg over the ROIs), untrained seeds pale (mean, range); "
         "dashed: the controls' R²." + unlocated_note(across, manifest)),
        ("Brain views", brain_views(across, manifest, fig_dir, alpha),
         "Unique LLM R² per ROI on a glass brain (left, top and right views), one row per trained model: each ROI a "
         "disc at its MNI centre coloured by the mean over subjects (red above 0, blue below; one scale per figure), "
         "ringed in black where q ≤ α (Benjamini–Hochberg over the ROIs); the centres' source under the figure."),
        ("Layer curves", figs.layer_curves(results, fig_dir, colors, family_of, n_boot=n_boot, seed=seed),
         "R² per relative depth, one panel per family; trained: line with 95% CI band; untrained seeds: dashed mean "
         "with min–max band."),
        ("Model families", summary_figures.families(rows, fig_dir, colors, info) if rows["base"].nunique() > 1 else [],
         "LLM R², unique LLM R² and Ω per model side by side (parameter count under each name): trained models "
         "with 95% CI, untrained seeds as their mean (open square) and range (bar); n.d.: Ω not defined (the "
         "model's R² is not above chance)."),
        ("This study beside the literature", summary_figures.literature_figure(rows, load_literature(), fig_dir,
                                                                               colors),
         "Published omegas (black, ± SE; Feghhi et al. 2024, GPT2-XL) beside this study's comparable values "
         "(same dataset, controls and training state; each subject's omega clipped to 0–100 as published; open: "
         "mean over untrained seeds). Models, splits and estimators differ: the literature table says how."),
        ("Grouped vs shuffled splits", figs.split_audit(results, fig_dir),
         "Mean R² under grouped and shuffled (leaky) outer CV per feature set."),
        ("Noise ceilings", figs.ceiling_diagnostics(results, fig_dir),
         "Pool curves, shrinkage and agreement of the ceiling estimates."),
    ]
    pictures, written = [], []
    datasets = sorted(results["dataset"].unique(), key=len, reverse=True)
    for title, paths, caption in entries:
        written += paths
        pngs = [p for p in paths if p.suffix == ".png"]
        pictures += [(figure_title(title, p.stem, datasets) if len(pngs) > 1 else title, p, caption) for p in pngs]
    return pictures, written
