"""Run a study: prepare features, compute every unit (resumably), collect tidy results and a manifest.

Layout of a results directory::

    results.parquet    one row per target x unit x metric (the tables and figures derive from it alone)
    units.parquet      one row per unit: what was selected inside the training folds, sizes, timings
    manifest.json      study hash, package versions, git commit, seeds, timings of every run into the folder, and
                       the sha256 of results.parquet and units.parquet (``files``), checked by every reader
    study.yaml         the study as run
    run.log            the log (appended by every run)
    _work/units/       one parquet + one json per finished unit (the json, written last, marks it done and
                       holds the parquet's sha256 and the study's hash)
    _work/runs.json    every run into the folder: start, executor, units computed, seconds, status
    _work/lock         held by the run writing into the folder (a second run refuses to start)

Every file is written to a temporary name and renamed, so a killed run leaves no half-written file and a
rerun of the same command recomputes only the units that had not finished. A unit whose files are damaged
(its parquet does not match the sha256 in its record, its record is unreadable) is reported and recomputed.
A folder is refused only when it holds finished units or results of another study.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
import os
import platform
import socket
import subprocess
import sys
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import asdict
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

import pandas as pd
import yaml
from threadpoolctl import threadpool_limits

from lmbrain.errors import RunError, StudyError, UsageError, error_message
from lmbrain.io import atomic_write_bytes, atomic_write_text, parquet_bytes, sha256_bytes
from lmbrain.progress import FILE_ONLY, PROGRESS, KindETA, duration, eta_text, progress
from lmbrain.results import RESULTS_FILE, SORT_COLUMNS, UNITS_FILE, file_checksum, model_label
from lmbrain.study.compute import compute_unit
from lmbrain.study.executors import check_executor, run_tasks, unit_threads
from lmbrain.study.inputs import study_inputs
from lmbrain.study.plan import Unit, enumerate_units, model_variants, unit_chains
from lmbrain.study.schema import Study
from lmbrain.study.stages import stage_table, sum_stages

log = logging.getLogger("lmbrain")

PACKAGES = ("lmbrain", "numpy", "scipy", "scikit-learn", "himalaya", "torch", "transformers", "pandas", "xarray")
#: Keys of a unit's record that describe how and when it was computed, not what (kept out of units.parquet).
BOOKKEEPING = ("seconds", "sha256", "bytes", "study_hash", "run", "finished_at", "stage_seconds")
DONE = "done"
TODO = "todo"


# -- unit files --------------------------------------------------------------------------------------
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


@contextlib.contextmanager
def thread_caps(threads: int | None) -> Iterator[None]:
    """Cap BLAS/OpenMP threads (threadpoolctl) and torch's intra-op threads to ``threads`` for a block."""
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    with threadpool_limits(threads):
        torch.set_num_threads(threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)


def run_unit(study: Study, units_dir: Path, unit: Unit, blas_threads: int | None = None, run_id: str | None = None
             ) -> tuple[str, float, bool]:
    """Compute one unit unless done; write its rows then its record. Returns (key, seconds, computed).

    ``blas_threads`` caps BLAS/torch threads while computing (every executor passes the same number, so
    results do not depend on the executor; oversubscribed OpenBLAS threads make LAPACK calls much slower).
    """
    digest = study.digest()
    if unit_done(units_dir, unit, digest):
        return unit.key, 0.0, False
    start = time.perf_counter()
    try:
        with thread_caps(blas_threads):
            table, record = compute_unit(study, unit)
    except Exception as error:
        error.add_note(f"while computing unit {unit.describe()} ({unit.key})")
        raise
    seconds = time.perf_counter() - start
    record_path, rows_path = unit_files(units_dir, unit)
    data = table.to_parquet(index=False)
    atomic_write_bytes(rows_path, data)
    record = {**asdict(unit), "key": unit.key, "seconds": seconds, **record, "study_hash": digest,
              "sha256": sha256_bytes(data), "bytes": len(data), "run": run_id, "finished_at": time.time()}
    atomic_write_text(record_path, json.dumps(record, sort_keys=True, default=str))
    return unit.key, seconds, True


