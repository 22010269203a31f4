"""The sensitivity analysis in the report: a synthetic study with known implanted-signal results (recovered = 0.5 ×
level, learnable limit = 0.8 × level, p-values that give known power) checks the sensitivity table's numbers and
files, the trust panel's line and the headline's sentence; results without sensitivity rows build without them."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lmbrain.analysis.sensitivity import detectable
from lmbrain.report.build import build_report, load_results
from lmbrain.report.headline import findings, headline_rows
from lmbrain.report.sensitivity import COLUMNS, sensitivity_table, trust_items, zero_sentence
from lmbrain.report.tables import family_table, main_table
from lmbrain.report.trust import trust_panel
from lmbrain.results import SENS_LIMIT, SENS_P, SENS_RECOVERED, SENS_UNIQUE, sensitivity_metric

LEVELS = (0.005, 0.02, 0.05)
REPS = 10
TARGETS = ("t1", "t2", "t3", "t4")
#: per-target offsets of the recovered unique R² around its mean (they average to 0 within a subject)
OFFSETS = (-0.2, -0.1, 0.1, 0.2)
#: per dataset: subjects, and per level the replications whose p_unique is small (per-target power) and whose
#: subject-mean unique R² is positive in every subject (across-subject power: exact sign-flip p = 1/32 then)
DESIGN = {
    "sens_ds": (5, {0.005: 2, 0.02: 6, 0.05: 10}, {0.005: 3, 0.02: 7, 0.05: 10}),
    "never_ds": (5, {0.005: 1, 0.02: 3, 0.05: 5}, {0.005: 0, 0.02: 2, 0.05: 6}),
    "few_ds": (2, {0.005: 2, 0.02: 6, 0.05: 10}, {0.005: 0, 0.02: 0, 0.05: 0}),
}
ALPHA = 0.05


def _rows(dataset: str, subject: str, model: str, feature_set: str, target: str, metrics: dict) -> list[dict]:
    return [{"dataset": dataset, "subject": subject, "model": model, "feature_set": feature_set, "scheme": "grouped",
             "per_layer": False, "layer": "layer=2" if model != "-" else "", "neuroid_id": target, "metric": metric,
             "value": float(value)} for metric, value in metrics.items()]


def _sensitivity_metrics(dataset: str, i: int, k: int) -> dict[str, float]:
    """Subject ``i``'s target ``k``: recovered 0.5·level (± an offset), limit 0.8·level, p and unique by DESIGN."""
    _, small_p, positive = DESIGN[dataset]
    metrics = {}
    for level in LEVELS:
        metrics[sensitivity_metric(SENS_RECOVERED, level)] = 0.5 * level * (1 + OFFSETS[k])
        metrics[sensitivity_metric(SENS_LIMIT, level)] = 0.8 * level
        for rep in range(REPS):
            metrics[sensitivity_metric(SENS_P, level, rep)] = 0.01 if rep < small_p[level] else 0.5
            sign = 1 if rep < positive[level] else -1
            metrics[sensitivity_metric(SENS_UNIQUE, level, rep)] = sign * level * (0.5 + 0.01 * i)
    return metrics


def synthetic_results(with_sensitivity: bool = True) -> pd.DataFrame:
    """Three datasets (controls 'ctrl', model 'm'): R² of the LLM, controls and joint per target and, optionally,
    the joint units' sensitivity rows of :data:`DESIGN`."""
    rows: list[dict] = []
    for dataset, (n_subjects, _, _) in DESIGN.items():
        for i in range(n_subjects):
            subject = str(i + 1)
            for k, target in enumerate(TARGETS):
                llm, ctrl = 0.04 + 0.002 * i + 0.001 * k, 0.01 + 0.001 * i
                rows += _rows(dataset, subject, "-", "ctrl", target, {"r": 0.1, "r2": ctrl})
                rows += _rows(dataset, subject, "m", "llm", target, {"r": 0.2, "r2": llm})
                # the real unique R² alternates in sign over subjects: the real test does not detect it, so the
                # implanted responses' power is the implant's own
                rows += _rows(dataset, subject, "m", "llm+ctrl", target,
                              {"r": 0.22, "r2": ctrl + 0.005 * (-1) ** i, "p_unique": 0.2})
                if with_sensitivity:
                    rows += _rows(dataset, subject, "m", "llm+ctrl", target, _sensitivity_metrics(dataset, i, k))
    return pd.DataFrame(rows)


