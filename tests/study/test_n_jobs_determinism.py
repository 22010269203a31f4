"""Issue 27: results do not depend on --n-jobs. Every unit runs with the same number of BLAS/torch threads (1, or
$LMBRAIN_UNIT_THREADS) whatever the executor and worker count; with the count derived from --n-jobs (cores // n_jobs)
--n-jobs 1 and --n-jobs 2 differed in about 1 value in 8 (up to 1e-4 in a p-value or CI)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from lmbrain.errors import UsageError
from lmbrain.study.executors import check_executor, unit_threads

STUDY = """\
name: njobs
datasets:
  - name: fedorenko2016
    controls: [word_position, word_length]
models:
  - name: minilm-l6
cv: {n_splits: 4, inner_splits: 3}
statistics: {bootstrap: 200, permutations: 99, ceiling: false, sensitivity: []}
"""


def test_the_thread_count_of_a_unit_is_fixed(monkeypatch) -> None:
    monkeypatch.delenv("LMBRAIN_UNIT_THREADS", raising=False)
    assert unit_threads() == 1
    monkeypatch.setenv("LMBRAIN_UNIT_THREADS", "3")
    assert unit_threads() == 3
    for bad in ("0", "two"):
        monkeypatch.setenv("LMBRAIN_UNIT_THREADS", bad)
        with pytest.raises(UsageError, match="LMBRAIN_UNIT_THREADS"):
            check_executor("sequential", 1)  # refused before any work


@pytest.mark.slow
@pytest.mark.xdist_group("e2e")
def test_n_jobs_1_and_2_give_bit_identical_results(tmp_path: Path, data_dir: Path) -> None:
    (tmp_path / "study.yaml").write_text(STUDY)
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS") and k != "LMBRAIN_UNIT_THREADS"}
    runs = {}
    for label, args in (("n1", ["--n-jobs", "1"]), ("n2", ["--n-jobs", "2"]),
                        ("processes", ["--executor", "processes", "--n-jobs", "2"])):
        out = tmp_path / label
        proc = subprocess.run([sys.executable, "-m", "lmbrain.cli", "run", str(tmp_path / "study.yaml"), "--out",
                               str(out), "--no-report", *args], env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr
        runs[label] = out
    for name in ("results.parquet", "units.parquet"):
        reference = pd.read_parquet(runs["n1"] / name)
        assert len(reference) > (1000 if name == "results.parquet" else 5)
        for label in ("n2", "processes"):
            pd.testing.assert_frame_equal(pd.read_parquet(runs[label] / name), reference, check_exact=True)
