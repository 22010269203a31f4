"""The results folder: its lock, its logs (run.log, the terminal), the study it belongs to, the history of runs
(runs.json) and the facts of the machine (git commit, package versions)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import socket
import subprocess
import sys
import warnings
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any, TextIO

import yaml

from lmbrain.errors import StudyError, UsageError, error_message
from lmbrain.io import atomic_write_text
from lmbrain.progress import FILE_ONLY, PROGRESS
from lmbrain.study.schema import Study
from lmbrain.study.store import UnitDamagedError, read_record

log = logging.getLogger("lmbrain")


PACKAGES = ("lmbrain", "numpy", "scipy", "scikit-learn", "himalaya", "torch", "transformers", "pandas", "xarray")


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
