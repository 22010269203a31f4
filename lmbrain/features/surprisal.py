"""Per-word surprisal and entropy from a causal language model, left context only, cached like features.

A unit's surprisal is the sum over its tokens of ``-log2 p(token | every earlier token)`` (bits), read in its
context (``context_id``, ordered by ``position``) from the start of that context, never from the right. The
first token of a context is conditioned on a start-of-text token (:func:`start_token`), so the first word of
every text has a surprisal too. Tokens map to units by the tokenizer's character offsets
(:func:`lmbrain.features.alignment.align_tokens`): a byte-level BPE token carrying the leading space of a word
belongs to that word, so each word's surprisal includes the cost of the boundary before it. A unit's entropy is
the entropy (bits) of the next-token distribution just before its first token: how uncertain the model was
about what came next. Contexts longer than the model's window are read in sliding windows (each restarting
from the start token) that give every unit the most left context available.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import torch

from lmbrain.errors import DataError
from lmbrain.features.alignment import align_tokens, join_units
from lmbrain.features.errors import FeatureError
from lmbrain.features.extract import Units, prepare_units
from lmbrain.features.models import LanguageModel, load_model, model_ref
from lmbrain.features.windows import plan_windows
from lmbrain.progress import progress

log = logging.getLogger(__name__)

#: columns of the cached matrix (one row per unit)
COLUMNS = ("surprisal", "entropy")
#: start-of-text tokens tried in order when the tokenizer adds none itself (GPT-2, Pythia and SmolLM2 separate
#: pretraining documents with ``<|endoftext|>``)
_DOCUMENT_SEPARATORS = ("<|endoftext|>", "</s>", "<s>")
_LN2 = math.log(2.0)


def start_token(tokenizer: Any) -> list[int]:
    """The token ids a context starts with: the tokenizer's own leading special tokens if it adds any,
    else its document separator (``<|endoftext|>``...), else its BOS, else its EOS; a FeatureError if none."""
    probe = tokenizer("a", add_special_tokens=True, return_special_tokens_mask=True)
    mask = probe["special_tokens_mask"]
    lead = []
    for token_id, special in zip(probe["input_ids"], mask, strict=True):
        if not special:
            break
        lead.append(int(token_id))
    if lead:
        return lead
    vocab = tokenizer.get_vocab()
    for token in _DOCUMENT_SEPARATORS:
        if token in vocab:
            return [int(vocab[token])]
    for token_id in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if isinstance(token_id, int):
            return [token_id]
    raise FeatureError("the tokenizer has no start-of-text, BOS or EOS token to condition the first word on")


def _check_causal(model: LanguageModel) -> None:
    if model.info.kind != "causal" or not hasattr(model.model, "get_output_embeddings") or (
        model.model.get_output_embeddings() is None
    ):
        raise FeatureError(
            f"surprisal needs a causal language model with its LM head; {model.info.name} is {model.info.kind}"
        )


def _token_scores(model: LanguageModel, ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per position ``j >= 1`` of ``ids``: surprisal of ``ids[j]`` and entropy of the distribution before it."""
    with torch.inference_mode():
        tensor = torch.tensor([ids], device=model.device)
        logits = model.model(input_ids=tensor, use_cache=False).logits[0, :-1].to(torch.float32)
        logp = torch.log_softmax(logits, dim=-1)
        del logits
        surprisal = -logp.gather(1, tensor[0, 1:, None])[:, 0] / _LN2
        entropy = -(logp.exp() * logp).sum(dim=-1) / _LN2
    zero = np.zeros(1)
    return (np.r_[zero, surprisal.cpu().double().numpy()], np.r_[zero, entropy.cpu().double().numpy()])


