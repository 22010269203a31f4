"""The control analysis recovers what was put into simulated data (issue: controls and statistics)."""

import numpy as np
import pytest

from lmbrain.analysis.partition import partition
from lmbrain.data.simulate import simulate_sentences
from lmbrain.encoding import BandedRidgeCV, GroupedKFold, RidgeCV, ShuffledSplit, cross_validate, cross_validate_select
from lmbrain.features.controls import control_features

ALPHAS = np.logspace(-2, 5, 8)


def test_unique_and_shared_variance_are_recovered():
    rng = np.random.default_rng(0)
    n = 800
    unique_llm = rng.normal(size=(n, 10))   # only the LLM sees it
    shared = rng.normal(size=(n, 3))        # both the LLM and the controls see it
    unique_ctrl = rng.normal(size=(n, 2))   # only the controls see it
    weights = {"unique_llm": 0.4, "shared": 0.4, "unique_ctrl": 0.2}
    snr = 3.0
    ds = simulate_sentences({"unique_llm": unique_llm, "shared": shared, "unique_ctrl": unique_ctrl},
                            weights, n_neuroids=30, snr=snr, seed=1)
    Y = ds.responses.values
    groups = ds.groups()
    llm = np.hstack([unique_llm, shared, rng.normal(size=(n, 20))])  # plus irrelevant dimensions
    ctrl = np.hstack([shared, unique_ctrl])
    cv = GroupedKFold(5)
    ridge = RidgeCV(alphas=ALPHAS, cv=GroupedKFold(4))
    r2_llm = cross_validate(ridge, llm, Y, groups, cv).r2
    r2_ctrl = cross_validate(ridge, ctrl, Y, groups, cv).r2
    banded = BandedRidgeCV(feature_slices=[slice(0, llm.shape[1]), slice(llm.shape[1], None)], alphas=ALPHAS,
                           cv=GroupedKFold(4))
    r2_joint = cross_validate(banded, np.hstack([llm, ctrl]), Y, groups, cv).r2
    parts = partition(r2_llm, r2_ctrl, r2_joint).mean()
    explained = snr / (1 + snr)
    assert parts.unique_llm == pytest.approx(weights["unique_llm"] * explained, abs=0.05)
    assert parts.shared == pytest.approx(weights["shared"] * explained, abs=0.05)
    assert parts.unique_controls == pytest.approx(weights["unique_ctrl"] * explained, abs=0.05)
    # omega: the controls account for shared / (unique + shared) of the LLM's R²
    assert parts.omega == pytest.approx(100 * 0.4 / 0.8, abs=8)


def test_passage_autocorrelation_inflates_oasm_under_shuffled_splits_only():
    rng = np.random.default_rng(2)
    n = 400
    ds = simulate_sentences({"x": rng.normal(size=(n, 5))}, n_neuroids=20, snr=0.5, passage_autocorr=0.7,
                            passage_size=4, seed=3)
    oasm = control_features(ds, "oasm").candidates
    Y = ds.responses.values
    groups = ds.groups()
    ridge = RidgeCV(alphas=ALPHAS, cv=GroupedKFold(4))
    grouped = cross_validate_select(oasm, Y, groups, GroupedKFold(5), ridge)
    shuffled = cross_validate_select(oasm, Y, groups, ShuffledSplit(5, random_state=0),
                                     RidgeCV(alphas=ALPHAS, cv=ShuffledSplit(4, random_state=1)))
    assert grouped.r2.mean() <= 0.01, "OASM knows nothing but autocorrelation: nothing to predict across passages"
    assert shuffled.r2.mean() > 0.2, "with passages split across folds OASM reads the shared passage noise"
    assert all(name != "sigma=0" for name in shuffled.selected), "smoothing (σ > 0) is what carries the leak"
