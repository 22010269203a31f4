"""Built-in readers; importing this package registers them all."""

from lmbrain.data.readers import brainscore, brennan, frank, naturalstories, pereira_langnet

__all__ = ["brainscore", "brennan", "frank", "naturalstories", "pereira_langnet"]
