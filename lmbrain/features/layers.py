"""Layer addressing: by index (0 = input embeddings), by relative depth in [0, 1], or "all"."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

from lmbrain.features.errors import FeatureError

LayerSpec = int | float | str | Sequence[int | float | str]


def _one(item: object, n_layers: int) -> int:
    if isinstance(item, bool):
        raise FeatureError(f"layer {item!r}: expected an int index or a float depth in [0, 1], not a bool")
    if isinstance(item, str):
        text = item.strip()
        try:
            item = float(text) if any(c in text for c in ".eE") else int(text)
        except ValueError:
            raise FeatureError(f"layer {item!r} is neither an index, a relative depth nor 'all'") from None
    if isinstance(item, numbers.Integral):
        index = int(item)
        if not -n_layers <= index < n_layers:
            raise FeatureError(
                f"layer index {index} is out of range for a model with {n_layers} layers (0..{n_layers - 1})"
            )
        return index % n_layers
    if isinstance(item, numbers.Real):
        depth = float(item)
        if not 0.0 <= depth <= 1.0:
            raise FeatureError(f"relative depth {depth} is outside [0, 1]")
        return round(depth * (n_layers - 1))
    raise FeatureError(f"layer {item!r}: expected an int index, a float depth in [0, 1] or 'all'")


def resolve_layers(spec: LayerSpec, n_layers: int) -> list[int]:
    """Layer indices for a spec: "all", an int index (negative counts from the top), a float depth in [0, 1]
    (0.0 = embeddings, 1.0 = last layer, rounded to the nearest layer), a comma-separated string, or a list.

    ``n_layers`` counts layer 0 (the input embeddings). Duplicates are dropped, first order kept.
    """
    if n_layers < 1:
        raise FeatureError(f"a model must have at least one layer, got n_layers={n_layers}")
    if isinstance(spec, str):
        if spec.strip().lower() == "all":
            return list(range(n_layers))
        parts = [p for p in spec.split(",") if p.strip()]
        if not parts:
            raise FeatureError("empty layer spec")
        items: Sequence[object] = parts
    elif isinstance(spec, Sequence):
        items = list(spec)
        if not items:
            raise FeatureError("empty layer list")
    else:
        items = [spec]
    return list(dict.fromkeys(_one(item, n_layers) for item in items))
