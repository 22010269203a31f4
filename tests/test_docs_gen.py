"""docs/controls.md and docs/study.md are generated from the control registry and the study schema: they are
current (regenerated and compared), they cover every control and every key, and the CLI's help points to them."""

from __future__ import annotations

import pytest

from lmbrain import docs_gen
from lmbrain.cli import run_cli
from lmbrain.features.controls import NAN_POLICY, REGISTRY


@pytest.mark.parametrize("name", ["controls.md", "study.md"])
def test_the_generated_docs_are_current(name: str) -> None:
    path = docs_gen.DOCS / name
    expected = docs_gen.render()[path]
    assert path.read_text(encoding="utf-8") == expected, (
        f"docs/{name} is stale: regenerate it with `python -m lmbrain.docs_gen` and commit the result")


def test_every_control_is_documented_with_its_facts() -> None:
    text = docs_gen.controls_markdown()
    assert {"word_position", "word_position_ramp", "word_length", "word_frequency", "oasm"} <= set(REGISTRY)
    for name, info in REGISTRY.items():
        section = text.split(f"\n## {name}\n", 1)[1].split("\n## ", 1)[0]
        assert info.definition in section
        for fact in (info.units, info.reads, info.fallback, info.nan_policy):
            assert fact and fact in section, (name, fact)
        assert ("z-scored" if info.standardize else "centred only") in section
        assert f"| [`{name}`](#{name}) | {info.level} | {info.coding} |" in text
    # the honest fallback of the position controls, and what the word controls count
    assert "not in its sentence" in REGISTRY.get("word_position").fallback and "whole context" in (
        REGISTRY.get("word_position").description)
    assert "letters and digits" in REGISTRY.get("word_length").description
    assert "raw word" in REGISTRY.get("word_frequency").definition
    assert REGISTRY.get("word_position").nan_policy == NAN_POLICY


def test_every_study_key_is_documented() -> None:
    text = docs_gen.study_markdown()
    keys = docs_gen.study_keys()
    assert {"name", "datasets[].controls", "estimator.alphas", "statistics.seed", "statistics.permutations"} <= set(
        keys)
    for key in keys:
        assert f"| `{key}` |" in text, key
    row = next(line for line in text.splitlines() if line.startswith("| `statistics.permutations` |"))
    assert "<= 100,000" in row and ">= 0" in row
    alphas = next(line for line in text.splitlines() if line.startswith("| `estimator.alphas` |"))
    assert "each > 0" in alphas


def test_a_key_without_a_meaning_stops_the_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(docs_gen.MEANINGS, "cv.seed")
    with pytest.raises(ValueError, match=r"without a meaning.*cv\.seed"):
        docs_gen.study_markdown()


def test_check_mode_reports_a_stale_file(tmp_path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setattr(docs_gen, "DOCS", tmp_path / "docs")
    monkeypatch.setattr(docs_gen, "REPO", tmp_path)
    (tmp_path / "docs").mkdir()
    assert docs_gen.main(["--check"]) == 1 and "stale" in capsys.readouterr().err
    assert docs_gen.main([]) == 0 and docs_gen.main(["--check"]) == 0
    assert (tmp_path / "docs" / "study.md").read_text() == docs_gen.study_markdown()


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"]])
def test_the_help_points_to_the_reference_docs(args: list[str], capsys) -> None:
    assert run_cli(args) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "docs/study.md" in out and "docs/controls.md" in out

