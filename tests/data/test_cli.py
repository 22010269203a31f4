"""The ``lmbrain data`` typer sub-app: list, info, verify, fetch, checksums."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from lmbrain.data.cli import app

from .helpers import FIXTURES, copy_fixture, fixture_spec

runner = CliRunner()


def test_list_shows_every_real_dataset() -> None:
    result = runner.invoke(app, ["list"])
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


def test_info_describes_a_spec() -> None:
    result = runner.invoke(app, ["info", "brennan2016_alice"])
    assert result.exit_code == 0, result.output
    assert "split unit: block" in result.output and "'tr': 2.0" in result.output
    assert runner.invoke(app, ["info", "no_such_dataset"]).exit_code == 1


def test_verify_fixture_and_a_broken_copy(tmp_path: Path) -> None:
    ok = runner.invoke(app, ["verify", str(fixture_spec("fixture_lpp")), "--data-dir", str(FIXTURES)])
    assert ok.exit_code == 0, ok.output
    assert "7 ok" in ok.output and "30 samples x 4 neuroids" in ok.output
    spec = copy_fixture("fixture_lpp", tmp_path)
    (tmp_path / "lpp" / "mask.nii.gz").unlink()
    bad = runner.invoke(app, ["verify", str(spec), "--data-dir", str(tmp_path)])
    assert bad.exit_code == 1 and "MISSING" in bad.output and "mask.nii.gz" in bad.output


def test_checksums_prints_a_files_block() -> None:
    result = runner.invoke(app, ["checksums", str(FIXTURES / "tuckute")])
    assert result.exit_code == 0
    block = yaml.safe_load(result.output)["files"]
    spec = yaml.safe_load(fixture_spec("fixture_tuckute").read_text())["files"]
    assert [(f["path"], f["sha256"]) for f in block] == [(f["path"], f["sha256"]) for f in spec]


def test_fetch_reports_present_files() -> None:
    result = runner.invoke(app, ["fetch", str(fixture_spec("fixture_tuckute")), "--data-dir", str(FIXTURES)])
    assert result.exit_code == 0 and result.output.count("present") == 2
