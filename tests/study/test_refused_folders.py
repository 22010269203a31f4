"""A results folder that a run refuses (another study's results, another live run's lock) is left byte-identical:
no line appended to its run.log, its lock file not rewritten, nothing created."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from lmbrain.errors import StudyError, UsageError
from lmbrain.study.folder import check_folder, output_lock
from lmbrain.study.runner import run_study
from lmbrain.study.schema import load_study


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def _study(tmp_path: Path):
    path = tmp_path / "study.yaml"
    path.write_text("name: mine\ndatasets: [{name: fedorenko2016, controls: [word_position]}]\n")
    return load_study(path)


def test_another_studys_folder_is_refused_untouched(tmp_path: Path) -> None:
    out = tmp_path / "theirs"
    (out / "_work").mkdir(parents=True)
    (out / "manifest.json").write_text(json.dumps({"study": "theirs", "study_hash": "0123456789abcdef"}))
    (out / "run.log").write_text("their log\n")
    (out / "_work" / "lock").write_text("pid 1 on elsewhere")
    before = _hashes(out)
    study = _study(tmp_path)
    with pytest.raises(StudyError, match="holds the results of a different study"):
        check_folder(study, out)
    with pytest.raises(StudyError, match="holds the results of a different study"):
        run_study(study, out)
    assert _hashes(out) == before


def test_a_folder_another_run_writes_is_refused_untouched(tmp_path: Path) -> None:
    out = tmp_path / "busy"
    study = _study(tmp_path)
    with output_lock(out):
        (out / "run.log").write_text("the live run's log\n")
        before = _hashes(out)
        with pytest.raises(UsageError, match="being written by another lmbrain run"):
            run_study(study, out)
        assert _hashes(out) == before
