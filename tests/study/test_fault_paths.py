"""Issue 27: every way a run can end early ends its record in runs.json as "interrupted" or "failed" with one line
naming the cause and the folder, and the command line prints that one line, without a traceback: SIGTERM (exit code
143), a full disk while the feature cache or a unit is written (no SIGBUS, no partial cache entry) and a Dask
scheduler that goes away."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from lmbrain import io as files
from lmbrain.errors import EXIT_RUNTIME, EXIT_TERMINATED, RunError
from lmbrain.features.cache import FeatureCache, get_features
from lmbrain.study.folder import read_runs
from lmbrain.study.runner import run_study
from lmbrain.study.schema import Study

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e")]

SLOW = """\
name: slow
datasets:
  - name: fedorenko2016
    controls: [word_position, word_length, word_frequency, sentence_length]
cv: {n_splits: 3, inner_splits: 3}
statistics: {bootstrap: 50, permutations: 999, ceiling: false, sensitivity: []}
"""
GPT = {"name": "gpt", "datasets": [{"name": "fedorenko2016", "controls": ["word_position"]}],
       "models": [{"name": "gpt2-tiny"}], "cv": {"n_splits": 3, "inner_splits": 3},
       "statistics": {"bootstrap": 20, "permutations": 0, "ceiling": False, "sensitivity": []}}


def lmbrain(args: list[str], shim: str = "", env: dict[str, str] | None = None) -> subprocess.Popen:
    """``lmbrain ARGS`` as a subprocess (after ``shim``, Python run first in the same process; ``env`` added)."""
    code = f"{shim}\nimport sys\nfrom lmbrain.cli import main\nmain(sys.argv[1:])\n"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def wait_for(condition: object, seconds: float = 240) -> None:
    """Wait until ``condition()`` is true (fail after ``seconds``)."""
    deadline = time.time() + seconds
    while not condition():  # type: ignore[operator]
        assert time.time() < deadline, "timed out"
        time.sleep(0.1)


def one_error_line(stderr: str) -> str:
    """The one ``error:`` line of a command's stderr; everything else must be progress lines, no traceback."""
    assert "Traceback" not in stderr and "leaked" not in stderr and "distributed." not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    others = [line for line in stderr.splitlines() if not line.startswith("error: ") and " INFO " not in line]
    assert len(errors) == 1 and not others, stderr
    assert stderr.rstrip("\n").splitlines()[-1] == errors[0]
    return errors[0]


def last_run(out: Path) -> dict:
    """The last run recorded in a results folder."""
    runs = read_runs(out)
    assert runs, f"no run recorded in {out}"
    return runs[-1]


def fresh_cache(tmp_path: Path) -> Path:
    """An empty feature cache whose converted models are the test session's (no GGUF conversion again)."""
    root = tmp_path / "cache"
    root.mkdir()
    models = Path(os.environ["LMBRAIN_CACHE_DIR"]) / "models"
    models.mkdir(parents=True, exist_ok=True)
    (root / "models").symlink_to(models)
    return root


@pytest.mark.parametrize(("executor", "delay"), [("processes", 3.0), ("dask", 3.0), ("dask", 0.3)],
                         ids=["processes", "dask", "dask-cluster-starting"])
def test_sigterm_ends_the_run_as_interrupted_in_one_line(tmp_path: Path, data_dir: Path, executor: str,
                                                         delay: float) -> None:
    (tmp_path / "slow.yaml").write_text(SLOW)
    out = tmp_path / "out"
    proc = lmbrain(["run", str(tmp_path / "slow.yaml"), "--out", str(out), "--no-report", "--executor", executor,
                    "--n-jobs", "2"])
    try:
        wait_for(lambda: "to compute" in (out / "run.log").read_text() if (out / "run.log").exists() else False)
        time.sleep(delay)  # 3 s: the workers compute units (several seconds each); 0.3 s: Dask's cluster starts
        assert proc.poll() is None, proc.communicate()[1]
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == EXIT_TERMINATED, stderr
    assert one_error_line(stderr) == "error: terminated (SIGTERM)"
    run = last_run(out)
    assert run["status"] == "interrupted"
    assert run["reason"].startswith(f"terminated (SIGTERM) while running into {out}") and "to resume" in run["reason"]
    assert f"run interrupted: {run['reason']}" in (out / "run.log").read_text()


def test_a_full_disk_for_the_feature_cache_fails_the_run_in_one_line(tmp_path: Path, data_dir: Path) -> None:
    (tmp_path / "gpt.yaml").write_text(json.dumps(GPT))
    cache, out = fresh_cache(tmp_path), tmp_path / "out"
    shim = ("import shutil\n_real = shutil.disk_usage\n"
            "shutil.disk_usage = lambda path: _real(path)._replace(free=10 * 2**20)")
    proc = lmbrain(["run", str(tmp_path / "gpt.yaml"), "--out", str(out)], shim=shim,
                   env={"LMBRAIN_CACHE_DIR": str(cache)})
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == EXIT_RUNTIME, stderr
    line = one_error_line(stderr)
    assert line.startswith(f"error: not enough free space in {cache / 'features'} for feature cache entry")
    assert "10.0 MiB are free" in line and "LMBRAIN_CACHE_DIR" in line
    run = last_run(out)
    assert run["status"] == "failed" and run["reason"].startswith(line.removeprefix("error: "))
    assert str(out) in run["reason"]
    assert FeatureCache(cache / "features").keys() == []
    assert not [p for p in (cache / "features").rglob("*") if p.is_file()], "partial cache entry left behind"


