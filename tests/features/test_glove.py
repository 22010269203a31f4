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
