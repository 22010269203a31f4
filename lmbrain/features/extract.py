"""Feature extraction: every layer, word/sentence-aligned, one forward pass per context window."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from lmbrain.errors import DataError
from lmbrain.features.alignment import align_tokens, join_units, normalize_unit
from lmbrain.features.context import CONTEXTS, ContextPolicy, context_policy, resolve_context  # noqa: F401 (re-exported)
from lmbrain.features.errors import FeatureError
from lmbrain.features.layers import LayerSpec, resolve_layers
from lmbrain.features.models import LanguageModel
from lmbrain.io import canonical_json, sha256_bytes
from lmbrain.progress import Progress

log = logging.getLogger(__name__)

POOLINGS = ("last", "mean", "sum")

#: ``sink(rows, values)`` receives the features of some units: ``values[l, i]`` is layer ``l`` of ``rows[i]``.
Sink = Callable[[np.ndarray, np.ndarray], None]


@dataclass(frozen=True)
class Units:
    """Validated stimuli: normalised unit texts and, per context, its rows in reading order."""

    texts: tuple[str, ...]
    groups: tuple[tuple[int, ...], ...]

    def digest(self) -> str:
        """Content hash of what the model reads: unit texts and the grouping/order (not the id labels)."""
        return sha256_bytes(canonical_json({"texts": self.texts, "groups": self.groups}).encode())


@dataclass(frozen=True)
class Run:
    """One forward pass: token ids and, per unit it provides, its output row and token positions."""

    ids: tuple[int, ...]
    pools: tuple[tuple[int, tuple[int, ...]], ...]


def _missing(value: object) -> bool:
    try:
        return value is None or (isinstance(value, float) and math.isnan(value))
    except TypeError:
        return False


def prepare_units(
    texts: Sequence[str],
    context_ids: Sequence[Hashable] | None = None,
    positions: Sequence[int] | None = None,
) -> Units:
    """Check the stimuli and order each context's units by position (None: each unit is its own context)."""
    if isinstance(texts, str):
        raise DataError("texts must be a sequence of unit strings, not one string")
    texts = list(texts)
    if not texts:
        raise DataError("no units to extract features for (texts is empty)")
    clean = tuple(normalize_unit(t, row) for row, t in enumerate(texts))
    n = len(clean)
    if context_ids is None:
        context_ids = list(range(n))
    context_ids = list(context_ids)
    if len(context_ids) != n:
        raise DataError(f"{n} texts but {len(context_ids)} context ids")
    if positions is not None:
        positions = list(positions)
        if len(positions) != n:
            raise DataError(f"{n} texts but {len(positions)} positions")
    groups: dict[object, list[int]] = {}
    for row, cid in enumerate(context_ids):
        if _missing(cid):
            raise DataError(f"unit {row} ({clean[row]!r}) has no context id")
        try:
            groups.setdefault(cid, []).append(row)
        except TypeError:
            raise DataError(f"unit {row}: context id {cid!r} is not hashable") from None
    ordered = []
    for cid, rows in groups.items():
        if positions is not None:
            keys = []
            for row in rows:
                pos = positions[row]
                if isinstance(pos, bool) or _missing(pos) or float(pos) != int(pos):
                    raise DataError(f"unit {row} ({clean[row]!r}): position {pos!r} is not an integer")
                keys.append(int(pos))
            if len(set(keys)) != len(keys):
                dup = next(k for k in keys if keys.count(k) > 1)
                raise DataError(f"context {cid!r}: two units have position {dup}")
            rows = [r for _, r in sorted(zip(keys, rows, strict=True))]
        ordered.append(tuple(rows))
    return Units(texts=clean, groups=tuple(ordered))


def _documents(units: Units, policy: str, causal: bool) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """(rows read together, indices of those rows whose features this text provides)."""
    if policy == "isolated":
        return [((row,), (0,)) for group in units.groups for row in group]
    if (
        policy == "full" or causal
    ):  # causal passage-so-far: one pass over the whole context gives every prefix
        return [(group, tuple(range(len(group)))) for group in units.groups]
    return [(group[: k + 1], (k,)) for group in units.groups for k in range(len(group))]


def _edge_specials(mask: Sequence[int]) -> tuple[int, int]:
    n, p = len(mask), 0
    while p < n and mask[p]:
        p += 1
    q = 0
    while q < n - p and mask[n - 1 - q]:
        q += 1
    return p, q


