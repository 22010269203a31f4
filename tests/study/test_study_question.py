"""A study's own question: accepted by the schema, shown by its report, and not part of its hash (editing it leaves
finished units valid); the shipped studies that ask their own."""

from __future__ import annotations

from pathlib import Path

from lmbrain.study.schema import Study, load_study

ANALYSES = Path(__file__).resolve().parents[2] / "analyses"


def test_question_is_optional_and_not_part_of_the_hash():
    base = {"name": "s", "datasets": [{"name": "fedorenko2016", "controls": ["word_position"]}]}
    plain, asked = Study(**base), Study(**base, question="Does it leak?")
    assert plain.question == "" and asked.question == "Does it leak?"
    assert plain.digest() == asked.digest()
    assert Study(**base, description="other").digest() != plain.digest()  # content still changes the hash


def test_shipped_studies_ask_their_own_question():
    audit = load_study(ANALYSES / "split_audit.yaml")
    assert audit.question.startswith("Does the split leak?")
    assert {d.name: d.controls for d in audit.datasets}["brennan2016_alice"] == ["oasm", "word_rate+sound_power"]
    family = load_study(ANALYSES / "family_comparison.yaml")
    assert family.question.startswith("Which model family explains brain responses beyond the controls?")
    assert load_study(ANALYSES / "default.yaml").question == ""
