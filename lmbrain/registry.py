"""The one registry idiom of lmbrain (Brain-Score's registry-by-name): entries registered by a decorator, looked up by
name with an error that lists the alternatives. Readers, controls, models and joint estimators each hold one
:class:`Registry`; built-in entries live in a module imported on first lookup (``builtins``), so importing the
package stays cheap."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from lmbrain.errors import LmbrainError

T = TypeVar("T")
F = TypeVar("F", bound=Callable)


class Registry(Generic[T]):
    """Entries of one kind by name.

    Parameters
    ----------
    what : str
        What an entry is, in words ("control", "reader", ...): error messages name it.
    error : type of Exception
        Raised for an unknown name (default :class:`~lmbrain.errors.LmbrainError`).
    builtins : str or tuple of str, optional
        Module(s) that register the built-in entries, imported before the first lookup.
    """

    def __init__(self, what: str, error: type[Exception] = LmbrainError,
                 builtins: str | tuple[str, ...] | None = None) -> None:
        self.what = what
        self.error = error
        self.builtins = builtins
        self._entries: dict[str, T] = {}

    def _load(self) -> None:
        for module in (self.builtins,) if isinstance(self.builtins, str) else self.builtins or ():
            importlib.import_module(module)  # a no-op once imported (or while it is being imported)

    def add(self, name: str, entry: T, replace: bool = True) -> T:
        """Register ``entry`` under ``name`` (``replace=False``: an error if the name is taken, built-ins included);
        returns it."""
        if not replace:
            self._load()
            if name in self._entries:
                raise self.error(f"{self.what} {name!r} is already registered")
        self._entries[name] = entry
        return entry

    def register(self, name: str, make: Callable[[F], T] | None = None, replace: bool = True) -> Callable[[F], F]:
        """Decorator: register the decorated function under ``name``, as is or as ``make(function)``."""

        def decorate(fn: F) -> F:
            self.add(name, fn if make is None else make(fn), replace)
            return fn

        return decorate

    def get(self, name: str) -> T:
        """The entry of ``name``; the registry's error, listing the known names, otherwise."""
        self._load()
        if name not in self._entries:
            raise self.error(f"unknown {self.what} {name!r}; known: {sorted(self._entries)}")
        return self._entries[name]

    def find(self, name: str) -> T | None:
        """The entry of ``name``, or None."""
        self._load()
        return self._entries.get(name)

    def names(self) -> list[str]:
        """The registered names, sorted."""
        self._load()
        return sorted(self._entries)

    def items(self) -> list[tuple[str, T]]:
        """(name, entry) pairs in registration order."""
        self._load()
        return list(self._entries.items())

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter(list(self._entries))

    def __len__(self) -> int:
        self._load()
        return len(self._entries)
