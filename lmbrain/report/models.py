"""What the report knows about a study's models: family and parameter count, from the model catalog (the
registry's metadata and the weight-free config), so that a model added to a study adds a point without code."""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)


def _count_from_config(config: object, kind: str) -> int:
    """Parameters of a model built from ``config`` on the meta device (no memory, no weights read)."""
    import torch
    from transformers import AutoModel, AutoModelForCausalLM

    auto = AutoModelForCausalLM if kind == "causal" else AutoModel
    with torch.device("meta"):
        model = auto.from_config(config)
    return int(sum(p.numel() for p in model.parameters()))


def model_info(name: str) -> dict:
    """``{"family", "kind", "n_params"}`` of a base model name; family = the name and n_params = NaN when the
    catalog cannot tell (the report then leaves the model out of size plots, and logs why)."""
    from lmbrain.features.models import folder_skeleton, kind_from_config
    from lmbrain.features.registry import registered

    entry = registered(name)
    info: dict = {"family": entry.family if entry else name, "kind": entry.kind if entry else "",
                  "n_params": np.nan}
    try:
        if entry is not None and entry.skeleton is None:  # no weight-free config: count the loaded model
            model, _ = entry.loader()
            info["n_params"] = int(sum(p.numel() for p in model.parameters()))
            return info
        config = entry.skeleton()[0] if entry is not None else folder_skeleton(name)[0]
        info["kind"] = info["kind"] or kind_from_config(config)
        info["n_params"] = _count_from_config(config, info["kind"])
    except Exception as error:  # a model that cannot be sized here still gets its tables
        log.warning("report: no parameter count for %s (%s)", name, error)
    return info
