"""GloVe 6B 50-d as a control: its rows are the packaged file's rows, looked up with the stated case and punctuation
policy; a sentence is the mean of its words; out-of-vocabulary words are counted."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from lmbrain.data import load_dataset
from lmbrain.features.controls import control_features, control_info
from lmbrain.features.glove import embed_texts, glove_root, normalise


@pytest.fixture(scope="module")
def packaged():
    """The package's own files, read directly: word -> row, and the vectors."""
    root = glove_root()
    words = pd.read_parquet(os.path.join(root, "glove_6B_index.parquet"))["index"].tolist()
    return {w: i for i, w in enumerate(words)}, np.load(os.path.join(root, "glove_6B_50d_emb.npy"))


def test_word_vectors_are_the_packaged_rows_after_lower_casing_and_stripping(packaged):
    index, vectors = packaged
    assert vectors.shape == (400000, 50) and len(index) == 400000
    X, n_words, n_oov = embed_texts(["The", "Dog,", "“barking”", "qwzxvbnmq"])
    np.testing.assert_array_equal(X[0], vectors[index["the"]])
    np.testing.assert_array_equal(X[1], vectors[index["dog"]])
    np.testing.assert_array_equal(X[2], vectors[index["barking"]])
    np.testing.assert_array_equal(X[3], 0.0)
    assert (n_words, n_oov) == (4, 1) and normalise("  Hello!! ") == "hello"


def test_a_sentence_is_the_mean_of_its_known_words(packaged):
    index, vectors = packaged
    X, n_words, n_oov = embed_texts(["A dog, barking qwzxvbnmq loudly."])
    expected = vectors[[index[w] for w in ("a", "dog", "barking", "loudly")]].astype(np.float64).mean(0)
    np.testing.assert_allclose(X[0], expected, rtol=1e-12)
    assert (n_words, n_oov) == (5, 1)


def test_the_control_on_pereira2018_sentences_counts_its_oov_words(data_dir, packaged):
    ds = load_dataset("pereira2018_langnet")
    features = control_features(ds, "glove")
    assert features.matrix.shape == (len(ds.stimuli), 50) and features.standardize.all()
    first = ds.stimuli["text"].iloc[0]
    np.testing.assert_allclose(features.matrix[0], embed_texts([first])[0][0])
    assert "words out of vocabulary" in features.description
    assert control_info("glove").level == "sample"
    published = control_features(ds, "sentence_length+sentence_position+glove")  # Pereira et al.'s control set
    assert published.matrix.shape[1] == control_features(ds, "sentence_length+sentence_position").matrix.shape[1] + 50


def test_the_model_family_reads_the_packaged_rows_as_one_layer_without_context(packaged, tmp_path):
    """``glove-6b-50d`` as a model: one layer, each unit its own words (the same lookup as the control), whatever
    its context; words are the file's rows (float32), a sentence the mean of its known words."""
    from lmbrain.features.cache import get_features
    from lmbrain.features.models import model_shape

    index, vectors = packaged
    texts = ["Dog,", "barks", "A dog, barking qwzxvbnmq loudly."]
    X = get_features("glove-6b-50d", texts, [0, 0, 0], cache=tmp_path, progress=False)
    alone = get_features("glove-6b-50d", texts, [0, 1, 2], cache=tmp_path, progress=False)
    assert X.shape == (1, 3, 50) and X.dtype == np.float32
    np.testing.assert_array_equal(X, alone)  # no context: the context ids change nothing
    np.testing.assert_array_equal(X[0, 0], vectors[index["dog"]])
    np.testing.assert_array_equal(X[0, 1], vectors[index["barks"]])
    expected = vectors[[index[w] for w in ("a", "dog", "barking", "loudly")]].astype(np.float64).mean(0)
    np.testing.assert_allclose(X[0, 2], expected, rtol=1e-6)
    shape = model_shape("glove-6b-50d")
    assert (shape.n_layers, shape.hidden_size, shape.kind) == (1, 50, "static")


def test_untrained_glove_is_a_seeded_random_table_with_the_tables_moments(packaged, tmp_path):
    from lmbrain.features.cache import get_features
    from lmbrain.features.static import random_like

    index, vectors = packaged
    table = random_like(vectors, 3)
    np.testing.assert_allclose(table.mean(0), vectors.mean(0), atol=0.01)
    np.testing.assert_allclose(table.std(0), vectors.std(0), rtol=0.01)
    words = ["dog", "cat", "the"]
    X = get_features("glove-6b-50d:untrained-3", words, [0, 0, 0], cache=tmp_path, progress=False)
    np.testing.assert_array_equal(X[0], table[[index[w] for w in words]])
    other = get_features("glove-6b-50d", words, [0, 0, 0], untrained_seed=4, cache=tmp_path, progress=False)
    assert not np.allclose(X, other)


def test_the_model_cannot_be_loaded_as_a_network_and_says_so():
    from lmbrain.errors import ModelUnavailableError
    from lmbrain.features.models import load_model

    with pytest.raises(ModelUnavailableError, match="static embedding"):
        load_model("glove-6b-50d")


def test_a_studys_trust_panel_counts_the_models_oov_words(data_dir):
    """The manifest's context policy of a static model names its out-of-vocabulary words on that dataset."""
    from lmbrain.study.context import StudyContext
    from lmbrain.study.runner import context_policies
    from lmbrain.study.schema import Study

    study = Study.model_validate({"name": "g", "datasets": [{"name": "pereira2018_langnet",
                                                            "controls": ["sentence_length"]}],
                                  "models": [{"name": "glove-6b-50d"}]})
    texts = load_dataset("pereira2018_langnet").stimuli["text"].astype(str).tolist()
    _, n_words, n_oov = embed_texts(texts)
    reason = context_policies(StudyContext(study))["pereira2018_langnet"]["glove-6b-50d"]["reason"]
    assert f"{n_oov:,} of {n_words:,} words out of vocabulary" in reason and "no context" in reason
