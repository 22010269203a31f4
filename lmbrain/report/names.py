"""Dataset and control-set names as a reader reads them (tables, figure titles, LaTeX)."""

from __future__ import annotations

from lmbrain.results import from_file_label, join_display, label_parts

#: dataset name parts spelled out
_WORDS = {"langnet": "language network", "eeg": "EEG", "et": "eye tracking", "alice": "Alice"}


def readable_dataset(name: str) -> str:
    """'brennan2016_alice' -> 'Brennan2016 (Alice)', 'pereira2018_langnet' -> 'Pereira2018 (language network)'."""
    first, *rest = str(name).split("_")
    words = " ".join(_WORDS.get(w, w) for w in rest)
    return first[:1].upper() + first[1:] + (f" ({words})" if words else "")


def readable_controls(label: str) -> str:
    """'sentence_length+sentence_position' -> 'sentence length + sentence position' (lags kept: 'word length@1')."""
    return join_display(part.replace("_", " ") for part in label_parts(label))


def figure_title(title: str, stem: str, datasets: list[str]) -> str:
    """A figure's title in words: the entry's title and, for one of several files, the dataset and control set its
    file stem names ('partition_pereira2018_langnet_sentence_length-sentence_position' -> 'Variance partitions:
    Pereira2018 (language network), sentence length + sentence position')."""
    for dataset in datasets:
        at = stem.find(dataset)
        if at >= 0:
            rest = stem[at + len(dataset):].strip("_")
            words = readable_dataset(dataset) + (f", {readable_controls(from_file_label(rest))}" if rest else "")
            return f"{title}: {words}"
    return title
