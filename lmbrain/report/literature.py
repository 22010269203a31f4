"""Published values for the same datasets and controls (``data/literature.yaml``), shown next to this study's
numbers and labelled as such."""

from __future__ import annotations

from importlib import resources

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


def literature_table(datasets: list[str], values: list[LiteratureValue] | None = None) -> pd.DataFrame:
    """The published values for a study's datasets: dataset, model, quantity, value, controls, metric,
    citation, source."""
    values = load_literature() if values is None else values
    rows = [{"dataset": v.dataset, "published on": v.published_dataset, "model": v.model,
             "quantity": v.quantity, "value": v.value if v.spread is None else f"{v.value:g} ± {v.spread:g}",
             "controls": v.controls or "", "what": v.metric, "citation": v.citation, "read from": v.source}
            for v in values if v.dataset in set(datasets)]
    columns = ["dataset", "published on", "model", "quantity", "value", "controls", "what", "citation", "read from"]
    return pd.DataFrame(rows, columns=columns)
