"""Every real dataset runs through the study pipeline (features -> grouped CV ridge -> tidy scores).

A tiny config-built GPT-2 (untrained, smollm2 tokenizer) keeps extraction cheap; the controls are the
dataset's own. Time series (Brennan2016) go through resampling, high-pass, FIR delays and contiguous blocks.
"""

from __future__ import annotations

import numpy as np
import pytest

from lmbrain.results import SENS_LIMIT, SENS_P, SENS_RECOVERED, SENS_UNIQUE, sensitivity_metric
from lmbrain.study.compute import compute_unit
from lmbrain.study.context import StudyContext
from lmbrain.study.plan import enumerate_units
from lmbrain.study.schema import Study

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("real_pipeline")]

CASES = {
    "fedorenko2016": ("word_position", None),
    "pereira2018_langnet": ("sentence_length+sentence_position", None),
    "frank2015_eeg": ("word_frequency+word_length", ["1", "2"]),
    "frank2015_et": ("word_length+word_position", ["1", "2"]),
    "naturalstories": ("word_length+word_frequency", None),
    "brennan2016_alice": ("word_rate+sound_power", ["s18", "s22"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_real_dataset_runs_through_the_pipeline(name, data_dir):
    control, subjects = CASES[name]
    study = Study.model_validate({
        "name": f"pipeline-{name}",
        "datasets": [{"name": name, "controls": [control], "subjects": subjects or "all"}],
        "models": [{"name": "gpt2-tiny"}],
        "cv": {"n_splits": 3, "inner_splits": 3},
        "estimator": {"layer_curves": False, "alphas": [1.0, 100.0, 10000.0]},
        "statistics": {"ceiling": False},
    })
    context = StudyContext(study)
    units = enumerate_units(context)
    assert {u.feature_set for u in units} == {"llm", control, f"llm+{control}"}
    for unit in units:
        table, record = compute_unit(context, unit)
        data = context.targets(unit.dataset, unit.subject, unit.scheme)
        # grouped CV: no group (sentence, passage, story, run block) on both sides of any split
        for train, test in data.cv.split(np.zeros((len(data.groups), 1)), None, data.groups):
            if not data.dataset.is_timeseries:
                assert not set(data.groups[train]) & set(data.groups[test])
            else:
                assert np.abs(train[:, None] - test[None, :]).min() > study.timeseries.gap
        # omega (and its CI) is not defined where the LLM is not above chance; everything else is a number
        values = table.loc[~table["metric"].str.startswith("omega"), "value"].to_numpy()
        assert np.isfinite(values).all(), unit.describe()
        intervals = {"r_ci_low", "r_ci_high", "r2_ci_low", "r2_ci_high"}
        if unit.feature_set == f"llm+{control}":  # joint: CIs of the unique LLM R² and of omega, sensitivity
            tested = (SENS_UNIQUE, SENS_P) if study.statistics.permutations else (SENS_UNIQUE,)  # p needs flips
            sens = {sensitivity_metric(kind, u, r) for u in study.statistics.sensitivity
                    for r in range(study.statistics.sensitivity_replications) for kind in tested}
            sens |= {sensitivity_metric(kind, u) for u in study.statistics.sensitivity
                     for kind in (SENS_RECOVERED, SENS_LIMIT)}
            assert set(table["metric"]) == {"r", "r2", "unique_llm_ci_low", "unique_llm_ci_high", "omega_ci_low",
                                            "omega_ci_high", *sens}
            recovered = table[table["metric"] == sensitivity_metric(SENS_RECOVERED, 0.05)]["value"]
            assert recovered.notna().all()
            wide = table.pivot_table(index="neuroid_id", columns="metric", values="value")
            assert (wide["unique_llm_ci_low"] <= wide["unique_llm_ci_high"]).all()
        else:  # the LLM alone and the controls alone get bootstrap CIs over the split unit's groups
            assert set(table["metric"]) == {"r", "r2", *intervals}
            wide = table.pivot_table(index="neuroid_id", columns="metric", values="value")
            assert (wide["r_ci_low"] <= wide["r_ci_high"]).all() and (wide["r2_ci_low"] <= wide["r2_ci_high"]).all()
        assert table["neuroid_id"].nunique() == record["n_targets"] > 0
        if unit.feature_set == "llm":
            assert all(len(v) == 3 for v in record["selected"].values())
