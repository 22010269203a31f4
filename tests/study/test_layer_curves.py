"""Layer curves with uncertainty: per-layer CIs over the split unit's groups cover the truth, and the test of "best
intermediate layer > last layer" holds its level where the curve is flat at the top and finds a real peak.

Calibration runs on simulated out-of-fold predictions (no refits): 2,000 targets, each with its own responses
and one prediction per layer whose true out-of-sample R² and r are known; samples come in groups (sentences)
that share part of their noise, and the outer folds hold whole groups. The real-data test runs the per-layer unit
of a small Fedorenko (2016) study.
"""

from __future__ import annotations

import numpy as np
import pytest

from lmbrain.analysis.layers import (
    best_in_fold,
    choice_folds,
    fold_choice_predictions,
    intermediate_layers,
    r2_contrast,
)
from lmbrain.analysis.stats import bootstrap_scores
from lmbrain.results import layer_index, layer_label

N_GROUPS, PER_GROUP, N_FOLDS, N_TARGETS = 40, 5, 5, 2000
VAR_NOISE, VAR_LAYER_NOISE, GROUP_SHARE = 2.0, 0.3, 0.3  # response noise, a layer's own noise, share within a group
NAMES = [layer_label(i) for i in range(5)]
FLAT_TOP = [0.2, 0.4, 0.4, 0.4, 0.4]  # every intermediate layer as good as the last
FLAT_TOP_LOWER = [0.2, 0.3, 0.4, 0.4, 0.4]
PEAK = [0.2, 0.6, 1.0, 0.6, 0.1]  # true R²: 0.02, 0.18, 0.23, 0.18, -0.04


def grouped_noise(rng: np.random.Generator, groups: np.ndarray) -> np.ndarray:
    """Unit-variance noise (samples x targets), a share of it common to the samples of a group."""
    shared = rng.standard_normal((N_GROUPS, N_TARGETS))[groups]
    return np.sqrt(GROUP_SHARE) * shared + np.sqrt(1 - GROUP_SHARE) * rng.standard_normal((len(groups), N_TARGETS))


