"""A study is validated before any work: every invalid field is named in one StudyError, and validating never
loads a model's weights, extracts features or writes to the feature cache."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import pytest

from lmbrain.errors import StudyError
from lmbrain.features.models import model_layer_count, model_shape
from lmbrain.study.schema import Study, load_study
from lmbrain.study.validate import study_problems, validate_study

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "data" / "fixtures"
TUCKUTE = str(FIXTURES / "specs" / "fixture_tuckute.yaml")  # 3 sentences (groups), subjects 848 and 853
BRENNAN = str(FIXTURES / "specs" / "fixture_brennan.yaml")  # a word-level time series, subjects s01-s03


def _refuse(*args, **kwargs):
    raise AssertionError("validation must not load a model or extract features")


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty feature cache and fixture datasets; loading a model or extracting features fails the test."""
    path = tmp_path / "cache"
    monkeypatch.setenv("LMBRAIN_CACHE_DIR", str(path))
    monkeypatch.setenv("LMBRAIN_DATA_DIR", str(FIXTURES))
    import lmbrain.features.cache as feature_cache
    import lmbrain.features.gguf_cache as gguf_cache
    import lmbrain.features.models as models

    # the study engine imports get_features from lmbrain.features.cache when it needs features (lazily)
    for module, name in [(models, "load_model"), (models, "load_tokenizer"), (models, "init_from_config"),
                         (feature_cache, "load_model"), (feature_cache, "get_features"),
                         (gguf_cache, "converted_gguf")]:
        monkeypatch.setattr(module, name, _refuse)
    return path


def _untouched(cache: Path) -> bool:
    return not cache.exists() or not any(cache.rglob("*"))


def _study(**changes) -> Study:
    """A valid study on the Tuckute fixture, with top-level changes (dicts replace whole sections)."""
    raw = {
        "name": "checked",
        "datasets": [{"name": TUCKUTE, "controls": ["sentence_length"]}],
        "models": [{"name": "gpt2-tiny", "untrained_seeds": [1]}],
        "features": {"layers": [0, -1, 0.5, 1.0]},
        "cv": {"n_splits": 3, "inner_splits": 2},
    }
    raw.update(changes)
    return Study.model_validate(raw)


def _dataset(**changes) -> list[dict]:
    return [{"name": TUCKUTE, "controls": ["sentence_length"], **changes}]


def test_a_valid_study_passes(cache):
    validate_study(_study(), executor="processes", n_jobs=2)
    assert _untouched(cache)


