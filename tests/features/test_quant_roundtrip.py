"""The GGUF quantisation round trip replayed on untrained variants: encoders checked against gguf's decoders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import smollm2_group
from gguf import quants
from gguf.constants import GGMLQuantizationType as Q

from lmbrain.features.quant_roundtrip import gguf_name, gguf_tensor_types, round_trip


def _rel_rms(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2) / np.mean(b**2)))


@pytest.fixture(scope="module")
def weights():
    """Rows of an initialiser-like matrix (std 0.02) with a few outliers, as real weight rows have."""
    x = np.random.default_rng(0).normal(0, 0.02, size=(96, 768)).astype(np.float32)
    x[::7, ::97] *= 8
    return x


def test_k_quant_encoders_decode_with_ggufs_reference_decoder_at_their_bit_rate(weights):
    """Q4_K (4.5 bits) errs like gguf's own Q4_1 encoder (5 bits/value incl. scales, same 32-value groups);
    Q6_K (6.6 bits) lies between gguf's Q5_0 and Q8_0."""
    def reference(kind):
        return _rel_rms(quants.dequantize(quants.quantize(weights, kind), kind).reshape(weights.shape), weights)

    q4k, q6k = _rel_rms(round_trip(weights, "Q4_K"), weights), _rel_rms(round_trip(weights, "Q6_K"), weights)
    assert 0.9 * reference(Q.Q4_1) < q4k < 1.15 * reference(Q.Q4_1)
    assert reference(Q.Q8_0) < q6k < reference(Q.Q5_0)


def test_round_trip_keeps_shape_and_blocks_rows_along_the_input_axis(weights):
    """Scaling one row changes that row's round trip only (blocks never straddle rows), for every format."""
    for kind in ("Q4_0", "Q4_1", "Q5_0", "Q8_0", "Q4_K", "Q6_K"):
        out = round_trip(weights, kind)
        assert out.shape == weights.shape and out.dtype == np.float32
        scaled = weights.copy()
        scaled[3] *= 4.0
        again = round_trip(scaled, kind)
        np.testing.assert_array_equal(np.delete(again, 3, 0), np.delete(out, 3, 0))
        assert not np.array_equal(again[3], out[3])


def test_names_map_onto_llama_cpp_tensor_names():
    assert gguf_name("model.layers.7.self_attn.q_proj.weight") == "blk.7.attn_q.weight"
    assert gguf_name("model.layers.0.mlp.down_proj.weight") == "blk.0.ffn_down.weight"
    assert gguf_name("model.embed_tokens.weight") == "token_embd.weight"
    assert gguf_name("model.layers.0.input_layernorm.weight") is None


@smollm2_group
def test_untrained_smollm2_carries_the_files_q4_1_round_trip_and_nothing_else():
    """Every projection equals the plain initialiser's weight through gguf's own Q4_1 encoder and decoder; the
    embedding went through Q8_0; norms are the initialiser's; trained and untrained differ in training alone."""
    from lmbrain.features import load_model
    from lmbrain.features.catalog import smollm2_gguf_path
    from lmbrain.features.models import init_from_config
    from lmbrain.features.sources import model_source

    lm = load_model("smollm2-135m:untrained-3")
    config, _ = model_source("smollm2-135m").skeleton()
    plain = dict(init_from_config(config, "causal", 3).named_parameters())
    types = gguf_tensor_types(smollm2_gguf_path())
    replayed = 0
    for name, param in lm.model.named_parameters():
        ours, before = param.detach().numpy(), plain[name].detach().numpy()
        target = gguf_name(name)
        if target is None:
            np.testing.assert_array_equal(ours, before)
            continue
        kind = Q[types[target]]
        expected = quants.dequantize(quants.quantize(before, kind), kind).reshape(before.shape)
        np.testing.assert_array_equal(ours, expected)
        replayed += 1
    assert replayed == sum(kind != "F32" for kind in types.values()) == 211
    assert "Q4_1 x 210, Q8_0 x 1" in lm.info.training and lm.info.identity.endswith(",gguf-roundtrip-1]")
    assert not torch.equal(lm.model.model.layers[0].mlp.up_proj.weight, plain["model.layers.0.mlp.up_proj.weight"])
