"""Containment of user-controlled names and paths: slugs for names that become file names, relative paths that
stay inside their root.

Every name a user gives that lmbrain turns into a file or folder name (a study's ``name``, the ``--name`` of
``lmbrain data init``, a dataset spec's ``name``) is a *slug*; every path a spec gives under a root (a dataset's
``root`` under the data directory, its ``files`` under that root) is relative and never climbs out with ``..``.
The checks are lexical (no file system access): a symbolic link a user placed inside a root is followed as
the user intended. Only the standard library is imported here, so the command line stays fast.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

#: a slug: letters, digits, ``_``, ``-`` and ``.``, not starting with ``.`` (no hidden names, no ``..``)
SLUG = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")
#: the longest slug accepted (file systems take 255 bytes per name; room is left for suffixes)
SLUG_MAX = 128
SLUG_RULE = "letters, digits, '_', '-' and '.' (not first), at most 128 characters"


def check_slug(value: str) -> str:
    """``value`` if it is a slug (:func:`slug_problem`), else a ValueError saying why (for pydantic validators)."""
    problem = slug_problem(value)
    if problem:
        raise ValueError(problem)
    return value


def slug_problem(value: object) -> str | None:
    """Why ``value`` is not a slug (a name safe as a file name), or None when it is one."""
    if not isinstance(value, str):
        return f"expected a name, got {type(value).__name__}"
    if not value:
        return "the name is empty"
    if len(value) > SLUG_MAX:
        return f"the name is {len(value)} characters long (at most {SLUG_MAX})"
    if not SLUG.fullmatch(value):
        return f"{value!r} is not a plain name: use {SLUG_RULE}"
    return None


def relative_problem(value: object, what: str) -> str | None:
    """Why ``value`` is not a relative path that stays inside its root (None when it is): not empty, not
    absolute (nor ``~``-relative), no ``..`` part, no NUL character."""
    if not isinstance(value, str):
        return f"{what} must be a path, got {type(value).__name__}"
    text = value.strip()
    if not text or text in (".", "./"):
        return f"{what} {value!r} is empty: name a folder or file under it"
    if "\x00" in text:
        return f"{what} {value!r} contains a NUL character"
    if text.startswith("~") or Path(text).is_absolute() or PurePosixPath(text.replace("\\", "/")).is_absolute():
        return f"{what} {value!r} must be relative (absolute paths and '~' are refused)"
    if ".." in PurePosixPath(text.replace("\\", "/")).parts:
        return f"{what} {value!r} must not contain '..'"
    return None


def inside(root: Path, relative: str | Path, what: str) -> Path:
    """``root / relative``, refused (ValueError naming ``what``) unless it lies lexically inside ``root``."""
    problem = relative_problem(str(relative), what)
    if problem:
        raise ValueError(problem)
    path = Path(root) / relative
    base = os.path.normpath(os.path.abspath(root))
    target = os.path.normpath(os.path.abspath(path))
    if target != base and not target.startswith(base.rstrip(os.sep) + os.sep):
        raise ValueError(f"{what} {str(relative)!r} leads outside {root}")
    return path
