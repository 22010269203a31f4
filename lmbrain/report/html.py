"""One HTML page that bundles a study's tables and figures with its manifest (jinja2)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape


def render_html(
    manifest: dict, tables: list[tuple[str, pd.DataFrame, str]], figures: list[tuple[str, Path]], out_dir: Path
) -> str:
    """Render the report page; figure paths are made relative to ``out_dir``."""
    env = Environment(loader=PackageLoader("lmbrain.report", "templates"), autoescape=select_autoescape())
    template = env.get_template("report.html.j2")
    return template.render(
        manifest=manifest,
        manifest_json=json.dumps(manifest, indent=2, default=str),
        tables=[
            {"title": title, "note": note,
             "html": table.to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="", border=0)}
            for title, table, note in tables
        ],
        figures=[{"title": title, "src": path.relative_to(out_dir).as_posix()} for title, path in figures],
    )
