"""Omega as measured, in every table and on the page: a synthetic study where one dataset's joint model loses to the
controls (omega > 100) and another's unique R² exceeds the LLM's own (omega < 0); the split audit's warning and
answer from OASM alone; the best-vs-last layer p shown as descriptive, never as significant; the study's question."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lmbrain.analysis.partition import ABOVE_SHORT, LOST_SHORT, LOST_TO_CONTROLS, UNIQUE_ABOVE_LLM, omega
from lmbrain.report.build import build_report, leakage_answers, leakage_warnings
from lmbrain.report.html import QUESTION, page_question
from lmbrain.report.tables import split_audit_table

SUBJECTS = [str(i) for i in range(1, 6)]
TARGETS = ("t1", "t2")
LAYERS = (0, 1, 2, 3)
QUESTION_TEXT = "Does the joint model lose? A made-up question for a synthetic study."


def _rows(dataset: str, subject: str, model: str, feature_set: str, target: str, metrics: dict,
          per_layer: bool = False, layer: str = "", scheme: str = "grouped") -> list[dict]:
    return [{"dataset": dataset, "subject": subject, "model": model, "feature_set": feature_set, "scheme": scheme,
             "per_layer": per_layer, "layer": layer, "neuroid_id": target, "metric": metric, "value": float(value)}
            for metric, value in metrics.items()]


def _partition(i: int, dataset: str) -> tuple[float, float, float]:
    """R² of the LLM, the controls and the joint model of subject ``i``."""
    if dataset == "lost_ds":  # the joint model below the controls alone: omega > 100 for every subject
        llm, ctrl = 0.02 + 0.002 * i, 0.05 + 0.001 * i
        return llm, ctrl, ctrl - 0.002
    llm = 0.03 + 0.002 * i  # neg_ds: unique R² (joint − controls) above the LLM's own: omega < 0
    return llm, -0.005, llm + 0.008


def synthetic_results() -> pd.DataFrame:
    """Two datasets x 5 subjects x 2 targets (controls 'ctrl', model 'm'), per-layer curves with a best-vs-last
    difference whose p is small on lost_ds."""
    rows: list[dict] = []
    for dataset in ("lost_ds", "neg_ds"):
        for i, subject in enumerate(SUBJECTS):
            llm, ctrl, joint = _partition(i, dataset)
            for target in TARGETS:
                rows += _rows(dataset, subject, "-", "ctrl", target, {"r": 0.2, "r2": ctrl})
                rows += _rows(dataset, subject, "m", "llm", target, {"r": 0.15, "r2": llm})
                rows += _rows(dataset, subject, "m", "llm+ctrl", target, {"r": 0.25, "r2": joint})
                for layer in LAYERS:
                    rows += _rows(dataset, subject, "m", "llm", target, {"r": 0.1, "r2": llm - 0.002 * (layer != 2)},
                                  per_layer=True, layer=f"layer={layer}")
                rows += _rows(dataset, subject, "m", "llm", target,
                              {"r2_best_intermediate": llm, "layer_diff_best_vs_last": 0.002 + 0.0001 * i,
                               "layer_diff_ci_low": 0.001, "layer_diff_ci_high": 0.003, "p_best_vs_last": 0.001},
                              per_layer=True, layer="layer=2")
    return pd.DataFrame(rows)


def _units(results: pd.DataFrame) -> pd.DataFrame:
    keys = results[~results["per_layer"]][["dataset", "subject", "model", "feature_set", "scheme"]].drop_duplicates()
    units = keys.assign(model=keys["model"].replace("-", None), untrained_seed=np.nan, per_layer=False,
                        selected=[json.dumps(["layer=2"] * 5) if f == "llm" else None for f in keys["feature_set"]])
    return units.reset_index(drop=True)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("omega_report")
    results = synthetic_results()
    results.to_parquet(folder / "results.parquet")
    _units(results).to_parquet(folder / "units.parquet")
    manifest = {"study": "synthetic", "study_hash": "0" * 16, "packages": {}, "n_units": 0,
                "statistics": {"seed": 0, "bootstrap": 200, "fdr_alpha": 0.05},
                "datasets": {d: f"{d} (synthetic): 10 samples x 10 neuroids, 5 subjects" for d in ("lost_ds",
                                                                                                      "neg_ds")}}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "study.yaml").write_text(yaml.safe_dump({"name": "synthetic", "question": QUESTION_TEXT}))
    build_report(folder)
    return folder


def _expected(dataset: str) -> tuple[float, float]:
    """The omega of the subjects' mean R²s and the mean of per-subject omegas, computed directly."""
    parts = np.array([_partition(i, dataset) for i in range(len(SUBJECTS))])
    ratio = omega(*(parts[:, [k]].mean(0) for k in range(3)))[0]
    return float(ratio), float(np.mean(omega(parts[:, 0], parts[:, 1], parts[:, 2])))


