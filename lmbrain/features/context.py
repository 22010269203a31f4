"""Context policies: which words a model sees when it represents a unit (left context only on incremental data).

Kept free of torch so that studies and validation can resolve a policy without loading a model.
"""

from __future__ import annotations

from dataclasses import dataclass

from lmbrain.features.errors import FeatureError

#: "auto"/"context": the growing context for causal models, the full context for bidirectional ones (left context
#: only for every model on incremental data: :func:`context_policy`).
CONTEXTS = ("auto", "context", "isolated", "passage-so-far", "full")

__all__ = ["CONTEXTS", "ContextPolicy", "context_policy", "resolve_context"]


def resolve_context(context: str, kind: str) -> str:
    """The policy actually run: "isolated", "passage-so-far" (growing) or "full" (whole context)."""
    if context not in CONTEXTS:
        raise FeatureError(f"context must be one of {CONTEXTS}, got {context!r}")
    if kind == "static":  # a static embedding reads no context, whatever is asked
        return "isolated"
    causal = kind == "causal"
    if context in ("auto", "context"):
        return "passage-so-far" if causal else "full"
    if context == "full" and causal:  # a causal state never sees later tokens: the same computation
        return "passage-so-far"
    return context


@dataclass(frozen=True)
class ContextPolicy:
    """The context a model reads a dataset's units in: what the study asked, what is run, and why."""

    requested: str
    policy: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        """The fields as a plain dict (for manifests and reports)."""
        return {"requested": self.requested, "policy": self.policy, "reason": self.reason}


def context_policy(context: str, kind: str, modality: str | None = None) -> ContextPolicy:
    """The policy run for a model of ``kind`` on data of ``modality``.

    Incremental data (reading times, EEG, ECoG words, naturalistic listening: ``INCREMENTAL_MODALITIES``) get
    left context only for every model: "auto"/"context" become "passage-so-far" (a bidirectional model then
    reads each prefix on its own, so it never sees the words to the right); "full" for a bidirectional model is
    refused with a FeatureError. Other data (sentences shown whole) follow :func:`resolve_context`.
    """
    from lmbrain.data.specs import INCREMENTAL_MODALITIES

    policy = resolve_context(context, kind)
    if kind == "static":
        return ContextPolicy(context, policy, "static embedding: each unit's own words, no context")
    if modality not in INCREMENTAL_MODALITIES:
        how = {"passage-so-far": "the growing context (left context only)", "isolated": "each unit alone",
               "full": "the whole context, both sides (stimuli shown whole)"}[policy]
        return ContextPolicy(context, policy, f"{modality or 'unknown'} data, {kind} model: {how}")
    if context in ("auto", "context"):
        policy = "passage-so-far"
    if policy == "full":
        raise FeatureError(
            f"context {context!r} would show a bidirectional model the words to the right of each word, but "
            f"{modality} data are incremental (each response sees only the words before it): use context "
            "'auto' or 'passage-so-far' (left context only) or 'isolated'"
        )
    if policy == "isolated":
        return ContextPolicy(context, policy, f"{modality} data (incremental), {kind} model: each unit alone")
    how = ("one pass over each context gives every prefix" if kind == "causal" else
           "each prefix read on its own, so the model never sees the words to the right")
    return ContextPolicy(context, policy, f"{modality} data (incremental), {kind} model: left context only ({how})")
