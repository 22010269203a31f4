"""The unit store: each unit's rows (parquet) and record (JSON, written last, holding the rows' sha256), read
back and verified, collected into the results table; a damaged unit is reported and recomputed."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from lmbrain.io import sha256_bytes
from lmbrain.results import SORT_COLUMNS
from lmbrain.study.plan import Unit

log = logging.getLogger("lmbrain")


#: Keys of a unit's record that describe how and when it was computed, not what (kept out of units.parquet).
BOOKKEEPING = ("seconds", "sha256", "bytes", "study_hash", "run", "finished_at", "stage_seconds")


DONE = "done"


TODO = "todo"


class UnitDamagedError(Exception):
    """A unit's files exist but cannot be trusted (the message names the file and what is wrong)."""


def unit_files(units_dir: Path, unit: Unit) -> tuple[Path, Path]:
    """A unit's record (json, written last) and rows (parquet)."""
    return units_dir / f"{unit.key}.json", units_dir / f"{unit.key}.parquet"


def read_record(path: Path) -> dict[str, Any]:
    """A unit's record; UnitDamagedError when it is not a readable JSON object."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UnitDamagedError(f"{path} is unreadable ({type(error).__name__}: {error})") from None
    if not isinstance(record, dict):
        raise UnitDamagedError(f"{path} is not a unit record (a JSON object)")
    return record


def load_unit(units_dir: Path, unit: Unit, study_hash: str, rows: bool = True
              ) -> tuple[dict[str, Any], pd.DataFrame | None] | None:
    """A finished unit's record and (with ``rows``) its rows, verified against the record's sha256; None when
    the unit never finished; UnitDamagedError when its files cannot be trusted."""
    record_path, rows_path = unit_files(units_dir, unit)
    if not record_path.exists():
        return None
    record = read_record(record_path)
    if record.get("key") != unit.key:
        raise UnitDamagedError(f"{record_path} describes unit {record.get('key')!r}, not {unit.key}")
    if record.get("study_hash", study_hash) != study_hash:
        raise UnitDamagedError(f"{record_path} belongs to study {record['study_hash']}, not {study_hash}")
    try:
        data = rows_path.read_bytes()
    except OSError as error:
        raise UnitDamagedError(f"{rows_path} is unreadable ({error.strerror or error})") from None
    if "sha256" in record and (len(data) != record.get("bytes") or sha256_bytes(data) != record["sha256"]):
        raise UnitDamagedError(f"{rows_path} does not match the size and sha256 recorded in {record_path.name}")
    if not rows:
        return record, None
    try:
        table = pd.read_parquet(io.BytesIO(data))
    except Exception as error:  # a pre-checksum unit's parquet may be truncated; pyarrow raises its own types
        raise UnitDamagedError(f"{rows_path} is not a readable parquet file ({error})") from None
    return record, table


def check_unit(units_dir: Path, unit: Unit, study_hash: str) -> str:
    """``done`` (finished, files verified), ``todo`` (never finished) or what is wrong with its files."""
    try:
        return TODO if load_unit(units_dir, unit, study_hash, rows=False) is None else DONE
    except UnitDamagedError as damage:
        return str(damage)


def unit_done(units_dir: Path, unit: Unit, study_hash: str) -> bool:
    """True when a unit's rows and its completion record are on disk and verified."""
    return check_unit(units_dir, unit, study_hash) == DONE


def discard_unit(units_dir: Path, unit: Unit) -> None:
    """Remove a unit's files, record first (so it reads as not done whatever happens next)."""
    for path in unit_files(units_dir, unit):
        path.unlink(missing_ok=True)


def report_damage(units_dir: Path, unit: Unit, reason: str) -> None:
    """Log a damaged unit (run.log and terminal) and remove its files so that it is recomputed."""
    log.warning("damaged unit %s: %s; recomputing it", unit.describe(), reason)
    discard_unit(units_dir, unit)


def collect(units: list[Unit], units_dir: Path, study_hash: str
            ) -> tuple[pd.DataFrame, pd.DataFrame, list[tuple[Unit, str]]]:
    """The units' rows (deterministic order) and records, each verified; and the (unit, reason) of those whose
    files are missing or damaged (then no table: recompute those units and collect again)."""
    tables, records, bad = [], [], []
    for unit in units:
        try:
            found = load_unit(units_dir, unit, study_hash, rows=True)
        except UnitDamagedError as damage:
            bad.append((unit, str(damage)))
            continue
        if found is None:
            bad.append((unit, f"{unit_files(units_dir, unit)[0]} is missing"))
            continue
        tables.append(found[1])
        records.append(found[0])
    if bad:
        return pd.DataFrame(), pd.DataFrame(), bad
    results = pd.concat(tables, ignore_index=True).sort_values(SORT_COLUMNS, kind="stable")
    for record in records:
        for key in ("selected", "candidates", "inner_scores"):
            if key in record:
                record[key] = json.dumps(record[key], sort_keys=True)
    unit_table = pd.DataFrame(records)
    unit_table = unit_table.drop(columns=[c for c in BOOKKEEPING if c in unit_table]).sort_values("key", kind="stable")
    return results.reset_index(drop=True), unit_table.reset_index(drop=True), []


def unit_timings(units_dir: Path, units: list[Unit], study_hash: str) -> dict[str, list[float]]:
    """Seconds of the units already finished in the folder, per unit kind (the prior of the ETA)."""
    timings: dict[str, list[float]] = {}
    for unit in units:
        record_path = unit_files(units_dir, unit)[0]
        if not record_path.exists():
            continue
        try:
            record = read_record(record_path)
        except UnitDamagedError:
            continue
        if record.get("study_hash", study_hash) == study_hash and isinstance(record.get("seconds"), int | float):
            timings.setdefault(unit.kind, []).append(float(record["seconds"]))
    return timings
