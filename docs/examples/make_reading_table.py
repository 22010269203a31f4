"""Write the worked example's corpus: Natural Stories reading times as one plain CSV (docs/data.md).

The CSV has a shape lmbrain has no dedicated reader for: one row per word with ``story``, ``sentence`` (counted
from sentence-final punctuation), ``word_nr`` (1-based position in the story), ``word`` and two response
columns, ``rt_mean`` and ``rt_geomean`` (mean and geometric-mean self-paced reading time over readers, ms). As in
many reading-time corpora, the first word of each story has no reading time: it is left empty.

    python docs/examples/make_reading_table.py $LMBRAIN_DATA_DIR/ns_reading/reading_times.csv

The CSV goes in a folder of its own under the data directory (a spec's files lie there), outside the repository
(the source is read from ``$LMBRAIN_DATA_DIR/naturalstories``, CC BY-NC-SA 4.0).
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def build(data_dir: Path) -> pd.DataFrame:
    """The reshaped table, one row per word in reading order."""
    folder = data_dir / "naturalstories"
    info = pd.read_csv(folder / "processed_wordinfo.tsv", sep="\t", quoting=csv.QUOTE_NONE,
                       keep_default_na=False, na_values=[""])
    info = info.sort_values(["item", "zone"]).reset_index(drop=True)
    ends = info["word"].str.contains(r"[.!?][\"')]*$", regex=True)
    sentence = ends.groupby(info["item"]).transform(lambda e: e.shift(fill_value=False).cumsum()) + 1
    table = pd.DataFrame({
        "story": [f"story{i:02d}" for i in info["item"]],
        "sentence": sentence.astype(int),
        "word_nr": info["zone"].astype(int),
        "word": info["word"],
        "rt_mean": info["meanItemRT"].round(1),
        "rt_geomean": info["gmeanItemRT"].round(1),
    })
    first = table["word_nr"] == table.groupby("story")["word_nr"].transform("min")
    table.loc[first, ["rt_mean", "rt_geomean"]] = np.nan
    return table


def main() -> None:
    """Write the CSV named on the command line."""
    if len(sys.argv) != 2:
        raise SystemExit("usage: python docs/examples/make_reading_table.py OUT.csv")
    out = Path(sys.argv[1])
    out.parent.mkdir(parents=True, exist_ok=True)
    table = build(Path(os.environ.get("LMBRAIN_DATA_DIR", "../shared/datasets")))
    tmp = out.with_name(f".{out.name}.tmp")
    table.to_csv(tmp, index=False)
    tmp.replace(out)
    print(f"wrote {out}: {len(table)} words, {table['story'].nunique()} stories, "
          f"{int(table['rt_mean'].isna().sum())} words without a reading time")


if __name__ == "__main__":
    main()