def compute_surprisal(model: LanguageModel, units: Units, max_length: int | None = None) -> np.ndarray:
    """``(n_units, 2)``: each unit's surprisal (bits, summed over its tokens) and entropy before it (bits)."""
    _check_causal(model)
    tokenizer = model.tokenizer
    start = start_token(tokenizer)
    limit = model.info.max_length if max_length is None else min(int(max_length), model.info.max_length)
    budget = limit - len(start)
    if budget < 1:
        raise FeatureError(f"max_length {limit} leaves no room for text after the start token")
    out = np.full((len(units.texts), len(COLUMNS)), np.nan)
    with progress(f"surprisal of {model.info.name}", len(units.texts), "word", logger=log) as stage:
        for rows in units.groups:
            _context_surprisal(model, units, rows, start, budget, out)
            stage.update(len(rows))
    return out


def _context_surprisal(model: LanguageModel, units: Units, rows: Sequence[int], start: list[int], budget: int,
                       out: np.ndarray) -> None:
    """Fill ``out[rows]`` with the surprisal and entropy of one context's units."""
    tokenizer = model.tokenizer
    joined = join_units([units.texts[r] for r in rows])
    encoded = tokenizer(joined.text, add_special_tokens=False, return_offsets_mapping=True)
    ids = list(encoded["input_ids"])
    owned = align_tokens(joined.text, joined.spans, encoded["offset_mapping"], [0] * len(ids))
    for row, tokens in zip(rows, owned, strict=True):
        if not tokens:
            raise DataError(f"unit {row} ({units.texts[row]!r}) maps to no token of {model.info.name}")
    ranges = [(tokens[0], tokens[-1] + 1) for tokens in owned]
    windows, owner = plan_windows(ranges, len(ids), budget, max(budget // 2, 1), causal=True)
    for w, (s, e) in enumerate(windows):
        mine = [k for k, o in enumerate(owner) if o == w]
        if not mine:
            continue
        surprisal, entropy = _token_scores(model, start + ids[s:e])
        shift = len(start) - s  # token i of the context sits at position i + shift of this window
        for k in mine:
            positions = [t + shift for t in owned[k]]
            out[rows[k]] = (surprisal[positions].sum(), entropy[positions[0]])
    if len(windows) > 1:
        log.info("a context of %d tokens was read in %d windows for surprisal", len(ids), len(windows))


def get_surprisal(
    model_name: str | LanguageModel,
    texts: Sequence[str],
    context_ids: Sequence[Hashable] | None = None,
    positions: Sequence[int] | None = None,
    *,
    cache: Any = None,
    max_length: int | None = None,
    device: str = "auto",
) -> np.ndarray:
    """Surprisal and entropy ``(n_units, 2)`` from the feature cache; on a miss the model is loaded and run.

    Stored in the feature cache as a one-layer entry keyed by the model's identity, the units and ``kind:
    surprisal`` (a warm call reads one verified file and loads no model).
    """
    from lmbrain.features.cache import FeatureCache

    store = cache if isinstance(cache, FeatureCache) else FeatureCache(cache)
    units = prepare_units(texts, context_ids, positions)
    lm = model_name if isinstance(model_name, LanguageModel) else None
    ref = None if lm is not None else model_ref(str(model_name))
    if ref is not None and ref.kind != "causal":
        raise FeatureError(f"surprisal needs a causal language model; {model_name} is {ref.kind}")
    identity = lm.info.identity if lm is not None else ref.identity  # type: ignore[union-attr]
    spec = {"kind": "surprisal", "columns": list(COLUMNS), "model": identity, "units": units.digest(),
            "n_units": len(units.texts), "context": "passage-so-far", "max_length": max_length, "unit": "bits"}
    key = store.key(spec)
    found = store.read(key)
    if found is not None:
        return found[0].astype(np.float64)
    if lm is None:
        lm = load_model(str(model_name), device=device)
    values = compute_surprisal(lm, units, max_length)
    with store.writer(key, spec, 1, len(units.texts), len(COLUMNS)) as writer:
        writer(np.arange(len(units.texts)), values[None].astype(np.float32))
        writer.commit(lm.info.as_dict())
    return values.astype(np.float32).astype(np.float64)