def test_a_full_disk_found_while_reserving_the_layer_files_leaves_no_entry(tmp_path: Path, monkeypatch) -> None:
    def full(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "posix_fallocate", full)
    store = FeatureCache(tmp_path / "features")
    texts = ["Where", "the", "disk", "is", "full"]
    with pytest.raises(RunError, match=r"not enough free space in .*features/\.staging/.* for feature cache entry"):
        get_features("gpt2-tiny", texts, [0] * 5, list(range(5)), cache=store, progress=False)
    assert store.keys() == [] and not [p for p in store.root.rglob("*") if p.is_file()]
    monkeypatch.undo()
    found = get_features("gpt2-tiny", texts, [0] * 5, list(range(5)), cache=store, progress=False)
    assert found.shape[1] == 5 and np.isfinite(found).all() and len(store.keys()) == 1


def test_a_full_disk_while_writing_a_unit_fails_the_run_naming_the_file(tmp_path: Path, data_dir: Path,
                                                                        monkeypatch) -> None:
    out = tmp_path / "out"
    units_dir = out / "_work" / "units"
    real_fsync = os.fsync

    def fsync(fd: int) -> None:  # the disk is full for the unit files only
        if Path(os.readlink(f"/proc/self/fd/{fd}")).parent == units_dir:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    study = Study.model_validate({**GPT, "name": "units", "models": []})
    with pytest.raises(OSError) as raised:
        run_study(study, out)
    assert raised.value.errno == errno.ENOSPC and Path(raised.value.filename).parent == units_dir
    run = last_run(out)
    assert run["status"] == "failed"
    assert run["reason"].startswith(f"no space left on the device writing {units_dir}/")
    assert "free some space" in run["reason"]
    assert not list(units_dir.iterdir()), "a partial unit file was left behind"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_lost_dask_scheduler_fails_the_run_in_one_line(tmp_path: Path, data_dir: Path) -> None:
    (tmp_path / "slow.yaml").write_text(SLOW)
    out, address = tmp_path / "out", f"tcp://127.0.0.1:{free_port()}"
    scheduler = dask_process("scheduler", "--port", address.rsplit(":", 1)[1])
    worker = dask_process("worker", address, "--nthreads", "1")
    proc = None
    try:
        proc = lmbrain(["run", str(tmp_path / "slow.yaml"), "--out", str(out), "--no-report", "--executor", "dask",
                        "--scheduler", address])
        wait_for(lambda: "to compute" in (out / "run.log").read_text() if (out / "run.log").exists() else False)
        time.sleep(2)
        assert proc.poll() is None, proc.communicate()[1]
        scheduler.terminate()
        _, stderr = proc.communicate(timeout=180)
    finally:
        for process in (proc, worker, scheduler):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
    assert proc.returncode == EXIT_RUNTIME, stderr
    line = one_error_line(stderr)
    assert line.startswith(f"error: the dask scheduler at {address} went away"), line
    assert "rerun the same command" in line
    run = last_run(out)
    assert run["status"] == "failed" and f"the dask scheduler at {address} went away" in run["reason"]


def dask_process(kind: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    """``dask scheduler`` or ``dask worker`` on 127.0.0.1, quiet."""
    module = {"scheduler": "distributed.cli.dask_scheduler", "worker": "distributed.cli.dask_worker"}[kind]
    return subprocess.Popen([sys.executable, "-m", module, *args, "--no-dashboard", "--host", "127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})})


def test_dask_workers_that_do_not_share_the_feature_cache_are_refused(tmp_path: Path, data_dir: Path) -> None:
    tiny = {**GPT, "name": "shared", "models": []}
    (tmp_path / "tiny.yaml").write_text(json.dumps(tiny))
    out, port = tmp_path / "out", free_port()
    address = f"tcp://127.0.0.1:{port}"
    other = tmp_path / "worker-cache"
    scheduler = dask_process("scheduler", "--port", str(port))
    workers = [dask_process("worker", address, "--nthreads", "1", env={"LMBRAIN_CACHE_DIR": str(other)})]
    try:
        proc = lmbrain(["run", str(tmp_path / "tiny.yaml"), "--out", str(out), "--no-report", "--executor", "dask",
                        "--scheduler", address])
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == EXIT_RUNTIME, stderr
        line = one_error_line(stderr)
        cache = Path(os.environ["LMBRAIN_CACHE_DIR"]) / "features"
        assert re.match(rf"error: the dask worker tcp://127\.0\.0\.1:\d+ does not see the feature cache this process "
                        rf"uses \({re.escape(str(cache))}\): it looked for {re.escape(str(other))}/features/", line)
        assert "must be on storage every worker mounts at the same path" in line
        assert last_run(out)["status"] == "failed"
        assert not list((out / "_work" / "units").glob("*")), "nothing may be computed or left behind"
        assert not list(cache.glob(".lmbrain-shared-*")) and not list(other.rglob("*.npy"))

        workers[0].terminate()
        workers[0].wait()
        workers += [dask_process("worker", address, "--nthreads", "1") for _ in range(2)]  # these share the cache
        proc = lmbrain(["run", str(tmp_path / "tiny.yaml"), "--out", str(out), "--no-report", "--executor", "dask",
                        "--scheduler", address])
        _, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr
    finally:
        for process in (*workers, scheduler):
            if process.poll() is None:
                process.kill()
                process.wait()
    assert last_run(out)["status"] == "done"
    reference = run_study(Study.model_validate(tiny), tmp_path / "sequential")
    assert (out / "results.parquet").read_bytes() == (reference / "results.parquet").read_bytes()
