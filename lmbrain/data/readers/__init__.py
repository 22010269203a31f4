"""Built-in readers; importing this package registers them all."""

from lmbrain.data.readers import (
    brainscore,
    brennan,
    frank,
    lebel,
    lpp,
    naturalstories,
    pereira_langnet,
    pereira_mat,
    table,
    tuckute,
)

__all__ = [
    "brainscore",
    "brennan",
    "frank",
    "lebel",
    "lpp",
    "naturalstories",
    "pereira_langnet",
    "pereira_mat",
    "table",
    "tuckute",
]
