from pathlib import Path

import pytest

from lmbrain.errors import StudyError
from lmbrain.study.schema import load_study

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(text)
    return path


def test_shipped_studies_validate():
    names = sorted(p.name for p in (REPO / "analyses").glob("*.yaml"))
    assert "default.yaml" in names
    for path in (REPO / "analyses").glob("*.yaml"):
        study = load_study(path)
        assert study.datasets and study.models


def test_unknown_key_is_an_error_naming_the_field(tmp_path):
    text = "name: x\ndatasets: [{name: fedorenko2016, contrls: [word_position]}]\nmodels: [{name: m}]\n"
    path = write(tmp_path, text)
    with pytest.raises(StudyError, match=r"datasets\.0\.contrls"):
        load_study(path)


def test_bad_value_and_missing_field_are_errors(tmp_path):
    with pytest.raises(StudyError, match=r"cv\.schemes\.0"):
        text = "name: x\ndatasets: [{name: d}]\nmodels: [{name: m}]\ncv: {schemes: [random]}\n"
        load_study(write(tmp_path, text))
    with pytest.raises(StudyError, match="datasets"):
        load_study(write(tmp_path, "name: x\nmodels: [{name: m}]\n"))
    with pytest.raises(StudyError, match="does not exist"):
        load_study(tmp_path / "nope.yaml")
    with pytest.raises(StudyError, match="mapping"):
        load_study(write(tmp_path, "- a\n- b\n"))


def test_digest_ignores_formatting_but_not_content(tmp_path):
    a = load_study(write(tmp_path, "name: x\ndatasets: [{name: d}]\nmodels: [{name: m}]\n"))
    b = load_study(write(tmp_path, "models:\n  - name: m\nname: x\ndatasets:\n  - {name: d}\n"))
    c = load_study(write(tmp_path, "name: x\ndatasets: [{name: d}]\nmodels: [{name: m2}]\n"))
    assert a.digest() == b.digest() != c.digest()


def test_unknown_control_is_an_error_naming_it(tmp_path):
    text = "name: x\ndatasets: [{name: d, controls: [word_position+sentence_lenght]}]\nmodels: [{name: m}]\n"
    with pytest.raises(StudyError, match=r"datasets\.0\.controls.*sentence_lenght"):
        load_study(write(tmp_path, text))


def test_random_control_takes_the_llm_layer_dimension(tmp_path, data_dir):
    from lmbrain.study.context import StudyContext

    def control_options(study, entry, name):
        return StudyContext(study).control_options(entry.name, name)

    text = ("name: x\ndatasets: [{name: fedorenko2016, controls: [random]}]\n"
            "models: [{name: minilm-l6, untrained_seeds: [0]}]\n")
    study = load_study(write(tmp_path, text))
    assert control_options(study, study.datasets[0], "random") == {"dim": 384}
    assert control_options(study, study.datasets[0], "word_position") == {}
    mixed = load_study(write(tmp_path, text.replace("untrained_seeds: [0]}", "}, {name: gpt2-tiny}")))
    with pytest.raises(StudyError, match=r"hidden sizes \[\d+, 384\]"):
        control_options(mixed, mixed.datasets[0], "random")
    fixed = load_study(write(tmp_path, text.replace("controls: [random]", "controls: [random], "
                                                   "control_options: {random: {dim: 16, seed: 3}}")))
    assert control_options(fixed, fixed.datasets[0], "random") == {"dim": 16, "seed": 3}


@pytest.mark.parametrize("name", ["../../../../tmp/x", "a/b", ".hidden", "", "a b"])
def test_the_study_name_is_a_slug_not_a_path(tmp_path, name):
    with pytest.raises(StudyError, match=r"name: .*(not a plain name|empty)"):
        load_study(write(tmp_path, f"name: {name!r}\ndatasets: [{{name: d}}]\nmodels: [{{name: m}}]\n"))
    assert load_study(write(tmp_path, "name: my_study-2.v1\ndatasets: [{name: d}]\nmodels: [{name: m}]\n"))


BASE = "name: x\ndatasets: [{name: d, controls: [word_position]}]\nmodels: [{name: m}]\n"


@pytest.mark.parametrize(("extra", "field", "words"), [
    ("estimator: {alphas: [.inf]}", "estimator.alphas.0", "finite number"),
    ("estimator: {alphas: [.nan]}", "estimator.alphas.0", "finite number"),
    ("estimator: {alphas: [1.0, -1.0]}", "estimator.alphas.1", "greater than 0"),
    ("estimator: {alphas: []}", "estimator.alphas", "at least 1 item"),
    ("statistics: {seed: -5}", "statistics.seed", "greater than or equal to 0"),
    ("cv: {seed: -1}", "cv.seed", "greater than or equal to 0"),
    ("statistics: {permutations: 100001}", "statistics.permutations", "less than or equal to 100000"),
    ("statistics: {bootstrap: 1000000}", "statistics.bootstrap", "less than or equal to 100000"),
    ("cv: {n_splits: 101}", "cv.n_splits", "less than or equal to 100"),
    ("cv: {inner_splits: 1000}", "cv.inner_splits", "less than or equal to 100"),
    ("timeseries: {high_pass_s: .inf}", "timeseries.high_pass_s", "finite number"),
])
def test_out_of_range_values_are_one_line_naming_the_field(tmp_path, extra, field, words):
    with pytest.raises(StudyError) as raised:
        load_study(write(tmp_path, BASE + extra + "\n"))
    message = str(raised.value)
    assert f"{field}: " in message and words in message and "\n" not in message and "Value error" not in message
    limits = {"statistics: {permutations: 100000}", "statistics: {bootstrap: 100000}", "cv: {n_splits: 100}"}
    for ok in limits:
        assert load_study(write(tmp_path, BASE + ok + "\n"))


def test_a_study_with_nothing_to_fit_is_refused(tmp_path):
    with pytest.raises(StudyError, match=r"models: none, and datasets\.1 \(e\) list no controls"):
        load_study(write(tmp_path, "name: x\ndatasets: [{name: d, controls: [word_position]}, {name: e}]\n"))
    assert load_study(write(tmp_path, "name: x\ndatasets: [{name: d, controls: [word_position]}]\n"))
    assert load_study(write(tmp_path, "name: x\ndatasets: [{name: d}]\nmodels: [{name: m}]\n"))


def test_a_binary_study_file_is_one_line(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_bytes(b"name: x\n\xd0\xff\x00\x01 binary")
    with pytest.raises(StudyError, match=r"is not UTF-8 text \(byte 0xd0 at offset 8\)"):
        load_study(path)
