"""The quantise -> de-quantise round trip of a GGUF checkpoint, replayed on an untrained model of its architecture,
so that a trained-vs-untrained comparison differs in training alone (not also in 4-bit rounding).

Each weight matrix is quantised in the format its pretrained tensor has in the file (read per tensor: Gemma's
Q4_K_M file mixes Q4_K, Q5_0, Q6_K and Q8_0) and de-quantised with ``gguf``'s reference decoders. ``gguf`` encodes
Q4_0/Q4_1/Q5_0/Q5_1/Q8_0; the K-quants Q4_K and Q6_K, which it only decodes, are encoded here with plain min/max
scales (llama.cpp searches its scales by weighted least squares, so these round trips err slightly more: measured
in tests/features/test_quant_roundtrip.py). Norm vectors stay float32, as they are in the file.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from lmbrain.features.errors import FeatureError

#: transformers' Llama/Gemma parameter names -> GGUF tensor names (llama.cpp's naming)
_PROJECTIONS = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
}
_LAYER = re.compile(r"^model\.layers\.(\d+)\.(.+)\.weight$")
_QK = 256  # K-quant super-block


def gguf_name(hf_name: str) -> str | None:
    """The GGUF tensor name of a transformers Llama/Gemma weight (None for anything without one)."""
    if hf_name == "model.embed_tokens.weight":
        return "token_embd.weight"
    match = _LAYER.match(hf_name)
    if match is None or match[2] not in _PROJECTIONS:
        return None
    return f"blk.{match[1]}.{_PROJECTIONS[match[2]]}.weight"


def gguf_tensor_types(path: str | Path) -> dict[str, str]:
    """Each tensor's storage format in a GGUF file (``"Q4_1"``, ``"F32"``...), read from its header."""
    import gguf

    return {t.name: t.tensor_type.name for t in gguf.GGUFReader(path).tensors}


def _f16(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float16).astype(np.float32)


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros(np.broadcast_shapes(a.shape, b.shape), np.float32), where=b != 0)


def quantize_q4_k(x: np.ndarray) -> np.ndarray:
    """Q4_K blocks (144 bytes per 256 values) of rows ``x`` (n, 256k): per 32 values a 6-bit scale and min."""
    sub = x.reshape(-1, 8, 32).astype(np.float32)
    low = np.minimum(sub.min(-1), 0.0)
    scale, offset = (sub.max(-1) - low) / 15.0, -low
    d, dmin = _f16(scale.max(-1) / 63.0), _f16(offset.max(-1) / 63.0)
    sc = np.clip(np.rint(_safe_div(scale, d[:, None])), 0, 63).astype(np.uint8)
    mn = np.clip(np.rint(_safe_div(offset, dmin[:, None])), 0, 63).astype(np.uint8)
    step, shift = d[:, None] * sc, dmin[:, None] * mn
    q = np.clip(np.rint(_safe_div(sub + shift[..., None], step[..., None])), 0, 15).astype(np.uint8)
    packed = np.concatenate(
        [
            sc[:, :4] | ((sc[:, 4:] >> 4) << 6),
            mn[:, :4] | ((mn[:, 4:] >> 4) << 6),
            (sc[:, 4:] & 0x0F) | ((mn[:, 4:] & 0x0F) << 4),
        ],
        axis=1,
    )
    qs = (q[:, 0::2] | (q[:, 1::2] << 4)).reshape(-1, 128)
    head = np.stack([d, dmin], axis=1).astype(np.float16).view(np.uint8)
    return np.concatenate([head, packed, qs], axis=1)


def quantize_q6_k(x: np.ndarray) -> np.ndarray:
    """Q6_K blocks (210 bytes per 256 values) of rows ``x``: per 16 values an 8-bit scale, 6-bit symmetric codes."""
    blocks = x.reshape(-1, _QK).astype(np.float32)
    sub = blocks.reshape(-1, 16, 16)
    scale = np.abs(sub).max(-1) / 31.0
    d = _f16(scale.max(-1) / 127.0)
    sc = np.clip(np.rint(_safe_div(scale, d[:, None])), -128, 127).astype(np.int8)
    step = d[:, None] * sc.astype(np.float32)
    q = (np.clip(np.rint(_safe_div(sub, step[..., None])), -32, 31) + 32).astype(np.uint8).reshape(-1, 2, 2, 64)
    low, high = q & 0x0F, q >> 4
    ql = (low[:, :, 0] | (low[:, :, 1] << 4)).reshape(-1, 128)
    high = high.reshape(-1, 2, 4, 32)
    qh = (high[:, :, 0] | (high[:, :, 1] << 2) | (high[:, :, 2] << 4) | (high[:, :, 3] << 6)).reshape(-1, 64)
    return np.concatenate([ql, qh, sc.view(np.uint8), d.astype(np.float16).reshape(-1, 1).view(np.uint8)], axis=1)


_OWN_ENCODERS = {"Q4_K": quantize_q4_k, "Q6_K": quantize_q6_k}


def round_trip(x: np.ndarray, qtype: str) -> np.ndarray:
    """``x`` quantised to the GGUF format ``qtype`` and decoded again (rows blocked along the last axis)."""
    from gguf import quants
    from gguf.constants import GGMLQuantizationType

    kind = GGMLQuantizationType[qtype]
    x = np.ascontiguousarray(x, dtype=np.float32)
    if qtype in ("F32", "F16", "BF16"):
        return quants.dequantize(quants.quantize(x, kind), kind).reshape(x.shape)
    if qtype in _OWN_ENCODERS:
        if x.shape[-1] % _QK:
            raise FeatureError(f"{qtype} needs rows of a multiple of {_QK} values, got {x.shape}")
        encoded = _OWN_ENCODERS[qtype](x.reshape(-1, x.shape[-1]))
        return quants.dequantize(encoded, kind).reshape(x.shape)
    try:
        return quants.dequantize(quants.quantize(x, kind), kind).reshape(x.shape)
    except NotImplementedError as error:
        raise FeatureError(f"no encoder for the GGUF format {qtype}: the round trip cannot be replayed") from error


def replay_quantisation(model: Any, gguf_path: str | Path) -> dict[str, int]:
    """Round-trip every weight of ``model`` through the format its tensor has in ``gguf_path`` (in place); returns
    how many tensors of each format were replayed. Every quantised tensor of the file must find its weight."""
    import torch

    types = gguf_tensor_types(gguf_path)
    quantised = {name for name, kind in types.items() if kind not in ("F32", "F16")}
    done: Counter[str] = Counter()
    seen: set[str] = set()
    with torch.no_grad():
        for name, param in model.named_parameters():
            target = gguf_name(name)
            if target is None or target not in quantised:
                continue
            values = round_trip(param.detach().cpu().float().numpy(), types[target])
            param.copy_(torch.from_numpy(values).to(param.dtype))
            done[types[target]] += 1
            seen.add(target)
    missing = sorted(quantised - seen)
    if missing:
        raise FeatureError(f"{Path(gguf_path).name}: no weight of the model matches quantised tensor(s) {missing[:3]}")
    return dict(sorted(done.items()))


def describe_replay(counts: dict[str, int]) -> str:
    """``"Q4_1 x 210, Q8_0 x 1"`` for a model's info."""
    return ", ".join(f"{kind} x {n}" for kind, n in counts.items())
