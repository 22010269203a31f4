import numpy as np
import pandas as pd
import pytest
import xarray as xr

from lmbrain.data.dataset import Dataset
from lmbrain.errors import LmbrainError
from lmbrain.features.controls import control_features, list_controls, oasm_matrix


def word_dataset() -> Dataset:
    sentences = ["The cat sat.", "A dog, barking loudly, ran home!"]
    rows = []
    for s, sentence in enumerate(sentences):
        for w, word in enumerate(sentence.split()):
            rows.append({"stimulus_id": f"{s}-{w}", "text": word, "context_id": s, "position": w,
                         "sentence_id": s, "word_position": w, "passage_id": "p0"})
    stimuli = pd.DataFrame(rows)
    responses = xr.DataArray(
        np.zeros((len(stimuli), 2)), dims=("sample", "neuroid"),
        coords={"neuroid_id": ("neuroid", ["a", "b"]), "subject": ("neuroid", ["1", "1"])},
    )
    return Dataset("toy", "ecog_words", "word", "sentence_id", stimuli, responses)


def test_word_position_is_one_hot_of_the_position():
    ds = word_dataset()
    X = control_features(ds, "word_position").matrix
    assert X.shape == (9, 6)
    np.testing.assert_array_equal(X.sum(axis=1), 1)
    np.testing.assert_array_equal(X.argmax(axis=1), ds.stimuli["word_position"].to_numpy())


def test_sentence_length_counts_words_and_characters_of_the_word_sentence():
    X = control_features(word_dataset(), "sentence_length").matrix
    np.testing.assert_array_equal(X[:3, 0], 3)
    np.testing.assert_array_equal(X[3:, 0], 6)
    np.testing.assert_array_equal(X[:3, 1], len("The cat sat."))


def test_word_length_ignores_punctuation_and_frequency_is_zipf():
    ds = word_dataset()
    lengths = control_features(ds, "word_length").matrix[:, 0]
    assert list(lengths[3:]) == [1, 3, 7, 6, 3, 4]  # "dog," -> 3, "home!" -> 4
    zipf = control_features(ds, "word_frequency").matrix[:, 0]
    assert zipf[0] > zipf[5]  # "The" is far more frequent than "barking,"
    assert 0 < zipf.min() and zipf.max() < 8


def test_combination_concatenates_and_unknown_names_fail():
    ds = word_dataset()
    both = control_features(ds, "word_position+word_length")
    assert both.matrix.shape == (9, 7)
    with pytest.raises(LmbrainError, match="unknown control"):
        control_features(ds, "word_position+bogus")
    with pytest.raises(LmbrainError, match="cannot be combined"):
        control_features(ds, "oasm+word_length")
    assert "oasm" in list_controls()


def test_oasm_is_identity_at_zero_width_and_never_crosses_blocks():
    blocks = np.array(["a", "a", "a", "b", "b"])
    pos = np.arange(5)
    np.testing.assert_array_equal(oasm_matrix(pos, blocks, 0), np.eye(5))
    smooth = oasm_matrix(pos, blocks, 2.0)
    assert smooth[0, 1] > smooth[0, 2] > 0
    assert smooth[2, 3] == 0 and smooth[3, 4] > 0
    np.testing.assert_allclose(smooth, smooth.T)


def test_sentence_length_in_tokens_counts_the_tokenizer_output():
    from lmbrain.features.models import load_tokenizer

    ds = word_dataset()
    X = control_features(ds, "sentence_length_tokens").matrix[:, 0]
    tokenizer = load_tokenizer("smollm2-135m")
    expected = len(tokenizer("A dog, barking loudly, ran home!", add_special_tokens=False)["input_ids"])
    assert X[3] == expected and len(set(X[3:])) == 1
    assert X[0] < X[3]
