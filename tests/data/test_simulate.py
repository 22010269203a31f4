"""Simulated data: known mixtures are recovered by a plain cross-validated regression."""

from __future__ import annotations

import numpy as np
import pytest

from lmbrain.data import check_n_groups
from lmbrain.data.simulate import simulate_sentences, simulate_timeseries
from lmbrain.errors import DataError


def grouped_cv_r2(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, n_folds: int = 5, alpha: float = 1.0
) -> np.ndarray:
    """Ridge with folds made of whole groups; out-of-fold R^2 per column of y."""
    x = np.column_stack([x, np.ones(len(x))])
    uniq = np.unique(groups)
    fold_of_group = dict(zip(uniq, np.arange(len(uniq)) % n_folds, strict=True))
    folds = np.array([fold_of_group[g] for g in groups])
    pred = np.zeros_like(y)
    for f in range(n_folds):
        tr, te = folds != f, folds == f
        beta = np.linalg.solve(x[tr].T @ x[tr] + alpha * np.eye(x.shape[1]), x[tr].T @ y[tr])
        pred[te] = x[te] @ beta
    return 1 - ((y - pred) ** 2).sum(0) / ((y - y.mean(0)) ** 2).sum(0)


def test_sentence_simulation_recovers_snr_and_shares() -> None:
    rng = np.random.default_rng(0)
    llm, length = rng.normal(size=(1200, 8)), rng.normal(size=(1200, 1))
    ds = simulate_sentences(
        {"llm": llm, "length": length}, {"llm": 3.0, "length": 1.0}, snr=1.0, n_neuroids=10, seed=1
    )
    truth = ds.meta["ground_truth"]
    assert truth["expected_r2"] == pytest.approx(0.5) and truth["weights"] == {"llm": 0.75, "length": 0.25}
    y, groups = ds.responses.values, ds.groups()
    assert check_n_groups(groups, 5) == 300
    full = grouped_cv_r2(np.column_stack([llm, length]), y, groups).mean()
    only_llm = grouped_cv_r2(llm, y, groups).mean()
    only_length = grouped_cv_r2(length, y, groups).mean()
    assert full == pytest.approx(0.5, abs=0.05)
    assert only_llm == pytest.approx(0.75 * 0.5, abs=0.06)
    assert only_length == pytest.approx(0.25 * 0.5, abs=0.05)


def test_seeded_and_passage_correlated_noise() -> None:
    x = np.random.default_rng(2).normal(size=(400, 3))
    a = simulate_sentences({"x": x}, snr=0.5, passage_autocorr=0.6, seed=7)
    b = simulate_sentences({"x": x}, snr=0.5, passage_autocorr=0.6, seed=7)
    np.testing.assert_array_equal(a.responses.values, b.responses.values)
    noise = a.responses.values - a.meta["ground_truth"]["signal"]
    passages = a.stimuli["passage_id"].to_numpy()
    same = [
        np.corrcoef(noise[passages == p][0], noise[passages == p][1])[0, 1] for p in np.unique(passages)[:50]
    ]
    # the noise of two sentences of one passage, across neuroids, correlates about 0.6
    assert 0.4 < np.mean(same) < 0.8


def test_timeseries_simulation() -> None:
    rng = np.random.default_rng(3)
    n_words = 1500
    ds = simulate_timeseries(
        {"rate": np.ones(n_words), "sem": rng.normal(size=(n_words, 4))},
        n_scans=400,
        snr=2.0,
        n_neuroids=6,
        seed=4,
    )
    assert ds.is_timeseries and ds.responses.shape == (400, 6) and ds.samples["block"].nunique() == 10
    assert ds.stimuli["onset"].is_monotonic_increasing and ds.stimuli["onset"].max() < 800
    feats = np.column_stack(list(ds.meta["ground_truth"]["scan_features"].values()))
    r2 = grouped_cv_r2(feats, ds.responses.values, ds.groups(), alpha=1e-6)
    assert r2.mean() == pytest.approx(2 / 3, abs=0.1)


def test_bad_simulation_inputs() -> None:
    with pytest.raises(DataError, match="unknown feature set"):
        simulate_sentences({"x": np.zeros((8, 1)) + np.arange(8)[:, None]}, {"y": 1.0})
    with pytest.raises(DataError, match="snr must be positive"):
        simulate_sentences({"x": np.arange(8.0)}, snr=0)
