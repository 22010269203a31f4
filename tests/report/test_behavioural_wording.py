"""A reading-time study's page speaks of participants, words and measures: no brain wording, no empty columns,
no legend entry for untrained models it does not have."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from lmbrain.report.build import build_report
from lmbrain.report.wording import reword
from lmbrain.study.runner import run_study
from lmbrain.study.schema import Study

pytestmark = pytest.mark.xdist_group("behavioural")


class _Prose(HTMLParser):
    """The page's prose: text outside tables, scripts, styles and the manifest's <pre>."""

    def __init__(self) -> None:
        super().__init__()
        self.skip, self.text = 0, []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.skip += tag in ("table", "script", "style", "pre")

    def handle_endtag(self, tag: str) -> None:
        self.skip -= tag in ("table", "script", "style", "pre")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.text.append(data)


def test_rewording_keeps_brain_data_as_it_is():
    assert reword("1 subjects, 2 neuroids, brain scores", False) == "1 subjects, 2 neuroids, brain scores"
    assert reword("1 subjects, 2 neuroids; Subjects: brain scores", True) == \
        "1 participant, 2 measures; Participants: scores"


def test_a_reading_time_study_reads_as_behaviour(data_dir, tmp_path):
    study = Study.model_validate({
        "name": "reading", "question": "How much of a language model's fit to reading times is word length?",
        "datasets": [{"name": "frank2015_et", "controls": ["word_length"], "subjects": ["1", "10", "11"]}],
        "models": [{"name": "gpt2-tiny"}],
        "features": {"layers": [1.0]},
        "cv": {"n_splits": 3, "inner_splits": 3},
        "statistics": {"permutations": 19, "bootstrap": 50, "ceiling": False, "sensitivity": []},
    })
    out = tmp_path / "results"
    run_study(study, out, executor="sequential", n_jobs=1)
    build_report(out)
    page = (out / "index.html").read_text()
    prose = _Prose()
    prose.feed(page)
    text = " ".join(prose.text)
    assert re.search(r"\bbrain|neuroid|\bsubjects?\b", text, flags=re.IGNORECASE) is None, \
        re.findall(r".{60}(?:\bbrain|neuroid|\bsubject).{40}", text, flags=re.IGNORECASE)[:3]
    assert "participants" in text and not re.search(r"\b1 participants\b", text)
    headline = (out / "tables" / "headline.csv").read_text().splitlines()
    columns = headline[0].split(",")
    assert "r / ceiling" not in columns  # no ceiling in this study: no empty column
