"""The report page: headline before any per-subject table, every image and link resolves, tables scroll, files
readable by others; laid out by a real browser where Chromium is installed."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmbrain.report import html
from lmbrain.report.build import build_report
from lmbrain.report.literature import LiteratureValue, literature_table, load_literature, this_study
from lmbrain.report.trust import summary_parts

REPO = Path(__file__).resolve().parents[2]
INPUTS = ("results.parquet", "units.parquet", "manifest.json", "study.yaml")


class _Page(HTMLParser):
    """Tables (their id and whether a scroll container holds them), images, links and section order."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, dict]] = []
        self.tables: list[tuple[str, bool]] = []
        self.sources: list[str] = []
        self.links: list[str] = []
        self.ids: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = dict(attrs)
        if attributes.get("id"):
            self.ids.append(attributes["id"])
        if tag == "table":
            scrolled = any("scroll" in (a.get("class") or "").split() for _, a in self.stack)
            self.tables.append((attributes.get("id", ""), scrolled))
        if tag == "img":
            self.sources.append(attributes["src"])
        if tag == "a" and attributes.get("href"):
            self.links.append(attributes["href"])
        if tag not in ("img", "br", "meta", "link", "input"):
            self.stack.append((tag, attributes))

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop()[0] == tag:
                break


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("report")
    for name in INPUTS:
        shutil.copy(REPO / "reports" / "split_audit" / name, folder / name)
    old = os.umask(0o022)
    try:
        build_report(folder)
    finally:
        os.umask(old)
    return folder


def test_headline_first_and_every_table_in_a_scroll_container(report):
    page = _Page()
    page.feed((report / "index.html").read_text())
    ids = [table_id for table_id, _ in page.tables]
    assert ids[0] == "headline-table"
    per_subject = [i for i, table_id in enumerate(ids) if "per-subject" in table_id]
    assert per_subject and per_subject[0] > 0
    assert all(scrolled for _, scrolled in page.tables)
    order = [page.ids.index(section) for section in ("headline", "trust", "figures", "literature", "details",
                                                    "manifest")]
    assert order == sorted(order)


def test_every_image_and_link_resolves(report):
    page = _Page()
    page.feed((report / "index.html").read_text())
    assert any(src.endswith("omega.png") for src in page.sources)
    for target in page.sources + page.links:
        if target.startswith("#"):
            assert target[1:] in page.ids, target
        else:
            assert (report / target).is_file(), target


