"""The one feature-set grammar: parsed once, labels round-trip, and every unit kind follows from it."""

from __future__ import annotations

import pytest

from lmbrain.errors import LmbrainError, StudyError
from lmbrain.results import CEILING, FeatureSet, layer_index, layer_label, model_label, parse_feature_set
from lmbrain.study.plan import Unit, unit_kind
from lmbrain.study.schema import Study


@pytest.mark.parametrize(("text", "llm", "controls", "kind"), [
    ("llm", True, (), "llm"),
    ("word_position", False, ("word_position",), "controls"),
    ("sentence_length+sentence_position", False, ("sentence_length", "sentence_position"), "controls"),
    ("llm+word_position", True, ("word_position",), "joint"),
    ("llm+word_rate+sound_power", True, ("word_rate", "sound_power"), "joint"),
])
def test_feature_sets_parse_into_their_parts_and_kinds(text, llm, controls, kind):
    features = FeatureSet.parse(text)
    assert (features.llm, features.controls) == (llm, controls)
    assert features.label == text and FeatureSet.parse(features.label) == features
    model = "m" if llm else None
    assert unit_kind(Unit("d", "*", model, None, text, "grouped")) == kind
    if features.controls:
        assert features.without_llm().label == "+".join(controls)
        assert features.without_llm().joint() == FeatureSet(True, controls)


def test_a_multi_part_control_set_is_never_a_joint_model():
    # the defect: splitting on the first '+' made sentence_length the "LLM" and fitted a banded joint model
    features = FeatureSet.parse("sentence_length+sentence_position")
    assert not features.llm and not features.is_joint and features.is_controls
    assert unit_kind(Unit("d", "*", None, None, features.label, "grouped")) == "controls"


@pytest.mark.parametrize("bad", ["", "+", "word_position+", "word_position+llm", "a+a", "llm+llm"])
def test_malformed_feature_sets_are_errors(bad):
    with pytest.raises(LmbrainError):
        FeatureSet.parse(bad)


def test_labels_of_models_layers_and_ceilings():
    assert model_label(None, None) == "-" and model_label("m", None) == "m" and model_label("m", 3) == "m:untrained-3"
    assert layer_index(layer_label(12)) == 12
    with pytest.raises(LmbrainError):
        layer_index("sigma=1")
    assert parse_feature_set(CEILING) is None
    assert unit_kind(Unit("d", "*", None, None, CEILING, "grouped")) == "ceiling"
    assert unit_kind(Unit("d", "*", "m", None, "llm", "grouped", per_layer=True)) == "layers"


def test_study_validation_parses_control_sets_once():
    study = Study.model_validate({"name": "x", "datasets": [
        {"name": "d", "controls": ["word_position", " sentence_length + sentence_position "]}]})
    entry = study.datasets[0]
    assert entry.controls == ["word_position", "sentence_length+sentence_position"]  # canonical labels
    assert entry.control_sets == [FeatureSet(False, ("word_position",)),
                                  FeatureSet(False, ("sentence_length", "sentence_position"))]
    for bad in (["llm+word_position"], ["word_position", "word_position"], ["word_position+word_position"]):
        with pytest.raises(ValueError):
            Study.model_validate({"name": "x", "datasets": [{"name": "d", "controls": bad}]})


def test_unknown_joint_estimator_is_a_validation_error(tmp_path):
    from lmbrain.study.schema import load_study

    path = tmp_path / "s.yaml"
    path.write_text("name: x\ndatasets: [{name: d}]\nestimator: {joint: bandedd}\n")
    with pytest.raises(StudyError, match=r"estimator\.joint.*bandedd"):
        load_study(path)
