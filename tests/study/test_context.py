"""Unit inputs on real data: each control keeps its own FIR delays and standardisation flags; the time-series
transformer equals the plain chain of resampling, high-pass and delays."""

from __future__ import annotations

import numpy as np
import pytest

from lmbrain.encoding.timeseries import ScanFeatures, high_pass, lanczos_resample, make_delays
from lmbrain.results import FeatureSet
from lmbrain.study.context import StudyContext, scan_runs
from lmbrain.study.schema import Study

pytestmark = pytest.mark.xdist_group("real_inputs")


def _study(name: str, controls: list[str], subjects) -> Study:
    return Study.model_validate({"name": "inputs", "datasets": [{"name": name, "controls": controls,
                                                                  "subjects": subjects}]})


def test_each_control_of_a_time_series_set_keeps_its_own_delays(data_dir):
    study = _study("brennan2016_alice", ["word_rate+sound_power"], ["s18"])
    inputs = StudyContext(study)
    dataset = inputs.dataset("brennan2016_alice")
    both = inputs.controls("brennan2016_alice", FeatureSet.parse("word_rate+sound_power"), "s18")
    matrix = next(iter(both.candidates.values()))
    delays = tuple(study.timeseries.delays)
    runs = scan_runs(dataset)
    tr, cutoff, onset = float(dataset.tr), study.timeseries.high_pass_s, study.timeseries.onset_s
    # word rate: delayed (the defect: a set holding an undelayed control lost word rate's delays)
    from lmbrain.features.scan_controls import words_per_scan

    rate = make_delays(high_pass(words_per_scan(dataset)[:, None], tr, cutoff, runs, onset), delays, runs=runs)
    power = high_pass(dataset.nuisance["s18"][["sndpwr"]].to_numpy(float), tr, cutoff, runs, onset)
    assert matrix.shape == (len(dataset.samples), len(delays) + 1)
    np.testing.assert_allclose(matrix[:, : len(delays)], rate, atol=1e-12)
    np.testing.assert_allclose(matrix[:, len(delays):], power, atol=1e-12)
    assert both.standardize.shape == (len(delays) + 1,)


def test_one_hot_controls_are_only_centred_and_dense_ones_z_scored(data_dir):
    study = _study("pereira2018_langnet", ["sentence_length+sentence_position"], "all")
    inputs = StudyContext(study)
    both = inputs.controls("pereira2018_langnet", FeatureSet.parse("sentence_length+sentence_position"), "group")
    # two dense columns (words, characters), then one indicator per sentence position
    assert both.standardize[:2].all() and not both.standardize[2:].any()
    assert both.n_features == len(both.standardize)


def test_scan_features_equals_the_plain_chain(data_dir):
    study = _study("brennan2016_alice", ["word_rate"], ["s18"])
    inputs = StudyContext(study)
    dataset = inputs.dataset("brennan2016_alice")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(len(dataset.stimuli), 3))
    times = dataset.samples["time"].to_numpy(float)
    onsets = dataset.stimuli["onset"].to_numpy(float)
    runs = scan_runs(dataset)
    plain = make_delays(high_pass(lanczos_resample(X, onsets, times), float(dataset.tr), 128.0, runs), (1, 2),
                        runs=runs)
    transformer = ScanFeatures(times, float(dataset.tr), runs=runs, onsets=onsets, high_pass_s=128.0, delays=(1, 2))
    np.testing.assert_allclose(transformer.fit_transform(X), plain, atol=1e-12)
    # the study's transformer also regresses out the run-onset transients (timeseries.onset_s)
    ts = study.timeseries
    chain = make_delays(high_pass(lanczos_resample(X, onsets, times), float(dataset.tr), ts.high_pass_s, runs,
                                  ts.onset_s), tuple(ts.delays), runs=runs)
    np.testing.assert_allclose(inputs.sample_features(dataset, X), chain, atol=1e-12)
    assert np.abs(chain - make_delays(high_pass(lanczos_resample(X, onsets, times), float(dataset.tr), ts.high_pass_s,
                                                runs), tuple(ts.delays), runs=runs)).max() > 1e-3
    # scan-level rows are not resampled; no delays leaves the filtered scans
    scans = rng.normal(size=(len(times), 2))
    undelayed = ScanFeatures(times, float(dataset.tr), runs=runs, high_pass_s=128.0, delays=())
    np.testing.assert_allclose(undelayed.transform(scans), high_pass(scans, float(dataset.tr), 128.0, runs))
    with pytest.raises(ValueError, match="neither one per scan"):
        undelayed.transform(scans[:-1])


def test_the_random_control_is_as_wide_as_the_llm_features_without_loading_them(data_dir, monkeypatch):
    """``random`` takes the LLM layer's width from the model's config (no layer read); it equals the features'."""
    study = Study.model_validate({"name": "width", "datasets": [{"name": "fedorenko2016", "controls": ["random"]}],
                                  "models": [{"name": "gpt2-tiny"}]})
    context = StudyContext(study)
    read = []
    monkeypatch.setattr(context, "llm_layers", lambda *args: read.append(args) or {})
    width = context.control_options("fedorenko2016", "random")["dim"]
    assert read == []  # the width came from the model's config
    monkeypatch.undo()
    layers = StudyContext(study).llm_layers("fedorenko2016", "gpt2-tiny", None)
    assert {X.shape[1] for X in layers.values()} == {width}


def test_a_run_refuses_a_context_of_another_study(tmp_path, data_dir):
    from lmbrain.errors import UsageError
    from lmbrain.study.runner import run_study

    study = _study("fedorenko2016", ["word_position"], "all")
    other = Study.model_validate({**study.model_dump(), "name": "other", "cv": {"n_splits": 4}})
    with pytest.raises(UsageError, match="context given is of study 'other'"):
        run_study(study, tmp_path / "out", context=StudyContext(other))
    assert not (tmp_path / "out").exists()  # refused before anything is written
