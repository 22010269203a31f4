"""Variance partitioning of an LLM's out-of-sample R² against control features.

With R² of the LLM alone, the controls alone and both together (a banded ridge on the joint space):

- unique LLM = R²(joint) − R²(controls)
- unique controls = R²(joint) − R²(LLM)
- shared = R²(LLM) + R²(controls) − R²(joint)
- omega = 100 · (1 − clip((R²(joint) − R²(controls)) / R²(LLM), 0, 1)): the share (in %) of the LLM's R²
  that the controls account for (Feghhi et al. 2024). Undefined (NaN) where R²(LLM) <= 0, and also where
  the LLM is not above chance (:func:`omega_defined`: the lower bound of its R²'s confidence interval is
  not above 0): a share of an R² indistinguishable from 0 means nothing (an untrained model with R² 5e-5
  would otherwise print an omega of 8 %). The report prints "not defined" there.

Confidence intervals: :func:`lmbrain.analysis.stats.bootstrap_partition` (per target, resampling blocks of
samples) and :func:`lmbrain.analysis.stats.bootstrap_partition_subjects` (over subjects, from their means).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def omega_defined(r2_llm_ci_low: np.ndarray) -> np.ndarray:
    """Where omega is defined: the LLM is above chance, i.e. the lower CI bound of its R² is above 0."""
    low = np.asarray(r2_llm_ci_low, dtype=float)
    return np.isfinite(low) & (low > 0)


def omega(r2_llm: np.ndarray, r2_controls: np.ndarray, r2_joint: np.ndarray,
          llm_above_chance: np.ndarray | None = None) -> np.ndarray:
    """Percentage of the LLM's R² explained by the controls; NaN where not defined.

    Not defined where the LLM's R² is not positive or, with ``llm_above_chance`` (e.g. :func:`omega_defined`
    of the lower bound of its CI), where the LLM is not above chance.
    """
    r2_llm = np.asarray(r2_llm, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (np.asarray(r2_joint, float) - np.asarray(r2_controls, float)) / r2_llm
    value = 100.0 * (1.0 - np.clip(ratio, 0.0, 1.0))
    defined = r2_llm > 0
    if llm_above_chance is not None:
        defined = defined & np.asarray(llm_above_chance, dtype=bool)
    return np.where(defined, value, np.nan)


def partition(r2_llm: np.ndarray, r2_controls: np.ndarray, r2_joint: np.ndarray,
              llm_above_chance: np.ndarray | None = None) -> pd.DataFrame:
    """Unique, shared and omega per target (or per aggregate) from the three R² values (see :func:`omega`)."""
    r2_llm, r2_controls, r2_joint = (np.asarray(a, dtype=float) for a in (r2_llm, r2_controls, r2_joint))
    return pd.DataFrame(
        {
            "r2_llm": r2_llm,
            "r2_controls": r2_controls,
            "r2_joint": r2_joint,
            "unique_llm": r2_joint - r2_controls,
            "unique_controls": r2_joint - r2_llm,
            "shared": r2_llm + r2_controls - r2_joint,
            "omega": omega(r2_llm, r2_controls, r2_joint, llm_above_chance),
        }
    )
