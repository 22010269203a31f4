"""Nested control sets: the increment of the larger set over the smaller, by hand on synthetic results (exact
sign-flip p, t interval) and on the shipped default study (surprisal over frequency + length + position, Frank2015)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from lmbrain.report.increments import COLUMNS, increments_table, nested_pairs
from lmbrain.results import load_results

REPO = Path(__file__).resolve().parents[2]


def _rows(dataset: str, feature_set: str, values: dict[tuple[str, str], float]) -> list[dict]:
    return [{"dataset": dataset, "subject": s, "model": "-", "feature_set": feature_set, "scheme": "grouped",
             "per_layer": False, "layer": "", "neuroid_id": t, "metric": "r2", "value": v, "roi": ""}
            for (s, t), v in values.items()]


def test_nested_pairs_are_strict_supersets_only():
    sets = ["a", "a+b", "b+c", "a+b+c", "a@1+a"]
    assert nested_pairs(sets) == [("a", "a+b"), ("a", "a+b+c"), ("a", "a@1+a"), ("a+b", "a+b+c"), ("b+c", "a+b+c")]


def test_increments_by_hand_with_an_exact_sign_flip_p():
    rng = np.random.default_rng(0)
    keys = list(itertools.product([str(s) for s in range(5)], ["t1", "t2"]))
    small = {k: 0.02 + 0.01 * rng.random() for k in keys}
    large = {k: v + 0.003 + 0.002 * rng.random() for k, v in small.items()}  # every subject gains
    other = {k: 0.05 for k in keys}  # not nested with the others
    few = {(s, t): 0.01 for s, t in keys if s in ("0", "1")}
    results = pd.DataFrame(_rows("d", "x", small) + _rows("d", "x+y", large) + _rows("d", "z", other)
                           + _rows("two", "x", few) + _rows("two", "x+y", {k: v + 0.01 for k, v in few.items()}))
    table = increments_table(results, seed=0)
    assert list(table.columns) == COLUMNS and len(table) == 2
    row = table[table["dataset"] == "d"].iloc[0]
    diff = (pd.Series(large) - pd.Series(small)).groupby(level=0).mean()
    assert (row["smaller"], row["added"], row["n_subjects"]) == ("x", "y", 5)
    assert row["increment"] == pytest.approx(diff.mean())
    assert row["r2_larger"] - row["r2_smaller"] == pytest.approx(diff.mean())
    assert row["p"] == pytest.approx(1 / 32)  # all 5 subjects positive: the exact one-sided sign-flip p
    low, high = stats.t.interval(0.95, 4, loc=diff.mean(), scale=diff.std(ddof=1) / np.sqrt(5))
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high))
    two = table[table["dataset"] == "two"].iloc[0]
    assert two["n_subjects"] == 2 and np.isnan(two["p"]) and two["test"].startswith("none")


def test_surprisals_increment_on_frank2015_matches_a_plain_computation():
    results = load_results(REPO / "reports" / "default")[0]
    table = increments_table(results, seed=0)
    row = table[(table["dataset"] == "frank2015_eeg") & (table["added"] == "surprisal")].iloc[0]
    r2 = results[(results["dataset"] == "frank2015_eeg") & (results["model"] == "-") & (results["metric"] == "r2")
                 & (results["scheme"] == "grouped") & (~results["per_layer"])]
    wide = r2.pivot_table(index=["subject", "neuroid_id"], columns="feature_set", values="value")
    per_subject = (wide["surprisal+word_frequency+word_length+word_position"]
                   - wide["word_frequency+word_length+word_position"]).groupby(level="subject").mean()
    assert row["n_subjects"] == 24 and row["increment"] == pytest.approx(per_subject.mean())
    assert row["ci_low"] == pytest.approx(stats.t.interval(0.95, 23, loc=per_subject.mean(),
                                                           scale=stats.sem(per_subject))[0])
    assert 0 < row["p"] < 1 and (REPO / "reports" / "default" / "tables" / "control_increments.csv").is_file()
