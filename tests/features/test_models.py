"""Model registry, loading by name/folder/GGUF path, untrained variants and identities."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import PASSAGE, smollm2_group

from lmbrain.errors import ModelUnavailableError
from lmbrain.features import FeatureError, extract_features, list_models, load_model, model_ref


def test_registry_names_the_packaged_models():
    assert {"smollm2-135m", "minilm-l6", "gpt2-tiny"} <= set(list_models())


@smollm2_group
def test_packaged_model_metadata_matches_their_model_cards(smollm2, minilm):
    s, m = smollm2.info, minilm.info
    assert (s.family, s.kind, s.n_layers, s.hidden_size) == (
        "llama",
        "causal",
        31,
        576,
    )  # 30 blocks + embeddings
    assert (m.family, m.kind, m.n_layers, m.hidden_size) == ("bert", "bidirectional", 7, 384)
    assert 130e6 < s.n_params < 140e6 and 20e6 < m.n_params < 25e6
    assert m.max_length == 512 and s.max_length == 8192


def test_name_suffix_and_argument_give_the_same_untrained_model():
    a = load_model("minilm-l6:untrained-3")
    b = load_model("minilm-l6", untrained_seed=3)
    assert a.info.identity == b.info.identity and a.info.untrained_seed == 3
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(pa, pb)
    with pytest.raises(FeatureError):
        load_model("minilm-l6:untrained-3", untrained_seed=4)


def test_untrained_variants_reinitialise_with_the_models_own_initialiser(minilm):
    rng_before = torch.random.get_rng_state()
    u1, u2 = load_model("minilm-l6:untrained-1"), load_model("minilm-l6:untrained-2")
    assert torch.equal(rng_before, torch.random.get_rng_state()), "loading must not consume the global RNG"
    w_pre = minilm.model.encoder.layer[0].attention.self.query.weight
    w1, w2 = (u.model.encoder.layer[0].attention.self.query.weight for u in (u1, u2))
    assert not torch.equal(w1, w2) and not torch.equal(w1, w_pre)
    std = minilm.model.config.initializer_range  # BERT's _init_weights: normal(0, initializer_range)
    assert abs(w1.std().item() - std) < 0.1 * std
    assert torch.all(u1.model.encoder.layer[0].output.LayerNorm.weight == 1)
    # same architecture and tokenizer
    assert [n for n, _ in u1.model.named_parameters()] == [n for n, _ in minilm.model.named_parameters()]
    assert u1.tokenizer(PASSAGE[0])["input_ids"] == minilm.tokenizer(PASSAGE[0])["input_ids"]
    assert len({minilm.info.identity, u1.info.identity, u2.info.identity}) == 3


@smollm2_group
def test_untrained_smollm2_is_a_fresh_llama_with_the_same_tokenizer(smollm2):
    u = load_model("smollm2-135m:untrained-0")
    assert u.info.n_layers == 31 and u.info.kind == "causal"
    norm = u.model.model.layers[0].input_layernorm.weight
    assert torch.all(norm == 1)  # RMSNorm initialised to ones, unlike the trained weights
    assert not torch.all(smollm2.model.model.layers[0].input_layernorm.weight == 1)
    q = u.model.model.layers[0].self_attn.q_proj.weight
    assert abs(q.std().item() - u.model.config.initializer_range) < 0.1 * u.model.config.initializer_range
    f = extract_features(u, PASSAGE, [0, 0, 0], layers=[0, -1], progress=False)
    assert np.isfinite(f).all()


def test_config_built_gpt2_is_seeded_and_deterministic(tiny):
    again = load_model("gpt2-tiny")
    other = load_model("gpt2-tiny:untrained-5")
    assert tiny.info.untrained_seed == 0 and tiny.info.identity == again.info.identity
    a = extract_features(tiny, PASSAGE, [0, 0, 0], progress=False)
    np.testing.assert_array_equal(a, extract_features(again, PASSAGE, [0, 0, 0], progress=False))
    assert np.abs(a[-1] - extract_features(other, PASSAGE, [0, 0, 0], progress=False)[-1]).max() > 1e-2
    assert tiny.info.architecture == "GPT2LMHeadModel" and tiny.info.n_layers == 3


def test_identity_is_known_without_loading_and_matches_the_loaded_model(minilm, tiny):
    for lm in (minilm, tiny):
        ref = model_ref(lm.info.name)
        assert ref.identity == lm.info.identity and ref.kind == lm.info.kind
    assert model_ref("minilm-l6:untrained-2").identity != minilm.info.identity


def test_local_folder_loads_like_the_registry_model(tmp_path, tiny, minilm):
    from lmbrain.features.catalog import minilm_dir

    by_dir = load_model(str(minilm_dir()))
    assert by_dir.info.kind == "bidirectional" and by_dir.info.identity.endswith(
        minilm.info.identity.split("@")[1]
    )
    np.testing.assert_array_equal(
        extract_features(by_dir, PASSAGE, [0, 0, 0], progress=False),
        extract_features(minilm, PASSAGE, [0, 0, 0], progress=False),
    )
    tiny.model.save_pretrained(tmp_path / "gpt2")
    tiny.tokenizer.save_pretrained(tmp_path / "gpt2")
    saved = load_model(str(tmp_path / "gpt2"))
    assert saved.info.kind == "causal" and saved.info.family == "gpt2"
    np.testing.assert_allclose(
        extract_features(saved, PASSAGE, [0, 0, 0], progress=False),
        extract_features(tiny, PASSAGE, [0, 0, 0], progress=False),
        atol=1e-6,
    )


@smollm2_group
def test_gguf_path_loads_like_the_registry_model(smollm2):
    from lmbrain.features.catalog import smollm2_gguf_path

    by_path = load_model(str(smollm2_gguf_path()))
    assert by_path.info.kind == "causal" and by_path.info.n_layers == 31
    assert model_ref(str(smollm2_gguf_path())).identity == by_path.info.identity
    a = extract_features(by_path, PASSAGE[:1], [0], layers=[-1], progress=False)
    np.testing.assert_array_equal(a, extract_features(smollm2, PASSAGE[:1], [0], layers=[-1], progress=False))


@pytest.mark.parametrize(
    "name", ["no-such-org/no-such-model-xyz", "./no/such/folder", "/tmp/nothing-here.gguf"]
)
def test_unavailable_models_fail_with_one_clear_error(name):
    with pytest.raises(ModelUnavailableError, match="not available") as info:
        load_model(name)
    assert name in str(info.value)
    with pytest.raises(ModelUnavailableError):
        model_ref(name)


def test_hub_id_offline_says_so(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError, match="offline"):
        load_model("gpt2-xl-not-cached/really")


def test_bad_dtype_and_device():
    with pytest.raises(FeatureError):
        load_model("gpt2-tiny", dtype="int8")
    with pytest.raises(FeatureError):
        load_model("gpt2-tiny", device="warp-drive")


_HUB_SCRIPT = """
import sys
from pathlib import Path
import numpy as np
from lmbrain.features import extract_features, load_model, model_ref
root, commit = Path(sys.argv[1]), "0123456789abcdef0123456789abcdef01234567"
tiny = load_model("gpt2-tiny")
repo = root / "models--lmbrain-test--tiny"
tiny.model.save_pretrained(repo / "snapshots" / commit)
tiny.tokenizer.save_pretrained(repo / "snapshots" / commit)
(repo / "refs").mkdir()
(repo / "refs" / "main").write_text(commit)
ref = model_ref("lmbrain-test/tiny")
lm = load_model("lmbrain-test/tiny")
texts = ["Hub ids", "load offline."]
same = np.array_equal(extract_features(lm, texts, [0, 0], progress=False),
                      extract_features(tiny, texts, [0, 0], progress=False))
print(ref.identity == lm.info.identity, lm.info.identity.endswith("@rev-" + commit), lm.info.kind, same)
"""


def test_hub_id_in_the_local_hub_cache_loads_offline_with_its_revision_as_identity(tmp_path):
    """A cached hub id loads offline (HF_HUB_CACHE is read at import time: run in a subprocess)."""
    import os
    import subprocess
    import sys

    from conftest import REPO

    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", _HUB_SCRIPT, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-4:] == ["True", "True", "causal", "True"]
