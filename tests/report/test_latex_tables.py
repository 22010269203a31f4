"""LaTeX tables: typeset headers, wide tables split, and (where pdflatex is installed) they compile and fit."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lmbrain.report.latex import MAX_DATA_COLUMNS, header, latex_table, split_columns, standalone

REPORT = Path(__file__).resolve().parents[2] / "reports" / "default"


def test_headers_are_typeset_not_raw_column_names():
    assert header("r2_ci") == "$R^2$ 95\\% CI"
    assert header("omega") == "$\\Omega$ (\\%)"
    # a control set in a header may break after '_' and '+' (long sets would not fit a column otherwise)
    assert header("unique_llm [word_position]") == "unique $R^2$ (word\\_\\allowbreak{}position)"
    assert header("some_new_column") == "some new column"


def test_wide_tables_are_split_with_the_identifying_columns_repeated():
    table = pd.DataFrame({"dataset": ["d"], "model": ["m"], **{f"c{i}": [float(i)] for i in range(15)}})
    parts = split_columns(table)
    assert len(parts) == 3 and all(p[:2] == ["dataset", "model"] for p in parts)
    assert all(len(p) - 2 <= MAX_DATA_COLUMNS for p in parts)
    assert sorted(c for p in parts for c in p[2:]) == sorted(f"c{i}" for i in range(15))
    text = latex_table(table, "Caption with 50% and r2_ci", "tab:x")
    assert text.count("\\begin{table}") == 3 and "(Part 3 of 3.)" in text and "50\\%" in text


def _compile(tmp_path: Path, bodies: list[str]) -> str:
    source = tmp_path / "tables.tex"
    source.write_text(standalone(bodies))
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", source.name], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    log = (tmp_path / "tables.log").read_text(errors="replace")
    assert run.returncode == 0, log[-3000:]
    return log


def test_report_tables_compile_and_fit_the_page(tmp_path):
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed (Debian: apt-get install texlive-latex-recommended)")
    tables = sorted((REPORT / "tables").glob("*.tex"))
    assert tables, "the shipped report has no LaTeX tables"
    log = _compile(tmp_path, [f"\\input{{{p}}}\n\\clearpage" for p in tables])
    overfull = [line for line in log.splitlines() if line.startswith("Overfull \\hbox")]
    too_wide = [line for line in overfull if float(line.split("(")[1].split("pt")[0]) > 2.0]
    assert not too_wide, too_wide[:5]


def test_a_generated_table_with_every_cell_kind_compiles(tmp_path):
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed (Debian: apt-get install texlive-latex-recommended)")
    table = pd.DataFrame({"dataset": ["a_b", "c&d"], "r2_ci": ["[0.1, 0.2]", ""], "omega": [95.0, np.nan],
                          "significant": [True, False], "note": ["x" * 40, "Ω ≥ 0.5 − R²"]})
    _compile(tmp_path, [latex_table(table, "R² and Ω: 100% of #1 ~ {x}", "tab:kinds")])
