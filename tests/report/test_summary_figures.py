"""The families figure: every trained model's omega is drawn or said to be not defined, never left blank."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd

from lmbrain.report import summary_figures


def _row(base: str, untrained: bool, omega: float) -> dict:
    return {"dataset": "d", "controls": "word_position", "base": base, "untrained": untrained,
            "r2_llm": 0.01, "r2_llm_low": 0.0, "r2_llm_high": 0.02, "unique_llm": 0.002, "unique_low": -0.001,
            "unique_high": 0.004, "omega": omega, "omega_low": omega - 10, "omega_high": omega + 10}


def test_an_undefined_omega_is_marked_nd_in_its_models_column(tmp_path, monkeypatch):
    captured = {}

    def keep(fig, stem):
        captured["fig"] = fig
        return [stem]

    monkeypatch.setattr(summary_figures, "save", keep)
    rows = pd.DataFrame([_row("a", False, 80.0), _row("b", False, np.nan), _row("b", True, np.nan)])
    summary_figures.families(rows, tmp_path, {"a": "C0", "b": "C1"}, {"a": {"n_params": 1e6}, "b": {"n_params": 2e6}})
    omega_ax = captured["fig"].axes[2]
    marks = [t for t in omega_ax.texts if t.get_text() == "n.d."]
    assert len(marks) == 1 and marks[0].get_position()[0] == 1  # model b's column, not a's
    assert not [t for t in captured["fig"].axes[0].texts if t.get_text() == "n.d."]  # R² is defined everywhere
