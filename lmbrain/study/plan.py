"""Planning a study: its units of work, in a deterministic order, and the chains that share a layer selection.

A unit is (dataset, subjects, model, untrained seed, feature set, CV scheme). Kinds (:func:`unit_kind`):

- ``controls``: a control set alone (one control or several side by side; OASM's σ chosen in-fold);
- ``llm``: the LLM alone, its layer chosen inside each training fold;
- ``joint``: the LLM (the layer chosen for it alone in that fold) jointly with a control set;
- ``layers``: every layer scored separately (descriptive layer curves only);
- ``ceiling``: each subject predicted from pools of other subjects (where subjects share stimuli).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np

from lmbrain.results import ALL_SUBJECTS, CEILING, LLM_ALONE, FeatureSet, model_label
from lmbrain.study.context import StudyContext, subject_targets

CEILING_MAX_SOURCES = 8


@dataclass(frozen=True)
class Unit:
    """One independent piece of work; its key names its result files."""

    dataset: str
    subject: str
    model: str | None
    untrained_seed: int | None
    feature_set: str
    scheme: str
    per_layer: bool = False

    @property
    def key(self) -> str:
        """A stable file-name-safe identifier."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    @property
    def model_label(self) -> str:
        """The model name with its untrained seed, as shown in tables."""
        return model_label(self.model, self.untrained_seed)

    @property
    def features(self) -> FeatureSet:
        """The unit's feature set (not for ceilings)."""
        return FeatureSet.parse(self.feature_set)

    @property
    def kind(self) -> str:
        """controls, llm, joint, layers or ceiling."""
        return unit_kind(self)

    def describe(self) -> str:
        """A short human-readable description."""
        layers = " per-layer" if self.per_layer else ""
        return f"{self.dataset}/{self.subject} {self.model_label} {self.feature_set}{layers} [{self.scheme}]"


def unit_kind(unit: Unit) -> str:
    """The kind of computation a unit needs."""
    if unit.feature_set == CEILING:
        return "ceiling"
    features = unit.features
    if features.is_controls:
        return "controls"
    if features.is_joint:
        return "joint"
    return "layers" if unit.per_layer else "llm"


def has_ceiling(context: StudyContext, name: str) -> bool:
    """A pool ceiling needs at least 3 subjects with the same usable samples (at least half of them)."""
    dataset = context.dataset(name)
    if len(dataset.subjects) < 3:
        return False
    common = functools.reduce(np.intersect1d, [subject_targets(dataset, s)[0] for s in dataset.subjects])
    return len(common) >= 0.5 * len(dataset.samples)


def enumerate_units(context: StudyContext) -> list[Unit]:
    """All units of ``context.study`` in a deterministic order."""
    study = context.study
    units: list[Unit] = []
    for entry in study.datasets:
        name = entry.name
        if study.statistics.ceiling and has_ceiling(context, name):
            units.append(Unit(name, ALL_SUBJECTS, None, None, CEILING, "grouped"))
        control_sets = [FeatureSet.controls_only(c) for c in entry.controls]
        for scheme in study.cv.schemes:
            for controls in control_sets:
                units.extend(Unit(name, g, None, None, controls.label, scheme)
                             for g in context.subject_groups(name, controls))
            for model, seed in study.model_variants():
                units.extend(Unit(name, g, model, seed, LLM_ALONE.label, scheme)
                             for g in context.subject_groups(name, LLM_ALONE))
                for controls in control_sets:
                    joint = controls.joint()
                    units.extend(Unit(name, g, model, seed, joint.label, scheme)
                                 for g in context.subject_groups(name, joint))
                if study.estimator.layer_curves and scheme == "grouped":
                    units.extend(Unit(name, g, model, seed, LLM_ALONE.label, scheme, per_layer=True)
                                 for g in context.subject_groups(name, LLM_ALONE))
    return units


def llm_unit_of(context: StudyContext, unit: Unit) -> Unit:
    """The LLM-alone unit whose subjects include this unit's (subjects are fitted together for the LLM
    alone when they share samples, but one by one with a subject-specific control)."""
    mine = set(context.unit_subjects(unit.dataset, unit.subject))
    label = next(g for g in context.subject_groups(unit.dataset, LLM_ALONE)
                 if mine <= set(context.unit_subjects(unit.dataset, g)))
    return dataclasses.replace(unit, subject=label, feature_set=LLM_ALONE.label, per_layer=False)


def unit_chains(context: StudyContext, units: list[Unit]) -> list[list[Unit]]:
    """Units grouped into chains that share one in-fold layer selection (the LLM-alone, joint and
    per-layer units of one model and subject group), in their original order; other units alone."""
    chains: dict[tuple, list[Unit]] = {}
    for unit in units:
        key: tuple = (unit.key,) if unit.model is None else ("llm", llm_unit_of(context, unit).key)
        chains.setdefault(key, []).append(unit)
    return list(chains.values())