def _write_study(folder: Path, results: pd.DataFrame) -> Path:
    results.to_parquet(folder / "results.parquet")
    keys = results[["dataset", "subject", "model", "feature_set", "scheme"]].drop_duplicates()
    units = keys.assign(model=keys["model"].replace("-", None), untrained_seed=np.nan, per_layer=False,
                        selected=[json.dumps(["layer=2"] * 5) if f != "ctrl" else None for f in keys["feature_set"]])
    units.reset_index(drop=True).to_parquet(folder / "units.parquet")
    manifest = {"study": "synthetic", "study_hash": "0" * 16, "packages": {}, "n_units": 0,
                "statistics": {"seed": 0, "bootstrap": 100, "fdr_alpha": ALPHA},
                "datasets": {d: f"{d} (synthetic): 10 samples x 20 neuroids, {n} subjects"
                             for d, (n, _, _) in DESIGN.items()}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "study.yaml").write_text(yaml.safe_dump({"name": "synthetic"}))
    return folder


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    folder = _write_study(tmp_path_factory.mktemp("sensitivity_report"), synthetic_results())
    build_report(folder, figures=False)
    return folder


@pytest.fixture(scope="module")
def table(report) -> pd.DataFrame:
    return pd.read_csv(report / "tables" / "sensitivity.csv")


def _expected_detectable(dataset: str) -> float:
    """By hand: log-linear interpolation between the levels around the first power ≥ 0.8."""
    n_subjects, small_p, positive = DESIGN[dataset]
    power = np.array([(positive if n_subjects >= 3 else small_p)[level] / REPS for level in LEVELS])
    i = int(np.flatnonzero(power >= 0.8)[0]) if (power >= 0.8).any() else None
    if i is None:
        return math.inf
    frac = (0.8 - power[i - 1]) / (power[i] - power[i - 1])
    return math.exp(math.log(LEVELS[i - 1]) + frac * (math.log(LEVELS[i]) - math.log(LEVELS[i - 1])))


def test_expected_detectable_values_follow_the_design():
    assert _expected_detectable("sens_ds") == pytest.approx(0.02 * 2.5 ** (1 / 3))  # 0.7 → 1.0 between 0.02, 0.05
    assert _expected_detectable("few_ds") == pytest.approx(0.02 * 2.5 ** 0.5)  # 0.6 → 1.0 (per-target power)
    assert _expected_detectable("never_ds") == math.inf  # 0.6 at 0.05


def test_table_holds_the_known_recovery_power_and_detectable_values(table):
    assert list(table.columns) == COLUMNS
    assert len(table) == len(DESIGN) * len(LEVELS)
    for row in table.itertuples():
        n_subjects, small_p, positive = DESIGN[row.dataset]
        level = row.implanted_unique_r2
        assert (row.model, row.controls) == ("m", "ctrl")
        assert row.mean_recovered == pytest.approx(0.5 * level) and row.recovery == pytest.approx(0.5)
        assert row.learnable_limit == pytest.approx(0.8 * level) and row.recovery_of_limit == pytest.approx(0.625)
        assert row.power == pytest.approx(small_p[level] / REPS)
        assert (row.n_subjects, row.n_targets) == (n_subjects, n_subjects * len(TARGETS))
        if n_subjects >= 3:
            assert row.test == "sign flip across subjects"
            assert row.power_across_subjects == pytest.approx(positive[level] / REPS)
        else:
            assert row.test == "per-target p_unique" and np.isnan(row.power_across_subjects)
        assert row.detectable == pytest.approx(_expected_detectable(row.dataset))
    sens = table[table["dataset"] == "sens_ds"]
    assert sens["detectable"].iloc[0] == pytest.approx(detectable(sens["implanted_unique_r2"].to_numpy(),
                                                                  sens["power_across_subjects"].to_numpy()))


