"""Layer tables and figures: per-layer CIs (over subjects, or a single target's own over groups) on relative depth,
and the best-intermediate-vs-last table (sign flips over subjects, a single target's block test, BH over models)."""

from __future__ import annotations

import matplotlib.axes
import numpy as np
import pandas as pd
import pytest

from lmbrain.analysis.stats import fdr_bh
from lmbrain.report.figures import layer_curves
from lmbrain.report.tables import layer_shape_table, layer_table

LAYERS = [0, 2, 4, 6]


def rows(dataset: str, model: str, subject: str, neuroid: str, layer: int, metrics: dict) -> list[dict]:
    return [{"dataset": dataset, "subject": subject, "model": model, "feature_set": "llm", "scheme": "grouped",
             "per_layer": True, "layer": f"layer={layer}", "neuroid_id": neuroid, "metric": m, "value": float(v)}
            for m, v in metrics.items()]


@pytest.fixture(scope="module")
def results() -> pd.DataFrame:
    """'multi': 4 subjects x 3 electrodes, a curve peaking at layer 4; 'single': one target, two models."""
    rng = np.random.default_rng(0)
    out = []
    for s in range(4):
        chosen = 4 if s < 3 else 2
        for t in range(3):
            for layer in LAYERS:
                r2 = 0.02 + 0.01 * (layer == 4) + 0.002 * s + 0.001 * rng.standard_normal()
                out += rows("multi", "m", str(s + 1), f"e{t}", layer, {"r": 10 * r2, "r2": r2})
            diff = 0.01 + 0.002 * s
            out += rows("multi", "m", str(s + 1), f"e{t}", chosen,
                        {"r2_best_intermediate": 0.03 + diff, "layer_diff_best_vs_last": diff,
                         "layer_diff_ci_low": diff - 0.02, "layer_diff_ci_high": diff + 0.02, "p_best_vs_last": 0.2})
    for model, p in (("a", 0.004), ("b", 0.03)):
        for layer in LAYERS:
            r2 = 0.1 + 0.05 * (layer == 2)
            out += rows("single", model, "group", "net", layer, {"r": 0.3, "r2": r2, "r_ci_low": 0.2, "r_ci_high": 0.4,
                                                                 "r2_ci_low": r2 - 0.05, "r2_ci_high": r2 + 0.05})
        out += rows("single", model, "group", "net", 2, {"r2_best_intermediate": 0.15, "layer_diff_best_vs_last": 0.05,
                                                         "layer_diff_ci_low": 0.01, "layer_diff_ci_high": 0.09,
                                                         "p_best_vs_last": p})
    return pd.DataFrame(out)


def test_layer_table_has_cis_and_relative_depth(results):
    table = layer_table(results, n_boot=500)
    assert {"depth", "r_ci_low", "r_ci_high", "r2_ci_low", "r2_ci_high", "ci_over"} <= set(table.columns)
    multi = table[table["dataset"] == "multi"].set_index("layer")
    assert multi["depth"].tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert (multi["ci_over"] == "subjects").all() and (multi["n_subjects"] == 4).all()
    assert ((multi["r2_ci_low"] <= multi["r2"]) & (multi["r2"] <= multi["r2_ci_high"])).all()
    assert (multi["r2_ci_low"] < multi["r2_ci_high"]).all()
    curve = results[(results["dataset"] == "multi") & (results["metric"] == "r2") & (results["layer"] == "layer=4")]
    assert multi.loc[4, "r2"] == pytest.approx(curve.groupby("subject")["value"].mean().mean())
    single = table[(table["dataset"] == "single") & (table["model"] == "a")].set_index("layer")
    assert (single["ci_over"] == "groups").all()  # one target: its own bootstrap CI over the split unit's groups
    assert single.loc[2, "r2"] == pytest.approx(0.15)
    assert (single.loc[2, "r2_ci_low"], single.loc[2, "r2_ci_high"]) == pytest.approx((0.10, 0.20))


def test_layer_shape_table(results):
    table = layer_shape_table(results, n_boot=500).set_index(["dataset", "model"])
    multi = table.loc[("multi", "m")]
    assert multi["best_layer"] == "4 (3/4)" and multi["best_depth"] == pytest.approx(2 / 3)
    assert multi["last_layer"] == 6 and multi["n_subjects"] == 4 and multi["n_targets"] == 12
    assert multi["difference"] == pytest.approx(np.mean([0.01 + 0.002 * s for s in range(4)]))
    assert multi["difference_ci_low"] <= multi["difference"] <= multi["difference_ci_high"]
    assert multi["p_descriptive"] == pytest.approx(1 / 16)  # exact one-sided sign flips: 4 subjects, all positive
    assert "4 subjects" in multi["test"]
    last = results[(results["dataset"] == "multi") & (results["metric"] == "r2") & (results["layer"] == "layer=6")]
    assert multi["r2_last"] == pytest.approx(last.groupby("subject")["value"].mean().mean())
    single = table.loc["single"]
    assert single["p_descriptive"].tolist() == [0.004, 0.03] and (single["difference"] == 0.05).all()
    assert single["difference_ci_low"].tolist() == [0.01, 0.01] and single["best_layer"].tolist() == ["2 (1/1)"] * 2
    np.testing.assert_allclose(single["q_descriptive"], fdr_bh(np.array([0.004, 0.03]))[1])  # BH over the models
    # p_best_vs_last is not calibrated: the table never calls a layer difference significant
    assert not any("signif" in column for column in table.columns)


def test_tables_without_layer_rows_are_empty(results):
    plain = results.assign(per_layer=False)
    assert layer_table(plain).empty and layer_shape_table(plain).empty
    curves_only = results[~results["metric"].str.contains("best|diff")]
    assert layer_shape_table(curves_only).empty and not layer_table(curves_only).empty


def test_layer_curves_draw_a_band_for_every_curve(results, tmp_path, monkeypatch):
    bands = []
    original = matplotlib.axes.Axes.fill_between

    def counting(self, x, low, high, **kwargs):
        bands.append(np.isfinite(np.asarray(low, float)).all() and np.isfinite(np.asarray(high, float)).all())
        return original(self, x, low, high, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "fill_between", counting)
    paths = layer_curves(results, tmp_path, n_boot=200)
    assert sorted(p.name for p in paths) == ["layers_multi.png", "layers_multi.svg", "layers_single.png",
                                             "layers_single.svg"]
    assert len(bands) == 3 and all(bands)  # one R² band per trained curve (1 + 2), single-target ones included


def test_layer_curves_draw_untrained_seeds_as_one_band(results, tmp_path, monkeypatch):
    bands = []
    original = matplotlib.axes.Axes.fill_between

    def counting(self, x, low, high, **kwargs):
        bands.append(np.asarray(high, float) - np.asarray(low, float))
        return original(self, x, low, high, **kwargs)

    multi = results[results["dataset"] == "multi"]
    seeds = [multi.assign(model=f"{model}:untrained-{seed}", value=multi["value"] * (1 + 0.1 * seed))
             for model in multi["model"].unique() for seed in range(5)]
    monkeypatch.setattr(matplotlib.axes.Axes, "fill_between", counting)
    layer_curves(pd.concat([multi, *seeds]), tmp_path, n_boot=100)
    assert len(bands) == 2  # the trained model's CI band and one band for its 5 seeds, not 5 more
    assert (bands[1] >= 0).all()  # the seeds' min-max
