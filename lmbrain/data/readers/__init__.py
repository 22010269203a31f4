"""Built-in readers; importing this package registers them all."""

from lmbrain.data.readers import brainscore

__all__ = ["brainscore"]
