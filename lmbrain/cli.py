"""The ``lmbrain`` command line: run studies, build reports, manage data and features.

Every failure ends in one line ``error: ...`` on stderr and an exit code of the scheme in :mod:`lmbrain.errors`
(see docs/cli.md); ``--debug`` (anywhere on the command line) or ``LMBRAIN_DEBUG=1`` adds the traceback.
Heavy modules (torch, transformers, xarray, pandas) are imported inside the commands that need them, so that
``lmbrain --help`` and ``lmbrain data list`` start fast.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lmbrain.clitools import (
    DATA_LOAD_LOGGERS,
    PATH,
    check_suffix,
    check_writable,
    echo,
    nonempty_path,
    parse_layers,
    quiet_loggers,
    writing_to,
    writing_under,
)
from lmbrain.errors import (
    EXIT_CODES,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    DataError,
    Terminated,
    UsageError,
    error_message,
    exit_code_for,
    os_error_message,
    raise_terminated,
)

if TYPE_CHECKING:
    import pandas as pd

    from lmbrain.study.schema import Study

PROG = "lmbrain"
DEBUG_ENV = "LMBRAIN_DEBUG"

_EPILOG = "Exit codes: " + "; ".join(f"{code} {text.split(' (')[0]}" for code, text in EXIT_CODES.items()) + "."

app = typer.Typer(
    help="lmbrain: language-model-to-brain encoding studies with leakage-proof CV and controls built in. "
    "Study files, every key with its type, default and limits: docs/study.md; the control features: "
    "docs/controls.md; errors and exit codes: docs/cli.md.",
    epilog=_EPILOG,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _options(
    debug: Annotated[
        bool, typer.Option("--debug", help=f"Show the traceback of an error (also: {DEBUG_ENV}=1).")
    ] = False,
) -> None:
    """Global options (``--debug`` is read by :func:`main` before the command line is parsed)."""


def show_table(table: pd.DataFrame) -> str:
    """A plan table as text: '-' for a missing value (no model, no seed), whole numbers without '.0'."""

    def cell(value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)

    shown = table.astype(object).map(cell)
    return shown.to_string(index=False)


# -- commands ---------------------------------------------------------------------------------------------


@app.command()
def run(
    study: Annotated[Path, typer.Argument(help="Study YAML file (see analyses/; every key: docs/study.md).",
                                          parser=nonempty_path, metavar="STUDY")],
    out: Annotated[Path | None, typer.Option(help="Results directory (default: reports/<study name>).",
                                             **PATH)] = None,
    executor: Annotated[str, typer.Option(help="sequential | processes | dask")] = "sequential",
    n_jobs: Annotated[
        int | None, typer.Option(min=1, help="Worker processes for 'processes' or a local Dask cluster (at most "
                                 "the number of CPU cores unless --force; default: 2, or the cores if fewer).")
    ] = None,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address (tcp://host:port); default: a LocalCluster.")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the units and which are done; run nothing.")] = False,
    report: Annotated[bool, typer.Option(help="Write the report after the run.")] = True,
    force: Annotated[bool, typer.Option("--force", help="Allow --n-jobs above the number of CPU cores.")] = False,
) -> None:
    """Run a study (resumable: finished units are not recomputed), then write its report.

    The study file's keys, types, defaults and limits: docs/study.md; the control features: docs/controls.md."""
    n_jobs = _checked_workers(executor, n_jobs, scheduler, force)
    from lmbrain.study.schema import load_study

    spec = load_study(study)
    out = out or Path("reports") / spec.name
    _check_run_folder(spec, out, dry_run)
    from lmbrain.study.context import StudyContext
    from lmbrain.study.validate import validate_study

    context = StudyContext(spec)  # the datasets validation loads are the run's
    if dry_run:
        validate_study(spec, executor, n_jobs, context)
    else:
        with quiet_loggers(*DATA_LOAD_LOGGERS):  # the run logs every data problem itself (run.log and terminal)
            validate_study(spec, executor, n_jobs, context)
    from lmbrain.study.runner import plan, run_study

    if dry_run:
        table = plan(spec, out, context)
        echo(show_table(table))
        echo(f"{len(table)} units, {int(table['done'].sum())} done, {int((~table['done']).sum())} to run")
        return
    run_study(spec, out, executor=executor, n_jobs=n_jobs, scheduler=scheduler, study_source=study.read_text(),
              context=context)
    if report:
        _write_run_report(spec, out)