def run_chain(study: Study, units_dir: Path, chain: list[Unit], blas_threads: int | None = None,
              run_id: str | None = None) -> list[tuple[str, float, bool]]:
    """Run units that share an in-fold layer selection one after the other, in one worker (each unit is
    still written, and resumable, on its own)."""
    return [run_unit(study, units_dir, unit, blas_threads, run_id) for unit in chain]


def prepare_features(study: Study) -> dict[str, float]:
    """Extract (or find in the cache) every model's features on every dataset, in this process."""
    timings: dict[str, float] = {}
    jobs = [(entry, model, seed) for entry in study.datasets for model, seed in model_variants(study)]
    if not jobs:
        return prepare_model_controls(study)
    with progress("features", len(jobs), "extraction", logger=log,
                  eta=lambda: (None, "each extraction logs its own")) as stage:
        for entry, model, seed in jobs:
            start = time.perf_counter()
            label = model_label(model, seed)
            stage.set_note(f"now: {label} on {entry.name}")
            log.info("features: %s on %s", label, entry.name)
            study_inputs(study).llm_layers(entry.name, model, seed)
            timings[f"{entry.name}/{label}"] = time.perf_counter() - start
            stage.update()
    timings.update(prepare_model_controls(study))
    return timings


def prepare_model_controls(study: Study) -> dict[str, float]:
    """Compute (or find in the cache) every control built by a language model (surprisal, entropy) in this
    process, so that workers only read it from the cache."""
    from lmbrain.features.controls import control_features, control_info

    inputs = study_inputs(study)
    timings: dict[str, float] = {}
    for entry in study.datasets:
        names = dict.fromkeys(c for fs in entry.control_sets for c in fs.controls if control_info(c).model_kind)
        for name in names:
            start = time.perf_counter()
            log.info("control %s on %s", name, entry.name)
            control_features(inputs.dataset(entry.name), name, {name: inputs.control_options(entry.name, name)})
            timings[f"{entry.name}/control:{name}"] = time.perf_counter() - start
    return timings


def context_policies(study: Study) -> dict[str, dict[str, dict[str, str]]]:
    """Per dataset and model label: the context policy requested, the one run, and why (manifest
    ``context_policies``)."""
    inputs = study_inputs(study)
    return {entry.name: {model_label(model, seed): inputs.context_policy(entry.name, model, seed).as_dict()
                         for model, seed in model_variants(study)}
            for entry in study.datasets}


def model_catalog(study: Study) -> dict[str, dict[str, Any]]:
    """What each model of the study is (manifest ``models``): family, kind, training, quantisation, source."""
    from lmbrain.features.registry import describe_model

    return {model_label(model, seed): describe_model(model, seed) for model, seed in model_variants(study)}


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


# -- the results folder ------------------------------------------------------------------------------
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


class _TerminalFilter(logging.Filter):
    """Warnings and errors; progress lines too when the terminal shows no progress bar (not a TTY)."""

    def __init__(self, stream: TextIO, progress_lines: bool = True) -> None:
        super().__init__()
        try:
            self.tty = stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self.progress_lines = progress_lines

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether the record is shown on the terminal."""
        if getattr(record, FILE_ONLY, False):
            return False
        if record.levelno >= logging.WARNING:
            return True
        return bool(getattr(record, PROGRESS, False)) and self.progress_lines and not self.tty


def _log_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                 file: TextIO | None = None, line: str | None = None) -> None:
    """``warnings.showwarning`` during a run: into the log (run.log and the terminal)."""
    log.warning("%s: %s", category.__name__, message)


class _LogFile(logging.FileHandler):
    """run.log: a record that cannot be written (a full disk) is dropped, not printed with a traceback."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging.Handler API)
        """Drop the record."""


