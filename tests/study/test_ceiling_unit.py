"""The ceiling unit on the real datasets whose subjects share stimuli (Fedorenko2016 ECoG, Brennan2016 fMRI):
non-degenerate ceilings with intervals, pool curves and the alternative estimates, and the report's table and figure
built from these rows alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmbrain.report.ceilings import ceiling_table
from lmbrain.report.figures import ceiling_diagnostics
from lmbrain.results import (
    CEILING_AT_BOUND,
    CEILING_CI_HIGH,
    CEILING_CI_LOW,
    CEILING_INTER_SUBJECT,
    CEILING_OWN,
    R,
    pool_r_metric,
)
from lmbrain.study.compute import compute_ceiling
from lmbrain.study.context import StudyContext
from lmbrain.study.plan import Unit
from lmbrain.study.schema import load_study

pytestmark = [pytest.mark.xdist_group("ceiling_unit")]

STUDY = load_study(Path(__file__).resolve().parents[2] / "analyses" / "default.yaml")  # the default study's units
LARGEST_POOL = {"fedorenko2016": 4, "brennan2016_alice": 8}  # every other subject; the study's cap (8 of 26)


@pytest.fixture(scope="module")
def ceiling_rows(data_dir) -> pd.DataFrame:
    """Both datasets' ceiling units, computed once."""
    return pd.concat([compute_ceiling(StudyContext(STUDY), Unit(name, "*", None, None, "ceiling", "grouped"))[0]
                      for name in LARGEST_POOL], ignore_index=True)


@pytest.mark.parametrize("name", sorted(LARGEST_POOL))
def test_real_ceilings_are_not_degenerate(ceiling_rows, name):
    rows = ceiling_rows[ceiling_rows["dataset"] == name]
    wide = rows.set_index(["subject", "neuroid_id", "metric"])["value"].unstack("metric")
    assert len(wide) == {"fedorenko2016": 97, "brennan2016_alice": 162}[name]
    ceiling = wide[R]
    # the criterion: at most 5 % of a dataset's ceilings at 0 or >= 0.99
    assert ((ceiling <= 0) | (ceiling >= 0.99)).mean() <= 0.05
    assert ceiling.between(0, 1, inclusive="neither").all()
    assert ((wide[CEILING_CI_LOW] <= ceiling) & (ceiling <= wide[CEILING_CI_HIGH])).all()
    assert set(wide[CEILING_AT_BOUND].unique()) <= {0.0, 1.0} and wide[CEILING_AT_BOUND].mean() <= 0.15
    assert wide[CEILING_OWN].notna().mean() > 0.9
    curves = wide[[pool_r_metric(k) for k in range(1, LARGEST_POOL[name] + 1)]]
    mean_curve = curves.mean()
    assert curves.notna().all().all() and (mean_curve.diff().dropna() > -0.01).all(), "larger pools predict better"
    assert mean_curve.iloc[-1] > mean_curve.iloc[0] + 0.05
    assert 0.15 < ceiling.median() < 0.6 and ceiling.median() > curves.iloc[:, -1].median()
    if name == "brennan2016_alice":  # the same six ROIs in every subject: the inter-subject ceiling exists and agrees
        inter = wide[CEILING_INTER_SUBJECT]
        assert inter.notna().all() and np.corrcoef(inter, ceiling)[0, 1] > 0.7
    else:
        assert CEILING_INTER_SUBJECT not in wide.columns


def test_ceiling_table_and_figure_from_results_alone(ceiling_rows, tmp_path):
    table = ceiling_table(ceiling_rows).set_index("dataset")
    assert list(table.index) == ["brennan2016_alice", "fedorenko2016"]
    assert (table["share_at_0"] == 0).all() and (table["share_at_least_0.99"] == 0).all()
    assert (table["median_ci_width"] > 0).all() and table["largest_pool"].tolist() == [8, 4]
    assert np.isfinite(table.loc["brennan2016_alice", "median_inter_subject"])
    assert np.isnan(table.loc["fedorenko2016", "median_inter_subject"])
    written = ceiling_diagnostics(ceiling_rows, tmp_path)
    assert sorted(p.name for p in written) == sorted(f"ceiling_{name}.{ext}" for name in LARGEST_POOL
                                                     for ext in ("png", "svg"))
    assert all(p.stat().st_size > 1000 for p in written)
