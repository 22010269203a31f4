"""What the report knows about a study's models: family and parameter count, from the model catalog (the
registry's metadata and the weight-free config), so that a model added to a study adds a point without code."""

from __future__ import annotations

import logging
import re

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


#: a registry entry's stated size: "135M parameters, 30 layers x 576"
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([KMB])\s*parameters", re.IGNORECASE)
_SCALE = {"K": 1e3, "M": 1e6, "B": 1e9}


def stated_params(size: str) -> int | None:
    """The parameter count a registry entry states in its ``size`` ("135M parameters, ..." -> 135000000)."""
    match = _SIZE.search(size or "")
    return int(float(match.group(1)) * _SCALE[match.group(2).upper()]) if match else None


def model_info(name: str) -> dict:
    """``{"family", "kind", "n_params"}`` of a base model name; family = the name and n_params = NaN when the
    catalog cannot tell (the report then leaves the model out of size plots, and logs why).

    Never loads or converts weights: a config-built model is counted on the meta device from its config, a
    checkpoint in the registry by the size it states, any other name from its config.json."""
    from lmbrain.features.checkpoints import folder_skeleton, kind_from_config
    from lmbrain.features.registry import registered

    entry = registered(name)
    info: dict = {"family": entry.family if entry else name, "kind": entry.kind if entry else "",
                  "n_params": np.nan}
    try:
        if entry is not None and not entry.config_built:
            stated = stated_params(entry.size)
            if stated is None:
                log.warning("report: no parameter count for %s (its registry entry states no size in parameters)",
                            name)
            else:
                info["n_params"] = stated
            return info
        config = entry.skeleton()[0] if entry is not None and entry.skeleton else folder_skeleton(name)[0]
        info["kind"] = info["kind"] or kind_from_config(config)
        info["n_params"] = _count_from_config(config, info["kind"])
    except Exception as error:  # a model that cannot be sized here still gets its tables
        log.warning("report: no parameter count for %s (%s)", name, error)
    return info