def test_table_files_are_written_with_a_caption_in_words(report, table):
    markdown = (report / "tables" / "sensitivity.md").read_text()
    latex = (report / "tables" / "sensitivity.tex").read_text()
    for words in ("random direction of the model's own features", "residualised on the controls",
                  "share of each response's variance", "stacking weights", "OASM width σ of the controls alone",
                  "inner CV", "LLM layer (and σ) stay at their in-fold choices", "learnable_limit", f"α = {ALPHA:g}",
                  f"{REPS} random directions per level"):
        assert words in markdown
    assert "| never_ds | m | ctrl | 0.05 | 0.025 | 0.5 | 0.04 | 0.625 | 0.5 | 0.6 |" in markdown
    assert markdown.count("| inf |") == len(LEVELS)  # never_ds: not reached at 0.05
    assert latex.isascii() and r"$\infty$" in latex and r"$\sigma$" in latex  # pdflatex needs no Unicode set-up
    assert latex.count(r"\begin{longtable}") == 1 and "implanted unique $R^2$" in latex  # one table, never sliced
    page = (report / "index.html").read_text()
    assert "Sensitivity: known unique LLM signals" in page and 'href="tables/sensitivity.csv"' in page


def test_trust_panel_states_the_detectable_unique_r2_and_the_recovery(report):
    results, units, manifest = load_results(report)
    panel = {d: dict(items) for d, items in trust_panel(results, units, manifest, main_table(results, units)).items()}
    label = "sensitivity (m vs ctrl)"
    assert panel["sens_ds"][label] == ("would detect a unique R² of 0.027 with 80 % power (sign flip across 5 "
                                       "subjects); recovers 50 % of an implanted 0.02; the learnable limit 80 %")
    assert panel["never_ds"][label].startswith("would not detect a unique R² of 0.05 with 80 % power (sign flip "
                                               "across 5 subjects: power 60 % there)")
    assert panel["few_ds"][label].startswith("would detect a unique R² of 0.032 with 80 % power (per-target "
                                             "p_unique over 8 targets)")
    page = (report / "index.html").read_text()
    assert "would detect a unique R² of 0.027 with 80 % power" in page


def _sentence(report: Path, dataset: str) -> str:
    results, units, _ = load_results(report)
    main = main_table(results, units)
    rows = headline_rows(results, main, family_table(results, units, n_boot=100), n_boot=100)
    return findings(rows, ALPHA, sensitivity_table(results, ALPHA))[dataset][0]


def test_headline_sentence_says_what_would_read_as_zero_next_to_omega(report):
    sens = _sentence(report, "sens_ds")
    assert "omega" in sens and sens.endswith(". For m, a unique contribution below 0.027 would read as zero here.")
    assert _sentence(report, "never_ds").endswith(". For m, even a unique contribution of 0.05 could read as zero "
                                                  "here.")
    added = re.split(r"(?<=\.) (?=For m,)", sens)[-1]
    assert len(added.split()) <= 25  # a sentence of its own, not a longer first one
    page = (report / "index.html").read_text()
    assert "For m, a unique contribution below 0.027 would read as zero here." in page


def _block(detectable_value: float, power: tuple[float, ...]) -> pd.DataFrame:
    return pd.DataFrame({"dataset": "d", "model": "m", "controls": "c", "implanted_unique_r2": LEVELS,
                         "mean_recovered": np.multiply(LEVELS, 0.25), "recovery": 0.25,
                         "learnable_limit": np.multiply(LEVELS, 0.5), "recovery_of_limit": 0.5, "power": power,
                         "power_across_subjects": np.nan, "test": "per-target p_unique", "n_subjects": 1,
                         "n_targets": 3, "detectable": detectable_value})


