"""The headline numbers and sentences against plain pandas / numpy computations on a shipped study's results."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmbrain.report.headline import findings, headline_rows, headline_table
from lmbrain.report.tables import family_table, main_table
from lmbrain.results import load_results

REPORT = Path(__file__).resolve().parents[2] / "reports" / "default"


@pytest.fixture(scope="module")
def shipped():
    results, units, _manifest = load_results(REPORT)
    main = main_table(results, units)
    family = family_table(results, units, n_boot=200)
    return results, main, headline_rows(results, main, family, n_boot=200)


def test_headline_numbers_equal_direct_subject_means_and_an_exact_sign_flip(shipped):
    results, _main, rows = shipped
    row = rows[(rows["dataset"] == "fedorenko2016") & (rows["model"] == "smollm2-135m")].iloc[0]
    data = results[(results["dataset"] == "fedorenko2016") & (results["scheme"] == "grouped")
                   & (~results["per_layer"]) & (results["metric"] == "r2")]
    per_subject = data.groupby(["feature_set", "model", "subject"])["value"].mean()
    controls = per_subject.loc[("word_position", "-")]
    joint = per_subject.loc[("llm+word_position", "smollm2-135m")]
    assert row["r2_controls"] == pytest.approx(controls.mean())
    assert row["r2_joint"] == pytest.approx(joint.mean())
    assert row["unique_llm"] == pytest.approx(joint.mean() - controls.mean())
    # one-sided sign-flip p across the 5 subjects, by full enumeration
    unique = (joint - controls).to_numpy()
    null = np.array([np.mean(np.array(signs) * unique) for signs in itertools.product([-1, 1], repeat=len(unique))])
    assert row["p_unique"] == pytest.approx(np.mean(null >= unique.mean() - 1e-12))
    assert row["n_subjects"] == 5
    assert row["r2_controls_low"] < row["r2_controls"] < row["r2_controls_high"]


def test_omega_is_undefined_exactly_where_the_llm_r2_ci_reaches_zero(shipped):
    _, _, rows = shipped
    defined = rows["r2_llm_low"] > 0
    assert (np.isfinite(rows.loc[defined, "omega"])).all()
    assert rows.loc[~defined, "omega"].isna().all()


def test_sentences_state_each_trained_models_numbers(shipped):
    _, _, rows = shipped
    sentences = findings(rows)
    assert set(sentences) == set(rows["dataset"])
    for r in rows[~rows["untrained"]].itertuples():
        text = " ".join(sentences[r.dataset])
        assert r.base in text
        assert f"unique R² {r.unique_llm:.3f}" in text
        if np.isfinite(r.omega):
            assert f"{r.omega:.0f}%" in text
        else:
            assert "not above chance" in text


def test_several_untrained_seeds_are_one_row_with_mean_and_range():
    base = {"dataset": "d", "controls": "c", "r2_llm_low": 0.01, "r2_llm_high": 0.05, "r2_controls": 0.1,
            "r2_controls_low": 0.05, "r2_controls_high": 0.15, "r2_joint": 0.1, "unique_low": -0.01,
            "unique_high": 0.01, "p_test": "", "n_subjects": 5, "omega_low": 90.0, "omega_high": 100.0,
            "omega_ci": "[90.0, 100.0]", "omega_subject_mean_low": np.nan, "omega_subject_mean_high": np.nan,
            "omega_subject_mean_ci": "", "omega_subjects": "5/5", "r_ceiled": np.nan}
    rows = pd.DataFrame([
        {**base, "model": "m", "base": "m", "untrained": False, "r2_llm": 0.05, "unique_llm": 0.01,
         "p_unique": 0.03, "omega": 80.0, "omega_subject_mean": 78.0},
        *({**base, "model": f"m:untrained-{s}", "base": "m", "untrained": True, "r2_llm": v, "unique_llm": 0.0,
           "p_unique": p, "omega": o, "omega_subject_mean": o} for s, v, p, o in (
               (0, 0.01, 0.5, 100.0), (1, 0.03, 0.04, np.nan), (2, 0.02, 0.2, 98.0))),
    ])
    table = headline_table(rows).set_index("model")
    assert list(table.index) == ["m", "m untrained (3 seeds)"]
    seeds = table.loc["m untrained (3 seeds)"]
    assert seeds["R² LLM [CI]"] == "0.020 {0.010, 0.030}"
    assert seeds["Ω % [CI]"] == "99.0 {98.0, 100.0} 2/3 def."
    assert seeds["p (unique)"] == "1/3 seeds ≤ 0.05"
