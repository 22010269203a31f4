"""Issue 27: no silent corruption, no escaping paths, no silent stretches. Every bad input below is refused by the
``lmbrain`` command line (a real subprocess) with a non-zero exit code, at most one line on stderr naming the
problem, no traceback, nothing written anywhere (the whole temporary folder, the working directory included, is
hashed before and after), and a refused results folder left byte-identical."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from lmbrain.errors import EXIT_INTERNAL

REPO = Path(__file__).resolve().parents[2]
ESCAPE = f"lmbrain-escape-{uuid.uuid4().hex[:8]}"  # where an escaping name would land: /tmp/ESCAPE

TABLE = "story,sentence,word_nr,word,rt\ns1,1,1,The,310\ns1,1,2,cat,300\ns2,1,1,A,320\ns2,1,2,dog,305\n"
STUDY = "name: tiny\ndatasets:\n  - name: fedorenko2016\n    controls: [word_position]\n"


def _spec(name: str, **changes: object) -> str:
    """A valid table spec for data/corp/t.csv, with changes."""
    spec = {"name": name, "citation": "c", "licence": "l", "modality": "reading_times", "reader": "table",
            "stimulus_unit": "word", "split_unit": "story", "root": "corp",
            "files": [{"path": "t.csv", "role": "data"}],
            "options": {"text": "word", "context": "story", "position": "word_nr", "responses": ["rt"]}}
    spec.update(changes)
    return yaml.safe_dump(spec)


def _inputs(tmp: Path) -> None:
    """The files the cases read: a data directory, specs, studies and another study's results folder."""
    (tmp / "cwd").mkdir()
    (tmp / "data" / "corp").mkdir(parents=True)
    (tmp / "data" / "corp" / "t.csv").write_text(TABLE)
    (tmp / "data" / "corp" / "header.csv").write_text(TABLE.splitlines()[0] + "\n")
    (tmp / "outside.csv").write_text(TABLE)
    specs = tmp / "specs"
    specs.mkdir()
    (specs / "abs_root.yaml").write_text(_spec("abs_root", root=str(tmp / "data" / "corp")))
    (specs / "up_root.yaml").write_text(_spec("up_root", root="../data/corp"))
    (specs / "up_file.yaml").write_text(_spec("up_file", files=[{"path": "../../outside.csv", "role": "data"}]))
    digest = hashlib.sha256(TABLE.encode()).hexdigest()
    (specs / "file_url.yaml").write_text(_spec("file_url", root="fetched", files=[
        {"path": "t.csv", "role": "data", "sha256": digest, "url": (tmp / "data" / "corp" / "t.csv").as_uri()}]))
    (specs / "no_sha.yaml").write_text(_spec("no_sha", root="fetched", files=[
        {"path": "t.csv", "role": "data", "url": "https://example.org/t.csv"}]))
    (specs / "header_only.yaml").write_text(_spec("header_only", files=[{"path": "header.csv", "role": "data"}]))
    studies = tmp / "studies"
    studies.mkdir()
    bad = {
        "escape": STUDY.replace("name: tiny", f"name: ../../../../../../../../tmp/{ESCAPE}"),
        "alphas_inf": STUDY + "estimator: {alphas: [.inf]}\n",
        "alphas_nan": STUDY + "estimator: {alphas: [.nan]}\n",
        "seed": STUDY + "statistics: {seed: -5}\n",
        "permutations": STUDY + "statistics: {permutations: 1000000}\n",
        "bootstrap": STUDY + "statistics: {bootstrap: 100001}\n",
        "n_splits": STUDY + "cv: {n_splits: 1000}\n",
        "nothing": "name: nothing\ndatasets: [{name: fedorenko2016}]\n",
        "tiny": STUDY,
    }
    for name, text in bad.items():
        (studies / f"{name}.yaml").write_text(text)
    (studies / "binary.yaml").write_bytes(b"name: x\n\xd0\xff\x00 not text")
    theirs = tmp / "theirs"  # another study's results folder
    (theirs / "_work" / "units").mkdir(parents=True)
    (theirs / "manifest.json").write_text(json.dumps({"study": "other", "study_hash": "0123456789abcdef"}))
    (theirs / "results.parquet").write_bytes(b"PAR1 results of another study")
    (theirs / "run.log").write_text("2024-01-01 INFO their run\n")
    (theirs / "_work" / "lock").write_text("pid 1 on elsewhere")


