"""One static HTML page (jinja2, no external resources): the question and headline first, the trust panel,
figures, literature context, then every detailed table collapsed (long ones as a preview linked to their CSV,
Markdown and LaTeX files, so the page stays small), and the manifest last."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from lmbrain.results import JOINT

QUESTION = ("How much of each language model's brain score do trivial features (the controls) already explain, "
            "and can the number be trusted?")
#: the page title's subtitle of a study that asks no question of its own (the default question)
SUBTITLE = "what trivial features explain of language models' brain scores"


def page_question(study: dict, name: str) -> tuple[str, str]:
    """The page's title and question: the study's own ``question`` (its first sentence in the title), else the
    default control-analysis question."""
    question = str(study.get("question", "") or "").strip()
    if not question:
        return f"{name}: {SUBTITLE}", QUESTION
    first = re.match(r"^.*?[?.!](?=\s|$)", question)
    return f"{name}: {first.group(0) if first else question}", question


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def table_html(table: pd.DataFrame, table_id: str) -> str:
    """A table as sortable HTML (class ``sortable``; the page's script sorts on a header click)."""
    return table.to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="", border=0,
                         classes="sortable", table_id=table_id)


#: a detailed table with more rows than this is previewed on the page and read in full from its files
INLINE_ROWS = 100
#: the rows a previewed table shows when it has no 'all' (mean over subjects) rows to show instead
PREVIEW_ROWS = 10
#: how the page names a table file, by suffix
FILE_KINDS = {".csv": "CSV", ".md": "Markdown", ".tex": "LaTeX"}


def preview(table: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The rows of a detailed table shown on the page and a note saying which (empty when all are shown):
    a long per-subject table shows its 'all' rows (means over subjects), any other long table its first rows."""
    if len(table) <= INLINE_ROWS:
        return table, ""
    if "subject" in table.columns:
        overall = table[table["subject"] == "all"]
        if 0 < len(overall) <= INLINE_ROWS:
            return overall, f"Shown: the {len(overall)} 'all' rows (means over subjects) of {len(table):,} rows."
    first = table.head(min(PREVIEW_ROWS, INLINE_ROWS))
    return first, f"Shown: the first {len(first)} of {len(table):,} rows."


def _detail_entry(title: str, table: pd.DataFrame, note: str, files: list[Path], out_dir: Path) -> dict:
    shown, shown_note = preview(table)
    return {"title": title, "note": note, "id": _slug(title), "html": table_html(shown, f"t-{_slug(title)}"),
            "shown": shown_note, "n_rows": len(table),
            "files": [{"kind": FILE_KINDS.get(path.suffix, path.suffix), "href": path.relative_to(out_dir).as_posix()}
                      for path in files]}


def render_html(manifest: dict, study: dict, headline: pd.DataFrame, findings: dict[str, list[str]],
                trust: dict[str, list[tuple[str, str]]], figures: list[tuple[str, Path, str]],
                literature: pd.DataFrame, tables: list[tuple[str, pd.DataFrame, str, list[Path]]], out_dir: Path,
                headline_caption: str, answers: list[str] | None = None,
                verdict_lines: list[str] | None = None, untrained_notes: list[str] | None = None) -> str:
    """Render the report page: its title and question from the study (:func:`page_question`), ``answers`` (the
    study's own answer to its question, e.g. the split audit's) before the findings; figure and table-file paths
    are made relative to ``out_dir``; long detailed tables are previewed (:func:`preview`) and linked to their
    files. The first screen: ``verdict_lines`` beside the answer figure (the first figure, "answer.png"), the
    models' identity, then the headline table; the long sentences follow, collapsed."""
    from lmbrain.report.verdicts import model_identity
    from lmbrain.report.wording import is_behavioural, reword

    env = Environment(loader=PackageLoader("lmbrain.report", "templates"), autoescape=select_autoescape())
    behavioural = is_behavioural(manifest)
    env.filters["words"] = lambda text: reword(text, behavioural)  # prose only; never table cells or names
    template = env.get_template("report.html.j2")
    title, question = page_question(study, str(manifest.get("study", "")))
    return template.render(
        manifest=manifest,
        title=title,
        question=question,
        answers=answers or [],
        description=str(study.get("description", "") or "").strip(),
        manifest_json=json.dumps(manifest, indent=2, default=str),
        # '+' in control labels may break the line there (the headline must fit the first screen)
        headline=table_html(headline, "headline-table").replace(JOINT, f"{JOINT}<wbr>") if not headline.empty else "",
        headline_caption=headline_caption,
        findings=[sentence for dataset in sorted(findings) for sentence in findings[dataset]],
        trust=trust,
        literature=table_html(literature, "literature-table") if not literature.empty else "",
        tables=[_detail_entry(title, table, note, files, out_dir) for title, table, note, files in tables],
        figures=[{"title": title, "caption": caption, "src": path.relative_to(out_dir).as_posix(),
                  "svg": path.with_suffix(".svg").relative_to(out_dir).as_posix()}
                 for title, path, caption in figures if path.stem != "answer"],
        answer_figure=next(({"title": title, "caption": caption, "src": path.relative_to(out_dir).as_posix()}
                            for title, path, caption in figures if path.stem == "answer"), None),
        verdicts=verdict_lines or [],
        untrained_notes=untrained_notes or [],
        identity=model_identity(manifest.get("models", {}) or {}),
    )
