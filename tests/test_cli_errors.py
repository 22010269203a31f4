"""Bad command lines, run as real subprocesses: each ends in the documented exit code, exactly one line
``error: ...`` on stderr naming the problem, no traceback, and no partial output left behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lmbrain.errors import EXIT_DATA, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_RUNTIME, EXIT_USAGE
from lmbrain.results import file_checksum

REPO = Path(__file__).resolve().parents[1]
FIXTURE_SPECS = REPO / "tests" / "data" / "fixtures" / "specs"
SMALL_RESULTS = REPO / "reports" / "split_audit"  # a real (small) results directory
USAGE, DATA, RUNTIME = EXIT_USAGE, EXIT_DATA, EXIT_RUNTIME

# Run before lmbrain.cli.main in the subprocess (as root, chmod does not stop writes: the shim makes the
# write-protected folder refuse writes as it would for any other user).
READ_ONLY_SHIM = """
import builtins, errno, os, stat
_RO = os.path.abspath({folder!r})
def _inside(path):
    try:
        path = os.path.abspath(os.fsdecode(os.fspath(path)))
    except TypeError:
        return False
    return (path == _RO or path.startswith(_RO + os.sep)) and not os.stat(_RO).st_mode & stat.S_IWUSR
def _deny(path):
    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
_access, _mkdir, _open, _bopen = os.access, os.mkdir, os.open, builtins.open
os.access = lambda p, mode, *a, **k: False if mode & os.W_OK and _inside(p) else _access(p, mode, *a, **k)
os.mkdir = lambda p, *a, **k: _deny(p) if _inside(p) else _mkdir(p, *a, **k)
_W = os.O_WRONLY | os.O_RDWR | os.O_CREAT
os.open = lambda p, flags, *a, **k: _deny(p) if flags & _W and _inside(p) else _open(p, flags, *a, **k)
builtins.open = lambda p, mode="r", *a, **k: (
    _deny(p) if isinstance(p, (str, bytes, os.PathLike)) and set(mode) & set("wax+") and _inside(p)
    else _bopen(p, mode, *a, **k))
"""

# A full disk: every fsync fails with ENOSPC (the atomic writers fsync before their rename).
FULL_DISK_SHIM = """
import errno, os
def _full(fd):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
os.fsync = _full
"""

# An unexpected exception (a bug) and an interruption, raised from inside a command.
BUG_SHIM = """
import lmbrain.data.specs as _specs
def _boom():
    raise ZeroDivisionError("division by zero")
_specs.list_specs = _boom
"""
INTERRUPT_SHIM = """
import lmbrain.data.specs as _specs
def _stop():
    raise KeyboardInterrupt
