"""Brain views: the values drawn equal a plain computation from the results; ROIs are drawn only where a dataset's
spec locates them (with a cited source), and the page says which datasets have no brain view."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as np
import pytest
from pydantic import ValidationError

from lmbrain.data.specs import NeuroidSpec
from lmbrain.report.across_subjects import across_subject_table
from lmbrain.report.brain import brain_view_table, brain_views, unlocated_note
from lmbrain.results import NO_MODEL, R2, load_results

REPO = Path(__file__).resolve().parents[2]
DATASET = "brennan2016_alice"
#: placeholder centres for the drawing test only (not the paper's: docs/report.md says why none are shipped)
CENTRES = {"LATL": [-50.0, 10.0, -25.0], "RATL": [50.0, 10.0, -25.0], "LPTL": [-55.0, -40.0, 5.0],
           "LIPL": [-45.0, -60.0, 40.0], "LPreM": [-50.0, 0.0, 45.0], "LIFG": [-50.0, 20.0, 10.0]}


@pytest.fixture(scope="module")
def shipped():
    results, _, manifest = load_results(REPO / "reports" / "split_audit")
    return results, manifest, across_subject_table(results, seed=0, fdr_alpha=0.05)


def test_each_disc_is_the_subject_mean_of_joint_minus_controls_r2(shipped):
    results, _, across = shipped
    table = brain_view_table(across, DATASET, CENTRES)
    assert not table.empty and not table["model"].str.contains("untrained").any()
    rows = results[(results["dataset"] == DATASET) & (results["scheme"] == "grouped") & ~results["per_layer"]
                   & (results["metric"] == R2)]
    for row in table.itertuples():
        joint = rows[(rows["model"] == row.model) & (rows["feature_set"] == f"llm+{row.controls}")
                     & (rows["roi"] == row.roi)].set_index("subject")["value"]
        alone = rows[(rows["model"] == NO_MODEL) & (rows["feature_set"] == row.controls)
                     & (rows["roi"] == row.roi)].set_index("subject")["value"]
        assert row.unique_llm == pytest.approx((joint - alone.loc[joint.index]).mean(), abs=1e-12)
        assert [row.x, row.y, row.z] == CENTRES[row.roi]
        assert row.significant == (row.q <= 0.05)


def test_only_located_rois_are_drawn(shipped):
    _, _, across = shipped
    table = brain_view_table(across, DATASET, {"LATL": CENTRES["LATL"]})
    assert set(table["roi"]) == {"LATL"}


def test_a_located_dataset_gets_one_figure_per_control_set_and_others_a_note(shipped, tmp_path):
    _, manifest, across = shipped
    assert brain_views(across, manifest, tmp_path) == []  # the shipped data locate no ROI
    assert "No brain view of Brennan2016 (Alice)" in unlocated_note(across, manifest)
    located = {**manifest, "roi_coordinates": {DATASET: {"centres": CENTRES, "source": "test placeholder"}}}
    written = brain_views(across, located, tmp_path)
    pngs = sorted(p.name for p in written if p.suffix == ".png")
    assert pngs == ["brain_brennan2016_alice_oasm.png", "brain_brennan2016_alice_word_rate-sound_power.png"]
    image = matplotlib.image.imread(tmp_path / pngs[1])
    assert image.shape[0] > 200 and np.ptp(image[..., :3]) > 0.5  # drawn, not blank
    assert unlocated_note(across, located) == ""


def test_roi_coordinates_must_say_where_they_come_from():
    with pytest.raises(ValidationError, match="coordinates_source"):
        NeuroidSpec(rois={"LATL": {"mni": [-50, 10, -25]}})
    spec = NeuroidSpec(rois={"LATL": {"mni": [-50, 10, -25]}, "RATL": {}}, coordinates_source="Table 1 of X")
    assert spec.roi_centres() == {"LATL": [-50.0, 10.0, -25.0]}