def _checked_workers(executor: str, n_jobs: int | None, scheduler: str | None, force: bool) -> int:
    """The number of workers for ``run`` (default: 2, or the cores if fewer); a UsageError for bad options."""
    from lmbrain.study.executors import EXECUTORS

    if executor not in EXECUTORS:
        raise UsageError(f"--executor {executor!r}: choose one of {', '.join(EXECUTORS)}")
    if scheduler is not None and executor != "dask":
        raise UsageError("--scheduler needs --executor dask")
    cores = os.cpu_count() or 1
    if n_jobs is None:
        n_jobs = min(2, cores)
    elif n_jobs > cores and scheduler is None and not force:
        raise UsageError(f"--n-jobs {n_jobs}: this machine has {cores} CPU core(s); more workers than cores only "
                         "compete for them (pass --force to run that many anyway)")
    return n_jobs


def _check_run_folder(spec: Study, out: Path, dry_run: bool) -> None:
    """Refuse a results folder that is a file, or (for a real run) unwritable, another study's or locked."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    if not dry_run:
        check_writable(out, "--out")
        from lmbrain.study.folder import check_folder, check_lock

        check_folder(spec, out)  # another study's results there: refused before any work, the folder untouched
        check_lock(out)


def _write_run_report(spec: Study, out: Path) -> None:
    """Build the report of a finished run (its time recorded) and print the files written."""
    import time

    from lmbrain.report.build import build_report
    from lmbrain.study.folder import record_report_time, report_logging

    start = time.perf_counter()
    with writing_under(out):
        with report_logging(out):
            written = build_report(out, formats=list(spec.outputs.formats))
        record_report_time(out, time.perf_counter() - start)
    for path in written:
        echo(f"wrote {path}")


_FIT_FIELDS = {"models": "--model", "datasets": "DATASET", "features": "--layers", "cv": "--scheme"}
_FIT_DATASET_FIELDS = {"controls": "--control", "subjects": "--subject", "name": "DATASET"}


def _fit_study(raw: dict[str, Any]) -> Any:
    """The one-off study of ``lmbrain fit``; a bad option is a UsageError naming the option."""
    from pydantic import ValidationError

    from lmbrain.study.schema import Study

    try:
        return Study.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = [str(p) for p in err["loc"]]
            name = _FIT_FIELDS.get(loc[0], loc[0]) if loc else "option"
            if loc[:1] == ["datasets"] and len(loc) > 2:
                name = _FIT_DATASET_FIELDS.get(loc[2], name)
            problems.append(f"{name}: {err['msg'].removeprefix('Value error, ')}")
        raise UsageError("; ".join(problems)) from None


@app.command()
def fit(
    dataset: Annotated[str, typer.Argument(help="Dataset name (see `lmbrain data list`) or spec path.")],
    model: Annotated[str | None, typer.Option(help="Language model (registry name, hub id, folder, .gguf).")] = None,
    controls: Annotated[list[str] | None, typer.Option("--control", help="Control feature set (repeatable).")] = None,
    subject: Annotated[list[str] | None, typer.Option(help="Subject(s) to fit (default: all).")] = None,
    scheme: Annotated[str, typer.Option(help="grouped (default) or shuffled (a leaky audit)")] = "grouped",
    layers: Annotated[str, typer.Option(help="'all' or comma-separated indices / relative depths")] = "all",
    out: Annotated[Path | None, typer.Option(help="Write the per-target rows to this .parquet file.")] = None,
) -> None:
    """Fit and score one dataset with one model and/or controls, printing mean r and R² per subject."""
    if model is None and not controls:
        raise UsageError("give --model and/or at least one --control")
    if scheme not in ("grouped", "shuffled"):
        raise UsageError(f"--scheme {scheme!r}: choose grouped or shuffled")
    layer_spec = parse_layers(layers)
    if out is not None:
        check_suffix(out, (".parquet",), "--out")
        check_writable(out, "--out")
    from lmbrain.data.specs import find_spec

    find_spec(dataset)  # an unknown dataset: a DataError before anything is loaded
    spec = _fit_study({
        "name": "fit", "datasets": [{"name": dataset, "controls": list(controls or []),
                                     "subjects": list(subject) if subject else "all"}],
        "models": [{"name": model}] if model else [], "features": {"layers": layer_spec},
        "cv": {"schemes": [scheme]}, "estimator": {"layer_curves": False}, "statistics": {"ceiling": False},
    })
    from lmbrain.study.context import StudyContext
    from lmbrain.study.validate import validate_study

    context = StudyContext(spec)
    validate_study(spec, context=context)
    import pandas as pd

    from lmbrain.study.compute import compute_unit
    from lmbrain.study.plan import enumerate_units

    tables = [compute_unit(context, unit)[0] for unit in enumerate_units(context)]
    rows = pd.concat(tables, ignore_index=True)
    summary = rows.pivot_table(index=["subject", "model", "feature_set", "layer"], columns="metric",
                               values="value", aggfunc="mean")
    echo(summary.to_string(float_format=lambda v: f"{v:.4f}"))
    if out is not None:
        from lmbrain.io import atomic_write_parquet

        with writing_to(out):
            atomic_write_parquet(out, rows)
        echo(f"wrote {out}")


def check_results_dir(results_dir: Path) -> None:
    """Refuse a results directory that is missing, empty, truncated or not from ``lmbrain run``."""
    if not results_dir.exists():
        raise DataError(f"results directory {results_dir} does not exist; run the study first (lmbrain run STUDY)")
    if not results_dir.is_dir():
        raise DataError(f"{results_dir} is a file; give a study's results directory (it holds results.parquet)")
    for name in ("results.parquet", "units.parquet", "manifest.json"):
        if not (results_dir / name).is_file():
            raise DataError(
                f"{results_dir} holds no {name}: not a finished study's results directory "
                f"(run or resume the study with: lmbrain run STUDY --out {results_dir})"
            )
    import pyarrow.parquet as pq

    from lmbrain.results import CHECKSUMMED, COLUMNS, read_checked, read_manifest

    manifest = read_manifest(results_dir)
    if "study" not in manifest:
        raise DataError(f"{results_dir / 'manifest.json'} names no study; rerun the study")
    for name in CHECKSUMMED:  # a changed or damaged file is refused before anything is read from it or written
        read_checked(results_dir, name, manifest)
    unit_columns = ["dataset", "subject", "model", "feature_set", "scheme"]
    for name, needed in (("results.parquet", COLUMNS), ("units.parquet", unit_columns)):
        path = results_dir / name
        try:
            columns = pq.read_schema(path).names
            pq.read_metadata(path)
        except Exception as exc:  # pyarrow raises ArrowInvalid / OSError on a truncated or foreign file
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DataError(f"{path} is not a readable parquet file ({detail}); rerun the study") from None
        missing = [c for c in needed if c not in columns]
        if missing:
            raise DataError(f"{path} lacks the column(s) {missing}: not written by lmbrain run; rerun the study")


@app.command("report")
def report_cmd(
    results_dir: Annotated[Path, typer.Argument(help="A study's results directory (holds results.parquet).",
                                                parser=nonempty_path, metavar="RESULTS_DIR")],
) -> None:
    """Regenerate tables (and figures) from a results directory's parquet files alone."""
    check_results_dir(results_dir)
    check_writable(results_dir, "results directory")
    from lmbrain.report.build import build_report
    from lmbrain.study.folder import report_logging

    with writing_under(results_dir), report_logging(results_dir):
        written = build_report(results_dir)
    for path in written:
        echo(f"wrote {path}")