def simulate(weights: list[float], seed: int) -> dict:
    """Responses y = s + noise and layer predictions c_l s + own noise; the truth of every layer's R² and r."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(N_GROUPS), PER_GROUP)
    signal = grouped_noise(rng, groups)
    y = signal + np.sqrt(VAR_NOISE) * grouped_noise(rng, groups)
    predictions = {name: c * signal + np.sqrt(VAR_LAYER_NOISE) * grouped_noise(rng, groups)
                   for name, c in zip(NAMES, weights, strict=True)}
    r2 = {name: 1 - ((1 - c) ** 2 + VAR_NOISE + VAR_LAYER_NOISE) / (1 + VAR_NOISE)
          for name, c in zip(NAMES, weights, strict=True)}
    r = {name: c / np.sqrt((1 + VAR_NOISE) * (c**2 + VAR_LAYER_NOISE)) for name, c in zip(NAMES, weights, strict=True)}
    return {"y": y, "predictions": predictions, "groups": groups, "folds": groups % N_FOLDS,
            "baseline": np.zeros_like(y), "r2": r2, "r": r}


def r2_on(sim: dict, name: str, rows: np.ndarray) -> np.ndarray:
    y = sim["y"][rows]
    return 1 - ((y - sim["predictions"][name][rows]) ** 2).sum(0) / (y**2).sum(0)


def contrast(sim: dict, peek: bool = False):
    """Best intermediate vs last: chosen per test fold on its choice folds, or (``peek``) on all outer scores."""
    middle, last = intermediate_layers(NAMES)
    folds = sim["folds"]
    if peek:  # the biased way: the best intermediate layer on the very scores that are then tested
        scores = np.stack([r2_on(sim, name, np.arange(len(folds))) for name in middle])
        best = np.stack([sim["predictions"][name] for name in middle])[scores.argmax(0), :, np.arange(N_TARGETS)].T
    else:
        scores = np.stack([[r2_on(sim, name, np.isin(folds, others)) for name in middle]
                           for others in choice_folds(N_FOLDS)])
        choices = best_in_fold(scores, middle, middle)
        best = fold_choice_predictions(sim["predictions"], folds, choices, np.arange(N_TARGETS))
    return r2_contrast(sim["y"], best, sim["predictions"][last], sim["baseline"], sim["groups"], folds, n_boot=1000,
                       seed=0)


def test_choice_folds_never_inform_each_other():
    for n_folds in range(1, 11):
        chosen_on = choice_folds(n_folds)
        assert all(k not in others and len(others) == (n_folds - 1) // 2 for k, others in enumerate(chosen_on))
        assert not any(j in chosen_on[k] and k in chosen_on[j] for k in range(n_folds) for j in range(n_folds))


def test_intermediate_layers_and_choices():
    assert intermediate_layers(["layer=12", "layer=0", "layer=6", "layer=3"]) == (["layer=3", "layer=6"], "layer=12")
    assert intermediate_layers(["layer=0", "layer=6"]) == ([], None)
    scores = np.array([[0.1, 0.3, 0.3, 0.9], [0.1, np.nan, 0.2, 0.9]])  # per fold, over candidates
    chosen = best_in_fold(scores, NAMES[:4], NAMES[1:3])
    assert chosen[:, 0].tolist() == ["layer=1", "layer=2"]  # ties: the shallower; NaN: never chosen
    assert all(layer_index(c) in (1, 2) for c in chosen.ravel())


def test_per_layer_cis_cover_the_truth():
    """Per-target 95 % CIs (the per-layer unit's bootstrap over groups) of R² and r cover the true values."""
    sim = simulate(PEAK, seed=1)
    for name in (NAMES[2], NAMES[4]):
        ci = bootstrap_scores(sim["y"], sim["predictions"][name], sim["baseline"], sim["groups"], folds=sim["folds"],
                              n_boot=1000, seed=0)
        r2_cover = np.mean((ci.r2_low <= sim["r2"][name]) & (sim["r2"][name] <= ci.r2_high))
        r_cover = np.mean((ci.r_low <= sim["r"][name]) & (sim["r"][name] <= ci.r_high))
        assert 0.9 <= r2_cover <= 0.98, (name, r2_cover)
        assert 0.92 <= r_cover <= 0.98, (name, r_cover)


@pytest.mark.parametrize("weights", [FLAT_TOP, FLAT_TOP_LOWER], ids=["flat-top", "flat-top-lower-middle"])
def test_best_vs_last_holds_its_level_on_a_flat_top(weights):
    sim = simulate(weights, seed=2)
    test = contrast(sim)
    assert np.mean(test.p <= 0.05) <= 0.07
    assert np.mean((test.low <= 0) & (0 <= test.high)) >= 0.9
    assert abs(np.mean(test.difference)) < 0.01 + abs(sim["r2"][NAMES[1]] - sim["r2"][NAMES[4]])


def test_choosing_on_the_tested_scores_is_biased():
    """The comparison can fail: the best intermediate layer picked on the same outer scores "beats" a flat top."""
    sim = simulate(FLAT_TOP, seed=2)
    biased = contrast(sim, peek=True)
    assert np.mean(biased.p <= 0.05) > 0.09
    assert np.mean(biased.difference) > 0.01


def test_best_vs_last_detects_a_peak():
    sim = simulate(PEAK, seed=3)
    test = contrast(sim)
    truth = sim["r2"][NAMES[2]] - sim["r2"][NAMES[4]]
    assert np.mean(test.p <= 0.05) >= 0.8
    assert abs(np.median(test.difference) - truth) < 0.25 * truth  # the chosen layer is mostly the peak


@pytest.mark.slow
@pytest.mark.xdist_group("real_pipeline")
def test_real_per_layer_unit_writes_curve_cis_and_the_shape_test(data_dir):
    """Fedorenko (2016), tiny GPT-2: every layer's targets get CIs around their scores, and the shape rows."""
    from lmbrain.study.compute import compute_unit
    from lmbrain.study.context import StudyContext
    from lmbrain.study.plan import enumerate_units
    from lmbrain.study.schema import Study

    study = Study.model_validate({
        "name": "layer-curves-fedorenko",
        "datasets": [{"name": "fedorenko2016", "controls": ["word_position"]}],
        "models": [{"name": "gpt2-tiny"}],
        "cv": {"n_splits": 3, "inner_splits": 3},
        "estimator": {"layer_curves": True, "alphas": [1.0, 100.0, 10000.0]},
        "statistics": {"ceiling": False, "bootstrap": 200, "permutations": 0},
    })
    context = StudyContext(study)
    (unit,) = [u for u in enumerate_units(context) if u.kind == "layers"]
    table, record = compute_unit(context, unit)
    layers = record["candidates"]
    middle, last = intermediate_layers(layers)
    assert middle
    wide = table.pivot_table(index=["subject", "neuroid_id", "layer"], columns="metric", values="value")
    curve = wide.dropna(subset=["r"])
    assert set(curve.index.get_level_values("layer")) == set(layers)
    for metric in ("r", "r2"):
        inside = (curve[f"{metric}_ci_low"] <= curve[metric]) & (curve[metric] <= curve[f"{metric}_ci_high"])
        assert inside.mean() >= 0.9, metric
    shape = wide.dropna(subset=["layer_diff_best_vs_last"])
    assert len(shape) == record["n_targets"]
    assert set(shape.index.get_level_values("layer")) <= set(middle)
    inside = (shape["layer_diff_ci_low"] <= shape["layer_diff_best_vs_last"]) & (
        shape["layer_diff_best_vs_last"] <= shape["layer_diff_ci_high"])
    assert inside.mean() >= 0.9
    assert shape["p_best_vs_last"].between(0, 1).all() and shape["p_best_vs_last"].min() > 0
    # the stitched best intermediate layer minus the last layer's R² (the same samples) is the difference (float32)
    last_r2 = curve.xs(last, level="layer")["r2"]
    best_r2 = shape.droplevel("layer")["r2_best_intermediate"]
    diff = shape.droplevel("layer")["layer_diff_best_vs_last"]
    np.testing.assert_allclose((best_r2 - last_r2.loc[best_r2.index]).to_numpy(), diff.to_numpy(), atol=1e-6)