@contextlib.contextmanager
def run_logging(out_dir: Path, terminal_progress: bool = True) -> Iterator[None]:
    """Log to ``out_dir/run.log`` (appending across runs) and to stderr (warnings, errors and, without a TTY and
    with ``terminal_progress``, the progress lines); Python warnings raised meanwhile are logged too."""
    out_dir.mkdir(parents=True, exist_ok=True)
    to_file = _LogFile(out_dir / "run.log", encoding="utf-8")
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    terminal = logging.StreamHandler(sys.stderr)
    terminal.addFilter(_TerminalFilter(sys.stderr, terminal_progress))
    terminal.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S"))
    level = log.level
    log.addHandler(to_file)
    log.addHandler(terminal)
    log.setLevel(logging.INFO)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _log_warning
            yield
    finally:
        log.removeHandler(terminal)
        log.removeHandler(to_file)
        log.setLevel(level)
        to_file.close()


@contextlib.contextmanager
def output_lock(out_dir: Path) -> Iterator[None]:
    """Hold ``out_dir/_work/lock`` for a run; refuse when another live run holds it (two writers would race)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    path = out_dir / "_work" / "lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            raise UsageError(
                f"{out_dir} is being written by another lmbrain run ({holder}); wait for it to end or choose "
                "another --out"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _folder_study(path: Path) -> str | None:
    """The hash of the study in a results folder's study.yaml; None when there is none, '?' if unreadable."""
    if not path.is_file():
        return None
    try:
        return Study.model_validate(yaml.safe_load(path.read_text(encoding="utf-8"))).digest()
    except Exception:  # an older or hand-edited study.yaml: its study cannot be told
        return "?"


def check_folder(study: Study, out_dir: Path) -> str | None:
    """Refuse (StudyError) a results folder holding finished units or results of another study, reading only:
    nothing is written there, so a refused folder is left as it was. Returns the hash of the folder's own
    study.yaml (None when it has none)."""
    digest = study.digest()
    old = _folder_study(out_dir / "study.yaml")
    foreign = 0
    for path in sorted((out_dir / "_work" / "units").glob("*.json")):
        try:
            owner = read_record(path).get("study_hash", old)  # records without a hash: the folder's study
        except UnitDamagedError:
            continue  # unreadable: recomputed if it is one of this study's units
        foreign += owner != digest
    try:
        published = json.loads((out_dir / "manifest.json").read_text(encoding="utf-8")).get("study_hash")
    except (OSError, ValueError, AttributeError):
        published = None
    if foreign or published not in (None, digest):
        what = f"{foreign} finished units" if foreign else "the results"
        other = old if old not in (None, "?", digest) else published if published not in (None, digest) else "unknown"
        raise StudyError(
            f"{out_dir} holds {what} of a different study (hash {other} != {digest}); choose another --out or "
            "delete it"
        )
    return old


def check_lock(out_dir: Path) -> None:
    """Refuse (UsageError) a results folder whose lock another live run holds, without writing to it."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        return
    path = out_dir / "_work" / "lock"
    try:
        handle = open(path, encoding="utf-8")  # read-only: the lock file is not rewritten
    except OSError:
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = handle.read().strip() or "?"
            raise UsageError(
                f"{out_dir} is being written by another lmbrain run ({holder}); wait for it to end or choose "
                "another --out"
            ) from None
        fcntl.flock(handle, fcntl.LOCK_UN)


def claim_folder(study: Study, out_dir: Path, text: str) -> None:
    """Write ``study.yaml`` into ``out_dir`` unless the folder holds finished units or results of another
    study (StudyError); the study.yaml of a study that finished nothing there is replaced (and logged)."""
    digest = study.digest()
    previous = out_dir / "study.yaml"
    old = check_folder(study, out_dir)
    if old is not None and old != digest:
        log.warning("%s: replacing its study.yaml (study %s, which finished no unit there) with study %s (%s)",
                    out_dir, old, study.name, digest)
    atomic_write_text(previous, text)


def _runs_path(out_dir: Path) -> Path:
    return out_dir / "_work" / "runs.json"


def read_runs(out_dir: Path) -> list[dict[str, Any]]:
    """The runs recorded in a results folder (an unreadable list is started afresh)."""
    try:
        runs = json.loads(_runs_path(out_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [r for r in runs if isinstance(r, dict)] if isinstance(runs, list) else []


def record_run(out_dir: Path, entry: dict[str, Any]) -> None:
    """Add a run to the folder's list of runs, or update it (same ``run`` id)."""
    runs = [r for r in read_runs(out_dir) if r.get("run") != entry["run"]]
    atomic_write_text(_runs_path(out_dir), json.dumps([*runs, entry], indent=1, default=str))