@pytest.mark.parametrize(("changes", "executor", "message"), [
    ({"models": [{"name": "gpt3"}]}, None,
     r"models\.0\.name: unknown model 'gpt3' \(known: .*smollm2-135m.*; or a local folder, a \.gguf file or a hub id"),
    ({"models": [{"name": "smollm2-135m"}], "features": {"layers": [0, 40]}}, None,
     r"features\.layers: layer 40 out of range for smollm2-135m \(31 layers: 0\.\.30\)"),
    ({"features": {"layers": [-4]}}, None,
     r"features\.layers: layer -4 out of range for gpt2-tiny \(3 layers: 0\.\.2\)"),
    ({"features": {"layers": [0.5, 1.5]}}, None, r"features\.layers: relative depth 1\.5 is outside \[0, 1\]"),
    ({"features": {"context": "sideways"}}, None, r"features\.context: unknown 'sideways'"),
    ({"cv": {"n_splits": 5, "inner_splits": 2}}, None,
     r"cv\.n_splits: 5 folds but dataset fixture_tuckute \(datasets\.0\) has only 3 groups \(split by stimulus_id\)"),
    ({"cv": {"n_splits": 3, "inner_splits": 3}}, None,
     r"cv\.inner_splits: 3 inner folds but a training fold of dataset fixture_tuckute \(datasets\.0\) "
     r"has only 2 groups"),
    ({}, "thread", r"executor: unknown 'thread'; choose one of \['sequential', 'processes', 'dask'\]"),
    ({"datasets": _dataset(controls=["word_position"])}, None,
     r"datasets\.0\.controls\.0: control 'word_position' describes words \(level 'word'\) but dataset "
     r"fixture_tuckute has sentence stimuli"),
    ({"datasets": _dataset(controls=["sentence_length", "word_rate+sentence_length"])}, None,
     r"datasets\.0\.controls\.1: control 'word_rate' is scan-level \(time series only\)"),
    ({"datasets": _dataset(controls=["sentence_length+oasm"])}, None,
     r"datasets\.0\.controls\.0: control set 'sentence_length\+oasm': a candidate-valued control"),
    ({"datasets": _dataset(controls=["random"], control_options={"random": {"dims": 8}})}, None,
     r"datasets\.0\.control_options\.random: unknown option\(s\) \['dims'\] for control 'random'; "
     r"accepted: \['dim', 'seed'\]"),
    ({"datasets": _dataset(controls=["random"]), "models": [{"name": "gpt2-tiny"}, {"name": "smollm2-135m"}]}, None,
     r"datasets\.0\.control_options\.random: control 'random' should match .* hidden sizes \[64, 576\]"),
    ({"datasets": _dataset(subjects=["848", "999"])}, None,
     r"datasets\.0\.subjects: unknown subject\(s\) \['999'\] in dataset fixture_tuckute "
     r"\(subjects: \['848', '853'\]\)"),
    ({"datasets": _dataset(rois=["lang_LH_netw", "lang_XX"])}, None,
     r"datasets\.0\.rois: no ROI \['lang_XX'\] in dataset fixture_tuckute "
     r"\(ROIs: \['lang_LH_netw', 'lang_RH_netw'\]\)"),
    ({"datasets": _dataset(options={"roi": "x"})}, None,
     r"datasets\.0\.options: .*unknown load_dataset options \['roi'\]"),
    ({"datasets": [{"name": "no_such_dataset"}]}, None, r"datasets\.0\.name: unknown dataset 'no_such_dataset'"),
    ({"datasets": [{"name": BRENNAN, "controls": ["word_rate+sound_power", "sentence_position"]}]}, None,
     r"datasets\.0\.controls\.1: control 'sentence_position' cannot be built on dataset fixture_brennan: "
     r".*needs a sentence_position column"),
])
def test_each_invalid_field_is_named_without_extraction(cache, changes, executor, message):
    study = _study(**changes)
    start = time.perf_counter()
    with pytest.raises(StudyError, match=message):
        validate_study(study, executor=executor)
    assert time.perf_counter() - start < 20
    assert _untouched(cache)


def test_every_problem_is_listed_at_once(cache):
    study = _study(models=[{"name": "gpt3"}, {"name": "gpt2-tiny"}], features={"layers": [7]},
                   datasets=_dataset(controls=["word_length"], subjects=["1"]), cv={"n_splits": 4, "inner_splits": 2})
    problems = study_problems(study, executor="threads", n_jobs=0)
    fields = [p.split(":")[0] for p in problems]
    assert fields == ["executor", "n_jobs", "models.0.name", "features.layers", "datasets.0.subjects",
                      "datasets.0.controls.0", "cv.n_splits"]
    with pytest.raises(StudyError, match=r"study 'checked' is invalid \(7 problem\(s\)\): executor: .*; n_jobs: "):
        validate_study(study, executor="threads", n_jobs=0)
    assert _untouched(cache)


def test_a_registered_model_missing_offline_is_the_error(cache, monkeypatch):
    from lmbrain.features import registry

    def gone():
        raise registry.unavailable("ghost", "the PyPI package ghost-llm is not installed")

    registry.list_models()  # the packaged models first
    entry = registry.RegisteredModel("ghost", _refuse, "llama", "LlamaForCausalLM", "causal", lambda: "x", shape=gone)
    monkeypatch.setitem(registry.MODELS._entries, "ghost", entry)
    with pytest.raises(StudyError, match=r"models\.0\.name: model 'ghost' is not available offline: .*ghost-llm"):
        validate_study(_study(models=[{"name": "ghost"}]))


def _gguf(path: Path, blocks: int, width: int) -> Path:
    """A GGUF v3 header (no tensors): a string array first (skipped), then the architecture's sizes."""
    def text(value: str) -> bytes:
        return struct.pack("<Q", len(value)) + value.encode()

    fields = [
        text("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2) + text("a") + text("bc"),
        text("general.architecture") + struct.pack("<I", 8) + text("llama"),
        text("llama.context_length") + struct.pack("<II", 4, 512),
        text("llama.block_count") + struct.pack("<II", 4, blocks),
        text("llama.embedding_length") + struct.pack("<II", 4, width),
    ]
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, len(fields)) + b"".join(fields))
    return path