def plan_runs(
    model: LanguageModel, units: Units, policy: str, max_length: int | None = None, stride: int | None = None
) -> list[Run]:
    """Tokenise every context once and cut it into forward passes (windows) that together cover every unit."""
    from lmbrain.features.windows import plan_windows

    limit = model.info.max_length
    window = limit if max_length is None else int(max_length)
    if window > limit:
        raise FeatureError(f"max_length {window} exceeds {model.info.name}'s maximum of {limit} tokens")
    causal = model.info.kind == "causal"
    docs = _documents(units, policy, causal)
    if not docs:
        return []
    joined = [join_units([units.texts[r] for r in rows]) for rows, _ in docs]
    encoded = model.tokenizer(
        [j.text for j in joined],
        add_special_tokens=True,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
        return_attention_mask=False,
        verbose=False,
    )
    runs: list[Run] = []
    n_windowed = 0
    for d, ((rows, targets), text) in enumerate(zip(docs, joined, strict=True)):
        ids, mask = encoded["input_ids"][d], encoded["special_tokens_mask"][d]
        owned = align_tokens(text.text, text.spans, encoded["offset_mapping"][d], mask)
        for row, tokens in zip(rows, owned, strict=True):
            if not tokens:
                raise DataError(
                    f"unit {row} ({units.texts[row]!r}) maps to no token: "
                    f"{model.info.name}'s tokenizer drops all of its characters"
                )
        p, q = _edge_specials(mask)
        content = ids[p : len(ids) - q]
        budget = window - p - q
        if budget < 1:
            raise FeatureError(f"max_length {window} leaves no room for text next to {p + q} special tokens")
        step = max(budget // 2, 1) if stride is None else int(stride)
        ranges = [(tokens[0] - p, tokens[-1] - p + 1) for tokens in owned]
        for row, (a, b) in zip(rows, ranges, strict=True):
            if b - a > budget:
                raise FeatureError(
                    f"unit {row} ({units.texts[row][:40]!r}) is {b - a} tokens, more than the {budget}-token "
                    "window: raise max_length or use smaller units (lmbrain never truncates a unit)"
                )
        windows, owner = plan_windows(ranges, len(content), budget, step, causal)
        n_windowed += len(windows) > 1
        for w, (s, e) in enumerate(windows):
            pools = tuple((rows[t], tuple(tok - s for tok in owned[t])) for t in targets if owner[t] == w)
            if pools:
                run_ids = tuple(ids[:p]) + tuple(content[s:e]) + tuple(ids[len(ids) - q :])
                runs.append(Run(ids=run_ids, pools=pools))
    if n_windowed:
        log.info("%d of %d contexts exceed %d tokens: read in sliding windows", n_windowed, len(docs), window)
    return runs


def _pool(
    hidden: tuple[torch.Tensor, ...],
    layer_ids: list[int],
    batch: list[Run],
    length: int,
    pooling: str,
    device: torch.device,
) -> tuple[np.ndarray, np.ndarray]:
    rows, flat, seg = [], [], []
    for b, run in enumerate(batch):
        for row, tokens in run.pools:
            ordinal = len(rows)
            rows.append(row)
            picked = tokens[-1:] if pooling == "last" else tokens
            flat.extend(b * length + t for t in picked)
            seg.extend([ordinal] * len(picked))
    index = torch.tensor(flat, device=device)
    segment = torch.tensor(seg, device=device)
    counts = torch.bincount(segment, minlength=len(rows)).to(torch.float32).unsqueeze(1)
    out = []
    for layer in layer_ids:
        states = hidden[layer].reshape(-1, hidden[layer].shape[-1]).index_select(0, index).to(torch.float32)
        if pooling != "last":
            states = torch.zeros(len(rows), states.shape[1], device=device).index_add_(0, segment, states)
            if pooling == "mean":
                states = states / counts
        out.append(states)
    return np.asarray(rows), torch.stack(out).cpu().numpy()


#: bytes of all-layer hidden states one batch may hold (the batch is cut to fit; one window always fits)
HIDDEN_STATE_BUDGET = 2**30


def token_budget(model: LanguageModel) -> int:
    """Padded tokens per batch such that every layer's hidden states fit in ``HIDDEN_STATE_BUDGET``."""
    per_token = model.info.n_layers * model.info.hidden_size * 4
    return max(1, HIDDEN_STATE_BUDGET // per_token)


def batches(runs: Sequence[Run], batch_size: int, max_tokens: int | None = None) -> list[list[Run]]:
    """Runs sorted by length (longest first: little padding, memory peaks early), batched by count and by
    padded tokens (``max_tokens``; a single run longer than that is a batch of its own)."""
    ordered = sorted(runs, key=lambda r: -len(r.ids))
    out: list[list[Run]] = []
    for run in ordered:
        if (
            out
            and len(out[-1]) < batch_size
            and (max_tokens is None or (len(out[-1]) + 1) * len(out[-1][0].ids) <= max_tokens)
        ):
            out[-1].append(run)
        else:
            out.append([run])
    return out


def padded(batch: Sequence[Run], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded input ids and attention mask of a batch."""
    length = max(len(r.ids) for r in batch)
    ids = torch.full((len(batch), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), length), dtype=torch.long)
    for b, run in enumerate(batch):
        ids[b, : len(run.ids)] = torch.tensor(run.ids)
        mask[b, : len(run.ids)] = 1
    return ids.to(device), mask.to(device)


def _pad_id(model: LanguageModel) -> int:
    tok = model.tokenizer
    for value in (tok.pad_token_id, tok.eos_token_id, tok.unk_token_id):
        if isinstance(value, int):
            return value
    return 0


def run_extraction(
    model: LanguageModel,
    runs: Sequence[Run],
    layer_ids: list[int],
    pooling: str,
    sink: Sink,
    batch_size: int = 16,
    progress: bool = True,
) -> None:
    """Forward every run in batches (inference mode) and hand each batch's pooled units to ``sink``."""
    if pooling not in POOLINGS:
        raise FeatureError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    if batch_size < 1:
        raise FeatureError(f"batch_size must be at least 1, got {batch_size}")
    pad = _pad_id(model)
    total = sum(len(run.ids) for run in runs)  # the work is in tokens: windows differ in length
    label, seed = model.info.name, model.info.untrained_seed
    label += f":untrained-{seed}" if seed is not None and ":untrained" not in label else ""
    stage = Progress(f"features of {label}", total, "token", logger=log, bar=progress)
    try:
        with torch.inference_mode():
            for batch in batches(runs, batch_size, token_budget(model)):
                ids, mask = padded(batch, pad, model.device)
                hidden = model.hidden_states(ids, mask)
                rows, values = _pool(hidden, layer_ids, batch, ids.shape[1], pooling, model.device)
                del hidden
                sink(rows, values)
                stage.update(sum(len(run.ids) for run in batch))
    except BaseException:
        stage.close(ok=False)
        raise
    stage.close()


def extract_features(
    model: LanguageModel,
    texts: Sequence[str],
    context_ids: Sequence[Hashable] | None = None,
    positions: Sequence[int] | None = None,
    context: str = "auto",
    pooling: str = "last",
    layers: LayerSpec = "all",
    batch_size: int = 16,
    max_length: int | None = None,
    stride: int | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Features ``(n_layers_selected, n_units, hidden)`` float32, rows in the order of ``texts``.

    Units of a context are stripped, whitespace-normalised and joined with single spaces in ``positions``
    order; tokens map back to units through the tokenizer's offsets. ``context``: "isolated" (each unit
    alone), "passage-so-far" (the growing context; causal models get every prefix from one pass over the
    whole context), "full" (the whole context), "auto"/"context" (growing for causal models, full for
    bidirectional ones). Contexts longer than ``max_length`` tokens (default: the model's maximum) are read
    in sliding windows advancing by ``stride`` tokens (default: half a window); a unit is never truncated.
    """
    if pooling not in POOLINGS:
        raise FeatureError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
    units = prepare_units(texts, context_ids, positions)
    layer_ids = resolve_layers(layers, model.info.n_layers)
    policy = resolve_context(context, model.info.kind)
    runs = plan_runs(model, units, policy, max_length, stride)
    out = np.zeros((len(layer_ids), len(units.texts), model.info.hidden_size), dtype=np.float32)
    filled = np.zeros(len(units.texts), dtype=bool)

    def sink(rows: np.ndarray, values: np.ndarray) -> None:
        out[:, rows, :] = values
        filled[rows] = True

    run_extraction(model, runs, layer_ids, pooling, sink, batch_size, progress)
    if not filled.all():  # every unit is the target of exactly one run: anything else is a bug
        raise RuntimeError(f"{int((~filled).sum())} units received no features")
    return out
