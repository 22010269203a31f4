"""Each real dataset through a minimal grouped-CV encoding loop with a one-feature baseline.

The project's pipeline (features + encoding) lives elsewhere; this loop only shows that each loaded dataset
has what such a pipeline needs (aligned stimuli/responses, usable groups, NaN masking per neuroid) and that
a known effect of the README comes out of it, so the data are real and correctly aligned.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lmbrain.data import check_n_groups, load_dataset
from lmbrain.data.alignment import event_regressor


def grouped_folds(groups: np.ndarray, n_folds: int) -> np.ndarray:
    """Fold index per sample; whole groups go to one fold."""
    check_n_groups(groups, n_folds)
    uniq = list(dict.fromkeys(groups.astype(str)))
    fold_of = {g: i % n_folds for i, g in enumerate(uniq)}
    return np.array([fold_of[g] for g in groups.astype(str)])


def cv_correlation(x: np.ndarray, y: np.ndarray, groups: np.ndarray, n_folds: int = 5) -> np.ndarray:
    """Out-of-fold Pearson r per neuroid of a least-squares fit, NaN samples masked per neuroid."""
    folds = grouped_folds(groups, n_folds)
    for f in range(n_folds):  # no group on both sides
        assert not set(groups[folds == f].astype(str)) & set(groups[folds != f].astype(str))
    x = np.column_stack([x, np.ones(len(x))])
    out = []
    for j in range(y.shape[1]):
        ok = np.isfinite(y[:, j])
        pred = np.full(len(y), np.nan)
        for f in range(n_folds):
            tr, te = ok & (folds != f), ok & (folds == f)
            beta, *_ = np.linalg.lstsq(x[tr], y[tr, j], rcond=None)
            pred[te] = x[te] @ beta
        out.append(np.corrcoef(pred[ok], y[ok, j])[0, 1])
    return np.asarray(out)


def n_words(texts) -> np.ndarray:
    return np.asarray([len(str(t).split()) for t in texts], dtype=float)[:, None]


def n_chars(texts) -> np.ndarray:
    return np.asarray([len(str(t)) for t in texts], dtype=float)[:, None]


@pytest.mark.parametrize(
    ("name", "feature", "min_mean_r"),
    [
        ("pereira2018_langnet", lambda ds: n_words(ds.stimuli["text"]), 0.25),  # README: r = 0.38 with length
        (
            "fedorenko2016",
            lambda ds: ds.stimuli[["position"]].to_numpy(float),
            0.1,
        ),  # build-up over the sentence
        ("naturalstories", lambda ds: n_chars(ds.stimuli["text"]), 0.1),
        ("frank2015_et", lambda ds: n_chars(ds.stimuli["text"]), 0.05),
        ("frank2015_eeg", lambda ds: n_chars(ds.stimuli["text"]), -1.0),  # runs; no claim on the N400
    ],
)
def test_event_datasets_through_grouped_cv(
    real_data_dir: Path, name: str, feature, min_mean_r: float
) -> None:
    ds = load_dataset(name, data_dir=real_data_dir)
    r = cv_correlation(feature(ds), ds.responses.values, ds.groups())
    assert np.isfinite(r).all() and r.mean() > min_mean_r


def high_pass(values: np.ndarray, tr: float, cutoff: float = 128.0) -> np.ndarray:
    """Remove a DCT drift basis with periods longer than ``cutoff`` seconds (SPM's default filter)."""
    n = values.shape[0]
    t = np.arange(n)
    k = int(np.floor(2 * n * tr / cutoff))
    basis = np.column_stack([np.cos(np.pi * (2 * t + 1) * j / (2 * n)) for j in range(k + 1)])
    return values - basis @ np.linalg.lstsq(basis, values, rcond=None)[0]


def test_brennan_through_grouped_cv(real_data_dir: Path) -> None:
    """Raw ROI time courses drift: high-pass them (as fMRI pipelines do); then the word rate predicts them."""
    ds = load_dataset("brennan2016_alice", data_dir=real_data_dir)
    rate = event_regressor(ds.stimuli["onset"].to_numpy(), ds.responses.sizes["sample"], ds.tr)
    y, x = high_pass(ds.responses.values, ds.tr), high_pass(rate[:, None], ds.tr)
    r = cv_correlation(x, y, ds.groups(), n_folds=5)
    assert np.isfinite(r).all() and r.mean() > 0.05 and (r > 0).mean() > 0.75
