"""`extract` on the command line: files in, one features file out, equal to the Python API."""

from __future__ import annotations

import json
from typing import NamedTuple

import numpy as np
import pytest
from conftest import PASSAGE
from safetensors.numpy import load_file

from lmbrain.cli import run_cli
from lmbrain.errors import EXIT_DATA, EXIT_USAGE
from lmbrain.features import FeatureCache, get_features


class Result(NamedTuple):
    exit_code: int
    output: str  # stdout then stderr
    stderr: str


@pytest.fixture
def invoke(capsys: pytest.CaptureFixture[str]):
    """Run ``lmbrain features ARGS`` in-process: the exit code and what it printed."""

    def run(args: list[str]) -> Result:
        code = run_cli(["features", *args])
        out, err = capsys.readouterr()
        return Result(code, out + err, err)

    return run


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "units.txt"
    path.write_text(f"{PASSAGE[0]}\n{PASSAGE[1]}\n\n\n{PASSAGE[2]}\nAnother one.\n", encoding="utf-8")
    return path


def test_extract_txt_to_safetensors_equals_the_api(invoke, tmp_path, text_file):
    out = tmp_path / "f.safetensors"
    cache = tmp_path / "cache"
    result = invoke(
        [
            "extract",
            "gpt2-tiny",
            str(text_file),
            "--out",
            str(out),
            "--layers",
            "0,1.0",
            "--cache-dir",
            str(cache),
        ],
    )
    assert result.exit_code == 0, result.output
    tensors = load_file(out)
    assert sorted(tensors) == ["layer_000", "layer_002"]
    # blank lines separate contexts: [0, 0] then [1, 1]
    api = get_features(
        "gpt2-tiny",
        [*PASSAGE, "Another one."],
        [0, 0, 1, 1],
        cache=FeatureCache(cache),
        layers=[0, 2],
        progress=False,
    )
    np.testing.assert_array_equal(tensors["layer_000"], api[0])
    np.testing.assert_array_equal(tensors["layer_002"], api[1])


def test_extract_csv_with_positions_to_npy_without_cache(invoke, tmp_path):
    table = tmp_path / "stim.csv"
    table.write_text('stimulus_id,text,context_id,position\ns2,"b, c",7,1\ns1,a,7,0\ns3,null,8,0\n')
    out = tmp_path / "f.npy"
    result = invoke(
        [
            "extract",
            "minilm-l6",
            str(table),
            "-o",
            str(out),
            "--no-cache",
            "--pooling",
            "mean",
            "--layers",
            "-1",
        ],
    )
    assert result.exit_code == 0, result.output
    arr = np.load(out, allow_pickle=False)
    api = get_features(
        "minilm-l6",
        ["b, c", "a", "null"],
        [7, 7, 8],
        [1, 0, 0],
        pooling="mean",
        layers=[-1],
        cache=FeatureCache(tmp_path / "c"),
        progress=False,
    )
    np.testing.assert_allclose(arr, api, atol=1e-6)


def test_safetensors_metadata_records_the_request(invoke, tmp_path, text_file):
    out = tmp_path / "f.safetensors"
    invoke(["extract", "gpt2-tiny", str(text_file), "-o", str(out), "--cache-dir", str(tmp_path)])
    from safetensors import safe_open

    with safe_open(out, "np") as handle:
        meta = handle.metadata()
    assert meta["model"] == "gpt2-tiny" and json.loads(meta["layers"]) == [0, 1, 2]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["no-such/model-xyz"], EXIT_DATA, "not available"),
        (["gpt2-tiny", "--pooling", "max"], EXIT_USAGE, "pooling"),
        (["gpt2-tiny", "--layers", "9"], EXIT_USAGE, "out of range"),
    ],
)
def test_bad_requests_exit_with_one_clear_error(invoke, tmp_path, text_file, args, code, message):
    model, *rest = args
    result = invoke(
        [
            "extract",
            model,
            str(text_file),
            "-o",
            str(tmp_path / "x.npy"),
            "--cache-dir",
            str(tmp_path),
            *rest,
        ],
    )
    assert result.exit_code == code
    last = result.stderr.splitlines()[-1]  # after the progress bar when the model had to run
    assert message in last and last.startswith("error: ") and result.stderr.count("error") == 1
    assert not (tmp_path / "x.npy").exists()


def test_missing_input_file_is_a_clear_error(invoke, tmp_path):
    result = invoke(["extract", "gpt2-tiny", str(tmp_path / "nope.txt"), "-o", str(tmp_path / "x.npy")])
    assert result.exit_code == EXIT_DATA and "nope.txt" in result.stderr


def test_models_lists_the_registry(invoke, capsys):
    result = invoke(["models"])
    assert result.exit_code == 0 and "smollm2-135m" in result.output and "minilm-l6" in result.output
    from lmbrain.features.registry import describe_models

    assert run_cli(["models", "list"]) == 0
    listed = capsys.readouterr().out
    assert listed == result.output  # `lmbrain models list` is `lmbrain features models`
    for entry in describe_models():  # every model states its training and quantisation
        assert entry["training"] and entry["quantisation"]
        assert f"training: {entry['training']}" in listed and f"quantisation: {entry['quantisation']}" in listed
    assert "instruction-tuned" in listed and "4-bit" in listed


def test_duplicate_stimulus_ids_are_refused_with_their_lines(invoke, tmp_path):
    table = tmp_path / "stim.csv"
    table.write_text("stimulus_id,text\ns1,a\ns2,b\ns1,c\ns2,d\n")
    result = invoke(["extract", "gpt2-tiny", str(table), "-o", str(tmp_path / "x.npy")])
    assert result.exit_code == EXIT_DATA
    assert "'s1' appears 2 times (lines 2, 4)" in result.stderr and "2 repeated id(s)" in result.stderr


def test_the_cli_choices_equal_the_library_ones():
    from lmbrain.features import cli
    from lmbrain.features.extract import CONTEXTS, POOLINGS
    from lmbrain.features.models import DTYPES

    assert cli.CONTEXTS == CONTEXTS and cli.POOLINGS == POOLINGS and set(cli.DTYPES) == set(DTYPES)
