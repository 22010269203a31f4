"""Run a study: prepare features, compute every unit (resumably), collect tidy results and a manifest.

Layout of a results directory::

    results.parquet    one row per target x unit x metric (the tables and figures derive from it alone)
    units.parquet      one row per unit: what was selected inside the training folds, sizes, timings
    manifest.json      study hash, package versions, git commit, seeds, timings
    study.yaml         the study as run
    run.log            the log
    _work/units/       one parquet + one json per finished unit (the json, written last, marks it done)

Every file is written to a temporary name and renamed, so a killed run leaves no half-written file and a
rerun of the same command recomputes only the units that had not finished.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

import pandas as pd
import yaml
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from lmbrain.errors import StudyError
from lmbrain.results import SORT_COLUMNS, model_label
from lmbrain.study.compute import compute_unit
from lmbrain.study.executors import run_tasks
from lmbrain.study.inputs import study_inputs
from lmbrain.study.plan import Unit, enumerate_units, model_variants, unit_chains
from lmbrain.study.schema import Study

log = logging.getLogger("lmbrain")

PACKAGES = ("lmbrain", "numpy", "scipy", "scikit-learn", "himalaya", "torch", "transformers", "pandas", "xarray")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_parquet(path: Path, table: pd.DataFrame) -> None:
    """Write a DataFrame as parquet atomically."""
    atomic_write_bytes(path, table.to_parquet(index=False))


def atomic_write_text(path: Path, text: str) -> None:
    """Write text atomically."""
    atomic_write_bytes(path, text.encode())


def unit_done(units_dir: Path, unit: Unit) -> bool:
    """True when a unit's result and its completion record are on disk."""
    return (units_dir / f"{unit.key}.json").is_file() and (units_dir / f"{unit.key}.parquet").is_file()


def run_unit(study: Study, units_dir: Path, unit: Unit, blas_threads: int | None = None) -> tuple[str, float, bool]:
    """Compute one unit unless done; write its rows then its record. Returns (key, seconds, computed).

    ``blas_threads`` caps BLAS/torch threads in this worker (parallel executors: cores / workers), since
    oversubscribed OpenBLAS threads make LAPACK calls many times slower.
    """
    if unit_done(units_dir, unit):
        return unit.key, 0.0, False
    start = time.perf_counter()
    with threadpool_limits(blas_threads):
        table, record = compute_unit(study, unit)
    seconds = time.perf_counter() - start
    atomic_write_parquet(units_dir / f"{unit.key}.parquet", table)
    record = {**asdict(unit), "key": unit.key, "seconds": seconds, **record}
    atomic_write_text(units_dir / f"{unit.key}.json", json.dumps(record, sort_keys=True, default=str))
    return unit.key, seconds, True


def run_chain(study: Study, units_dir: Path, chain: list[Unit], blas_threads: int | None = None
              ) -> list[tuple[str, float, bool]]:
    """Run units that share an in-fold layer selection one after the other, in one worker (each unit is
    still written, and resumable, on its own)."""
    return [run_unit(study, units_dir, unit, blas_threads) for unit in chain]


def prepare_features(study: Study) -> dict[str, float]:
    """Extract (or find in the cache) every model's features on every dataset, in this process."""
    timings: dict[str, float] = {}
    jobs = [(entry, model, seed) for entry in study.datasets for model, seed in model_variants(study)]
    for entry, model, seed in tqdm(jobs, desc="features", unit="model", disable=None):
        start = time.perf_counter()
        label = model_label(model, seed)
        log.info("features: %s on %s", label, entry.name)
        study_inputs(study).llm_layers(entry.name, model, seed)
        timings[f"{entry.name}/{label}"] = time.perf_counter() - start
    return timings


