import numpy as np
import pandas as pd
import pytest
import xarray as xr

from lmbrain.data.dataset import Dataset
from lmbrain.encoding import GroupedKFold, RidgeCV, ShuffledSplit, cross_validate, cross_validate_select
from lmbrain.errors import LmbrainError
from lmbrain.features import controls
from lmbrain.features.controls import (
    OASM_SIGMAS,
    ControlFeatures,
    control_features,
    control_info,
    list_controls,
    oasm_matrix,
)


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


# -- registry metadata ------------------------------------------------------------------------------------

# name: (level, delayed, subject_specific, standardize, candidates). Every registered control must be listed.
EXPECTED_INFO = {
    "word_position": ("word", True, False, False, False),
    "word_position_ramp": ("word", True, False, False, False),
    "sentence_position": ("sentence", True, False, False, False),
    "sentence_position_ramp": ("sentence", True, False, False, False),
    "sentence_length": ("sentence", True, False, True, False),
    "sentence_length_tokens": ("sentence", True, False, True, False),
    "word_length": ("word", True, False, True, False),
    "word_frequency": ("word", True, False, True, False),
    "surprisal": ("word", True, False, True, False),
    "entropy": ("word", True, False, True, False),
    "passage_identity": ("sentence", True, False, False, False),
    "oasm": ("sample", False, False, False, True),
    "random": ("sample", False, False, True, False),
    "glove": ("sample", True, False, True, False),
    "word_rate": ("scan", True, False, True, False),
    "sound_power": ("scan", False, True, True, False),
    "motion": ("scan", False, True, True, False),
}


def test_every_registered_control_has_the_expected_metadata():
    assert set(controls.REGISTRY) == set(EXPECTED_INFO), "a control was added or removed: decide its metadata here"
    for name, expected in EXPECTED_INFO.items():
        info = control_info(name)
        assert info.name == name and callable(info.fn)
        got = (info.level, info.delayed, info.subject_specific, info.standardize, info.candidates)
        assert got == expected, name
    assert control_info("word_rate").delayed and not control_info("sound_power").delayed
    # only the controls a language model computes name the kind of model they need
    assert {n for n, i in controls.REGISTRY.items() if i.model_kind} == {"surprisal", "entropy"}
    assert control_info("surprisal").model_kind == "causal"
    assert not any(control_info(n).standardize for n in ("word_position", "sentence_position", "passage_identity",
                                                          "oasm"))


def test_the_registry_is_the_one_view():
    assert {n for n, i in controls.REGISTRY.items() if i.subject_specific} == {"sound_power", "motion"}
    assert list_controls() == {n: i.description for n, i in controls.REGISTRY.items()}
    with pytest.raises(LmbrainError, match=r"unknown control 'bogus'; known: \['entropy'"):
        control_info("bogus")
    with pytest.raises(AttributeError):
        control_info("oasm").standardize = True  # frozen


def test_registering_a_control_adds_it_to_the_registry(monkeypatch):
    controls.REGISTRY.names()  # the built-in modules registered first: restoring the copy must not lose them
    monkeypatch.setattr(controls.REGISTRY, "_entries", dict(controls.REGISTRY._entries))

    @controls.register_control("toy_nuisance", "a toy", level="scan", delayed=False, standardize=True,
                               subject_specific=True)
    def toy(dataset, subject=None):
        return ControlFeatures("toy_nuisance", {"toy_nuisance": np.zeros((2, 3))}, "a toy")

    assert controls.control_info("toy_nuisance").fn is toy
    assert controls.REGISTRY.get("toy_nuisance").subject_specific and "toy_nuisance" in controls.REGISTRY
    assert controls.list_controls()["toy_nuisance"] == "a toy"
    with pytest.raises(LmbrainError, match="unknown level"):
        controls.register_control("bad", "", level="token", delayed=True, standardize=True)


