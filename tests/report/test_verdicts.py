"""The first screen's claims: Benjamini-Hochberg over the headline's trained tests (checked against statsmodels),
verdict lines of at most 25 words, and "significant" only where the corrected q allows it."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.multitest import multipletests

from lmbrain.report.headline import HEADLINE_COLUMNS, findings, headline_rows, with_corrected_claims
from lmbrain.report.tables import family_table, main_table
from lmbrain.report.verdicts import MAX_WORDS, model_identity, short_controls, verdict_kind, verdicts
from lmbrain.results import load_results

REPORT = Path(__file__).resolve().parents[2] / "reports" / "default"


@pytest.fixture(scope="module")
def rows():
    results, units, _manifest = load_results(REPORT)
    main = main_table(results, units)
    return headline_rows(results, main, family_table(results, units, n_boot=200), n_boot=200)


def _row(**values):
    base = {c: np.nan for c in HEADLINE_COLUMNS}
    base.update(dataset="d", controls="word_rate+sound_power", model="m", base="m", untrained=False, n_subjects=10,
                r2_llm=0.05, r2_llm_low=0.02, r2_llm_high=0.08, omega=80.0, unique_llm=0.01, unique_low=0.0,
                unique_high=0.02, r2_controls=0.04, r2_joint=0.05, p_test="sign flip", omega_ci="[70, 90]",
                omega_subject_mean=80.0, omega_subjects="10/10")
    base.update(values)
    return base


def test_q_values_are_statsmodels_bh_over_the_trained_tests_only():
    frame = pd.DataFrame([_row(dataset=f"d{i}", p_unique=p) for i, p in enumerate([0.001, 0.02, 0.04, 0.3])]
                         + [_row(dataset="d9", untrained=True, model="m:untrained-0", p_unique=0.0001)])
    out = with_corrected_claims(frame)
    expected = multipletests([0.001, 0.02, 0.04, 0.3], method="fdr_bh")[1]
    np.testing.assert_allclose(out["q_unique"].to_numpy()[:4], expected)
    assert np.isnan(out["q_unique"].iloc[4])  # untrained seeds are baselines, not claims
    kinds = [verdict_kind(r, 0.05) for r in out.itertuples(index=False)][:4]
    assert kinds == ["adds", "adds", "none", "none"]  # 0.04 -> q 0.053: not significant after correction


def test_an_untested_unique_r2_is_marked_as_such_not_as_nothing_added():
    """One target without sign-flip resamples has no p: its line says 'not tested' under its own mark, never ✘."""
    frame = with_corrected_claims(pd.DataFrame([_row(dataset="d0", p_unique=0.01),
                                                _row(dataset="d1", p_unique=np.nan, n_subjects=1)]))
    assert [verdict_kind(r, 0.05) for r in frame.itertuples(index=False)] == ["adds", "untested"]
    lines = verdicts(frame, 0.05)
    assert lines[0].startswith("✔") and lines[1].startswith("?")
    assert "not tested" in lines[1] and "nothing" not in lines[1]


def test_shipped_report_claims_follow_the_corrected_q(rows):
    trained = rows[~rows["untrained"]]
    expected = multipletests(trained["p_unique"].to_numpy(float), method="fdr_bh")[1]
    np.testing.assert_allclose(trained["q_unique"].to_numpy(float), expected)
    lines = verdicts(rows, 0.05)
    assert len(lines) == len(trained)
    sentences = findings(rows, 0.05)
    for line, r in zip(lines, trained.sort_values(["dataset", "controls", "base"]).itertuples(index=False),
                       strict=True):
        assert len(line.split()) <= MAX_WORDS, line
        assert r.dataset in line and r.base in line and short_controls(r.controls) in line
        assert line.startswith("✔") == (np.isfinite(r.q_unique) and r.q_unique <= 0.05 and np.isfinite(r.omega))
        text = " ".join(sentences[r.dataset])
        clause = re.search(rf"{re.escape(r.base)}[^;]*;[^;]*?(adds (?:significant|no significant) variance)", text)
        if clause is not None and "significant variance beyond" in clause.group(0):
            assert r.q_unique <= 0.05
    # every "significant" claim on the page names what it generalises over
    for sentence in (s for ss in sentences.values() for s in ss):
        for claim in re.findall(r"adds significant variance beyond the controls \(([^)]*)\)", sentence):
            assert "BH q" in claim and ("subjects" in claim or "passages" in claim)


def test_identity_lines_name_training_and_storage():
    models = {"a": {"family": "gemma3", "size": "270M parameters (170M ...), 18 layers", "training":
                    "base pretraining: ...", "quantisation": "4-bit GGUF Q4_K_M (Q4_K ...), de-quantised"},
              "a:untrained-0": {"family": "gemma3"},
              "g": {"family": "glove", "size": "20M parameters", "training": "static co-occurrence embedding: x",
                    "quantisation": "none (float32 vectors)"}}
    assert model_identity(models) == ["a: gemma3, 270M parameters, base pretraining, 4-bit GGUF Q4_K_M",
                                      "g: glove, 20M parameters, static co-occurrence embedding, float32"]


def test_every_untrained_beats_trained_case_gets_one_line_with_its_cause():
    from lmbrain.report.verdicts import untrained_beats_trained

    frame = pd.DataFrame([
        _row(dataset="fed", base="minilm-l6", model="minilm-l6", r2_llm=0.030),
        _row(dataset="fed", base="minilm-l6", model="minilm-l6:untrained-0", untrained=True, r2_llm=0.031),
        _row(dataset="fed", base="minilm-l6", model="minilm-l6:untrained-1", untrained=True, r2_llm=0.033),
        _row(dataset="fed", base="smollm2-135m", model="smollm2-135m", r2_llm=0.040),
        _row(dataset="fed", base="smollm2-135m", model="smollm2-135m:untrained-0", untrained=True, r2_llm=0.010),
    ])
    lines = untrained_beats_trained(frame, {"minilm-l6": "bidirectional", "smollm2-135m": "causal"})
    assert lines == ["Untrained minilm-l6 scores at least as well as trained on fed (R² 0.032 vs 0.030, mean of 2 "
                     "seeds): likely because untrained BERT-type encoders keep absolute position embeddings, which "
                     "carry word position."]