def _register_subapps() -> None:
    """Add ``data``, ``features`` and ``models`` (and ``extract`` as a top-level command); their modules import
    lazily."""
    from lmbrain.data.cli import app as data_app
    from lmbrain.features.cli import app as features_app
    from lmbrain.features.cli import models_app

    app.add_typer(data_app, name="data", help="List, describe, verify and fetch datasets.")
    app.add_typer(features_app, name="features", help="Extract and cache language-model features.")
    app.add_typer(models_app, name="models", help="The models lmbrain knows by name (training, quantisation).")
    for command in features_app.registered_commands:  # `lmbrain extract` as a top-level command too
        if command.name == "extract" or (command.callback and command.callback.__name__ == "extract"):
            app.command("extract", help=command.help)(command.callback)


_register_subapps()


# -- the entry point: one line per error, one exit-code scheme ----------------------------------------------


def _click_exceptions() -> tuple[type[BaseException], type[BaseException], tuple[type[BaseException], ...]]:
    """(UsageError, NoArgsIsHelpError, every ClickException class) of the click typer raises, and of click."""
    try:  # typer >= 0.2x vendors click as typer._click
        from typer._click import exceptions as vendored
    except ImportError:  # pragma: no cover - older typer: plain click
        import click.exceptions as vendored
    bases: list[type[BaseException]] = [vendored.ClickException]
    plain = sys.modules.get("click.exceptions")  # plain click, only if something imported it
    if plain is not None and plain is not vendored:
        bases.append(plain.ClickException)
    no_args = getattr(vendored, "NoArgsIsHelpError", vendored.UsageError)
    return vendored.UsageError, no_args, tuple(bases)


def _one_line(text: str) -> str:
    """A message on one line: its lines joined by spaces."""
    return " ".join(line.strip() for line in str(text).splitlines() if line.strip())


def _lower_first(text: str) -> str:
    """'Missing argument' -> 'missing argument' (leaves 'STUDY' or 'R²' alone)."""
    return text[0].lower() + text[1:] if len(text) > 1 and text[0].isupper() and text[1].islower() else text