class _Details(HTMLParser):
    """Per ``<details>`` of the page: the links in it and the body rows of its table."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks: list[dict] = []
        self.open = False
        self.in_body = False

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag == "details":
            self.blocks.append({"links": [], "rows": 0})
            self.open = True
        elif self.open and tag == "a":
            self.blocks[-1]["links"].append(dict(attrs)["href"])
        elif self.open and tag == "tbody":
            self.in_body = True
        elif self.in_body and tag == "tr":
            self.blocks[-1]["rows"] += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "details":
            self.open = False
        elif tag == "tbody":
            self.in_body = False


@pytest.fixture(scope="module")
def long_tables(report, tmp_path_factory) -> tuple[Path, int]:
    """The same report with a row limit below the per-subject table's length (a row per subject, model and control
    set; the shipped default has 1,020), so that table and every longer one must be previewed, not inlined."""
    scores = pd.read_csv(report / "tables" / "scores.csv")
    limit = int((scores["subject"] == "all").sum())
    assert len(scores) > limit
    folder = tmp_path_factory.mktemp("long")
    for name in INPUTS:
        shutil.copy(report / name, folder / name)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(html, "INLINE_ROWS", limit)
        build_report(folder)
    return folder, limit


def test_long_tables_are_previewed_and_linked_to_their_files(long_tables):
    folder, limit = long_tables
    page = _Details()
    page.feed((folder / "index.html").read_text())
    tables = [block for block in page.blocks if any(link.endswith(".csv") for link in block["links"])]
    assert len(tables) == len(list((folder / "tables").glob("*.csv"))) - 1  # all but the headline (shown above)
    previewed = 0
    for block in tables:
        files = [link for link in block["links"] if link.startswith("tables/")]
        assert {Path(f).suffix for f in files} == {".csv", ".md", ".tex"}
        assert all((folder / f).is_file() for f in files)
        full = pd.read_csv(folder / next(f for f in files if f.endswith(".csv")))
        if len(full) <= limit:
            assert block["rows"] == len(full)
        elif "subject" in full.columns:  # the per-subject table shows its means over subjects
            assert block["rows"] == (full["subject"] == "all").sum()
            previewed += 1
        else:
            assert block["rows"] == min(html.PREVIEW_ROWS, limit) < len(full)
            previewed += 1
    assert previewed >= 2
    # whatever the number of subjects and targets, no detailed table puts more than `limit` rows on the page
    assert all(block["rows"] <= limit for block in tables)


def test_report_files_are_readable_by_others(report):
    files = [p for p in report.rglob("*") if p.is_file() and p.name not in INPUTS]
    assert len(files) > 20
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o644 for p in files), \
        [(p.name, oct(p.stat().st_mode)) for p in files if stat.S_IMODE(p.stat().st_mode) != 0o644][:5]


MEASURE = """<script>
window.addEventListener("load", function () {
  var bad = [], W = window.innerWidth, H = window.innerHeight;
  document.querySelectorAll("details").forEach(function (d) { d.open = true; });
  document.querySelectorAll("table").forEach(function (t) {
    var box = t.parentElement, style = getComputedStyle(box);
    var scrolls = style.overflowX === "auto" || style.overflowX === "scroll";
    if (t.getBoundingClientRect().width > W && !scrolls) { bad.push(t.id); }
    if (box.getBoundingClientRect().right > W + 1) { bad.push("container of " + t.id); }
  });
  document.querySelectorAll(".card, .verdicts, figure").forEach(function (c) {
    if (c.getBoundingClientRect().right > W + 1) { bad.push(c.className || c.tagName); }
  });
  document.body.setAttribute("data-too-wide", bad.join(","));
  document.querySelectorAll("details").forEach(function (d) { d.open = false; });
  var verdicts = Array.from(document.querySelectorAll(".verdict-list li"));
  var seen = verdicts.length > 0 && verdicts.every(function (v) { return v.getBoundingClientRect().bottom <= H; });
  var figure = Array.from(document.querySelectorAll("figure img")).some(function (img) {
    var r = img.getBoundingClientRect(); return r.top < H && r.height > 100 && r.right <= W + 1; });
  document.body.setAttribute("data-first-screen", (seen ? "verdicts" : "") + (figure ? "+figure" : ""));
  document.body.setAttribute("data-checked", "yes");
});
</script></body>"""


def _measured(browser: str, report: Path, width: int, height: int) -> str:
    """The page as Chromium lays it out at ``width`` x ``height`` with :data:`MEASURE`'s findings in its DOM."""
    probe = report / "probe.html"
    probe.write_text((report / "index.html").read_text().replace("</body>", MEASURE))
    run = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", f"--window-size={width},{height}",
                          f"--user-data-dir={report / '.chromium'}", "--virtual-time-budget=5000", "--dump-dom",
                          probe.as_uri()], capture_output=True, text=True, timeout=120)
    assert 'data-checked="yes"' in run.stdout, run.stderr[-2000:]
    return run.stdout


def test_first_screen_shows_the_verdicts_beside_a_figure_in_chromium(report, chromium):
    """At 1,400 x 900: every verdict line and the answer figure are on the first screen; nothing overflows."""
    dom = _measured(chromium, report, 1400, 900)
    assert 'data-first-screen="verdicts+figure"' in dom, dom.split("data-first-screen=")[1][:60]
    assert 'data-too-wide=""' in dom, dom.split("data-too-wide=")[1][:300]


def test_no_card_table_or_figure_overflows_at_phone_width(report, chromium):
    """At 390 x 844 (a phone): cards wrap, wide tables scroll inside their container, figures fit."""
    dom = _measured(chromium, report, 390, 844)
    assert 'data-too-wide=""' in dom, dom.split("data-too-wide=")[1][:300]


def test_literature_values_carry_a_citation_and_a_source():
    values = load_literature()
    assert values and all(v.citation and v.source and v.metric for v in values)
    with pytest.raises(Exception, match="entry 0"):
        load_literature("entries:\n  - {dataset: d, model: m}\n")


def test_published_values_are_shown_next_to_this_studys_comparable_numbers():
    value = LiteratureValue(dataset="d", published_dataset="D", model="gpt (untrained)", quantity="omega",
                            value=90.0, controls="c", metric="omega", citation="x", source="y")
    rows = pd.DataFrame({"dataset": ["d"] * 4, "controls": ["c", "c", "c", "other"],
                         "model": ["m", "m:untrained-0", "m:untrained-1", "m:untrained-0"], "base": ["m"] * 4,
                         "untrained": [False, True, True, True], "omega": [50.0, 100.0, np.nan, 10.0],
                         "r_ceiled": [np.nan] * 4})
    assert this_study(value, rows) == "m: Ω 100 (mean of 1/2 seeds)"  # untrained, same controls only
    table = literature_table(["d"], [value], rows)
    assert table.loc[0, "this study"] == "m: Ω 100 (mean of 1/2 seeds)"
    assert literature_table(["other"], [value], rows).empty


def test_dataset_summaries_split_only_outside_parentheses():
    text = "d (x): 3 subjects; 10 missing (NaN) value(s) (subject 1: 5; subject 2: 5); excluded ['s3']"
    assert summary_parts(text) == ["d (x): 3 subjects", "10 missing (NaN) value(s) (subject 1: 5; subject 2: 5)",
                                   "excluded ['s3']"]
