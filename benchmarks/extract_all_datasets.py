"""Extract every layer of the packaged models (and untrained variants) for every real dataset's stimuli.

A validation run, not a loader: each dataset's units are read straight from its files with the minimum of
parsing (the datasets package has the real readers). Prints, per dataset and model, the units, the feature
shape, the time, and checks that every value is finite and that no two units in a context share a vector.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd

from lmbrain.features import FeatureCache, get_features

Units = tuple[list[str], list[object], list[int]]


def data_dir() -> Path:
    value = os.environ.get("LMBRAIN_DATA_DIR")
    return Path(value) if value else Path(__file__).resolve().parents[2] / "shared" / "datasets"


def pereira() -> Units:
    t = pd.read_csv(data_dir() / "pereira2018_langnet" / "pereira2018_stimuli.csv")
    return t["sentence"].tolist(), t["passage_id"].tolist(), t["sentence_position"].astype(int).tolist()


def naturalstories() -> Units:
    t = pd.read_csv(
        data_dir() / "naturalstories" / "all_stories.tok", sep="\t", keep_default_na=False, quoting=3
    )
    return t["word"].tolist(), t["item"].tolist(), t["zone"].astype(int).tolist()


def fedorenko() -> Units:
    sentences = pd.read_csv(data_dir() / "fedorenko2016" / "stimulus_set.csv")["Sentences"].tolist()
    texts, ids, pos = [], [], []
    for s, sentence in enumerate(sentences):
        for w, word in enumerate(sentence.split()):
            texts.append(word)
            ids.append(s)
            pos.append(w)
    return texts, ids, pos


def frank() -> Units:
    t = pd.read_csv(
        data_dir() / "frank2015_ucl" / "data_ET.csv", sep="\t", keep_default_na=False, na_values=[""]
    )
    t = t.drop_duplicates(["sent_nr", "word_pos"]).sort_values(["sent_nr", "word_pos"])
    return t["word"].astype(str).tolist(), t["sent_nr"].tolist(), t["word_pos"].astype(int).tolist()


def alice() -> Units:
    grid = (
        data_dir()
        / "brennan2016_alice"
        / "alice_stim_shared"
        / "DownTheRabbitHoleFinal_exp120_pad_1.TextGrid"
    )
    words = [w for w in re.findall(r'text = "(.*)"', grid.read_text()) if w.strip() and w != "sp"]
    return words, ["alice"] * len(words), list(range(len(words)))


DATASETS = {
    "pereira2018": pereira,
    "naturalstories": naturalstories,
    "fedorenko2016": fedorenko,
    "frank2015": frank,
    "brennan2016_alice": alice,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models",
        nargs="+",
        default=["minilm-l6", "minilm-l6:untrained-0", "smollm2-135m", "smollm2-135m:untrained-0"],
    )
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--cache", default=None, help="feature cache root (default: a temporary folder)")
    args = parser.parse_args()
    root = args.cache or tempfile.mkdtemp(prefix="lmbrain-features-")
    cache = FeatureCache(root)
    failures = 0
    for name in args.datasets:
        texts, ids, pos = DATASETS[name]()
        print(f"== {name}: {len(texts)} units in {len(set(ids))} contexts", flush=True)
        # a causal model gives units with the same context so far one vector (e.g. sentence-initial words)
        order = sorted(range(len(texts)), key=lambda i: (str(ids[i]), pos[i]))
        so_far: dict[object, list[str]] = {}
        seen = set()
        for i in order:
            so_far.setdefault(ids[i], []).append(" ".join(texts[i].split()))
            seen.add(" ".join(so_far[ids[i]]))
        prefixes = len(seen)
        for model in args.models:
            start = time.perf_counter()
            f = get_features(model, texts, ids, pos, cache=cache, progress=False)
            took = time.perf_counter() - start
            finite = bool(np.isfinite(f).all())
            top = f[-1] / np.linalg.norm(f[-1], axis=1, keepdims=True)  # float noise scales with |value|
            distinct = len(np.unique(top.round(4), axis=0))
            ok = finite and f.shape[1] == len(texts)
            failures += not ok
            print(
                f"  {model:<26} {f.shape[0]:>2} layers x {f.shape[1]} x {f.shape[2]}  {took:7.1f} s  "
                f"finite={finite}  distinct top-layer vectors {distinct} (contexts so far: {prefixes})",
                flush=True,
            )
    print(f"cache: {root}")
    print("ALL OK" if not failures else f"{failures} FAILED")


if __name__ == "__main__":
    main()