def test_expected_values_lie_outside_0_100():
    (lost, lost_subjects), (neg, neg_subjects) = _expected("lost_ds"), _expected("neg_ds")
    assert lost > 105 and lost_subjects > 105 and neg < -30 and neg_subjects < -30


def test_family_table_holds_both_omegas_as_measured_with_unclipped_cis(report):
    family = pd.read_csv(report / "tables" / "family_comparison.csv").set_index("dataset")
    for dataset in ("lost_ds", "neg_ds"):
        ratio, subjects = _expected(dataset)
        row = family.loc[dataset]
        assert row["omega"] == pytest.approx(ratio) and row["omega_subject_mean"] == pytest.approx(subjects)
        assert row["omega_subjects"] == "5/5"
        low, high = (float(v) for v in row["omega_ci"].strip("[]").split(","))
        low_s, high_s = (float(v) for v in row["omega_subject_mean_ci"].strip("[]").split(","))
        if dataset == "lost_ds":  # every resample lost to the controls: the whole CI above 100 (clipped: [100, 100])
            assert 100 < low <= ratio <= high and 100 < low_s <= subjects <= high_s
        else:  # every resample's unique R² above the LLM's: the whole CI below 0 (clipped: [0, 0])
            assert low <= ratio <= high < 0 and low_s <= subjects <= high_s < 0


def _headline_cells(report: Path) -> dict[str, tuple[str, str]]:
    table = pd.read_csv(report / "tables" / "headline.csv").set_index("dataset")
    return {d: (table.loc[d, "Ω % [CI]"], table.loc[d, "Ω % per-subject mean [CI]"]) for d in table.index}


def test_headline_table_files_print_the_measured_omega_and_say_why_in_words(report):
    cells = _headline_cells(report)
    markdown = (report / "tables" / "headline.md").read_text()
    latex = (report / "tables" / "headline.tex").read_text()
    for dataset, words in (("lost_ds", LOST_SHORT), ("neg_ds", ABOVE_SHORT)):
        for cell, expected in zip(cells[dataset], _expected(dataset), strict=True):
            shown = float(cell.split()[0])
            assert shown == pytest.approx(expected, abs=0.05)
            assert shown not in (0.0, 100.0) and words in cell
            line = next(line for line in markdown.splitlines() if line.startswith(f"| {dataset} "))
            assert cell in line
            assert f"{expected:.1f}".replace("-", "$-$") in latex  # LaTeX sets a true minus sign
        assert re.search(r"\| (100\.0|0\.0|-0\.0)( |\|)", next(
            line for line in markdown.splitlines() if line.startswith(f"| {dataset} "))) is None
    assert "joint lost to controls" in latex and "unique $R^2$" in latex and "above the LLM's" in latex


