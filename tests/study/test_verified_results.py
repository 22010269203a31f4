"""Issue 27: results are verified, and a report is swapped in whole or not at all. ``lmbrain run`` records the sha256
of results.parquet and units.parquet in manifest.json; every reader checks it, so one flipped bit is refused in one
line, and a report that fails at any point (a damaged input, a table writer raising, a rename failing while the new
report is swapped in) leaves the previous one byte-identical."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lmbrain.errors import EXIT_DATA, DataError
from lmbrain.report import build
from lmbrain.report.build import build_report, load_results
from lmbrain.study.runner import run_study
from lmbrain.study.schema import Study

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e")]

TINY = {"name": "tiny", "datasets": [{"name": "fedorenko2016", "controls": ["word_position"]}],
        "cv": {"n_splits": 3, "inner_splits": 3},
        "statistics": {"bootstrap": 20, "permutations": 0, "ceiling": False, "sensitivity": []}}


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A tiny study's results folder with its report (copied by each test before changing it)."""
    out = tmp_path_factory.mktemp("verified") / "out"
    run_study(Study.model_validate(TINY), out)
    build_report(out)
    return out


@pytest.fixture
def results(finished: Path, tmp_path: Path) -> Path:
    """A private copy of the finished folder."""
    return Path(shutil.copytree(finished, tmp_path / "results"))


def snapshot(folder: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """sha256 of every file under ``folder`` (relative path -> digest), names in ``skip`` left out."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name not in skip}


def flip_bit(path: Path) -> None:
    """Flip one bit in the middle of a file."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x04
    path.write_bytes(bytes(data))


def test_the_manifest_records_the_sha256_of_both_parquet_files(results: Path) -> None:
    files = json.loads((results / "manifest.json").read_text())["files"]
    for name in ("results.parquet", "units.parquet"):
        data = (results / name).read_bytes()
        assert files[name] == {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def test_one_flipped_bit_is_refused_in_one_line_and_the_report_is_untouched(results: Path) -> None:
    assert (results / "tables" / "scores.csv").is_file() and (results / "index.html").is_file()
    flip_bit(results / "results.parquet")
    before = snapshot(results)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, "-m", "lmbrain.cli", "report", str(results)], capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == EXIT_DATA, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(f"error: {results / 'results.parquet'} does not match the checksum in manifest.json")
    assert "changed or damaged" in lines[0] and f"--out {results}" in lines[0]
    assert snapshot(results) == before, "a refused report changed the folder"


def test_every_reader_checks_units_parquet_too(results: Path) -> None:
    flip_bit(results / "units.parquet")
    with pytest.raises(DataError, match=r"units\.parquet does not match the checksum in manifest\.json"):
        load_results(results)
    before = snapshot(results)
    with pytest.raises(DataError, match=r"units\.parquet does not match"):
        build_report(results)
    assert snapshot(results) == before


def test_rerunning_the_study_rewrites_a_damaged_results_file(results: Path) -> None:
    reference = (results / "results.parquet").read_bytes()
    flip_bit(results / "results.parquet")
    run_study(Study.model_validate(TINY), results)  # every unit done: collected again from the verified unit files
    assert (results / "results.parquet").read_bytes() == reference
    load_results(results)


def test_a_failure_in_the_middle_of_a_report_leaves_the_previous_one_unchanged(results: Path, monkeypatch) -> None:
    before = snapshot(results, skip=("run.log",))
    calls = []

    def failing_latex(*args: object, **kwargs: object) -> str:
        calls.append(args)
        raise RuntimeError("injected failure in a table writer")

    monkeypatch.setattr(build, "latex_table", failing_latex)
    with pytest.raises(RuntimeError, match="injected"):
        build_report(results)
    assert calls, "the injected failure was never reached"
    assert snapshot(results, skip=("run.log",)) == before
    assert not list(results.glob(".report-*")), "staging folder left behind"


def test_a_failed_swap_puts_the_previous_report_back(results: Path, monkeypatch) -> None:
    before = snapshot(results, skip=("run.log",))
    real_rename = os.rename
    renamed: list[str] = []

    def rename(src: str | Path, dst: str | Path) -> None:
        if Path(src).parent == results and Path(src).name == "index.html":  # after tables/ was swapped in
            raise OSError(28, "No space left on device")
        renamed.append(Path(src).name)
        real_rename(src, dst)

    monkeypatch.setattr(build.os, "rename", rename)
    with pytest.raises(OSError, match="No space"):
        build_report(results)
    assert "tables" in renamed, "the failure should come after part of the new report was swapped in"
    assert snapshot(results, skip=("run.log",)) == before
    assert not list(results.glob(".report-*"))


def test_a_new_report_replaces_the_old_parts_whole(results: Path) -> None:
    stale = results / "tables" / "stale_table.csv"
    stale.write_text("left by an older build\n")
    written = build_report(results)
    assert not stale.exists()
    assert all(path.is_file() and results in path.parents for path in written)
    assert {p.name for p in (results / "tables").iterdir()} == {p.name for p in written if p.parent.name == "tables"}
