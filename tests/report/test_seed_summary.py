"""Trained models next to the mean and range of their untrained seeds."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lmbrain.report.seeds import base_model, seed_summary_table


def test_seed_summary_averages_only_the_untrained_seeds_of_each_model():
    family = pd.DataFrame({
        "dataset": ["d"] * 5,
        "model": ["m", "m:untrained-0", "m:untrained-1", "m:untrained-2", "other"],
        "r": [0.5, 0.1, 0.2, 0.3, 0.4],
        "omega": [50.0, np.nan, 80.0, 90.0, 10.0],
    })
    table = seed_summary_table(family).set_index("model")
    assert base_model("m:untrained-12") == "m"
    assert table.loc["m", "n_untrained_seeds"] == 3 and table.loc["other", "n_untrained_seeds"] == 0
    assert table.loc["m", "r trained"] == 0.5
    assert table.loc["m", "r untrained mean"] == pytest.approx(0.2)
    assert table.loc["m", "r untrained range"] == "[0.100, 0.300]"
    # omega not defined for one seed: averaged over the defined ones, and the count says so
    assert table.loc["m", "omega untrained mean"] == pytest.approx(85.0)
    assert table.loc["m", "omega untrained defined"] == "2/3"
    assert np.isnan(table.loc["other", "r untrained mean"])