def test_layer_counts_come_from_configs_and_gguf_headers(cache, tmp_path):
    assert model_layer_count("smollm2-135m") == 31 and model_layer_count("minilm-l6") == 7
    assert model_layer_count("gpt2-tiny:untrained-2") == 3
    gguf = _gguf(tmp_path / "tiny.gguf", blocks=4, width=32)
    shape = model_shape(str(gguf))
    assert (shape.n_layers, shape.hidden_size, shape.kind) == (5, 32, "causal")
    folder = tmp_path / "bert-config-only"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "num_hidden_layers": 2, "hidden_size": 16,
                                                    "architectures": ["BertModel"]}))
    shape = model_shape(str(folder))
    assert (shape.n_layers, shape.hidden_size, shape.kind, shape.has_weights) == (3, 16, "bidirectional", False)
    problems = study_problems(_study(models=[{"name": str(folder)}, {"name": str(gguf)}], features={"layers": [3]}))
    assert problems == [
        f"models.0.name: {str(folder)!r} has a config but no weights offline; only untrained variants can run "
        "(set trained: false)",
        f"features.layers: layer 3 out of range for {folder} (3 layers: 0..2)",
    ]
    untrained = _study(models=[{"name": str(folder), "trained": False, "untrained_seeds": [0]}])
    assert study_problems(untrained) == []
    assert _untouched(cache)


def test_the_default_study_validates_in_seconds(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LMBRAIN_CACHE_DIR", str(tmp_path / "cache"))
    import lmbrain.features.models as models

    monkeypatch.setattr(models, "load_model", _refuse)
    study = load_study(REPO / "analyses" / "default.yaml")
    start = time.perf_counter()
    validate_study(study, executor="sequential", n_jobs=1)
    assert time.perf_counter() - start < 30  # a few seconds (imports and the four datasets); generous when busy
    assert _untouched(tmp_path / "cache")


_HUB_SHAPES = """
import json, sys
from pathlib import Path
from lmbrain.features.models import model_shape
snapshot = Path(sys.argv[1]) / "models--lmbrain-test--cfg" / "snapshots" / ("0" * 40)
snapshot.mkdir(parents=True)
(snapshot.parents[1] / "refs").mkdir()
(snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
(snapshot / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 3, "n_embd": 8, "n_head": 2,
                                                  "architectures": ["GPT2LMHeadModel"]}))
before = model_shape("lmbrain-test/cfg")
(snapshot / "model.safetensors").write_bytes(b"")
after = model_shape("lmbrain-test/cfg")
print(before.n_layers, before.hidden_size, before.kind, before.has_weights, after.has_weights)
"""


def test_a_hub_id_is_sized_from_its_config_in_the_offline_cache(tmp_path):
    """HF_HUB_CACHE is read when huggingface_hub is imported: run in a subprocess."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", _HUB_SHAPES, str(tmp_path)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["4", "8", "causal", "False", "True"]


def test_right_context_on_incremental_data_is_refused(cache):
    """A bidirectional model with context 'full' on a time series (incremental) is refused; 'auto' is not."""
    minilm = {"models": [{"name": "minilm-l6"}], "datasets": [{"name": BRENNAN, "controls": ["word_rate"]}]}
    with pytest.raises(StudyError, match=r"features\.context: model minilm-l6 on dataset fixture_brennan .*"
                                         r"incremental.*use context 'auto' or 'passage-so-far'"):
        validate_study(_study(**minilm, features={"layers": [0, -1], "context": "full"}))
    assert not any("features.context" in p for p in study_problems(_study(**minilm, features={"layers": [0, -1]})))
    # a causal model reads left to right whatever is asked: 'full' is accepted (the same computation)
    causal = {**minilm, "models": [{"name": "gpt2-tiny", "untrained_seeds": [1]}]}
    assert not any("features.context" in p
                   for p in study_problems(_study(**causal, features={"layers": [0], "context": "full"})))
    assert _untouched(cache)


def test_surprisal_needs_a_causal_model(cache):
    study = _study(datasets=[{"name": BRENNAN, "controls": ["surprisal"],
                              "control_options": {"surprisal": {"model": "minilm-l6"}}}])
    with pytest.raises(StudyError, match=r"control 'surprisal': option model: minilm-l6 is bidirectional; "
                                         r"surprisal needs a causal model"):
        validate_study(study)
