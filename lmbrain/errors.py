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
====  ==================================================================================================
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_DATA = 3
EXIT_RUNTIME = 4
EXIT_INTERRUPTED = 130

#: Every exit code with its meaning, in order (for ``--help`` texts and docs).
EXIT_CODES: dict[int, str] = {
    EXIT_OK: "success",
    EXIT_INTERNAL: "internal error (a bug: rerun with --debug and report the traceback)",
    EXIT_USAGE: "usage error (bad argument, option, command, study file or option value)",
    EXIT_DATA: "data error (missing, invalid or changed input: dataset, spec, stimuli, results, model)",
    EXIT_RUNTIME: "runtime failure (I/O error such as a read-only folder or a full disk, a failed unit)",
    EXIT_INTERRUPTED: "interrupted",
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


def exit_code_for(error: BaseException) -> int:
    """The exit code of an exception under the scheme above."""
    import errno

    if isinstance(error, LmbrainError):
        return int(getattr(error, "exit_code", EXIT_DATA))
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(error, OSError):
        missing = (errno.ENOENT, errno.ENOTDIR, errno.EISDIR)
        return EXIT_DATA if error.errno in missing else EXIT_RUNTIME
    if isinstance(error, MemoryError):
        return EXIT_RUNTIME
    return EXIT_INTERNAL

