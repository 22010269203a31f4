"""The study's parquet files: compact, and read back exactly as written (values bit for bit, same dtypes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from lmbrain.io import atomic_write_parquet
from lmbrain.results import COLUMNS, SORT_COLUMNS, load_results

SHIPPED = Path(__file__).resolve().parents[2] / "reports" / "default"


def results_like(n_targets: int = 300, seed: int = 0) -> pd.DataFrame:
    """A results frame in the study's schema, with values no compressor can round: random doubles, NaN, ±inf,
    -0.0, subnormals and repeated p-values."""
    rng = np.random.default_rng(seed)
    rows = []
    for dataset, subject, model, feature_set, per_layer, layer in [
        ("d1", "s1", "m", "llm", False, "layer=*"), ("d1", "s2", "m:untrained-0", "llm+word_position", True,
                                                      "layer=3"), ("d2", "*", "-", "word_position", False, "-")]:
        for target in range(n_targets):
            for metric in ("r", "r2", "p_r"):
                rows.append((dataset, subject, model, feature_set, "grouped", per_layer, layer, f"t{target}", metric))
    frame = pd.DataFrame(rows, columns=COLUMNS[:-1])
    values = rng.normal(0, 0.1, len(frame))
    values[frame["metric"].eq("p_r").to_numpy()] = rng.integers(1, 1001, frame["metric"].eq("p_r").sum()) / 1001
    values[:6] = [np.nan, np.inf, -np.inf, -0.0, 5e-324, np.finfo(float).max]
    frame["value"] = values
    frame["roi"] = np.where(frame["dataset"] == "d1", "LATL", "")
    return frame.sort_values(SORT_COLUMNS, kind="stable", ignore_index=True)


def assert_exact(back: pd.DataFrame, written: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(back, written, check_exact=True)
    for column in written.columns[written.dtypes == np.float64]:  # bit for bit, NaN payloads and -0.0 included
        assert np.array_equal(back[column].to_numpy().view(np.int64), written[column].to_numpy().view(np.int64))


def test_results_round_trip_exactly_with_the_dtypes_the_report_reads(tmp_path):
    frame = results_like()
    atomic_write_parquet(tmp_path / "results.parquet", frame)
    back = pd.read_parquet(tmp_path / "results.parquet")
    assert_exact(back, frame)
    assert back["value"].dtype == np.float64 and back["per_layer"].dtype == bool
    # strings come back as strings, not categoricals (groupby/unique behave as on the frame written)
    assert all(pd.api.types.is_string_dtype(back[c]) and not isinstance(back[c].dtype, pd.CategoricalDtype)
               for c in COLUMNS if c not in ("value", "per_layer"))
    # smaller than pandas' default parquet of the same frame (float bytes split, zstd)
    assert (tmp_path / "results.parquet").stat().st_size < len(frame.to_parquet(index=False))
    column = pq.read_metadata(tmp_path / "results.parquet").row_group(0).column(COLUMNS.index("value"))
    assert column.compression == "ZSTD" and "BYTE_STREAM_SPLIT" in column.encodings


def test_shipped_results_and_units_rewritten_read_back_identical(tmp_path):
    results, units, _ = load_results(SHIPPED)
    atomic_write_parquet(tmp_path / "results.parquet", results)
    atomic_write_parquet(tmp_path / "units.parquet", units)
    assert_exact(pd.read_parquet(tmp_path / "results.parquet"), results)
    assert_exact(pd.read_parquet(tmp_path / "units.parquet"), units)
    assert (tmp_path / "results.parquet").stat().st_size < len(results.to_parquet(index=False))


def test_an_empty_frame_round_trips(tmp_path):
    frame = results_like().iloc[:0]
    atomic_write_parquet(tmp_path / "empty.parquet", frame)
    assert_exact(pd.read_parquet(tmp_path / "empty.parquet"), frame)
