"""Exceptions raised by lmbrain: one clear message naming the file, field or row at fault."""


class LmbrainError(Exception):
    """Base class of every error lmbrain raises on bad input."""


class DataError(LmbrainError):
    """A dataset file, spec or table is missing or malformed."""


class ModelUnavailableError(LmbrainError):
    """A language model cannot be loaded (offline, unknown name, missing package)."""


class StudyError(LmbrainError):
    """A study file is invalid."""
