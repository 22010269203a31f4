"""Exceptions raised by lmbrain: one clear message naming the file, field or row at fault, and an exit code.

The command line maps every failure to one of these exit codes (see docs/cli.md):

====  ==================================================================================================
0     success
1     internal error: an unexpected exception (a bug; rerun with ``--debug`` and report the traceback)
2     usage error: bad arguments or options, an unknown command, an invalid study file or option value
3     data error: a missing, invalid or changed input (dataset, spec, stimulus table, results, model files)
4     runtime failure: the work itself failed (I/O errors such as a read-only folder or a full disk, a
      failed unit, out of memory)
130   interrupted (Ctrl-C)
143   terminated (SIGTERM: ``kill``, a job scheduler's time limit)
====  ==================================================================================================
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_DATA = 3
EXIT_RUNTIME = 4
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  #: 128 + SIGTERM, what a shell reports for a process ended by it

#: Every exit code with its meaning, in order (for ``--help`` texts and docs).
EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success",
    EXIT_INTERNAL: "internal error (a bug: rerun with --debug and report the traceback)",
    EXIT_USAGE: "usage error (bad argument, option, command, study file or option value)",
    EXIT_DATA: "data error (missing, invalid or changed input: dataset, spec, stimuli, results, model)",
    EXIT_RUNTIME: "runtime failure (I/O error such as a read-only folder or a full disk, a failed unit)",
    EXIT_INTERRUPTED: "interrupted",
    EXIT_TERMINATED: "terminated (SIGTERM)",
}


class LmbrainError(Exception):
    """Base class of every error lmbrain raises on bad input; ``exit_code`` is what the CLI exits with."""

    exit_code: int = EXIT_DATA


class UsageError(LmbrainError):
    """A command-line argument or option is invalid (wrong value, suffix or combination)."""

    exit_code = EXIT_USAGE


class DataError(LmbrainError):
    """A dataset file, spec or table is missing or malformed."""

    exit_code = EXIT_DATA


class ModelUnavailableError(LmbrainError):
    """A language model cannot be loaded (offline, unknown name, missing package)."""

    exit_code = EXIT_DATA


class StudyError(LmbrainError):
    """A study file is invalid."""

    exit_code = EXIT_USAGE


class RunError(LmbrainError):
    """The work itself failed (a unit raised, a worker died): not the input's fault."""

    exit_code = EXIT_RUNTIME


class Terminated(KeyboardInterrupt):
    """The process received SIGTERM (raised in the main thread by the CLI's handler, so that every ``finally`` and
    clean-up runs as for Ctrl-C)."""

    def __init__(self, signal_name: str = "SIGTERM") -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name


_SIGTERM = {"deferred": 0, "pending": False}


def raise_terminated(signum: int = 15, frame: object = None) -> None:
    """SIGTERM handler: raise :class:`Terminated` now, or once the innermost :func:`sigterm_deferred` block ends."""
    if _SIGTERM["deferred"]:
        _SIGTERM["pending"] = True
        return
    raise Terminated("SIGTERM")


@contextlib.contextmanager
def sigterm_deferred() -> Iterator[None]:
    """Hold back the Terminated of a SIGTERM received in this block until its end: for steps that cannot be
    cleaned up when interrupted half-way (starting a Dask cluster, whose handle only exists once it has started)."""
    _SIGTERM["deferred"] += 1
    try:
        yield
    finally:
        _SIGTERM["deferred"] -= 1
    if not _SIGTERM["deferred"] and _SIGTERM["pending"]:
        _SIGTERM["pending"] = False
        raise Terminated("SIGTERM")


def exit_code_for(error: BaseException) -> int:
    """The exit code of an exception under the scheme above."""
    import errno

    if isinstance(error, LmbrainError):
        return int(getattr(error, "exit_code", EXIT_DATA))
    if isinstance(error, Terminated):
        return EXIT_TERMINATED
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(error, OSError):
        missing = (errno.ENOENT, errno.ENOTDIR, errno.EISDIR)
        return EXIT_DATA if error.errno in missing else EXIT_RUNTIME
    if isinstance(error, MemoryError):
        return EXIT_RUNTIME
    return EXIT_INTERNAL



def one_line(text: object) -> str:
    """A message on one line: its lines joined by spaces."""
    return " ".join(line.strip() for line in str(text).splitlines() if line.strip())


def os_error_message(exc: OSError) -> str:
    """One line for an I/O error, naming the path and what to do."""
    import errno

    path = exc.filename
    where = f" {path}" if path is not None else ""
    code = exc.errno
    if code == errno.ENOSPC:
        return f"no space left on the device{' writing' + where if where else ''}; free some space or write elsewhere"
    if code == getattr(errno, "EDQUOT", -1):
        return f"disk quota exceeded{' writing' + where if where else ''}; free some space or write elsewhere"
    if code == errno.EROFS:
        return f"read-only file system:{where}; choose a writable output folder"
    if code in (errno.EACCES, errno.EPERM):
        return f"permission denied:{where}; choose a writable output folder or fix its permissions"
    if code == errno.ENOENT:
        return f"no such file or directory:{where}"
    if code == errno.EISDIR:
        return f"{path} is a directory, expected a file" if path else "expected a file, got a directory"
    if code == errno.ENOTDIR:
        return f"not a directory:{where}"
    reason = exc.strerror or one_line(str(exc)) or type(exc).__name__
    return f"{reason}:{where}" if where else reason


def error_message(exc: BaseException) -> str:
    """The one-line message of an exception (what the CLI prints after ``error:`` and a run records)."""
    if isinstance(exc, LmbrainError):
        return one_line(exc) or type(exc).__name__
    if isinstance(exc, Terminated):
        return f"terminated ({exc.signal_name})"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, OSError):
        return os_error_message(exc)
    if isinstance(exc, MemoryError):
        return "out of memory; use fewer workers (--n-jobs) or a smaller study"
    detail = one_line(exc)
    return f"internal error: {type(exc).__name__}{': ' + detail if detail else ''} (rerun with --debug and report it)"