def _from_rich(exc: BaseException) -> bool:
    """True when an exception was raised inside rich's console output (typer's help pages)."""
    tb = exc.__traceback__
    while tb is not None:
        if f"{os.sep}rich{os.sep}" in tb.tb_frame.f_code.co_filename:
            return True
        tb = tb.tb_next
    return False


def _silence_stdout() -> None:
    """Point standard output at /dev/null so that the interpreter's final flush does not fail again."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, ValueError, AttributeError):
        pass


def _os_message(exc: OSError) -> str:
    """One line for an I/O error, naming the path and what to do (help text failing on standard output included)."""
    if exc.filename is None and _from_rich(exc):  # help text, printed by rich on standard output
        exc.filename = "standard output"
    if exc.filename == "standard output":  # set by lmbrain.clitools.echo
        _silence_stdout()
    return os_error_message(exc)


def describe(exc: BaseException) -> tuple[str, int]:
    """The one-line message and the exit code of an exception raised by a command."""
    usage_error, _, click_errors = _click_exceptions()
    if isinstance(exc, click_errors):
        message = _lower_first(_one_line(exc.format_message())).rstrip(".")
        ctx = getattr(exc, "ctx", None)
        command = ctx.command_path if ctx is not None else PROG
        if isinstance(exc, usage_error):
            return f"{message} (see '{command} --help')", EXIT_USAGE
        return message, EXIT_USAGE
    if isinstance(exc, typer.Abort):  # click turns KeyboardInterrupt (and so Terminated) into Abort
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, KeyboardInterrupt):
            return error_message(cause), exit_code_for(cause)
        return "interrupted", EXIT_INTERRUPTED
    if isinstance(exc, OSError):
        return _os_message(exc), exit_code_for(exc)
    return error_message(exc), exit_code_for(exc)


@contextlib.contextmanager
def sigterm_raises() -> Iterator[list[Terminated]]:
    """Turn SIGTERM into :class:`~lmbrain.errors.Terminated` in the main thread for a block, so that a terminated
    command cleans up (worker pools, staging folders, its run record) and ends with one line and exit code 143.
    Yields the list of the Terminated raised (typer swallows a KeyboardInterrupt into exit code 130)."""
    raised: list[Terminated] = []
    if threading.current_thread() is not threading.main_thread():
        yield raised
        return

    def handler(signum: int, frame: object) -> None:
        raised.append(Terminated("SIGTERM"))
        try:
            raise_terminated(signum, frame)  # at once, or when a step that cannot be interrupted ends
        finally:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM does not interrupt the clean-up

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield raised
    finally:
        signal.signal(signal.SIGTERM, previous)


def _take_debug(args: list[str]) -> bool:
    """Remove every ``--debug`` before a ``--`` from ``args``; True when one was there or LMBRAIN_DEBUG is set."""
    end = args.index("--") if "--" in args else len(args)
    found = "--debug" in args[:end]
    args[:end] = [a for a in args[:end] if a != "--debug"]
    return found or os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def run_cli(argv: list[str] | None = None) -> int:
    """Run the command line and return its exit code; failures print one line ``error: ...`` on stderr."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = _take_debug(args)
    _, no_args_error, _ = _click_exceptions()
    try:
        with sigterm_raises() as terminated:
            result = app(args=args, prog_name=PROG, standalone_mode=False)
    except no_args_error as exc:  # `lmbrain` or `lmbrain data` alone: the help (on stdout), as a usage error
        ctx = getattr(exc, "ctx", None)
        text = ctx.get_help() if ctx is not None else str(exc)  # rich help prints itself and returns ""
        if text:
            echo(text)
        return EXIT_USAGE
    except SystemExit as exc:  # typer and rich exit by themselves on a closed pipe (`lmbrain data list | head -1`)
        if isinstance(exc.__context__, BrokenPipeError):
            return 141  # quietly, with what the shell reports for a process ended by SIGPIPE
        raise
    except (Exception, KeyboardInterrupt) as exc:
        if debug:
            import traceback

            traceback.print_exception(exc)
        message, code = describe(exc)
        try:
            sys.stderr.write(f"error: {message}\n")
            sys.stderr.flush()
        except OSError:
            pass
        return code
    if result == EXIT_INTERRUPTED:  # typer turns Ctrl-C (and so SIGTERM's Terminated) into Exit(130)
        cause = terminated[-1] if terminated else KeyboardInterrupt()
        sys.stderr.write(f"error: {error_message(cause)}\n")
        return exit_code_for(cause)
    return result if isinstance(result, int) and not isinstance(result, bool) else EXIT_OK


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``lmbrain`` script: run the command line and exit with its code."""
    sys.exit(run_cli(argv))


if __name__ == "__main__":
    main()
