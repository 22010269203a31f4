"""The trust panel: read from a shipped study's results, units and manifest; optional manifest keys shown only
when present."""

from __future__ import annotations

from pathlib import Path

import pytest

from lmbrain.report.tables import main_table
from lmbrain.report.trust import read_study, trust_panel
from lmbrain.results import load_results

REPORT = Path(__file__).resolve().parents[2] / "reports" / "split_audit"


@pytest.fixture(scope="module")
def shipped():
    results, units, manifest = load_results(REPORT)
    return results, units, manifest, main_table(results, units), read_study(REPORT)


def test_leakage_check_reports_oasm_under_both_splits(shipped):
    results, units, manifest, main, study = shipped
    panel = dict(trust_panel(results, units, manifest, main, study)["pereira2018_langnet"])
    oasm = results[(results["dataset"] == "pereira2018_langnet") & (results["feature_set"] == "oasm")
                   & (results["metric"] == "r2") & (~results["per_layer"])]
    grouped, shuffled = (oasm.loc[oasm["scheme"] == s, "value"].mean() for s in ("grouped", "shuffled"))
    assert f"OASM R² {grouped:.3f} grouped vs {shuffled:.3f} shuffled" in panel["leakage check"]
    assert "split by passage_id" in panel["data"] and "168 of them" in panel["cross-validation"]
    assert "no permutation tests" in panel["statistics"]  # the study ran none


def test_context_policies_appear_only_when_the_manifest_has_them(shipped):
    results, units, manifest, main, study = shipped
    manifest = {k: v for k, v in manifest.items() if k != "context_policies"}
    assert all("context policy" not in dict(items) for items in
               trust_panel(results, units, manifest, main, study).values())
    # the runner's format: {dataset: {model: {requested, policy, reason}}}, models with one policy grouped
    record = {"requested": "auto", "policy": "passage-so-far", "reason": "left context only"}
    runner = {**manifest, "context_policies": {"fedorenko2016": {"a": record, "b": record}}}
    panel = trust_panel(results, units, runner, main, study)
    assert dict(panel["fedorenko2016"])["context policy"] == "a, b: passage-so-far (left context only)"
    with_policies = {**manifest, "context_policies": {"minilm-l6": {"fedorenko2016": "full",
                                                                     "pereira2018_langnet": "left-only"}}}
    panel = trust_panel(results, units, with_policies, main, study)
    assert dict(panel["fedorenko2016"])["context policy"] == "minilm-l6: full"
    assert dict(panel["pereira2018_langnet"])["context policy"] == "minilm-l6: left-only"


def test_the_joint_model_of_each_dataset_is_named_when_the_manifest_records_it(shipped):
    from lmbrain.study.estimators import joint_description
    from lmbrain.study.schema import Study

    results, units, manifest, main, study = shipped
    bare = {k: v for k, v in manifest.items() if k != "joint_models"}
    assert not dict(trust_panel(results, units, bare, main, study)["brennan2016_alice"])["joint vs parts"].startswith(
        "joint model")
    # the runner's record: auto resolves per data kind (time series: stacking with one LLM penalty per subject)
    defaults = Study.model_validate({"name": "s", "datasets": [{"name": "any", "controls": ["word_rate"]}]})
    recorded = {"brennan2016_alice": joint_description(defaults, True),
                "fedorenko2016": joint_description(defaults, False)}
    assert recorded == {"brennan2016_alice": "joint model stacked_simplex (one LLM penalty per subject, one-SE rule)",
                        "fedorenko2016": "joint model hierarchical_pooled"}
    panel = trust_panel(results, units, {**bare, "joint_models": recorded}, main, study)
    for dataset, text in recorded.items():
        assert dict(panel[dataset])["joint vs parts"].startswith(text + "; ")
