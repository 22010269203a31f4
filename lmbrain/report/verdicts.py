"""The first screen's verdicts: one short line (at most 25 words) per dataset × control set × trained model, saying
what the controls explain, whether the model adds anything after Benjamini-Hochberg correction, and the smallest
unique R² the design detects (from the sensitivity table)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmbrain.analysis.partition import format_omega
from lmbrain.results import FeatureSet

#: the most words a verdict line may have
MAX_WORDS = 25
#: verdict marks: added after correction, nothing added, not interpretable, no test of the unique R² was run
MARKS = {"adds": "✔", "none": "✘", "undefined": "–", "untested": "?"}


def short_controls(controls: str) -> str:
    """'SL+SP+GloVe'-style short names of a control set ('sentence_length' -> 'sentence length' when alone)."""
    features = FeatureSet.controls_only(controls)
    if len(features.controls) == 1:
        return features.controls[0].replace("_", " ")
    return features.describe(_abbreviation)


def _abbreviation(control: str) -> str:
    base, _, lag = control.partition("@")
    words = base.split("_")
    short = "GloVe" if base == "glove" else "".join(w[0].upper() for w in words) if len(words) > 1 else base
    return f"{short}@{lag}" if lag else short


def _detectable(sensitivity: pd.DataFrame, dataset: str, controls: str, model: str) -> str:
    if sensitivity is None or sensitivity.empty:
        return ""
    block = sensitivity[(sensitivity["dataset"] == dataset) & (sensitivity["controls"] == controls)
                        & (sensitivity["model"] == model)].sort_values("implanted_unique_r2")
    if block.empty or bool(block["real_detected"].iloc[0]) or not np.isfinite(float(block["detectable"].iloc[0])):
        levels = block["implanted_unique_r2"] if not block.empty else []
        if len(block) and np.isinf(float(block["detectable"].iloc[0])):
            return f"even {float(levels.iloc[-1]):g} could go unseen"
        return ""
    return f"detects ≥ {float(block['detectable'].iloc[0]):.2g}"


def verdict_kind(r: pd.Series, alpha: float) -> str:
    """'adds' (q <= alpha), 'none' (tested, not significant after correction), 'undefined' (LLM not above chance) or
    'untested' (no test of its unique R² was run: one target without sign-flip resamples)."""
    if not np.isfinite(r.omega):
        return "undefined"
    if not np.isfinite(r.q_unique):
        return "untested"
    return "adds" if r.q_unique <= alpha else "none"


def verdict_line(r: pd.Series, alpha: float, sensitivity: pd.DataFrame | None = None) -> str:
    """One dataset × control set × trained model in at most :data:`MAX_WORDS` words."""
    kind = verdict_kind(r, alpha)
    head = f"{MARKS[kind]} {r.dataset}, {short_controls(r.controls)}, {r.base}:"
    if kind == "undefined":
        body = f"R² {r.r2_llm:.3f} not above chance; nothing to explain"
    else:
        share = (f"controls explain {format_omega(r.omega)} % of its R²" if 0 <= r.omega <= 100 else
                 f"joint lost to controls (Ω {format_omega(r.omega)} %)" if r.omega > 100 else
                 f"unique R² exceeds its own (Ω {format_omega(r.omega)} %)")
        over = f"{r.n_subjects} subjects" if r.n_subjects >= 3 else "passages"
        adds = (f"adds {r.unique_llm:.3f} (q = {r.q_unique:.2g}, over {over})" if kind == "adds" else
                f"adds nothing after correction (q = {r.q_unique:.2g})" if kind == "none" else
                f"unique R² {r.unique_llm:.3f}, not tested")
        body = f"{share}; {adds}"
    seen = _detectable(sensitivity, r.dataset, r.controls, r.model)
    text = f"{head} {body}" + (f"; {seen}." if seen else ".")
    if len(text.split()) > MAX_WORDS:  # drop the sensitivity part before anything else
        text = f"{head} {body}."
    return text


def verdicts(rows: pd.DataFrame, alpha: float = 0.05, sensitivity: pd.DataFrame | None = None) -> list[str]:
    """The verdict lines of every trained model, ordered by dataset, control set and model."""
    if rows.empty:
        return []
    trained = rows[~rows["untrained"].astype(bool)].sort_values(["dataset", "controls", "base"])
    return [verdict_line(r, alpha, sensitivity) for r in trained.itertuples(index=False)]


def model_identity(models: dict[str, dict]) -> list[str]:
    """One line per trained model of a manifest's ``models``: family, size, training kind, storage
    ('gemma3-270m: gemma3, 270M parameters, base pretraining, 4-bit GGUF Q4_K_M')."""
    lines = []
    for label, info in sorted(models.items()):
        if ":untrained" in label or not isinstance(info, dict):
            continue
        size = str(info.get("size", "")).split(" (")[0].split(",")[0]
        training = str(info.get("training", "")).split(":")[0]
        storage = str(info.get("quantisation", "")).split(" (")[0].split(",")[0]
        storage = "float32" if storage.startswith("none") else storage
        parts = [p for p in (info.get("family", ""), size, training, storage) if p]
        lines.append(f"{label}: {', '.join(parts)}")
    return lines


#: the likely reason an untrained network scores like a trained one, by model kind
_UNTRAINED_CAUSES = {
    "bidirectional": "untrained BERT-type encoders keep absolute position embeddings, which carry word position",
    "causal": "an untrained decoder still carries token identity and position through its residual stream",
    "static": "random word vectors still carry word identity (and so frequency and length)",
}


def untrained_beats_trained(rows: pd.DataFrame, kinds: dict[str, str] | None = None) -> list[str]:
    """One line per dataset × model where the mean over untrained seeds of the LLM's R² is at least the trained
    model's, with its likely cause (``kinds``: model -> "causal" / "bidirectional" / "static")."""
    if rows.empty:
        return []
    kinds = kinds or {}
    lines = []
    first = rows.sort_values("controls").groupby(["dataset", "base"], sort=True)
    for (dataset, base), group in first:
        group = group[group["controls"] == group["controls"].iloc[0]]  # the LLM's R² is the same for every set
        trained, seeds = group[~group["untrained"]], group[group["untrained"]]
        if trained.empty or seeds.empty:
            continue
        ours, theirs = float(trained["r2_llm"].iloc[0]), float(seeds["r2_llm"].mean())
        if np.isfinite(ours) and np.isfinite(theirs) and theirs >= ours:
            cause = _UNTRAINED_CAUSES.get(kinds.get(base, ""), "the architecture alone carries the signal")
            lines.append(f"Untrained {base} scores at least as well as trained on {dataset} (R² {theirs:.3f} vs "
                         f"{ours:.3f}, mean of {len(seeds)} seeds): likely because {cause}.")
    return lines
