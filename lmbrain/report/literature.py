"""Published values for the same datasets and controls (``data/literature.yaml``), shown next to this study's
numbers and labelled as such."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict

from lmbrain.errors import LmbrainError


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
    """This study's numbers comparable to a published one (same dataset; for omega the same controls; trained or
    untrained as the published model): '; '-joined 'model: value', or ''."""
    if rows.empty:
        return ""
    untrained = "untrained" in value.model
    frame = rows[(rows["dataset"] == value.dataset) & (rows["untrained"] == untrained)]
    if value.quantity == "omega":
        frame = frame[frame["controls"] == (value.controls or "")]
        column, digits = "omega", 0
    else:
        frame, column, digits = frame.drop_duplicates("model"), "r_ceiled", 3
    parts = []
    for base, group in frame.groupby("base", sort=True):
        numbers = group[column].to_numpy(float)
        finite = numbers[np.isfinite(numbers)]
        label = "r / ceiling" if column == "r_ceiled" else "Ω"
        if not len(finite):
            parts.append(f"{base}: {'no noise ceiling on this dataset' if column == 'r_ceiled' else 'Ω not defined'}")
        elif len(group) == 1:
            parts.append(f"{base}: {label} {finite[0]:.{digits}f}")
        else:
            parts.append(f"{base}: {label} {finite.mean():.{digits}f} (mean of {len(finite)}/{len(group)} seeds)")
    return "; ".join(parts)


def literature_table(datasets: list[str], values: list[LiteratureValue] | None = None,
                     rows: pd.DataFrame | None = None) -> pd.DataFrame:
    """The published values for a study's datasets (dataset, model, quantity, value, controls, metric, citation,
    source) next to this study's comparable numbers (from :func:`lmbrain.report.headline.headline_rows`)."""
    values = load_literature() if values is None else values
    rows = pd.DataFrame() if rows is None else rows
    out = [{"dataset": v.dataset, "published on": v.published_dataset, "model": v.model,
            "quantity": v.quantity, "published value": v.value if v.spread is None else f"{v.value:g} ± {v.spread:g}",
            "controls": v.controls or "", "this study": this_study(v, rows), "what (published)": v.metric,
            "citation": v.citation, "read from": v.source, "note": v.note}
           for v in values if v.dataset in set(datasets)]
    columns = ["dataset", "published on", "model", "quantity", "published value", "controls", "this study",
               "what (published)", "citation", "read from", "note"]
    return pd.DataFrame(out, columns=columns)