def collect(units: list[Unit], units_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Concatenate the units' rows in a deterministic order, and their records."""
    tables = [pd.read_parquet(units_dir / f"{u.key}.parquet") for u in units]
    results = pd.concat(tables, ignore_index=True).sort_values(SORT_COLUMNS, kind="stable")
    records = [json.loads((units_dir / f"{u.key}.json").read_text()) for u in units]
    for record in records:
        for key in ("selected", "candidates", "inner_scores"):
            if key in record:
                record[key] = json.dumps(record[key], sort_keys=True)
    unit_table = pd.DataFrame(records).drop(columns=["seconds"]).sort_values("key", kind="stable")
    return results.reset_index(drop=True), unit_table.reset_index(drop=True)


def git_commit() -> str | None:
    """The commit of the lmbrain checkout, if it is one."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def package_versions() -> dict[str, str]:
    """Versions of the packages that shape the results."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def setup_logging(out_dir: Path) -> logging.Handler:
    """Log to ``out_dir/run.log`` (appending across resumed runs)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(out_dir / "run.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


def plan(study: Study, out_dir: Path) -> pd.DataFrame:
    """The units of a study and whether each is already done (a dry run)."""
    units_dir = out_dir / "_work" / "units"
    units = enumerate_units(study)
    return pd.DataFrame(
        [{**asdict(u), "key": u.key, "done": unit_done(units_dir, u)} for u in units]
    )


def run_study(
    study: Study,
    out_dir: str | Path,
    executor: str = "sequential",
    n_jobs: int = 2,
    scheduler: str | None = None,
    study_source: str | None = None,
) -> Path:
    """Run every unit of a study not yet done, then write ``results.parquet``, ``units.parquet``, the manifest."""
    out_dir = Path(out_dir)
    handler = setup_logging(out_dir)
    try:
        previous = out_dir / "study.yaml"
        text = study_source or yaml.safe_dump(study.model_dump(mode="json"), sort_keys=False)
        if previous.is_file():
            old = Study.model_validate(yaml.safe_load(previous.read_text()))
            if old.digest() != study.digest():
                raise StudyError(
                    f"{out_dir} holds results of a different study (hash {old.digest()} != {study.digest()}); "
                    "choose another --out or delete it"
                )
        atomic_write_text(previous, text)
        start = time.perf_counter()
        log.info("study %s (%s): start, executor=%s", study.name, study.digest(), executor)
        feature_times = prepare_features(study)
        units = enumerate_units(study)
        units_dir = out_dir / "_work" / "units"
        for stale in units_dir.glob(".*.tmp"):  # left by a killed run; never a result
            stale.unlink()
        todo = [u for u in units if not unit_done(units_dir, u)]
        log.info("%d units, %d to compute", len(units), len(todo))
        blas = None if executor == "sequential" else max(1, (os.cpu_count() or 1) // max(n_jobs, 1))
        task = functools.partial(run_chain, study, units_dir, blas_threads=blas)
        unit_times: dict[str, float] = {}
        bar = tqdm(total=len(todo), desc="units", unit="unit", disable=None)
        chains = unit_chains(study, todo)
        for done in run_tasks(task, chains, executor=executor, n_jobs=n_jobs, scheduler=scheduler):
            for key, seconds, _ in done:
                unit_times[key] = seconds
                bar.update()
        bar.close()
        results, unit_table = collect(units, units_dir)
        atomic_write_parquet(out_dir / "results.parquet", results)
        atomic_write_parquet(out_dir / "units.parquet", unit_table)
        manifest = {
            "study": study.name,
            "study_hash": study.digest(),
            "git_commit": git_commit(),
            "packages": package_versions(),
            "platform": platform.platform(),
            "argv": sys.argv,
            "seeds": {"cv": study.cv.seed, "statistics": study.statistics.seed},
            "statistics": study.statistics.model_dump(),
            "n_units": len(units),
            "n_units_computed_this_run": len(todo),
            "timings_seconds": {
                "total_this_run": time.perf_counter() - start,
                "features": feature_times,
                "units_this_run": sum(unit_times.values()),
            },
            "datasets": {e.name: study_inputs(study).dataset(e.name).summary() for e in study.datasets},
        }
        atomic_write_text(out_dir / "manifest.json", json.dumps(manifest, indent=2, default=str))
        log.info("study %s: done in %.1f s", study.name, manifest["timings_seconds"]["total_this_run"])
        return out_dir
    finally:
        log.removeHandler(handler)
        handler.close()
