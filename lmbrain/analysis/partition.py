"""Variance partitioning of an LLM's out-of-sample R² against control features.

With R² of the LLM alone, the controls alone and both together (a banded ridge on the joint space):

- unique LLM = R²(joint) − R²(controls)
- unique controls = R²(joint) − R²(LLM)
- shared = R²(LLM) + R²(controls) − R²(joint)
- omega = 100 · (1 − (R²(joint) − R²(controls)) / R²(LLM)): the share (in %) of the LLM's R² that the
  controls account for (Feghhi et al. 2024), as measured, never clipped: above 100 where the joint model lost
  to the controls alone (R²(joint) < R²(controls): a negative unique LLM R²), below 0 where the LLM's unique R²
  exceeds its own R². Both say something about the estimate (a joint model that cannot recover its own best
  part, or controls that only add noise), so the report prints the value and says which (:func:`omega_note`).
  Undefined (NaN) where R²(LLM) <= 0, and also where the LLM is not above chance (:func:`omega_defined`: the
  lower bound of its R²'s confidence interval is not above 0): a share of an R² indistinguishable from 0 means
  nothing (an untrained model with R² 5e-5 would otherwise print an omega of 8 %). The report prints "not
  defined" there.

Two aggregates over subjects: the omega of the subjects' mean R²s (a ratio of means, the report's headline
omega) and the mean of per-subject omegas (:func:`omega_subject_mean`, each subject's omega from its own mean
R²s over its targets; the aggregate published values of Feghhi et al. 2024 are of this kind).

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
    value = 100.0 * (1.0 - ratio)
    defined = r2_llm > 0
    if llm_above_chance is not None:
        defined = defined & np.asarray(llm_above_chance, dtype=bool)
    return np.where(defined, value, np.nan)


#: what an omega outside [0, 100] means, in words (sentences, and the shorter forms of table cells)
LOST_TO_CONTROLS = "the joint model lost to the controls"
UNIQUE_ABOVE_LLM = "the LLM's unique R² exceeds its own R²"
LOST_SHORT, ABOVE_SHORT = "joint lost to controls", "unique R² above the LLM's"


def omega_note(value: float, short: bool = False) -> str:
    """Why an omega lies outside [0, 100], in words ('' inside it or where it is not defined); ``short``: the
    table cells' form."""
    if not np.isfinite(value):
        return ""
    if value > 100:
        return LOST_SHORT if short else LOST_TO_CONTROLS
    return (ABOVE_SHORT if short else UNIQUE_ABOVE_LLM) if value < 0 else ""


def format_omega(value: float, digits: int = 0) -> str:
    """An omega with ``digits`` decimals, more where rounding would print a value outside [0, 100] as 100 or 0
    (103 stays 103, 100.04 becomes 100.04, never '100'; within 0.0005 of a bound '> 100.000' / '< 0.000'); ''
    where not defined."""
    if not np.isfinite(value):
        return ""
    text = f"{value:.{digits}f}"
    while (value > 100 or value < 0) and float(text) in (100.0, 0.0) and digits < 3:
        digits += 1
        text = f"{value:.{digits}f}"
    if (value > 100 or value < 0) and float(text) in (100.0, 0.0):  # within 0.0005 of a bound: say on which side
        return f"> {100:.{digits}f}" if value > 100 else f"< {0:.{digits}f}"
    return "0" if text in ("-0", "-0.0") and value == 0 else text


def omega_subject_mean(r2_llm: np.ndarray, r2_controls: np.ndarray, r2_joint: np.ndarray) -> tuple[float, int]:
    """The mean of per-subject omegas (inputs: one subject-mean R² per subject) and the number of subjects it
    averages: subjects whose omega is not defined (R²(LLM) <= 0, or a non-finite R²) are left out; NaN if none."""
    values = omega(r2_llm, r2_controls, r2_joint)
    finite = values[np.isfinite(values)]
    return (float(finite.mean()) if len(finite) else np.nan), len(finite)


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
