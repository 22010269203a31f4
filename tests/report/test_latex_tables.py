"""LaTeX tables: one notation, true minus signs, readable names, never sliced by columns (landscape, then long
form), and every shipped table compiles with pdflatex and fits its page."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from lmbrain.report.latex import LANDSCAPE_WIDTH, escape, header, latex_table, long_form, standalone
from lmbrain.report.names import readable_dataset

REPORT = Path(__file__).resolve().parents[2] / "reports" / "default"


def test_headers_are_typeset_not_raw_column_names():
    assert header("r2_ci") == "$R^2$ 95\\% CI"
    assert header("omega") == "$\\Omega$ (\\%)"
    assert header("unique_llm [word_position+word_length@1]") == "unique $R^2$ (word position + word length@1)"
    assert header("some_new_column") == "some new column"


def test_one_notation_true_minus_signs_and_readable_names():
    text = escape("R² of −0.5 and -0.25 [-0.1, 0.2], p >= 0.05, well-known")
    assert text == ("$R^2$ of $-$0.5 and $-$0.25 [$-$0.1, 0.2], p \\textgreater{}= 0.05, well-known")
    assert readable_dataset("pereira2018_langnet") == "Pereira2018 (language network)"
    assert readable_dataset("brennan2016_alice") == "Brennan2016 (Alice)"
    table = pd.DataFrame({"dataset": ["frank2015_eeg"], "controls": ["word_frequency+word_length@1"],
                          "r2": [-0.25], "note": ["R² falls"]})
    latex = latex_table(table, "R² per dataset", "tab:x")
    assert "textsuperscript" not in latex and latex.count("$R^2$") == 4  # caption, header on each page, cell
    assert "Frank2015 (EEG) & word frequency + word length@1 & -0.250" in latex  # siunitx typesets the minus


def test_wide_tables_are_never_sliced_by_columns():
    """Wider than portrait: one landscape longtable with every column; wider than landscape: long form (rows)."""
    table = pd.DataFrame({"dataset": ["d"] * 3, "model": ["m", "n", "o"], **{f"c{i}": [0.5] * 3 for i in range(15)}})
    latex = latex_table(table, "Caption with 50% and r2_ci", "tab:x")
    assert latex.count("\\begin{longtable}") == 1 and "\\begin{landscape}" in latex and "Part" not in latex
    assert all(f"c{i}" in latex for i in range(15)) and "50\\%" in latex
    huge = pd.DataFrame({"dataset": ["d"] * 2, "model": ["m", "n"], **{f"c{i}": [0.5, 1.5] for i in range(60)}})
    assert 60 * 30 > LANDSCAPE_WIDTH
    latex = latex_table(huge, "Huge", "tab:h")
    assert latex.count("\\begin{longtable}") == 1 and "long form" in latex
    rows = long_form(huge)
    assert list(rows.columns) == ["dataset", "model", "quantity", "value"] and len(rows) == 120
    assert rows[rows["model"] == "n"]["value"].tolist() == ["1.500"] * 60
    # a table whose identifying columns already hold "quantity" (the across-subject table) melts under another name
    across = huge.assign(quantity=["r2", "unique"])
    rows = long_form(across)
    assert list(rows.columns) == ["dataset", "model", "quantity", "measure", "value"] and len(rows) == 120
    assert "long form" in latex_table(across, "Across", "tab:a")


def _compile(tmp_path: Path, bodies: list[str], pdflatex: str = "pdflatex") -> str:
    source = tmp_path / "tables.tex"
    source.write_text(standalone(bodies))
    run = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", source.name], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    log = (tmp_path / "tables.log").read_text(errors="replace")
    assert run.returncode == 0, log[-3000:]
    return log


def test_every_shipped_table_compiles_fits_and_renders(tmp_path, pdflatex, pdftoppm):
    """Each .tex of the three shipped reports compiles on its own (A4, T1) with no line more than 3 pt too wide;
    page 1 of the default report's headline table renders to PNG."""
    tables = sorted(p for name in ("default", "family_comparison", "split_audit")
                    for p in (REPORT.parent / name / "tables").glob("*.tex"))
    assert len(tables) > 20, "the shipped reports lack LaTeX tables"
    for path in tables:
        folder = tmp_path / f"{path.parent.parent.name}-{path.stem}"
        folder.mkdir()
        log = _compile(folder, [f"\\input{{{path}}}"], pdflatex)
        overfull = [line for line in log.splitlines() if line.startswith("Overfull \\hbox")]
        too_wide = [line for line in overfull if float(line.split("(")[1].split("pt")[0]) > 3.0]
        assert not too_wide, (path, too_wide[:3])
    pdf = tmp_path / "default-headline" / "tables.pdf"
    subprocess.run([pdftoppm, "-r", "40", "-png", "-f", "1", "-l", "1", str(pdf), str(tmp_path / "page")],
                   check=True, timeout=120)
    assert (tmp_path / "page-1.png").stat().st_size > 5000


def test_a_generated_table_with_every_cell_kind_compiles(tmp_path, pdflatex):
    table = pd.DataFrame({"dataset": ["a_b", "c&d"], "r2_ci": ["[0.1, 0.2]", ""], "omega": [95.0, np.nan],
                          "significant": [True, False], "note": ["x" * 40, "Ω ≥ 0.5 − R²"]})
    _compile(tmp_path, [latex_table(table, "R² and Ω: 100% of #1 ~ {x}", "tab:kinds")], pdflatex)