def test_standardize_flags_are_per_column_and_concatenated_in_combinations():
    ds = word_dataset()
    wp = control_features(ds, "word_position")
    np.testing.assert_array_equal(wp.standardize, np.zeros(6, bool))
    both = control_features(ds, "word_position+word_length+sentence_length")
    assert both.standardize.dtype == bool and both.standardize.shape == (both.matrix.shape[1],)
    np.testing.assert_array_equal(both.standardize, [False] * 6 + [True] + [True, True])
    flipped = control_features(ds, "sentence_length+passage_identity")
    np.testing.assert_array_equal(flipped.standardize, [True, True, False])
    oasm = control_features(ds, "oasm")
    assert oasm.standardize.shape == (9,) and not oasm.standardize.any()
    assert control_features(ds, "random", {"random": {"dim": 4}}).standardize.all()
    with pytest.raises(LmbrainError, match="standardize flags"):
        ControlFeatures("x", {"x": np.zeros((3, 2))}, standardize=np.array([True, False, True]))


# -- OASM: the leakage probe --------------------------------------------------------------------------------


def test_oasm_grid_reaches_near_identity_and_passage_wide_smoothing():
    sigmas = np.asarray(OASM_SIGMAS)
    assert (np.diff(sigmas) > 0).all() and sigmas.min() > 0
    neighbour = np.exp(-0.5 / sigmas**2)  # weight of a sample at distance 1
    assert neighbour.min() < 1e-3, "the smallest σ must be (nearly) an identity"
    assert ((neighbour > 0.1) & (neighbour < 0.9)).sum() >= 4, "the grid must resolve σ where neighbours matter"
    assert neighbour.max() > 0.99
    pos, blocks = np.arange(8), np.zeros(8)
    near = oasm_matrix(pos, blocks, sigmas.min())
    np.testing.assert_allclose(near, np.eye(8), atol=1e-3)
    ds = word_dataset()
    assert list(control_features(ds, "oasm").candidates) == [f"sigma={s:g}" for s in OASM_SIGMAS]


def ar1_dataset(n_passages: int = 40, size: int = 8, rho: float = 0.8, n_targets: int = 10) -> Dataset:
    """Pure AR(1) noise within passages (independent across passages): nothing but autocorrelation to learn."""
    rng = np.random.default_rng(0)
    e = rng.standard_normal((n_passages, size, n_targets))
    for t in range(1, size):
        e[:, t] = rho * e[:, t - 1] + np.sqrt(1 - rho**2) * e[:, t]
    n = n_passages * size
    passage = [f"p{p}" for p in np.arange(n) // size]
    stimuli = pd.DataFrame({"stimulus_id": [f"s{i}" for i in range(n)], "text": [f"Sentence {i}." for i in range(n)],
                            "context_id": passage, "passage_id": passage, "position": np.arange(n) % size})
    responses = xr.DataArray(
        e.reshape(n, n_targets), dims=("sample", "neuroid"),
        coords={"neuroid_id": ("neuroid", [f"n{i}" for i in range(n_targets)]),
                "subject": ("neuroid", ["1"] * n_targets)},
    )
    return Dataset("ar1", "fmri_sentences", "sentence", "passage_id", stimuli, responses)


def test_oasm_centred_only_leaks_under_shuffled_splits_and_predicts_nothing_under_grouped_splits():
    ds = ar1_dataset()
    Y, groups = ds.responses.values, ds.groups()
    oasm = control_features(ds, "oasm")
    alphas = np.logspace(-2, 7, 10)
    z = bool(oasm.standardize.any())  # False (centre only): the registry's choice for OASM
    shuffled = cross_validate_select(oasm.candidates, Y, groups, ShuffledSplit(5, random_state=0),
                                     RidgeCV(alphas=alphas, cv=ShuffledSplit(5, random_state=1), standardize=z))
    assert np.nanmean(shuffled.r_folds, 0).mean() > 0.5
    assert shuffled.r2.mean() > 0.4
    grouped = cross_validate_select(oasm.candidates, Y, groups, GroupedKFold(5),
                                    RidgeCV(alphas=alphas, cv=GroupedKFold(5), standardize=z))
    assert abs(grouped.r2.mean()) < 0.02
    for k in range(grouped.n_folds):  # no column of a test passage is non-zero in training: constant predictions
        assert grouped.predictions[grouped.folds == k].std(0).max() < 1e-8
    # z-scoring makes a test sample's own column an outlier: small σ then fails badly
    small = oasm.candidates["sigma=0.5"]
    scores = {z: cross_validate(RidgeCV(alphas=alphas, cv=ShuffledSplit(5, random_state=1), standardize=z), small, Y,
                                groups, ShuffledSplit(5, random_state=0)).r2.mean() for z in (False, True)}
    assert scores[False] > 0.3 and scores[True] < 0