def test_where_the_real_unique_contribution_is_detected_no_bound_is_claimed():
    """The implanted responses carry the real unique part too: where the real test detects it (here in every
    subject), the power would be the real signal's, so neither the trust panel nor the headline states a bound."""
    results = synthetic_results()
    joint = (results["feature_set"] == "llm+ctrl") & (results["metric"] == "r2")
    results.loc[joint, "value"] = results.loc[joint, "value"].abs() + 0.01  # unique 0.005-0.015 in every subject
    table = sensitivity_table(results, ALPHA)
    sens = table[table["dataset"] == "sens_ds"]
    assert (sens["real_p"] <= ALPHA).all() and (table[table["dataset"] == "few_ds"]["real_p"] == 0.2).all()
    text = dict(trust_items(table, "sens_ds"))["sensitivity (m vs ctrl)"]
    assert text.startswith("the real unique contribution is already detected (p = 0.031)")
    assert zero_sentence(table, "sens_ds", "ctrl", "m") == ""
    assert zero_sentence(table, "few_ds", "ctrl", "m") != ""  # per-target p 0.2: the bound stands
    strict = sensitivity_table(results, 0.01)  # the study's α decides: p = 0.031 is not a detection at 0.01
    assert not strict["real_detected"].any() and zero_sentence(strict, "sens_ds", "ctrl", "m") != ""


def test_smallest_level_and_missing_power_are_said_as_they_are():
    reached = _block(0.005, (0.9, 1.0, 1.0))
    assert zero_sentence(reached, "d", "c", "m") == ("For m, a unique contribution of 0.005, the smallest tested, "
                                                     "would not read as zero here.")
    assert "0.005 (the smallest level tested) with 80 % power" in trust_items(reached, "d")[0][1]
    assert "recovers 25 % of an implanted 0.02; the learnable limit 50 %" in trust_items(reached, "d")[0][1]
    unknown = _block(float("nan"), (np.nan, np.nan, np.nan))
    assert zero_sentence(unknown, "d", "c", "m") == ""
    assert trust_items(unknown, "d")[0][1].startswith("power not estimated")


def test_results_without_sensitivity_rows_build_without_a_sensitivity_table(tmp_path, report):
    folder = _write_study(tmp_path, synthetic_results(with_sensitivity=False))
    written = build_report(folder, figures=False)
    assert sensitivity_table(synthetic_results(with_sensitivity=False)).empty
    assert not any("sensitivity" in p.name for p in written) and not list((folder / "tables").glob("sensitivity*"))
    assert (folder / "tables" / "headline.md").is_file()
    page = (folder / "index.html").read_text()
    assert "would read as zero" not in page and "sensitivity (" not in page and "80 % power" not in page


def test_only_the_requested_formats_are_written(tmp_path, report):
    for name in ("results.parquet", "units.parquet", "manifest.json", "study.yaml"):
        shutil.copy(report / name, tmp_path / name)
    build_report(tmp_path, formats=["csv"], figures=False, html=False)
    assert sorted(p.name for p in (tmp_path / "tables").glob("sensitivity*")) == ["sensitivity.csv"]


def test_without_bootstrap_the_sentence_says_there_is_no_ci_instead_of_printing_nan(report):
    results, units, _ = load_results(report)
    rows = headline_rows(results, main_table(results, units), family_table(results, units, n_boot=0), n_boot=0)
    sentence = findings(rows, ALPHA, sensitivity_table(results, ALPHA))["sens_ds"][0]
    assert "m's R² (0.045) has no CI, so omega is not defined" in sentence and "nan" not in sentence
    assert sentence.endswith("For m, a unique contribution below 0.027 would read as zero here.")
