"""``lmbrain data init`` refuses what would not load, and ``lmbrain data check`` states every data problem once:
±inf responses counted as missing (like NaN), missing values named by their 1-based file line, samples that no
target has flagged, a header-only table a one-line error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from lmbrain.cli import run_cli
from lmbrain.data import load_dataset
from lmbrain.errors import EXIT_DATA, DataError

# line 1 is the header; line 5 ("Hi.", a one-word sentence) has no response at all; lines 2 and 6 miss rt only
TABLE = """story,sentence,word_nr,word,rt,rt2
s1,1,1,The,NaN,3
s1,1,2,cat,300,4
s1,1,3,sat.,inf,5
s1,2,4,Hi.,,
s2,1,1,A,-inf,7
s2,1,2,dog,310,8
s2,1,3,ran,320,9
"""


@pytest.fixture
def corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data directory with one table and a spec for it (LMBRAIN_DATA_DIR and LMBRAIN_SPECS_DIR set)."""
    data = tmp_path / "data"
    (data / "corp").mkdir(parents=True)
    (data / "corp" / "t.csv").write_text(TABLE)
    (tmp_path / "specs").mkdir()
    monkeypatch.setenv("LMBRAIN_DATA_DIR", str(data))
    monkeypatch.setenv("LMBRAIN_SPECS_DIR", str(tmp_path / "specs"))
    return tmp_path


def _init(corpus: Path, *extra: str, name: str = "t") -> int:
    return run_cli(["data", "init", str(corpus / "data" / "corp" / "t.csv"), "--name", name,
                    "--out", str(corpus / "specs" / f"{name}.yaml"), *extra])


def test_infinite_responses_count_as_missing_with_their_file_lines(corpus: Path, capsys) -> None:
    assert _init(corpus) == 0
    dataset = load_dataset("t")
    missing = dataset.missing
    # rt: lines 2 (NaN), 4 (inf), 5 (empty), 6 (-inf); rt2: line 5
    assert missing.by_neuroid == {"rt": 4, "rt2": 1} and missing.n_infinite == 2
    assert missing.lines == {"rt": [2, 4, 5, 6], "rt2": [5]}
    assert missing.rows == {"rt": [0, 2, 3, 4], "rt2": [3]}  # 0-based sample rows (the data API)
    assert missing.empty_rows == [3] and missing.empty_lines == [5]
    assert "2 of them ±inf" in missing.describe() and "at line(s) 2, 4, 5" in missing.describe()
    capsys.readouterr()
    assert run_cli(["data", "check", "t"]) == 0
    printed = capsys.readouterr()
    out = printed.out
    assert "rt (subject rt): 3 values, 4 missing" in out and "rt2 (subject rt2): 6 values, 1 missing" in out
    assert "missing: 5 missing (NaN) response value(s)" in out  # the same count as the target lines
    assert "samples with no response at all (used by no fit): 1, e.g. line 5: s1.4 'Hi.'" in out
    assert out.count("5 missing (NaN)") == 1 and "missing (NaN)" not in printed.err  # stated once


def test_a_header_only_table_is_one_clear_error(corpus: Path, capsys) -> None:
    assert _init(corpus) == 0
    spec = corpus / "specs" / "t.yaml"
    raw = yaml.safe_load(spec.read_text())
    raw["files"] = [{"path": "t.csv", "role": "data"}]  # no checksum: the table is emptied below
    spec.write_text(yaml.safe_dump(raw))
    (corpus / "data" / "corp" / "t.csv").write_text(TABLE.splitlines()[0] + "\n")
    with pytest.raises(DataError, match=r"t\.csv: the table has no rows"):
        load_dataset("t")
    capsys.readouterr()
    assert _init(corpus, name="u") == EXIT_DATA  # nor does data init write a spec for it
    assert not (corpus / "specs" / "u.yaml").exists()
    capsys.readouterr()
    assert run_cli(["data", "check", "t", "--data-dir", str(corpus / "data")]) == EXIT_DATA
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the table has no rows" in err and "zero-size" not in err


@pytest.mark.parametrize(("args", "message"), [
    (["--response", "nosuch"], "--response 'nosuch': "),
    (["--text", "nosuch"], "--text 'nosuch': "),
    (["--response", "story", "--text", "word", "--context", "sentence"], "column 'story' is 's1', not a number"),
])
def test_init_refuses_a_spec_that_would_not_load(corpus: Path, capsys, args: list[str], message: str) -> None:
    capsys.readouterr()
    assert _init(corpus, *args) == EXIT_DATA
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err
    assert not (corpus / "specs" / "t.yaml").exists()


def test_a_long_table_names_the_stimuli_a_subject_has_no_row_for(corpus: Path) -> None:
    rows = ["story,idx,token,participant,amp"]
    for p in ("p1", "p2"):
        for k, word in enumerate(["one", "two", "three"]):
            if (p, k) != ("p2", 1):  # p2 has no row for the second word
                rows.append(f"s1,{k},{word},{p},{np.nan if (p, k) == ('p1', 2) else k}")
    (corpus / "data" / "corp" / "t.csv").write_text("\n".join(rows) + "\n")
    assert _init(corpus, "--modality", "eeg_words", "--text", "token", "--subject", "participant") == 0
    missing = load_dataset("t").missing
    assert missing.lines == {"p1": [4], "p2": []} and missing.absent == {"p2": ["s1.1"]}
    assert "no row for stimulus(es) s1.1" in missing.describe()
