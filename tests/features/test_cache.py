"""The feature cache: cached equals fresh, warm runs never load a model, corruption is rebuilt."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import PASSAGE, smollm2_group

import lmbrain.features.cache as cache_module
from lmbrain.features import FeatureCache, FeatureError, extract_features, get_features

TEXTS = [*PASSAGE, "A second context.", "It has two sentences."]
IDS = ["p1", "p1", "p1", "p2", "p2"]


@pytest.fixture
def store(tmp_path):
    return FeatureCache(tmp_path / "features")


def _no_model(*_args, **_kwargs):
    raise AssertionError("the model was loaded on a warm run")


def test_cached_and_fresh_extraction_are_identical(store, tiny):
    fresh = extract_features(tiny, TEXTS, IDS, progress=False)
    cold = get_features("gpt2-tiny", TEXTS, IDS, cache=store, progress=False)
    warm = get_features("gpt2-tiny", TEXTS, IDS, cache=store, progress=False)
    np.testing.assert_array_equal(cold, fresh)
    np.testing.assert_array_equal(warm, fresh)
    assert len(store.keys()) == 1


def test_warm_run_never_loads_the_model(store, monkeypatch):
    first = get_features("minilm-l6", TEXTS, IDS, cache=store, progress=False)
    monkeypatch.setattr(cache_module, "load_model", _no_model)
    again = get_features("minilm-l6", TEXTS, IDS, cache=store, progress=False, layers=[0, 0.5, 1.0])
    np.testing.assert_array_equal(again, first[[0, 3, 6]])


@smollm2_group
def test_warm_run_of_smollm2_and_its_untrained_variant(store, monkeypatch):
    a = get_features("smollm2-135m", PASSAGE, [0, 0, 0], cache=store, progress=False)
    u = get_features("smollm2-135m", PASSAGE, [0, 0, 0], untrained_seed=1, cache=store, progress=False)
    assert a.shape == u.shape == (31, 3, 576) and np.abs(a - u).max() > 1
    monkeypatch.setattr(cache_module, "load_model", _no_model)
    np.testing.assert_array_equal(get_features("smollm2-135m", PASSAGE, [0, 0, 0], cache=store), a)
    np.testing.assert_array_equal(
        get_features("smollm2-135m:untrained-1", PASSAGE, [0, 0, 0], cache=store), u
    )


@pytest.mark.parametrize("damage", ["flip", "truncate", "delete_layer", "manifest"])
def test_corrupted_entry_is_detected_and_rebuilt(store, tiny, damage):
    good = get_features(tiny, TEXTS, IDS, cache=store, progress=False)
    [key] = store.keys()
    folder = store.entry_dir(key)
    layer = folder / "layer_001.npy"
    if damage == "flip":
        data = bytearray(layer.read_bytes())
        data[-3] ^= 0x40
        layer.write_bytes(bytes(data))
    elif damage == "truncate":
        layer.write_bytes(layer.read_bytes()[:-8])
    elif damage == "delete_layer":
        layer.unlink()
    else:
        (folder / "manifest.json").write_text("{not json")
    with pytest.warns(RuntimeWarning, match="corrupted"):
        rebuilt = get_features(tiny, TEXTS, IDS, cache=store, progress=False)
    np.testing.assert_array_equal(rebuilt, good)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(get_features(tiny, TEXTS, IDS, cache=store, progress=False), good)


def test_key_covers_what_changes_features_and_ignores_what_does_not(store, tiny):
    base = dict(cache=store, progress=False)
    get_features(tiny, TEXTS, IDS, **base)
    # the same stimuli, spaced and labelled differently: shared entry (no new key)
    spaced = [f"  {t}  " for t in TEXTS]
    get_features(tiny, spaced, ["A", "A", "A", "B", "B"], **base)
    get_features(tiny, TEXTS, IDS, context="passage-so-far", **base)  # what "auto" means for a causal model
    assert len(store.keys()) == 1
    get_features(tiny, TEXTS, IDS, pooling="mean", **base)
    get_features(tiny, TEXTS, IDS, context="isolated", **base)
    get_features(tiny, TEXTS[::-1], IDS[::-1], **base)
    get_features(tiny, TEXTS, IDS, positions=[2, 1, 0, 0, 1], **base)
    get_features(tiny, TEXTS, IDS, max_length=32, stride=16, **base)
    get_features("gpt2-tiny:untrained-1", TEXTS, IDS, **base)
    assert len(store.keys()) == 7  # one entry per distinct computation


def test_entries_are_published_atomically(store, tiny, monkeypatch):
    def crash(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(cache_module, "run_extraction", crash)
    with pytest.raises(KeyboardInterrupt):
        get_features(tiny, TEXTS, IDS, cache=store, progress=False)
    assert store.keys() == []
    assert not any((store.root / ".staging").iterdir()), "a failed extraction leaves no partial entry"


def test_concurrent_writers_of_one_key_keep_one_valid_entry(store, tiny):
    values = extract_features(tiny, TEXTS, IDS, progress=False)
    spec = {"test": "race"}
    key = store.key(spec)
    writers = [store.writer(key, spec, 3, len(TEXTS), 64) for _ in range(2)]
    for w in writers:
        w(np.arange(len(TEXTS)), values)
    writers[0].commit()
    writers[1].commit()  # loses the race: its staged copy is dropped
    np.testing.assert_array_equal(store.read(key), values)
    assert not any((store.root / ".staging").iterdir())


def test_bad_layer_spec_is_an_error_not_a_miss(store, tiny):
    get_features(tiny, TEXTS, IDS, cache=store, progress=False)
    with pytest.raises(FeatureError):
        get_features(tiny, TEXTS, IDS, cache=store, layers=[7], progress=False)


def test_layer_files_are_plain_npy_readable_without_pickle(store, tiny):
    values = get_features(tiny, TEXTS, IDS, cache=store, progress=False)
    [key] = store.keys()
    layer = np.load(store.entry_dir(key) / "layer_002.npy", allow_pickle=False)
    np.testing.assert_array_equal(layer, values[2])
