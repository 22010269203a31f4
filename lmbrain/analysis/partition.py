"""Variance partitioning of an LLM's out-of-sample R² against control features.

With R² of the LLM alone, the controls alone and both together (a banded ridge on the joint space):

- unique LLM = R²(joint) − R²(controls)
- unique controls = R²(joint) − R²(LLM)
- shared = R²(LLM) + R²(controls) − R²(joint)
- omega = 100 · (1 − clip((R²(joint) − R²(controls)) / R²(LLM), 0, 1)): the share (in %) of the LLM's R²
  that the controls account for (Feghhi et al. 2024). Undefined (NaN) where R²(LLM) <= 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def omega(r2_llm: np.ndarray, r2_controls: np.ndarray, r2_joint: np.ndarray) -> np.ndarray:
    """Percentage of the LLM's R² explained by the controls; NaN where the LLM's R² is not positive."""
    r2_llm = np.asarray(r2_llm, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (np.asarray(r2_joint, float) - np.asarray(r2_controls, float)) / r2_llm
    value = 100.0 * (1.0 - np.clip(ratio, 0.0, 1.0))
    return np.where(r2_llm > 0, value, np.nan)


def partition(r2_llm: np.ndarray, r2_controls: np.ndarray, r2_joint: np.ndarray) -> pd.DataFrame:
    """Unique, shared and omega per target (or per aggregate) from the three R² values."""
    r2_llm, r2_controls, r2_joint = (np.asarray(a, dtype=float) for a in (r2_llm, r2_controls, r2_joint))
    return pd.DataFrame(
        {
            "r2_llm": r2_llm,
            "r2_controls": r2_controls,
            "r2_joint": r2_joint,
            "unique_llm": r2_joint - r2_controls,
            "unique_controls": r2_joint - r2_llm,
            "shared": r2_llm + r2_controls - r2_joint,
            "omega": omega(r2_llm, r2_controls, r2_joint),
        }
    )
