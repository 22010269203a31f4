"""The study's estimators, built from its options: the ridge of single feature spaces and the joint LLM + controls
estimator, with how each reads its penalties off the inner CV (``estimator.alpha_choice``, ``estimator.joint``)."""

from __future__ import annotations

import numpy as np

from lmbrain.encoding import RidgeCV
from lmbrain.encoding.joint import DEFAULT_JOINT, DEFAULT_JOINT_TIMESERIES, make_joint_estimator
from lmbrain.study.context import make_cv
from lmbrain.study.schema import Study


def alpha_choice(study: Study, timeseries: bool) -> str:
    """How the LLM-alone ridge's penalty is read off its inner-CV scores (``estimator.alpha_choice``; auto: for time
    series one penalty per subject by the one-standard-error rule on the mean curve of its targets, for event data
    each target's best mean)."""
    choice = study.estimator.alpha_choice
    return ("shared_one_se" if timeseries else "best") if choice == "auto" else choice


def make_ridge(study: Study, timeseries: bool, scheme: str, standardize: bool | np.ndarray = True,
               llm: bool = False) -> RidgeCV:
    """The ridge of single feature spaces; its inner CV follows the outer scheme (grouped or shuffled);
    ``estimator.alpha_choice`` applies to the LLM's ridges (``llm``), controls keep the best inner-CV mean."""
    inner = make_cv(scheme, study.cv.inner_splits, study.cv.seed, timeseries, study.timeseries.gap)
    return RidgeCV(alphas=np.asarray(study.estimator.alphas, dtype=float), cv=inner, standardize=standardize,
                   alpha_choice=alpha_choice(study, timeseries) if llm else "best")


def joint_kind(study: Study, timeseries: bool) -> str:
    """The joint estimator of a dataset (``estimator.joint``; auto: :data:`DEFAULT_JOINT` for event data,
    :data:`DEFAULT_JOINT_TIMESERIES` for time series)."""
    kind = study.estimator.joint
    if kind != "auto":
        return kind
    return DEFAULT_JOINT_TIMESERIES if timeseries else DEFAULT_JOINT


def joint_description(study: Study, timeseries: bool) -> str:
    """The joint model of a dataset in words, for the report (its kind, and how its LLM band's penalty is chosen)."""
    kind, choice = joint_kind(study, timeseries), alpha_choice(study, timeseries)
    how = {"shared_one_se": "one LLM penalty per subject, one-SE rule", "one_se": "LLM penalties by the one-SE rule"}
    return f"joint model {kind}" + (f" ({how[choice]})" if choice in how and kind != "hierarchical_pooled" else "")


def make_joint(study: Study, timeseries: bool, scheme: str, dims: tuple[int, int], standardize: np.ndarray):
    """The joint LLM + controls estimator of the study (:func:`joint_kind`), bands [LLM | controls]. The LLM band
    takes :func:`alpha_choice` (``shared_one_se`` within the subjects the caller sets: :func:`pool_labels`)."""
    inner = make_cv(scheme, study.cv.inner_splits, study.cv.seed, timeseries, study.timeseries.gap)
    slices = [slice(0, dims[0]), slice(dims[0], dims[0] + dims[1])]
    return make_joint_estimator(joint_kind(study, timeseries), slices, np.asarray(study.estimator.alphas, dtype=float),
                                inner, standardize=standardize, random_state=study.cv.seed,
                                alpha_choice=alpha_choice(study, timeseries))


def pool_labels(joint, subjects: np.ndarray) -> np.ndarray | None:
    """Who shares a penalty in a joint fit: each subject on its own when the LLM band's penalty is shared
    (``alpha_choice="shared_one_se"``), else None (the estimator's own rule over the fit's targets)."""
    return np.asarray(subjects) if joint.get_params().get("alpha_choice") == "shared_one_se" else None
