"""End to end on the real Fedorenko (2016) ECoG data: runs, determinism, resume after SIGKILL, Dask, report."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmbrain.report.build import build_report
from lmbrain.study.runner import run_study
from lmbrain.study.schema import load_study

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e")]

MINILM_STUDY = """\
name: e2e-minilm
datasets:
  - name: fedorenko2016
    controls: [word_position]
models:
  - name: minilm-l6
    untrained_seeds: [0]
cv: {n_splits: 4, inner_splits: 3}
estimator: {layer_curves: true}
statistics: {bootstrap: 200, permutations: 99, permutation_method: predictions}
"""

CONTROLS_STUDY = """\
name: e2e-controls
datasets:
  - name: fedorenko2016
    controls: [word_position, word_length, word_frequency, sentence_length, oasm]
cv: {schemes: [grouped, shuffled], n_splits: 4, inner_splits: 3}
statistics: {bootstrap: 100, ceiling: false}
"""


def write_study(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def minilm_runs(tmp_path_factory, data_dir):
    """The same study run twice into two folders (the second reads features from the cache)."""
    tmp = tmp_path_factory.mktemp("e2e")
    study = load_study(write_study(tmp, MINILM_STUDY))
    first = run_study(study, tmp / "run1")
    build_report(first)
    second = run_study(study, tmp / "run2")
    build_report(second)
    return first, second


def test_minilm_on_fedorenko_scores_are_finite_and_word_position_explains_variance(minilm_runs):
    first, _ = minilm_runs
    results = pd.read_parquet(first / "results.parquet")
    main = results[~results["per_layer"] & (results["feature_set"] != "ceiling")]
    # every value is a number, but omega's CI where the LLM is not above chance (not defined)
    assert np.isfinite(main.loc[~main["metric"].str.startswith("omega"), "value"]).all()
    assert set(main["feature_set"]) == {"llm", "word_position", "llm+word_position"}
    assert main["neuroid_id"].nunique() == 97
    # every target of the joint model has a unique-variance p-value, on the permutation grid
    unique = main[main["metric"] == "p_unique"]
    assert set(unique["feature_set"]) == {"llm+word_position"}
    assert len(unique) == 97 * 2 and unique["value"].between(1 / 100, 1).all()
    assert np.allclose(unique["value"] * 100, np.round(unique["value"] * 100))
    # per-electrode bootstrap CIs over sentences bracket the observed scores
    llm = main[main["feature_set"] == "llm"].pivot_table(index=["model", "neuroid_id"], columns="metric",
                                                         values="value")
    assert (llm["r_ci_low"] <= llm["r_ci_high"]).all() and (llm["r2_ci_low"] <= llm["r2_ci_high"]).all()
    assert ((llm["r_ci_low"] <= llm["r"]) & (llm["r"] <= llm["r_ci_high"])).mean() > 0.9
    wp = main[(main["feature_set"] == "word_position") & (main["metric"] == "r2")]
    per_subject = wp.groupby("subject")["value"].mean()
    assert per_subject.mean() > 0, "word position alone should predict ECoG high-gamma under grouped CV"
    layers = results[results["per_layer"] & (results["metric"] == "r")]
    assert layers["layer"].nunique() == 7  # minilm-l6: embeddings + 6 layers
    ceiling = results[(results["feature_set"] == "ceiling") & (results["metric"] == "r")]
    assert len(ceiling) == 97 and ceiling["value"].between(0, 1).all()
    # no electrode's layer was chosen on its test data: every fold's choice is recorded per subject
    units = pd.read_parquet(first / "units.parquet")
    llm = units[(units["feature_set"] == "llm") & ~units["per_layer"]].iloc[0]
    import json

    chosen = json.loads(llm["selected"])
    assert set(chosen) == {"1", "2", "3", "4", "5"} and all(len(v) == 4 for v in chosen.values())
    # ECoG words are incremental: the bidirectional model read left context only, and the manifest says so
    manifest = json.loads((first / "manifest.json").read_text())
    for label in ("minilm-l6", "minilm-l6:untrained-0"):
        policy = manifest["context_policies"]["fedorenko2016"][label]
        assert policy["requested"] == "auto" and policy["policy"] == "passage-so-far"
        assert "left context only" in policy["reason"] and "bidirectional" in policy["reason"]
    assert manifest["models"]["minilm-l6"]["kind"] == "bidirectional"
    assert manifest["models"]["minilm-l6:untrained-0"]["training"].startswith("untrained")


def test_two_runs_give_identical_tables(minilm_runs):
    first, second = minilm_runs
    pd.testing.assert_frame_equal(
        pd.read_parquet(first / "results.parquet"), pd.read_parquet(second / "results.parquet")
    )
    assert (first / "tables" / "scores.csv").read_text() == (second / "tables" / "scores.csv").read_text()
    scores = pd.read_csv(first / "tables" / "scores.csv")
    assert set(scores["subject"].astype(str)) == {"1", "2", "3", "4", "5", "all"}


def test_report_regenerated_from_parquet_alone_is_identical_and_figures_are_written(minilm_runs, tmp_path):
    first, _ = minilm_runs
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("results.parquet", "units.parquet", "manifest.json"):
        (copy / name).write_bytes((first / name).read_bytes())
    build_report(copy)
    for table in (first / "tables").iterdir():
        assert (copy / "tables" / table.name).read_bytes() == table.read_bytes(), table.name
    figures = sorted((copy / "figures").glob("*"))
    assert {p.suffix for p in figures} == {".png", ".svg"}
    assert all(p.stat().st_size > 1000 for p in figures)
    assert "scores" in (copy / "index.html").read_text()


def test_model_comparison_table_matches_per_subject_means(minilm_runs):
    first, _ = minilm_runs
    results = pd.read_parquet(first / "results.parquet")
    table = pd.read_csv(first / "tables" / "model_comparisons.csv")
    assert set(table["metric"]) == {"r", "r2"} and len(table) == 2
    row = table[table["metric"] == "r"].iloc[0]
    llm = results[(results["feature_set"] == "llm") & ~results["per_layer"] & (results["metric"] == "r")]
    means = llm.groupby(["model", "subject"])["value"].mean().unstack("model")
    expected = (means[row["model_a"]] - means[row["model_b"]]).mean()
    assert row["mean_a_minus_b"] == pytest.approx(expected, rel=1e-9)
    assert row["n_subjects"] == 5 and 0 <= row["p_ttest"] <= 1 and np.isfinite(row["mixed_p"])
    family = pd.read_csv(first / "tables" / "family_comparison.csv")
    assert family["significant_unique"].between(0, 1).all()


@pytest.fixture(scope="module")
def controls_reference(tmp_path_factory, data_dir):
    """An uninterrupted sequential run of the controls study (grouped and shuffled splits)."""
    tmp = tmp_path_factory.mktemp("controls")
    study = write_study(tmp, CONTROLS_STUDY)
    return study, run_study(load_study(study), tmp / "reference")


def _run_cli(args: list[str], **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "lmbrain.cli", *args], env=env, **kwargs)


def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path, controls_reference):
    study, reference = controls_reference
    out = tmp_path / "killed"
    units_dir = out / "_work" / "units"
    proc = _run_cli(
        ["run", str(study), "--out", str(out), "--no-report"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 300
    while time.time() < deadline and len(list(units_dir.glob("*.json"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = len(list(units_dir.glob("*.json")))
    n_units = len(pd.read_parquet(reference / "units.parquet"))
    assert 3 <= done_before < n_units, "the kill should land mid-run"
    assert not (out / "results.parquet").exists()
    rerun = _run_cli(["run", str(study), "--out", str(out), "--no-report"])
    assert rerun.wait(timeout=600) == 0
    assert len(list(units_dir.glob("*.json"))) == n_units
    assert not list(units_dir.glob(".*.tmp")), "no temporary file may survive a completed run"
    pd.testing.assert_frame_equal(
        pd.read_parquet(out / "results.parquet"), pd.read_parquet(reference / "results.parquet")
    )
    import json

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["n_units_computed_this_run"] == n_units - done_before


def test_dask_local_cluster_equals_sequential(tmp_path, controls_reference):
    study, sequential = controls_reference
    dask = run_study(load_study(study), tmp_path / "dask", executor="dask", n_jobs=2)
    pd.testing.assert_frame_equal(
        pd.read_parquet(dask / "results.parquet"), pd.read_parquet(sequential / "results.parquet")
    )


def test_oasm_is_not_above_zero_under_grouped_splits_but_is_under_shuffled(controls_reference):
    _, out = controls_reference
    results = pd.read_parquet(out / "results.parquet")
    oasm = results[(results["feature_set"] == "oasm") & (results["metric"] == "r2")]
    grouped = oasm[oasm["scheme"] == "grouped"]["value"].mean()
    shuffled = oasm[oasm["scheme"] == "shuffled"]["value"].mean()
    assert grouped <= 0.01
    assert shuffled > grouped + 0.05  # not z-scored, OASM shows what shuffled splits leak
    r = results[(results["feature_set"] == "oasm") & (results["metric"] == "r")]
    assert abs(r[r["scheme"] == "grouped"]["value"].mean()) <= 0.02  # fold-mean r: no pooled-fold bias
    assert r[r["scheme"] == "shuffled"]["value"].mean() >= 0.2
