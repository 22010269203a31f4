"""Helpers shared by the command-line modules: output that names the stream or folder on an I/O error, a
clean-up of what a failed command wrote, and option checks that run before anything heavy is imported (an
output's suffix and writability, a layer list)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer

from lmbrain.errors import RunError, UsageError


def echo(text: str = "", *, err: bool = False, nl: bool = True) -> None:
    """Print ``text`` on stdout (stderr with ``err``); an I/O error (a full disk, ...) names the stream."""
    try:
        typer.echo(text, err=err, nl=nl)
    except BrokenPipeError:
        raise
    except OSError as exc:
        if exc.filename is None:
            exc.filename = "standard error" if err else "standard output"
        raise


@contextmanager
def quiet_loggers(*names: str) -> Iterator[None]:
    """Silence the named loggers for a block: a command that prints a warning itself (``data check``'s missing
    values, ``run``'s run.log) does not show it twice."""
    loggers = [logging.getLogger(name) for name in names]
    before = [logger.disabled for logger in loggers]
    for logger in loggers:
        logger.disabled = True
    try:
        yield
    finally:
        for logger, state in zip(loggers, before, strict=True):
            logger.disabled = state


#: the loggers that warn about a dataset's data problems while it is loaded
DATA_LOAD_LOGGERS = ("lmbrain.data.registry", "lmbrain.data.checks")


def nonempty_path(value: str | Path) -> Path:
    """Parser of a path argument or option: an empty value (``--out ''``) is refused, not read as the current
    folder."""
    if not str(value).strip():
        raise typer.BadParameter("the path is empty (an empty path would mean the current folder); give one")
    return Path(value)


#: ``typer.Option`` / ``typer.Argument`` keywords of a path that may not be empty
PATH = {"parser": nonempty_path, "metavar": "<path>"}


def check_suffix(path: Path, allowed: tuple[str, ...], option: str) -> None:
    """Refuse an output path whose suffix is not one of ``allowed`` (a .txt must not hold safetensors)."""
    if path.suffix.lower() not in allowed:
        got = f"not {path.suffix!r}" if path.suffix else "it has no suffix"
        raise UsageError(f"{option} {path}: the file name must end in {' or '.join(allowed)} ({got})")


def check_writable(path: Path, option: str) -> None:
    """Refuse an output location that cannot be created or written, before any work is done."""
    probe = path.expanduser().absolute()
    while not probe.exists() and probe != probe.parent:
        if probe.is_symlink():  # a dangling link: creating through it fails later
            raise UsageError(f"{option} {path}: {probe} is a broken symbolic link")
        probe = probe.parent
    if probe != path.expanduser().absolute() and not probe.is_dir():
        raise UsageError(f"{option} {path}: {probe} is a file, not a folder")
    folder = probe if probe.is_dir() else probe.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        raise RunError(
            f"cannot write to {folder} (permission denied or read-only file system); choose a writable {option}"
        )


def parse_layers(text: str, option: str = "--layers") -> str | list[int | float]:
    """'all' or a comma-separated list of layer indices (ints) and relative depths (floats in [0, 1])."""
    if text.strip().lower() == "all":
        return "all"
    items: list[int | float] = []
    for part in text.split(","):
        value = part.strip()
        try:
            number: int | float = float(value) if "." in value else int(value)
        except ValueError:
            raise UsageError(
                f"{option} {text!r}: {value!r} is not a layer index or a depth in [0, 1]; "
                "use 'all', indices such as '0,6,-1' or depths such as '0.5,1.0'"
            ) from None
        if isinstance(number, float) and not 0.0 <= number <= 1.0:
            raise UsageError(f"{option} {text!r}: the depth {value} is outside [0, 1]")
        items.append(number)
    return items




def _tree(folder: Path, skip: tuple[str, ...]) -> set[Path]:
    """Every path under ``folder`` (not descending into the top-level names in ``skip``)."""
    if not folder.is_dir():
        return set()
    found = set()
    for top in folder.iterdir():
        found.add(top)
        if top.is_dir() and not top.is_symlink() and top.name not in skip:
            found.update(top.rglob("*"))
    return found


@contextmanager
def writing_to(path: Path) -> Iterator[None]:
    """Run a block that writes ``path``; an I/O error that names no file names ``path`` (a full disk fails a
    write, a flush or an fsync without naming one)."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None:
            exc.filename = str(path)
        raise


@contextmanager
def writing_under(folder: Path, skip: tuple[str, ...] = ("_work",)) -> Iterator[None]:
    """Run a block that writes under ``folder``; on failure remove what it created there (not looking into the
    top-level names in ``skip``), and name ``folder`` in an I/O error that names no file."""
    before = _tree(folder, skip)
    try:
        with writing_to(folder):
            yield
    except BaseException:
        for path in sorted(_tree(folder, skip) - before, key=lambda p: len(p.parts), reverse=True):
            try:
                path.rmdir() if path.is_dir() and not path.is_symlink() else path.unlink()
            except OSError:
                pass
        raise