# (id, args, a word the one stderr line must contain); {t}: the temporary folder, {cores}: os.cpu_count() + 1
CASES = [
    # A. containment
    ("spec-absolute-root", ["data", "check", "{t}/specs/abs_root.yaml"], "must be relative"),
    ("spec-root-escapes", ["data", "check", "{t}/specs/up_root.yaml"], "must not contain '..'"),
    ("spec-file-escapes", ["data", "verify", "{t}/specs/up_file.yaml"], "files.0.path"),
    ("fetch-file-url-unasked", ["data", "fetch", "{t}/specs/file_url.yaml"], "--allow-file-urls"),
    ("fetch-without-sha256", ["data", "fetch", "{t}/specs/no_sha.yaml"], "no sha256"),
    ("study-name-escapes", ["run", "{t}/studies/escape.yaml"], "not a plain name"),
    ("study-name-escapes-dry-run", ["run", "{t}/studies/escape.yaml", "--dry-run"], "not a plain name"),
    ("init-name-escapes", ["data", "init", "{t}/data/corp/t.csv", "--name", "../../x"], "--name"),
    ("init-table-outside-data-dir", ["data", "init", "{t}/outside.csv", "--name", "x"], "not under the data"),
    ("init-empty-out", ["data", "init", "{t}/data/corp/t.csv", "--name", "x", "--out", ""], "empty"),
    ("run-empty-out", ["run", "{t}/studies/tiny.yaml", "--out", ""], "--out"),
    ("run-empty-study", ["run", ""], "empty"),
    ("report-empty-folder-name", ["report", ""], "empty"),
    ("run-into-another-studys-folder", ["run", "{t}/studies/tiny.yaml", "--out", "{t}/theirs"],
     "different study"),
    # B. validation before work
    ("alphas-inf", ["run", "{t}/studies/alphas_inf.yaml", "--dry-run"], "estimator.alphas.0"),
    ("alphas-nan", ["run", "{t}/studies/alphas_nan.yaml", "--out", "{t}/out"], "estimator.alphas.0"),
    ("binary-study", ["run", "{t}/studies/binary.yaml", "--dry-run"], "not UTF-8"),
    ("negative-seed", ["run", "{t}/studies/seed.yaml", "--dry-run"], "statistics.seed"),
    ("too-many-permutations", ["run", "{t}/studies/permutations.yaml", "--dry-run"], "statistics.permutations"),
    ("too-many-bootstraps", ["run", "{t}/studies/bootstrap.yaml", "--dry-run"], "statistics.bootstrap"),
    ("too-many-folds", ["run", "{t}/studies/n_splits.yaml", "--dry-run"], "cv.n_splits"),
    ("nothing-to-fit", ["run", "{t}/studies/nothing.yaml", "--out", "{t}/out"], "nothing would be fitted"),
    ("n-jobs-above-cores", ["run", "{t}/studies/tiny.yaml", "--out", "{t}/out", "--n-jobs", "{cores}",
                            "--executor", "processes"], "--force"),
    ("check-header-only-table", ["data", "check", "{t}/specs/header_only.yaml"], "no rows"),
    ("init-header-only-table", ["data", "init", "{t}/data/corp/header.csv", "--name", "x"], "no rows"),
    ("init-response-not-in-file", ["data", "init", "{t}/data/corp/t.csv", "--name", "x", "--response", "nosuch"],
     "--response 'nosuch'"),
]


def _hashes(folder: Path) -> dict[str, str]:
    """Every file (sha256) and folder under ``folder``."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "/"
            for p in sorted(folder.rglob("*"))}


@pytest.mark.parametrize(("args", "word"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_bad_input_is_refused_and_nothing_is_written(tmp_path: Path, args: list[str], word: str) -> None:
    _inputs(tmp_path)
    fields = {"t": str(tmp_path), "cores": str((os.cpu_count() or 1) + 1)}
    env = {k: v for k, v in os.environ.items() if k not in ("LMBRAIN_DEBUG", "LMBRAIN_ALLOW_FILE_URLS")}
    env.update(LMBRAIN_DATA_DIR=str(tmp_path / "data"), LMBRAIN_SPECS_DIR=str(tmp_path / "specs"),
               PYTHONPATH=os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])]), HF_HUB_OFFLINE="1")
    before, theirs = _hashes(tmp_path), _hashes(tmp_path / "theirs")
    result = subprocess.run([sys.executable, "-m", "lmbrain.cli", *[a.format(**fields) for a in args]],
                            capture_output=True, text=True, env=env, cwd=tmp_path / "cwd", timeout=120)
    lines = result.stderr.splitlines()
    assert result.returncode not in (0, EXIT_INTERNAL), result.stdout + result.stderr  # refused, not a crash
    assert len(lines) <= 1 and lines and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    assert word.format(**fields) in lines[0] and "internal error" not in lines[0], lines[0]
    assert _hashes(tmp_path / "theirs") == theirs, "a refused results folder was changed"
    assert _hashes(tmp_path) == before, "something was written"
    assert not Path("/tmp", ESCAPE).exists(), "a path escaped"


def test_the_cases_cover_the_issue() -> None:
    assert len(CASES) >= 25 and len({c[0] for c in CASES}) == len(CASES)


def test_a_run_states_each_data_problem_once(tmp_path: Path, data_dir: Path) -> None:
    """Frank2015's rejected EEG trials are NaN responses: one warning on the terminal and one in run.log (next to
    the dataset's summary); the validation loads the data first, and its load-time warning is not repeated."""
    study = tmp_path / "study.yaml"
    study.write_text("name: once\ndatasets:\n  - name: frank2015_eeg\n    subjects: ['1']\n"
                     "    controls: [word_length]\nstatistics: {bootstrap: 0, ceiling: false}\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
    result = subprocess.run([sys.executable, "-m", "lmbrain.cli", "run", str(study), "--out", str(tmp_path / "out"),
                             "--no-report", "--n-jobs", "1"], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("missing (NaN) response value(s)") == 1, result.stderr
    log = (tmp_path / "out" / "run.log").read_text()
    assert sum("WARNING" in line and "missing (NaN)" in line for line in log.splitlines()) == 1, log
