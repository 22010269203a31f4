"""Robust runs on the real Fedorenko (2016) data: workers die with their parent, damaged unit files are
reported and recomputed, a failed run leaves a reusable folder, executors agree exactly, files follow the umask."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from lmbrain.errors import StudyError, UsageError
from lmbrain.features.cache import FeatureCache
from lmbrain.io import atomic_write_text, umask
from lmbrain.study import runner
from lmbrain.study.context import StudyContext
from lmbrain.study.folder import output_lock
from lmbrain.study.plan import enumerate_units
from lmbrain.study.runner import plan, run_study
from lmbrain.study.schema import load_study
from lmbrain.study.store import collect, unit_files

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e")]

SMALL = """\
name: {name}
datasets:
  - name: fedorenko2016
    controls: [word_position, word_length, word_frequency, sentence_length]
cv: {{n_splits: 3, inner_splits: 3}}
statistics: {{bootstrap: {bootstrap}, permutations: {permutations}, ceiling: false}}
"""


def write_study(folder: Path, name: str = "mess", bootstrap: int = 50, permutations: int = 0) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(SMALL.format(name=name, bootstrap=bootstrap, permutations=permutations))
    return path


def cli(args: list[str], env: dict[str, str] | None = None, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "lmbrain.cli", *args], env=env, **kwargs)


def gone(process) -> bool:
    import psutil

    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killing_the_parent_of_a_process_run_ends_its_workers(tmp_path, data_dir, sig):
    psutil = pytest.importorskip("psutil")
    study = write_study(tmp_path, "kill", permutations=999)  # a few seconds per unit
    out = tmp_path / "out"
    units_dir = out / "_work" / "units"
    stderr = (tmp_path / "stderr.txt").open("w")
    parent = cli(["run", str(study), "--out", str(out), "--no-report", "--executor", "processes", "--n-jobs", "2"],
                 stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not list(units_dir.glob("*.json")) and parent.poll() is None:
            time.sleep(0.05)
        assert parent.poll() is None, f"the run ended early: {(tmp_path / 'stderr.txt').read_text()}"
        descendants = psutil.Process(parent.pid).children(recursive=True)
        workers = [p for p in descendants if "popen_loky_posix" in " ".join(p.cmdline())]
    finally:
        parent.send_signal(sig)
        parent.wait()
        stderr.close()
    assert len(workers) == 2, "the run should have been killed while its workers were computing"
    deadline = time.time() + 5
    while time.time() < deadline and not all(gone(p) for p in descendants):
        time.sleep(0.05)
    survivors = [p.pid for p in descendants if not gone(p)]
    for pid in survivors:  # do not leave them running after a failure
        os.kill(pid, signal.SIGKILL)
    assert not survivors, f"processes of the killed run still alive 5 s later: {survivors}"
    finished = len(list(units_dir.glob("*.json")))
    time.sleep(1)
    assert len(list(units_dir.glob("*.json"))) == finished < 4, "nothing may write into --out any more"


def test_damaged_unit_files_are_reported_and_recomputed(tmp_path, data_dir, capsys):
    spec = load_study(write_study(tmp_path))
    out = run_study(spec, tmp_path / "out")
    reference = [pd.read_parquet(out / name) for name in ("results.parquet", "units.parquet")]
    units = enumerate_units(StudyContext(spec))
    units_dir = out / "_work" / "units"
    flipped, truncated, missing = (unit_files(units_dir, u) for u in units[:3])
    data = bytearray(flipped[1].read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit in the middle of the parquet
    flipped[1].write_bytes(bytes(data))
    text = truncated[0].read_text()
    truncated[0].write_text(text[: len(text) // 2])
    missing[1].unlink()
    damaged = {p.name for p in (flipped[1], truncated[0], missing[1])}

    _, _, bad = collect(units, units_dir, spec.digest())
    assert {u.key for u, _ in bad} == {u.key for u in units[:3]}
    assert all(any(name in reason for name in damaged) for _, reason in bad), bad
    table = plan(spec, out)
    assert list(table["done"]) == [False, False, False, True]
    assert all(any(name in p for name in damaged) for p in table["problem"][:3])

    capsys.readouterr()
    run_study(spec, out)
    err = capsys.readouterr().err
    log = (out / "run.log").read_text()
    for name in damaged:
        assert name in err and name in log, name
    assert err.count("recomputing") == 3
    pd.testing.assert_frame_equal(pd.read_parquet(out / "results.parquet"), reference[0], check_exact=True)
    pd.testing.assert_frame_equal(pd.read_parquet(out / "units.parquet"), reference[1], check_exact=True)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["n_units_computed_this_run"] == 3
    assert [(r["status"], r["units_computed"]) for r in manifest["runs"]] == [("done", 4), ("done", 3)]
    assert all(r["seconds"] > 0 and r["started"] for r in manifest["runs"])
    assert "unit 3/3 done" in log  # one line per finished unit, with counts
    assert (out / "results.parquet").stat().st_mode & 0o777 == 0o666 & ~umask()


def test_a_failed_run_leaves_its_folder_reusable(tmp_path, data_dir, monkeypatch):
    first = load_study(write_study(tmp_path, "first"))
    fixed = load_study(write_study(tmp_path, "fixed", bootstrap=60))
    out = tmp_path / "out"

    def fail(context) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr(runner, "prepare_features", fail)
        with pytest.raises(OSError, match="No space"):
            run_study(first, out)
    assert (out / "study.yaml").is_file()
    assert "run failed: no space left on the device" in (out / "run.log").read_text()
    run_study(fixed, out)  # a different study, but the first finished no unit here
    assert "replacing its study.yaml" in (out / "run.log").read_text()
    assert load_study(out / "study.yaml").digest() == fixed.digest()
    assert json.loads((out / "manifest.json").read_text())["n_units_computed_this_run"] == 4

    with pytest.raises(StudyError, match="holds 4 finished units of a different study"):
        run_study(first, out)  # finished units of another study: refused, and nothing changed
    assert load_study(out / "study.yaml").digest() == fixed.digest()
    with pytest.raises(UsageError, match="executor"):
        run_study(fixed, tmp_path / "bad-executor", executor="threads")
    assert not (tmp_path / "bad-executor").exists()
    with output_lock(out), pytest.raises(UsageError, match="being written by another lmbrain run"):
        run_study(fixed, out)


def test_sequential_and_processes_executors_give_identical_results(tmp_path, data_dir):
    study = write_study(tmp_path, "same", permutations=19)
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}  # BLAS free to use all cores
    runs = {}
    for executor in ("sequential", "processes"):
        out = tmp_path / executor
        proc = subprocess.run(
            [sys.executable, "-m", "lmbrain.cli", "run", str(study), "--out", str(out), "--no-report",
             "--executor", executor, "--n-jobs", "2"], env=env, capture_output=True, text=True, timeout=600,
        )
        assert proc.returncode == 0, proc.stderr
        assert "unit 4/4 done" in proc.stderr and "ETA" in proc.stderr  # no TTY: one line per unit
        runs[executor] = out
    for name in ("results.parquet", "units.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(runs["sequential"] / name),
                                      pd.read_parquet(runs["processes"] / name), check_exact=True)


def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "report.md", "x")
        atomic_write_text(tmp_path / "memo.json", "{}")
    finally:
        os.umask(old)
    assert (tmp_path / "report.md").stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "memo.json").stat().st_mode & 0o777 == 0o640


def test_staging_folders_of_dead_extractions_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / ".staging" / f"{'a' * 64}.{dead.pid}.1234abcd"
    live = tmp_path / ".staging" / f"{'b' * 64}.{os.getpid()}.5678abcd"
    for folder in (stale, live):
        folder.mkdir(parents=True)
        (folder / "layer_000.npy").write_bytes(b"x")
    FeatureCache(tmp_path)
    assert not stale.exists() and live.exists()


def test_data_problems_are_logged_at_the_start_of_a_run(caplog, data_dir):
    """Excluded subjects, masked neuroids and missing responses reach the run's log, even when the datasets
    were loaded (and warned about) before the log was opened."""
    import logging

    from lmbrain.study.context import StudyContext
    from lmbrain.study.runner import log_data_problems
    from lmbrain.study.schema import Study

    study = Study.model_validate({"name": "problems", "datasets": [
        {"name": "brennan2016_alice", "controls": ["word_rate"]},
        {"name": "frank2015_eeg", "subjects": ["1"], "controls": ["word_length"]}]})
    with caplog.at_level(logging.INFO, logger="lmbrain"):
        log_data_problems(StudyContext(study))
    text = caplog.text
    assert "subject s33 excluded" in text  # all-zero time courses (Brennan2016)
    assert "frank2015_eeg" in text and "missing" in text  # rejected trials are NaN responses
