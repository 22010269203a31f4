"""Published values for the same datasets and controls (``data/literature.yaml``), shown next to this study's
numbers and labelled as such."""

from __future__ import annotations

from importlib import resources
from typing import Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict

from lmbrain.analysis.partition import format_omega
from lmbrain.errors import LmbrainError

#: this study's mean of per-subject omegas clipped to [0, 100] per subject, set next to a published one computed so
CLIPPED_COLUMN = "omega_subject_mean_clipped"
#: how a published omega aggregates over subjects, and this study's column computed the same way
OMEGA_DEFINITIONS = {
    "ratio_of_means": ("omega of the mean R²s over subjects", "omega", "Ω"),
    "mean_of_subjects": ("mean of per-subject omegas (each from the subject's mean R²s)", "omega_subject_mean",
                         "Ω per-subject mean"),
}


class LiteratureValue(BaseModel):
    """One published number with its citation and where it was read."""

    model_config = ConfigDict(extra="forbid")

    dataset: str
    published_dataset: str
    model: str
    quantity: str
    value: float
    spread: float | None = None
    controls: str | None = None
    #: for omega: how the published value aggregates over subjects (:data:`OMEGA_DEFINITIONS`)
    omega_definition: Literal["ratio_of_means", "mean_of_subjects"] = "ratio_of_means"
    metric: str
    citation: str
    source: str
    note: str = ""


def load_literature(text: str | None = None) -> list[LiteratureValue]:
    """The packaged literature values (or those of a YAML ``text``); a malformed entry is an error naming it."""
    if text is None:
        text = resources.files("lmbrain.report").joinpath("data/literature.yaml").read_text()
    entries = (yaml.safe_load(text) or {}).get("entries", [])
    values = []
    for i, entry in enumerate(entries):
        try:
            values.append(LiteratureValue(**entry))
        except Exception as error:
            raise LmbrainError(f"literature.yaml entry {i} ({entry.get('model', '?')} on "
                               f"{entry.get('dataset', '?')}): {error}") from error
    return values


def this_study(value: LiteratureValue, rows: pd.DataFrame) -> str:
    """This study's numbers comparable to a published one (same dataset; for omega the same controls and the same
    definition over subjects, :data:`OMEGA_DEFINITIONS`; trained or untrained as the published model): '; '-joined
    'model: value', or ''."""
    if rows.empty:
        return ""
    untrained = "untrained" in value.model
    frame = rows[(rows["dataset"] == value.dataset) & (rows["untrained"] == untrained)]
    if value.quantity == "omega":
        frame = frame[frame["controls"] == (value.controls or "")]
        _, column, label = OMEGA_DEFINITIONS[value.omega_definition]
    else:
        frame, column, label = frame.drop_duplicates("model"), "r_ceiled", "r / ceiling"
    if column not in frame.columns:
        return ""

    def text(number: float) -> str:
        return f"{number:.3f}" if column == "r_ceiled" else format_omega(number)

    clipped = CLIPPED_COLUMN if column == "omega_subject_mean" and CLIPPED_COLUMN in frame.columns else None
    parts = []
    for base, group in frame.groupby("base", sort=True):
        numbers = group[column].to_numpy(float)
        finite = numbers[np.isfinite(numbers)]
        seeds = f" (mean of {len(finite)}/{len(group)} seeds)" if len(group) > 1 else ""
        if not len(finite):
            parts.append(f"{base}: {'no noise ceiling on this dataset' if column == 'r_ceiled' else 'Ω not defined'}")
            continue
        part = f"{base}: {label} {text(finite.mean())}{seeds}"
        if clipped:  # the published per-subject omegas were clipped to [0, 100]: ours the same way, labelled
            values = group[clipped].to_numpy(float)
            values = values[np.isfinite(values)]
            if len(values):
                part += f" (with each subject's Ω clipped to 0–100 as published: {text(values.mean())})"
        parts.append(part)
    return "; ".join(parts)


def literature_table(datasets: list[str], values: list[LiteratureValue] | None = None,
                     rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """The published values for a study's datasets (dataset, model, quantity, value, controls, for omega its
    definition over subjects, metric, citation, source) next to this study's comparable numbers, computed the same
    way (from :func:`lmbrain.report.headline.headline_rows`)."""
    values = load_literature() if values is None else values
    rows = pd.DataFrame() if rows is None else rows
    out = [{"dataset": v.dataset, "published on": v.published_dataset, "model": v.model,
            "quantity": v.quantity, "published value": v.value if v.spread is None else f"{v.value:g} ± {v.spread:g}",
            "controls": v.controls or "",
            "Ω over subjects (both)": OMEGA_DEFINITIONS[v.omega_definition][0] if v.quantity == "omega" else "",
            "this study": this_study(v, rows), "what (published)": v.metric,
            "citation": v.citation, "read from": v.source, "note": v.note}
           for v in values if v.dataset in set(datasets)]
    columns = ["dataset", "published on", "model", "quantity", "published value", "controls",
               "Ω over subjects (both)", "this study", "what (published)", "citation", "read from", "note"]
    return pd.DataFrame(out, columns=columns)
