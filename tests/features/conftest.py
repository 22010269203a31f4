"""Fixtures for feature-extraction tests: models loaded once per worker, offline, shared model cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# converted GGUF checkpoints are content-addressed and reused across sessions: the repo's .cache unless set
os.environ.setdefault("LMBRAIN_CACHE_DIR", str(REPO / ".cache"))

#: tests that load smollm2 run on one xdist worker (make test uses --dist loadgroup)
smollm2_group = pytest.mark.xdist_group("smollm2")

# A passage as in Pereira et al. (2018): sentences with a trailing space, a double space, quotes, digits.
PASSAGE = [
    "An accordion is a portable musical instrument with two keyboards. ",
    "One keyboard is used for individual notes,  the other for chords.",
    "Players call it a \u201csqueezebox\u201d; it's popular in Tex-Mex m\u00fasica (since the 1800s).",
]
WORDS = "The old man's café, “naïve” as ever, didn't  close before 10:30 p.m. — oh well!".split()


@pytest.fixture(scope="session")
def tiny():
    """The config-built GPT-2 (2 layers x 64, seed 0) with SmolLM2's byte-level BPE tokenizer."""
    from lmbrain.features import load_model

    return load_model("gpt2-tiny")


@pytest.fixture(scope="session")
def minilm():
    """all-MiniLM-L6-v2 (BERT encoder: adds [CLS]/[SEP], lower-cases, WordPiece)."""
    from lmbrain.features import load_model

    return load_model("minilm-l6")


@pytest.fixture(scope="session")
def smollm2():
    """SmolLM2-135M from the packaged GGUF (converted once into the model cache)."""
    from lmbrain.features import load_model

    return load_model("smollm2-135m")


@pytest.fixture(scope="session")
def smol_tokenizer():
    """SmolLM2's tokenizer only."""
    from lmbrain.features import load_tokenizer

    return load_tokenizer("smollm2-135m")


@pytest.fixture(scope="session")
def minilm_tokenizer():
    """MiniLM's tokenizer only."""
    from lmbrain.features import load_tokenizer

    return load_tokenizer("minilm-l6")
