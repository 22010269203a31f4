"""One static HTML page (jinja2, no external resources): the question and headline first, the trust panel,
figures, literature context, then every detailed table collapsed, and the manifest last."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

QUESTION = ("How much of each language model's brain score do trivial features (the controls) already explain, "
            "and can the number be trusted?")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def table_html(table: pd.DataFrame, table_id: str) -> str:
    """A table as sortable HTML (class ``sortable``; the page's script sorts on a header click)."""
    return table.to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="", border=0,
                         classes="sortable", table_id=table_id)


def render_html(manifest: dict, study: dict, headline: pd.DataFrame, findings: dict[str, list[str]],
                trust: dict[str, list[tuple[str, str]]], figures: list[tuple[str, Path, str]],
                literature: pd.DataFrame, tables: list[tuple[str, pd.DataFrame, str]], out_dir: Path,
                headline_caption: str) -> str:
    """Render the report page; figure paths are made relative to ``out_dir``."""
    env = Environment(loader=PackageLoader("lmbrain.report", "templates"), autoescape=select_autoescape())
    template = env.get_template("report.html.j2")
    return template.render(
        manifest=manifest,
        question=QUESTION,
        description=str(study.get("description", "") or "").strip(),
        manifest_json=json.dumps(manifest, indent=2, default=str),
        # '+' in control labels may break the line there (the headline must fit the first screen)
        headline=table_html(headline, "headline-table").replace("+", "+<wbr>") if not headline.empty else "",
        headline_caption=headline_caption,
        findings=[sentence for dataset in sorted(findings) for sentence in findings[dataset]],
        trust=trust,
        literature=table_html(literature, "literature-table") if not literature.empty else "",
        tables=[{"title": title, "note": note, "id": _slug(title), "html": table_html(table, f"t-{_slug(title)}")}
                for title, table, note in tables],
        figures=[{"title": title, "caption": caption, "src": path.relative_to(out_dir).as_posix(),
                  "svg": path.with_suffix(".svg").relative_to(out_dir).as_posix()}
                 for title, path, caption in figures],
    )
