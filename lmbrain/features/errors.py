"""The error feature extraction raises on a bad option (pooling, context policy, layer spec, window)."""

from __future__ import annotations

from lmbrain.errors import EXIT_USAGE, LmbrainError


class FeatureError(LmbrainError, ValueError):
    """An extraction option is invalid or cannot be honoured without truncating a unit."""

    exit_code = EXIT_USAGE