def run_history(out_dir: Path, study_hash: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every run of this study into the folder: start, executor, units computed, seconds, status (a run killed
    before its end counts the units it finished, and the seconds until its last one)."""
    finished: dict[str, list[float]] = {}
    for record in records:
        if record.get("run") is not None:
            finished.setdefault(str(record["run"]), []).append(float(record.get("finished_at") or 0))
    history = []
    for run in read_runs(out_dir):
        if run.get("study_hash") != study_hash:
            continue
        run = dict(run)
        if run.get("status") == "running":  # never ended: killed
            times = finished.get(str(run.get("run")), [])
            run["status"] = "killed"
            run["units_computed"] = len(times)
            run["seconds"] = max(times) - float(run.get("started_at", 0)) if times else None
        history.append(run)
    return history


def plan(study: Study, out_dir: Path) -> pd.DataFrame:
    """The units of a study and whether each is already done (a dry run); ``problem`` names damaged files."""
    from lmbrain.study.validate import validate_study

    validate_study(study)
    units_dir = Path(out_dir) / "_work" / "units"
    digest = study.digest()
    rows = []
    for unit in enumerate_units(study):
        state = check_unit(units_dir, unit, digest)
        rows.append({**asdict(unit), "key": unit.key, "done": state == DONE,
                     "problem": state if state not in (DONE, TODO) else ""})
    return pd.DataFrame(rows)


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


def compute_units(study: Study, units_dir: Path, todo: list[Unit], executor: str, n_jobs: int,
                  scheduler: str | None, run_id: str | None = None, times: dict[str, float] | None = None,
                  prior: dict[str, list[float]] | None = None) -> dict[str, float]:
    """Compute units with an executor (the same BLAS/torch thread cap whichever). Logs one line per finished unit
    and, while units run, a progress line at least every :func:`~lmbrain.progress.progress_interval` seconds; the
    ETA is estimated per unit kind (:class:`~lmbrain.progress.KindETA`, from this run's units of the kind, else
    ``prior``: earlier runs'), never from the fast control units alone. Returns the seconds of each unit computed
    (also filled into ``times`` as they finish, so that an interrupted run still counts them)."""
    units_dir = units_dir.absolute()  # a worker elsewhere resolves a relative path against its own folder
    task = functools.partial(run_chain, study, units_dir, blas_threads=unit_threads(), run_id=run_id)
    described = {u.key: u.describe() for u in todo}
    times = {} if times is None else times
    counted = 0
    workers = 1 if executor == "sequential" else n_jobs
    eta = KindETA({u.key: u.kind for u in todo}, workers, prior)
    with progress("units", len(todo), "unit", logger=log, eta=eta) as stage:
        shared = {"results folder": units_dir, "feature cache": None}  # checked on Dask workers before any unit
        for done in run_tasks(task, unit_chains(study, todo), executor=executor, n_jobs=n_jobs, scheduler=scheduler,
                              shared=shared):
            for key, seconds, computed in done:
                counted += 1
                eta.finish(key, seconds)
                stage.update(note=f"last: {described[key]}")
                if not computed:
                    continue
                times[key] = seconds
                left, how = eta()
                log.info("unit %d/%d done in %.1f s: %s; elapsed %s, ETA %s", counted, len(todo), seconds,
                         described[key], duration(stage.clock() - stage.start),
                         eta_text(left, how),
                         extra={PROGRESS: True})
    return times


def run_study(
    study: Study,
    out_dir: str | Path,
    executor: str = "sequential",
    n_jobs: int = 2,
    scheduler: str | None = None,
    study_source: str | None = None,
) -> Path:
    """Run every unit of a study not yet done, then write ``results.parquet``, ``units.parquet``, the manifest.

    ``n_jobs`` is the number of workers of a parallel executor; every unit runs with the same BLAS/torch threads
    whatever it is (:func:`~lmbrain.study.executors.unit_threads`), so that results are bit-identical whichever
    executor and however many workers ran them.
    """
    from lmbrain.study.validate import validate_study

    check_executor(executor, n_jobs)
    out_dir = Path(out_dir)
    check_folder(study, out_dir)  # a folder of another study, or one another run writes, is refused untouched
    check_lock(out_dir)
    with run_logging(out_dir):
        try:
            validate_study(study, executor=executor, n_jobs=n_jobs)
            with output_lock(out_dir):
                return _run(study, out_dir, executor, n_jobs, scheduler, study_source)
        except BaseException as error:
            status, reason = end_of_run(error, out_dir)
            log.error("run %s: %s", status, reason, extra={FILE_ONLY: True})
            raise


def end_of_run(error: BaseException, out_dir: Path) -> tuple[str, str]:
    """How a run that raised ``error`` ended: ``interrupted`` (Ctrl-C, SIGTERM) or ``failed``, and one line naming the
    cause, where it happened and what to do (recorded in runs.json and run.log)."""
    notes = "".join(f" ({note})" for note in getattr(error, "__notes__", []))
    resume = f"rerun `lmbrain run {out_dir / 'study.yaml'} --out {out_dir}` to resume (finished units are kept)"
    if isinstance(error, KeyboardInterrupt):
        return "interrupted", f"{error_message(error)} while running into {out_dir}{notes}; {resume}"
    message = error_message(error)
    where = "" if str(out_dir) in message else f" (running into {out_dir})"
    return "failed", f"{message}{notes}{where}"


@contextlib.contextmanager
def report_logging(out_dir: Path) -> Iterator[None]:
    """While a report is built: its progress lines and a failure go to the folder's run.log when it has one (a folder
    written by ``lmbrain run``), warnings and errors to stderr; the terminal shows a bar, not progress lines."""
    if not (Path(out_dir) / "run.log").is_file():
        yield
        return
    with run_logging(Path(out_dir), terminal_progress=False):
        try:
            yield
        except BaseException as error:
            log.error("report failed: %s", error_message(error), extra={FILE_ONLY: True})
            raise


def record_report_time(out_dir: Path, seconds: float) -> None:
    """Add the report's build time to the manifest's timings (and the run log)."""
    path = Path(out_dir) / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    manifest.setdefault("timings_seconds", {})["report"] = seconds
    atomic_write_text(path, json.dumps(manifest, indent=2, default=str))
    with run_logging(Path(out_dir)):
        log.info("report written in %.1f s", seconds, extra={FILE_ONLY: True})


def log_data_problems(study: Study) -> None:
    """Every dataset's summary in the log, and a warning for each data problem (excluded subjects, masked
    neuroids, missing responses), so that ``run.log`` holds them even when the datasets were loaded (and
    their warnings printed) before the log was opened, e.g. by validation."""
    inputs = study_inputs(study)
    for entry in study.datasets:
        dataset = inputs.dataset(entry.name)
        log.info("dataset %s", dataset.summary())
        for subject, reason in sorted(dataset.excluded.items()):
            log.warning("dataset %s: subject %s excluded: %s", entry.name, subject, reason)
        for neuroid, reason in sorted(dataset.masked.items(), key=lambda kv: str(kv[0])):
            log.warning("dataset %s: neuroid %s masked: %s", entry.name, neuroid, reason)
        if dataset.missing:
            log.warning("dataset %s: %s", entry.name, dataset.missing.describe())


def _run(study: Study, out_dir: Path, executor: str, n_jobs: int, scheduler: str | None,
         study_source: str | None) -> Path:
    digest = study.digest()
    claim_folder(study, out_dir, study_source or yaml.safe_dump(study.model_dump(mode="json"), sort_keys=False))
    units_dir = out_dir / "_work" / "units"
    for stale in units_dir.glob(".*.tmp"):  # left by a killed run (this run holds the folder's lock)
        stale.unlink(missing_ok=True)
    started = time.time()
    stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(started))
    run = {"run": f"{stamp}-{os.getpid()}-{uuid.uuid4().hex[:6]}", "study_hash": digest,
           "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)), "started_at": started,
           "executor": executor, "n_jobs": n_jobs, "host": socket.gethostname(), "status": "running"}
    record_run(out_dir, run)
    start = time.perf_counter()
    unit_times: dict[str, float] = {}
    try:
        log.info("study %s (%s): start, executor=%s, n_jobs=%d", study.name, digest, executor, n_jobs,
                 extra={PROGRESS: True})
        log_data_problems(study)
        feature_times = prepare_features(study)
        units = enumerate_units(study)
        todo = []
        for unit in units:
            state = check_unit(units_dir, unit, digest)
            if state not in (DONE, TODO):
                report_damage(units_dir, unit, state)
            if state != DONE:
                todo.append(unit)
        log.info("%d units, %d to compute", len(units), len(todo), extra={PROGRESS: True})
        prior = unit_timings(units_dir, units, digest)
        compute_units(study, units_dir, todo, executor, n_jobs, scheduler, run["run"], unit_times, prior)
        results, unit_table, bad = collect(units, units_dir, digest)
        if bad:  # damaged since they were checked: once more, here
            for unit, reason in bad:
                report_damage(units_dir, unit, reason)
            redo = [unit for unit, _ in bad]
            compute_units(study, units_dir, redo, "sequential", n_jobs, None, run["run"], unit_times)
            results, unit_table, bad = collect(units, units_dir, digest)
            if bad:
                raise RunError(f"unit files damaged again right after recomputing them: {bad[0][1]}")
        checksums = {}
        for name, table in ((RESULTS_FILE, results), (UNITS_FILE, unit_table)):
            data = parquet_bytes(table)
            atomic_write_bytes(out_dir / name, data)
            checksums[name] = file_checksum(data)
        total = time.perf_counter() - start
        run.update(status="done", units_computed=len(unit_times), seconds=total)
        record_run(out_dir, run)
        records = [read_record(unit_files(units_dir, u)[0]) for u in units]
        stages = sum_stages([r.get("stage_seconds") or {} for r in records if r.get("run") == run["run"]])
        if stages:
            log.info("where this run's unit time went (summed over units and workers):\n%s",
                     stage_table(stages, sum(feature_times.values())), extra={FILE_ONLY: True})
        manifest = {
            "study": study.name,
            "study_hash": digest,
            "git_commit": git_commit(),
            "packages": package_versions(),
            "platform": platform.platform(),
            "argv": sys.argv,
            "seeds": {"cv": study.cv.seed, "statistics": study.statistics.seed},
            "statistics": study.statistics.model_dump(),
            "n_units": len(units),
            "n_units_computed_this_run": len(unit_times),
            "timings_seconds": {
                "total_this_run": total,
                "features": feature_times,
                "units_this_run": sum(unit_times.values()),
                "stages_this_run": stages,
            },
            "runs": run_history(out_dir, digest, records),
            "datasets": {e.name: study_inputs(study).dataset(e.name).summary() for e in study.datasets},
            "context_policies": context_policies(study),
            "models": model_catalog(study),
            "files": checksums,  # verified by every reader (lmbrain.results.read_checked)
        }
        atomic_write_text(out_dir / "manifest.json", json.dumps(manifest, indent=2, default=str))
        log.info("study %s: done in %.1f s (%d units computed)", study.name, total, len(unit_times),
                 extra={PROGRESS: True})
        return out_dir
    except BaseException as error:
        status, reason = end_of_run(error, out_dir)
        run.update(status=status, reason=reason, units_computed=len(unit_times), seconds=time.perf_counter() - start)
        with contextlib.suppress(OSError):
            record_run(out_dir, run)
        raise
