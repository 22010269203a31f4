"""The ``lmbrain data`` commands: list, info, verify, fetch, checksums (through the CLI's entry point)."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest
import yaml

from lmbrain.cli import run_cli
from lmbrain.errors import EXIT_DATA

from .helpers import FIXTURES, copy_fixture, fixture_spec


class Result(NamedTuple):
    exit_code: int
    output: str  # stdout then stderr


@pytest.fixture
def invoke(capsys: pytest.CaptureFixture[str]):
    """Run ``lmbrain data ARGS`` in-process: the exit code and what it printed."""

    def run(args: list[str]) -> Result:
        code = run_cli(["data", *args])
        out, err = capsys.readouterr()
        return Result(code, out + err)

    return run


def test_list_shows_every_real_dataset(invoke) -> None:
    result = invoke(["list"])
    assert result.exit_code == 0, result.output
    for name in (
        "fedorenko2016",
        "pereira2018_langnet",
        "brennan2016_alice",
        "frank2015_eeg",
        "frank2015_et",
        "naturalstories",
    ):
        assert name in result.output


def test_info_describes_a_spec(invoke) -> None:
    result = invoke(["info", "brennan2016_alice"])
    assert result.exit_code == 0, result.output
    assert "split unit: block" in result.output and "'tr': 2.0" in result.output
    unknown = invoke(["info", "no_such_dataset"])
    assert unknown.exit_code == EXIT_DATA and unknown.output.count("\n") == 1 and "no_such_dataset" in unknown.output


def test_verify_fixture_and_a_broken_copy(invoke, tmp_path: Path) -> None:
    ok = invoke(["verify", str(fixture_spec("fixture_lpp")), "--data-dir", str(FIXTURES)])
    assert ok.exit_code == 0, ok.output
    assert "7 ok" in ok.output and "30 samples x 4 neuroids" in ok.output
    spec = copy_fixture("fixture_lpp", tmp_path)
    (tmp_path / "lpp" / "mask.nii.gz").unlink()
    bad = invoke(["verify", str(spec), "--data-dir", str(tmp_path)])
    assert bad.exit_code == EXIT_DATA and "MISSING" in bad.output and "mask.nii.gz" in bad.output


def test_checksums_prints_a_files_block(invoke) -> None:
    result = invoke(["checksums", str(FIXTURES / "tuckute")])
    assert result.exit_code == 0
    block = yaml.safe_load(result.output)["files"]
    spec = yaml.safe_load(fixture_spec("fixture_tuckute").read_text())["files"]
    assert [(f["path"], f["sha256"]) for f in block] == [(f["path"], f["sha256"]) for f in spec]


def test_fetch_reports_present_files(invoke) -> None:
    result = invoke(["fetch", str(fixture_spec("fixture_tuckute")), "--data-dir", str(FIXTURES)])
    assert result.exit_code == 0 and result.output.count("present") == 2
