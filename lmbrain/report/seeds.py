"""Trained models against the spread of their untrained (re-initialised) seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd

from lmbrain.results import is_untrained

#: family-table columns summarised over seeds (with a control-set suffix where a dataset has several)
QUANTITIES = ("r", "r2", "unique_llm", "omega", "omega_subject_mean")


def base_model(label: str) -> str:
    """The model name of a label without its ``:untrained-SEED`` part."""
    return str(label).split(":untrained-", 1)[0]


def seed_summary_table(family: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and model: the trained model's value of each quantity next to the mean and range (min, max)
    over its untrained seeds, and the number of seeds (0 when the study has none)."""
    columns = [c for c in family.columns if c.split(" [", 1)[0] in QUANTITIES]
    rows = []
    for (dataset, model), frame in family.assign(base=family["model"].map(base_model)).groupby(
            ["dataset", "base"], sort=True):
        trained = frame[~frame["model"].map(is_untrained)]
        seeds = frame[frame["model"].map(is_untrained)]
        row: dict = {"dataset": dataset, "model": model, "n_untrained_seeds": len(seeds)}
        for column in columns:
            values = pd.to_numeric(seeds[column], errors="coerce").to_numpy(float)
            finite = values[np.isfinite(values)]
            row[f"{column} trained"] = float(trained[column].iloc[0]) if len(trained) else np.nan
            row[f"{column} untrained mean"] = float(finite.mean()) if len(finite) else np.nan
            row[f"{column} untrained range"] = (f"[{finite.min():.3f}, {finite.max():.3f}]" if len(finite) else "")
            row[f"{column} untrained defined"] = f"{len(finite)}/{len(values)}"
        rows.append(row)
    return pd.DataFrame(rows)