class _Text(HTMLParser):
    """The text of a page, scripts left out."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.script = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.script = self.script or tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self.script = self.script and tag != "script"

    def handle_data(self, data: str) -> None:
        if not self.script:
            self.parts.append(data)


def _page_blocks(report: Path) -> list[str]:
    """The page's text pieces: each paragraph, list item, caption, heading or table cell on its own."""
    parser = _Text()
    parser.feed((report / "index.html").read_text())
    return [part.strip() for part in parser.parts if part.strip()]


def _page_text(report: Path) -> str:
    return " ".join(_page_blocks(report))


def test_page_states_the_measured_omegas_in_words(report):
    text = _page_text(report)
    lost, lost_subjects = _expected("lost_ds")
    neg, _ = _expected("neg_ds")
    lost_sentence = next(s for s in text.split("On lost_ds, ")[1:] if "omega" in s)
    assert f"{LOST_TO_CONTROLS} for m" in lost_sentence and f"omega {lost:.0f}%" in lost_sentence
    assert f"per-subject omegas is {lost_subjects:.0f}%" in lost_sentence
    neg_sentence = next(s for s in text.split("On neg_ds, ")[1:] if "omega" in s)
    assert f"{UNIQUE_ABOVE_LLM} for m" in neg_sentence and f"omega {neg:.0f}%" in neg_sentence
    assert "omega 100%" not in text and "omega 0%" not in text
    assert "ratio of means" in text and "mean of per-subject omegas" in text  # which omega the headline uses


def test_no_page_sentence_calls_the_best_vs_last_layer_difference_significant(report):
    shape = pd.read_csv(report / "tables" / "layer_shape.csv")
    assert (shape["p_descriptive"] < 0.05).all()  # a small p that a calibrated test would call significant
    assert not any("signif" in column for column in shape.columns)
    shape_tex = (report / "tables" / "layer_shape.tex").read_text()
    assert "$p$\\\\(descriptive)" in shape_tex or "$p$ (descriptive)" in shape_tex  # a header stacked or not
    sentences = [s for block in _page_blocks(report) for s in re.split(r"(?<=[.;:])\s+", block)
                 if re.search(r"\blayers?\b", s, re.I) and re.search(r"\b(best|last|intermediate)\b", s, re.I)]
    assert sentences and any("descriptive" in s for s in sentences)
    assert not [s for s in sentences if "significan" in s.lower()]


def test_the_page_asks_the_studys_own_question(report):
    page = (report / "index.html").read_text()
    assert "<h1>synthetic: Does the joint model lose?</h1>" in page and QUESTION_TEXT in page
    assert QUESTION not in page
    assert page_question({}, "default") == ("default: what trivial features explain of language models' brain "
                                            "scores", QUESTION)


def _audit(oasm_grouped: float, joint_grouped: float) -> pd.DataFrame:
    """Split-audit rows of one dataset: OASM alone and LLM + OASM under grouped and shuffled splits."""
    rows = []
    for scheme, shift in (("grouped", 0.0), ("shuffled", 0.1)):
        for subject in SUBJECTS:
            rows += _rows("d", subject, "-", "oasm", "t", {"r": 0.1, "r2": oasm_grouped + shift}, scheme=scheme)
            rows += _rows("d", subject, "m", "llm+oasm", "t", {"r": 0.3, "r2": joint_grouped + shift}, scheme=scheme)
    return split_audit_table(pd.DataFrame(rows))


def test_leakage_warning_reads_oasm_alone_not_the_joint_llm_plus_oasm_model():
    only_joint = _audit(oasm_grouped=-0.001, joint_grouped=0.036)
    assert leakage_warnings(only_joint) == []
    assert "no sign of it" in leakage_answers(only_joint)[0] and "-0.001" in leakage_answers(only_joint)[0]
    leaky = _audit(oasm_grouped=0.02, joint_grouped=0.036)
    warnings = leakage_warnings(leaky)
    assert len(warnings) == 1 and "R² = 0.020 > 0" in warnings[0]
    answers = leakage_answers(leaky)
    assert len(answers) == 1 and answers[0].startswith("On d, possibly") and "0.120" in answers[0]