_specs.list_specs = _stop
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "LMBRAIN_DEBUG"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def lmbrain(args: list[str], shim: str = "", stdout: int | None = subprocess.PIPE) -> subprocess.CompletedProcess:
    """Run ``python -m lmbrain.cli ARGS`` (or, with a shim, the shim then ``lmbrain.cli.main``)."""
    if shim:
        code = f"{shim}\nimport sys\nfrom lmbrain.cli import main\nmain(sys.argv[1:])\n"
        command = [sys.executable, "-c", code, *args]
    else:
        command = [sys.executable, "-m", "lmbrain.cli", *args]
    return subprocess.run(command, stdout=stdout, stderr=subprocess.PIPE, text=True, env=_env(), timeout=120,
                          cwd=REPO)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Input files shared by the cases (never written by them)."""
    root = tmp_path_factory.mktemp("cli_inputs")
    (root / "empty").mkdir()
    (root / "folder.npy").mkdir()
    (root / "units.txt").write_text("The cat sat.\nOn the mat.\n")
    (root / "blank.txt").write_text("\n\n   \n")
    (root / "dup.csv").write_text("stimulus_id,text\ns1,a\ns2,b\ns1,c\n")
    (root / "notext.csv").write_text("stimulus_id,word\ns1,a\n")
    (root / "a_file").write_text("not a folder\n")
    (root / "bad_yaml.yaml").write_text("name: x\ndatasets: [\n")
    (root / "unknown_key.yaml").write_text("name: x\ndatasets:\n  - name: fedorenko2016\ncolour: blue\n")
    (root / "no_datasets.yaml").write_text("name: x\ndatasets: []\n")
    (root / "tiny.yaml").write_text("name: tiny\ndatasets:\n  - name: fedorenko2016\n    controls: [word_position]\n")
    trunc = root / "truncated"
    shutil.copytree(SMALL_RESULTS, trunc, ignore=shutil.ignore_patterns("tables", "figures", "*.html", "*.log"))
    data = (trunc / "results.parquet").read_bytes()
    (trunc / "results.parquet").write_bytes(data[: len(data) // 2])
    foreign = root / "foreign"
    shutil.copytree(trunc, foreign)
    shutil.copy(SMALL_RESULTS / "units.parquet", foreign / "results.parquet")  # valid parquet, wrong columns
    manifest = json.loads((foreign / "manifest.json").read_text())  # its checksum recorded: the columns are the fault
    manifest["files"]["results.parquet"] = file_checksum((foreign / "results.parquet").read_bytes())
    (foreign / "manifest.json").write_text(json.dumps(manifest))
    nomanifest = root / "nomanifest"
    shutil.copytree(SMALL_RESULTS, nomanifest, ignore=shutil.ignore_patterns("tables", "figures", "*.html", "*.log"))
    (nomanifest / "manifest.json").write_text("{not json")
    return root


def _results_copy(dest: Path) -> Path:
    """A fresh copy of a small results directory (parquet files and manifest only)."""
    shutil.copytree(SMALL_RESULTS, dest, ignore=shutil.ignore_patterns("tables", "figures", "*.html", "*.log"))
    return dest


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()} | {
        str(p.relative_to(folder)) + "/": b"" for p in folder.rglob("*") if p.is_dir()}


# (id, args, exit code, a word the message must contain); {w}: the shared inputs, {out}: an output path
# that must not exist afterwards, {ro}: a write-protected folder.
CASES = [
    # usage errors: arguments, options, commands
    ("run-no-args", ["run"], USAGE, "missing argument"),
    ("run-unknown-option", ["run", "{w}/tiny.yaml", "--bogus"], USAGE, "--bogus"),
    ("run-n-jobs-abc", ["run", "{w}/tiny.yaml", "--n-jobs", "abc", "--out", "{out}"], USAGE, "--n-jobs"),
    ("run-n-jobs-0", ["run", "{w}/tiny.yaml", "--n-jobs", "0", "--out", "{out}"], USAGE, "--n-jobs"),
    ("run-n-jobs-negative", ["run", "{w}/tiny.yaml", "--n-jobs", "-2", "--out", "{out}"], USAGE, "--n-jobs"),
    ("run-executor", ["run", "{w}/tiny.yaml", "--executor", "threads", "--out", "{out}"], USAGE, "--executor"),
    ("run-scheduler-without-dask", ["run", "{w}/tiny.yaml", "--scheduler", "tcp://h:1", "--out", "{out}"],
     USAGE, "--scheduler"),
    ("unknown-command", ["frobnicate"], USAGE, "no such command"),
    ("unknown-data-command", ["data", "frobnicate"], USAGE, "no such command"),
    ("unknown-features-command", ["features", "frobnicate"], USAGE, "no such command"),
    ("unknown-global-option", ["--verbose", "data", "list"], USAGE, "--verbose"),
    ("run-missing-study", ["run", "{w}/nope.yaml", "--out", "{out}"], USAGE, "nope.yaml"),
    ("run-invalid-yaml", ["run", "{w}/bad_yaml.yaml", "--out", "{out}"], USAGE, "YAML"),
    ("run-unknown-study-key", ["run", "{w}/unknown_key.yaml", "--out", "{out}"], USAGE, "colour"),
    ("run-no-datasets", ["run", "{w}/no_datasets.yaml", "--out", "{out}"], USAGE, "datasets"),
    ("run-out-is-a-file", ["run", "{w}/tiny.yaml", "--out", "{w}/a_file"], USAGE, "a_file"),
    ("report-no-args", ["report"], USAGE, "missing argument"),
    ("fit-no-args", ["fit"], USAGE, "missing argument"),
    ("fit-nothing-to-fit", ["fit", "fedorenko2016", "--out", "{out}.parquet"], USAGE, "--model"),
    ("fit-layers-x", ["fit", "fedorenko2016", "--model", "gpt2-tiny", "--layers", "x", "--out", "{out}.parquet"],
     USAGE, "--layers"),
    ("fit-layers-depth", ["fit", "fedorenko2016", "--model", "gpt2-tiny", "--layers", "0,1.5"], USAGE, "1.5"),
    ("fit-control-typo", ["fit", "fedorenko2016", "--control", "word_postion", "--out", "{out}.parquet"],
     USAGE, "word_postion"),
    ("fit-control-llm", ["fit", "fedorenko2016", "--control", "llm+word_rate"], USAGE, "--control"),
    ("fit-scheme", ["fit", "fedorenko2016", "--control", "word_rate", "--scheme", "leaky"], USAGE, "--scheme"),
    ("fit-out-suffix", ["fit", "fedorenko2016", "--control", "word_rate", "--out", "{out}.csv"], USAGE, ".parquet"),
    ("fit-unknown-option", ["fit", "fedorenko2016", "--control", "word_rate", "--folds", "3"], USAGE, "--folds"),
    ("extract-no-out", ["extract", "gpt2-tiny", "{w}/units.txt"], USAGE, "--out"),
    ("extract-txt-suffix", ["extract", "gpt2-tiny", "{w}/units.txt", "-o", "{out}.txt"], USAGE, ".safetensors"),
    ("extract-npz-suffix", ["extract", "gpt2-tiny", "{w}/units.txt", "-o", "{out}.npz"], USAGE, ".npz"),
    ("extract-no-suffix", ["extract", "gpt2-tiny", "{w}/units.txt", "-o", "{out}"], USAGE, "suffix"),
    ("extract-out-is-a-folder", ["extract", "gpt2-tiny", "{w}/units.txt", "-o", "{w}/folder.npy"], USAGE, "directory"),
    ("extract-pooling", ["extract", "gpt2-tiny", "{w}/units.txt", "-o", "{out}.npy", "--pooling", "max"],
     USAGE, "--pooling"),
    ("extract-context", ["extract", "gpt2-tiny", "{w}/units.txt", "-o", "{out}.npy", "--context", "left"],
     USAGE, "--context"),
    ("extract-dtype", ["extract", "gpt2-tiny", "{w}/units.txt", "-o", "{out}.npy", "--dtype", "float64"],
     USAGE, "--dtype"),
    ("extract-device", ["extract", "gpt2-tiny", "{w}/units.txt", "-o", "{out}.npy", "--device", "tpu"],
     USAGE, "--device"),
    ("extract-batch-size", ["extract", "gpt2-tiny", "{w}/units.txt", "-o", "{out}.npy", "--batch-size", "0"],
     USAGE, "--batch-size"),
    ("extract-max-length", ["extract", "gpt2-tiny", "{w}/units.txt", "-o", "{out}.npy", "--max-length", "-5"],
     USAGE, "--max-length"),
    ("extract-layers", ["extract", "gpt2-tiny", "{w}/units.txt", "-o", "{out}.npy", "--layers", "first"],
     USAGE, "--layers"),
    ("extract-seed", ["extract", "gpt2-tiny", "{w}/units.txt", "-o", "{out}.npy", "--untrained-seed", "-1"],
     USAGE, "--untrained-seed"),
    ("data-info-no-args", ["data", "info"], USAGE, "missing argument"),
    # data errors: missing, invalid or changed inputs
    ("report-missing-folder", ["report", "{w}/no_such_results"], DATA, "does not exist"),
    ("report-empty-folder", ["report", "{w}/empty"], DATA, "results.parquet"),
    ("report-a-file", ["report", "{w}/a_file"], DATA, "a_file"),
    ("report-truncated-parquet", ["report", "{w}/truncated"], DATA, "parquet"),
    ("report-foreign-parquet", ["report", "{w}/foreign"], DATA, "column"),
    ("report-bad-manifest", ["report", "{w}/nomanifest"], DATA, "manifest.json"),
    ("extract-duplicate-ids", ["extract", "gpt2-tiny", "{w}/dup.csv", "-o", "{out}.npy"], DATA, "'s1'"),
    ("extract-missing-input", ["extract", "gpt2-tiny", "{w}/nope.txt", "-o", "{out}.npy"], DATA, "nope.txt"),
    ("extract-blank-input", ["extract", "gpt2-tiny", "{w}/blank.txt", "-o", "{out}.npy"], DATA, "no text"),
    ("extract-no-text-column", ["extract", "gpt2-tiny", "{w}/notext.csv", "-o", "{out}.npy"], DATA, "'text'"),
    ("fit-unknown-dataset", ["fit", "no_such_dataset", "--control", "word_rate", "--out", "{out}.parquet"],
     DATA, "no_such_dataset"),
    ("data-info-unknown", ["data", "info", "no_such_dataset"], DATA, "no_such_dataset"),
    ("data-verify-unknown", ["data", "verify", "no_such_dataset"], DATA, "no_such_dataset"),
    ("data-fetch-unknown", ["data", "fetch", "no_such_dataset"], DATA, "no_such_dataset"),
    ("data-verify-missing-files", ["data", "verify", str(FIXTURE_SPECS / "fixture_tuckute.yaml"), "--data-dir",
                                   "{w}/empty"], DATA, "missing"),
    ("data-verify-no-data-dir", ["data", "verify", "fedorenko2016", "--data-dir", "{w}/nope"], DATA, "--data-dir"),
    ("data-checksums-missing", ["data", "checksums", "{w}/nope"], DATA, "nope"),
    ("data-checksums-a-file", ["data", "checksums", "{w}/a_file"], DATA, "a_file"),
    # runtime failures: a write-protected output folder
    ("run-read-only-out", ["run", "{w}/tiny.yaml", "--out", "{ro}/results"], RUNTIME, "{ro}"),
    ("extract-read-only-out", ["extract", "gpt2-tiny", "{w}/units.txt", "-o", "{ro}/f.npy"], RUNTIME, "{ro}"),
    ("fit-read-only-out", ["fit", "fedorenko2016", "--control", "word_rate", "--out", "{ro}/rows.parquet"],
     RUNTIME, "{ro}"),
]


@pytest.mark.parametrize(("args", "code", "word"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_fails_cleanly(tmp_path: Path, work: Path, args: list[str], code: int, word: str) -> None:
    ro = tmp_path / "read_only"
    ro.mkdir()
    ro.chmod(0o555)
    out = tmp_path / "out"
    fields = {"w": str(work), "out": str(out), "ro": str(ro)}
    before = _snapshot(work)
    try:
        result = lmbrain([a.format(**fields) for a in args], shim=READ_ONLY_SHIM.format(folder=str(ro)))
    finally:
        ro.chmod(0o755)
    lines = result.stderr.splitlines()
    assert result.returncode == code, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert word.format(**fields).lower() in lines[0].lower(), lines[0]
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.glob("out*")) and not list(ro.iterdir()), "partial output left behind"
    assert _snapshot(work) == before, "an input was changed"


def test_full_disk_while_writing_a_report(tmp_path: Path) -> None:
    results = _results_copy(tmp_path / "results")
    before = _snapshot(results)
    result = lmbrain(["report", str(results)], shim=FULL_DISK_SHIM)
    assert result.returncode == RUNTIME, result.stderr
    assert result.stderr.count("\n") == 1 and "no space left" in result.stderr and str(results) in result.stderr
    assert "Traceback" not in result.stderr
    assert _snapshot(results) == before, "partial report left behind"


def test_full_disk_on_standard_output() -> None:
    with open("/dev/full", "w") as full:
        result = lmbrain(["data", "list"], stdout=full)
    assert result.returncode == RUNTIME
    assert result.stderr == "error: no space left on the device writing standard output; " \
                            "free some space or write elsewhere\n"


def test_read_only_results_folder_for_a_report(tmp_path: Path) -> None:
    results = _results_copy(tmp_path / "results")
    before = _snapshot(results)
    results.chmod(0o555)
    try:
        result = lmbrain(["report", str(results)], shim=READ_ONLY_SHIM.format(folder=str(results)))
    finally:
        results.chmod(0o755)
    assert result.returncode == RUNTIME, result.stderr
    assert result.stderr.count("\n") == 1 and str(results) in result.stderr and "Traceback" not in result.stderr
    assert _snapshot(results) == before


@pytest.mark.parametrize(
    ("shim", "code", "message"),
    [
        (BUG_SHIM, EXIT_INTERNAL, "error: internal error: ZeroDivisionError: division by zero (rerun with --debug"),
        (INTERRUPT_SHIM, EXIT_INTERRUPTED, "error: interrupted"),
    ],
    ids=["internal-error", "interrupted"],
)
def test_unexpected_failures_are_one_line_too(shim: str, code: int, message: str) -> None:
    result = lmbrain(["data", "list"], shim=shim)
    assert result.returncode == code
    assert result.stderr.startswith(message) and result.stderr.count("\n") == 1


def test_debug_shows_the_traceback(work: Path) -> None:
    for args, env in ((["--debug", "report", f"{work}/empty"], {}), (["report", f"{work}/empty", "--debug"], {}),
                      (["report", f"{work}/empty"], {"LMBRAIN_DEBUG": "1"})):
        command = [sys.executable, "-m", "lmbrain.cli", *args]
        result = subprocess.run(command, capture_output=True, text=True, env={**_env(), **env}, cwd=REPO)
        assert result.returncode == DATA
        assert "Traceback" in result.stderr and "DataError" in result.stderr
        assert result.stderr.splitlines()[-1].startswith("error: ")


def test_no_command_prints_the_help_as_a_usage_error() -> None:
    result = lmbrain([])
    assert result.returncode == USAGE and "Usage: lmbrain" in result.stdout and "Exit codes" in result.stdout


def test_the_exit_codes_are_documented() -> None:
    text = (REPO / "docs" / "cli.md").read_text()
    for code in (0, EXIT_INTERNAL, USAGE, DATA, RUNTIME, EXIT_INTERRUPTED):
        assert f"| {code} |" in text


def test_the_table_is_long_enough() -> None:
    assert len(CASES) >= 40
    assert len({c[0] for c in CASES}) == len(CASES)


def test_dry_run_shows_dashes_and_integer_seeds() -> None:
    import pandas as pd

    from lmbrain.cli import show_table

    table = pd.DataFrame({"model": [None, "m", "m"], "untrained_seed": [None, None, 0], "done": [False] * 3})
    lines = show_table(table).splitlines()
    assert "NaN" not in "".join(lines) and "0.0" not in "".join(lines) and "None" not in "".join(lines)
    assert lines[1].split() == ["-", "-", "False"] and lines[3].split() == ["m", "0", "False"]


def test_shims_compile() -> None:
    for shim in (READ_ONLY_SHIM.format(folder="/x"), FULL_DISK_SHIM, BUG_SHIM, INTERRUPT_SHIM):
        compile(textwrap.dedent(shim), "<shim>", "exec")
