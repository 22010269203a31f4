"""`extract` on the command line: files in, one features file out, equal to the Python API."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import PASSAGE
from safetensors.numpy import load_file
from typer.testing import CliRunner

from lmbrain.features import FeatureCache, get_features
from lmbrain.features.cli import app

runner = CliRunner()


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "units.txt"
    path.write_text(f"{PASSAGE[0]}\n{PASSAGE[1]}\n\n\n{PASSAGE[2]}\nAnother one.\n", encoding="utf-8")
    return path


def test_extract_txt_to_safetensors_equals_the_api(tmp_path, text_file):
    out = tmp_path / "f.safetensors"
    cache = tmp_path / "cache"
    result = runner.invoke(
        app,
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


def test_extract_csv_with_positions_to_npy_without_cache(tmp_path):
    table = tmp_path / "stim.csv"
    table.write_text('stimulus_id,text,context_id,position\ns2,"b, c",7,1\ns1,a,7,0\ns3,null,8,0\n')
    out = tmp_path / "f.npy"
    result = runner.invoke(
        app,
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


def test_safetensors_metadata_records_the_request(tmp_path, text_file):
    out = tmp_path / "f.safetensors"
    runner.invoke(app, ["extract", "gpt2-tiny", str(text_file), "-o", str(out), "--cache-dir", str(tmp_path)])
    from safetensors import safe_open

    with safe_open(out, "np") as handle:
        meta = handle.metadata()
    assert meta["model"] == "gpt2-tiny" and json.loads(meta["layers"]) == [0, 1, 2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such/model-xyz"], "not available"),
        (["gpt2-tiny", "--pooling", "max"], "pooling"),
        (["gpt2-tiny", "--layers", "9"], "out of range"),
    ],
)
def test_bad_requests_exit_with_one_clear_error(tmp_path, text_file, args, message):
    model, *rest = args
    result = runner.invoke(
        app,
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
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "x.npy").exists()


def test_missing_input_file_is_a_clear_error(tmp_path):
    result = runner.invoke(
        app, ["extract", "gpt2-tiny", str(tmp_path / "nope.txt"), "-o", str(tmp_path / "x")]
    )
    assert result.exit_code == 2 and "nope.txt" in result.output


def test_models_lists_the_registry():
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 0 and "smollm2-135m" in result.output and "minilm-l6" in result.output
