"""The generic ``table`` reader, ``lmbrain data init`` and ``lmbrain data check`` on tables built here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from lmbrain.cli import run_cli
from lmbrain.data import load_dataset
from lmbrain.errors import EXIT_DATA, DataError
from lmbrain.study.context import subject_targets


def _reading_table(rng: np.random.Generator) -> pd.DataFrame:
    """Three texts of words in shuffled row order, 1-based positions, two sentences per text, two responses
    (the first word of each text has no reading time; one more cell of rt_b only is missing)."""
    rows = []
    for t, text in enumerate(["the cat sat . it slept well", "a dog ran fast . NA barked", "birds sing . loud ones"]):
        sentence = 1
        for k, word in enumerate(text.split()):
            rows.append({"text_id": f"T{t}", "sent": sentence, "wpos": k + 1, "word": word,
                         "rt_a": rng.normal(300, 30), "rt_b": rng.normal(50, 5)})
            sentence += word == "."
    table = pd.DataFrame(rows)
    table.loc[table["wpos"] == 1, ["rt_a", "rt_b"]] = np.nan
    table.loc[4, "rt_b"] = np.nan
    return table.sample(frac=1.0, random_state=0).reset_index(drop=True)


@pytest.fixture
def table_csv(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    table = _reading_table(np.random.default_rng(0))
    path = tmp_path / "corpus" / "my_reading.csv"
    path.parent.mkdir()
    table.to_csv(path, index=False)
    return path, table


def _init_and_load(path: Path, tmp_path: Path, capsys, monkeypatch, *extra: str):
    specs = tmp_path / "specs"
    specs.mkdir()
    out = specs / "mine.yaml"
    monkeypatch.setenv("LMBRAIN_DATA_DIR", str(tmp_path))  # the table lies in a folder under the data directory
    code = run_cli(["data", "init", str(path), "--name", "mine", "--out", str(out), *extra])
    printed = capsys.readouterr()
    assert code == 0, printed.out + printed.err
    monkeypatch.setenv("LMBRAIN_SPECS_DIR", str(specs))
    return yaml.safe_load(out.read_text()), printed.out


def test_init_guesses_columns_and_the_table_loads_as_pandas_says(table_csv, tmp_path, capsys, monkeypatch) -> None:
    path, table = table_csv
    spec, printed = _init_and_load(path, tmp_path, capsys, monkeypatch)
    assert spec["reader"] == "table" and spec["split_unit"] == "text_id" and spec["stimulus_unit"] == "word"
    assert spec["options"]["text"] == "word" and spec["options"]["context"] == "text_id"
    assert spec["options"]["position"] == "wpos" and spec["options"]["sentence"] == "sent"
    assert spec["options"]["responses"] == ["rt_a", "rt_b"]
    assert spec["files"] == [{"path": "my_reading.csv", "sha256": spec["files"][0]["sha256"],
                              "size": path.stat().st_size, "role": "data"}]
    assert "assumed context: column 'text_id'" in printed

    dataset = load_dataset("mine")
    # direct pandas: texts in first-seen order, words by position; the word "NA" stays a word
    order = list(dict.fromkeys(table["text_id"]))
    expected = table.assign(t=table["text_id"].map(order.index)).sort_values(["t", "wpos"])
    stimuli = dataset.stimuli
    assert stimuli["text"].tolist() == expected["word"].tolist()
    assert "NA" in stimuli["text"].tolist()
    assert stimuli["context_id"].tolist() == expected["text_id"].tolist()
    assert stimuli["position"].tolist() == (expected["wpos"] - 1).tolist()
    assert stimuli["text_id"].tolist() == expected["text_id"].tolist()
    # word position restarts in each sentence; sentence position counts sentences in each text
    exp_wp = expected.groupby(["text_id", "sent"]).cumcount().tolist()
    assert stimuli["word_position"].tolist() == exp_wp
    assert stimuli["sentence_position"].tolist() == (expected["sent"] - 1).tolist()
    for response in ("rt_a", "rt_b"):
        got = dataset.subject_responses(response).values[:, 0]
        np.testing.assert_array_equal(got, expected[response].to_numpy())
    assert dataset.groups().tolist() == expected["text_id"].tolist()

    code = run_cli(["data", "check", "mine"])
    shown = capsys.readouterr().out
    assert code == 0
    assert "split unit 'text_id': 3 groups" in shown
    assert f"rt_b (subject rt_b): {int(expected['rt_b'].notna().sum())} values, 4 missing" in shown
    first = expected.iloc[0]
    assert f"{first['text_id']}.{first['wpos']}" in shown and first["word"] in shown


def test_missing_responses_are_excluded_per_target_not_per_row(table_csv, tmp_path, capsys, monkeypatch) -> None:
    path, table = table_csv
    _init_and_load(path, tmp_path, capsys, monkeypatch)
    dataset = load_dataset("mine")
    missing = dataset.missing
    assert missing.by_neuroid == {"rt_a": 3, "rt_b": 4}
    # each response is its own target series: a row missing rt_b only keeps its rt_a
    for response in ("rt_a", "rt_b"):
        rows, Y, _ = subject_targets(dataset, response)
        values = dataset.subject_responses(response).values[:, 0]
        np.testing.assert_array_equal(rows, np.flatnonzero(np.isfinite(values)))
        np.testing.assert_array_equal(Y[:, 0], values[rows])
    rows_a = subject_targets(dataset, "rt_a")[0]
    rows_b = subject_targets(dataset, "rt_b")[0]
    assert len(rows_a) == len(table) - 3 and len(rows_b) == len(table) - 4
    assert set(rows_b) < set(rows_a)


def test_missing_error_policy_names_the_row(table_csv, tmp_path, capsys, monkeypatch) -> None:
    path, _ = table_csv
    _init_and_load(path, tmp_path, capsys, monkeypatch)
    with pytest.raises(DataError, match=r"my_reading.csv: row \d+: missing value in column 'rt_a'"):
        load_dataset("mine", missing="error")


def test_long_format_pivots_subjects(tmp_path, capsys, monkeypatch) -> None:
    rng = np.random.default_rng(1)
    words = pd.DataFrame({"story": ["s1"] * 4 + ["s2"] * 3, "idx": [0, 1, 2, 3, 0, 1, 2],
                          "token": "one two three four five six seven".split()})
    long = pd.concat([words.assign(participant=p, amp=rng.normal(size=len(words))) for p in ("p1", "p2", "p3")],
                     ignore_index=True)
    long = long.drop(index=long.index[(long["participant"] == "p2") & (long["idx"] == 2)])  # p2 skipped two words
    path = tmp_path / "eeg" / "eeg.tsv"
    path.parent.mkdir()
    long.sample(frac=1.0, random_state=3).to_csv(path, sep="\t", index=False)
    spec, _ = _init_and_load(path, tmp_path, capsys, monkeypatch, "--modality", "eeg_words", "--text", "token",
                             "--subject", "participant")
    assert spec["options"]["subject"] == "participant" and spec["options"]["responses"] == ["amp"]
    dataset = load_dataset("mine")
    assert dataset.subjects == ["p1", "p2", "p3"] or sorted(dataset.subjects) == ["p1", "p2", "p3"]
    expected = long.pivot(index=["story", "idx"], columns="participant", values="amp").sort_index()
    for subject in ("p1", "p2", "p3"):
        np.testing.assert_array_equal(dataset.subject_responses(subject).values[:, 0], expected[subject].to_numpy())
    assert dataset.missing.by_subject == {"p2": 2}


def test_bad_input_is_one_clear_error(tmp_path, capsys, monkeypatch) -> None:
    path = tmp_path / "bad" / "bad.csv"
    path.parent.mkdir()
    pd.DataFrame({"text_id": ["a", "a", "b"], "pos": [1, 2, 1], "word": ["x", "y", "z"],
                  "rt": ["1", "2", "3"]}).to_csv(path, index=False)
    _init_and_load(path, tmp_path, capsys, monkeypatch)
    path.write_text("text_id,pos,word,rt\na,1,x,1\na,1,y,2\nb,1,z,3\n")
    with pytest.raises(DataError, match="context 'a' has position 1 twice"):
        load_dataset("mine", verify=False)
    other = tmp_path / "specs" / "other.yaml"  # data init refuses to write a spec that would not load
    assert run_cli(["data", "init", str(path), "--name", "other", "--out", str(other)]) == EXIT_DATA
    assert "context 'a' has position 1 twice" in capsys.readouterr().err and not other.exists()
    path.write_text("text_id,pos,word,rt\na,1,x,1\na,2,y,fast\n")
    with pytest.raises(DataError, match=r"bad.csv: row 3: column 'rt' is 'fast', not a number"):
        load_dataset("mine", verify=False)


def test_init_refuses_to_overwrite_and_checksums_write_roles(tmp_path, capsys) -> None:
    path = tmp_path / "d" / "t.csv"
    path.parent.mkdir()
    path.write_text("story,word,rt\na,x,1\n")
    out = tmp_path / "t.yaml"
    out.write_text("keep me")
    assert run_cli(["data", "init", str(path), "--out", str(out)]) == EXIT_DATA
    assert out.read_text() == "keep me"
    capsys.readouterr()
    assert run_cli(["data", "checksums", str(path.parent)]) == 0
    block = yaml.safe_load(capsys.readouterr().out)
    assert block["files"][0]["role"] == "data"


def test_parquet_and_tsv_load_like_the_csv(table_csv, tmp_path, capsys, monkeypatch) -> None:
    path, table = table_csv
    _init_and_load(path, tmp_path, capsys, monkeypatch)
    reference = load_dataset("mine")
    for suffix in (".parquet", ".tsv"):
        other = path.with_suffix(suffix)
        table.to_parquet(other, index=False) if suffix == ".parquet" else table.to_csv(other, sep="\t", index=False)
        spec = yaml.safe_load((tmp_path / "specs" / "mine.yaml").read_text())
        spec["files"] = [{"path": other.name, "role": "data"}]
        spec_path = tmp_path / f"mine{suffix.replace('.', '_')}.yaml"
        spec_path.write_text(yaml.safe_dump(spec))
        dataset = load_dataset(spec_path)
        pd.testing.assert_frame_equal(dataset.stimuli, reference.stimuli, check_dtype=False)
        np.testing.assert_array_equal(dataset.responses.values, reference.responses.values)
