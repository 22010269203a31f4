"""Publication LaTeX tables: typeset headers (R², Ω, CIs as [a, b]), wide tables split into parts that fit a
page (booktabs; longtable for long ones), captions that say what is averaged over what."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

#: columns that identify a row; repeated in every part of a split table
ID_COLUMNS = ("dataset", "controls", "model", "roi", "subject", "quantity", "metric", "model_a", "model_b",
              "feature_set", "scheme", "implanted_unique_r2")
#: data columns per part (besides the identifying ones), at most
MAX_DATA_COLUMNS = 6
#: estimated width budget of one part (A4 with 2 cm margins: 483 pt of text width), in points; a short table may be
#: wider (shrunk to the text width, by at most ~25 %), a longtable may not
WIDTH_BUDGET, SHORT_WIDTH_BUDGET = 460.0, 620.0
#: longer tables become a longtable (breaks across pages)
LONG_TABLE_ROWS = 35
#: string cells longer than this get a wrapping paragraph column
WRAP_CHARS = 28

_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
            "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}
_UNICODE = {"²": r"\textsuperscript{2}", "Ω": r"$\Omega$", "−": "--", "–": "--", "≤": r"$\le$", "≥": r"$\ge$",
            "×": r"$\times$", "±": r"$\pm$", "ρ": r"$\rho$", "κ": r"$\kappa$", "σ": r"$\sigma$", "α": r"$\alpha$"}

_HEADERS = {
    "r": "$r$", "r2": "$R^2$", "r_ci": "$r$ 95\\% CI", "r2_ci": "$R^2$ 95\\% CI", "r_ceiled": "$r$/ceiling",
    "ceiling": "ceiling", "r2_controls": "$R^2$ controls", "r2_joint": "$R^2$ joint", "r2_llm": "$R^2$ LLM",
    "unique_llm": "unique $R^2$", "unique_llm_ci": "unique $R^2$ CI", "omega": "$\\Omega$ (\\%)",
    "omega_ci": "$\\Omega$ CI", "omega_subject_mean": "$\\Omega$ subj.\\ mean (\\%)",
    "omega_subject_mean_ci": "$\\Omega$ subj.\\ mean CI", "omega_subjects": "$\\Omega$ subj.\\ used",
    "p_descriptive": "$p$ (descriptive)", "q_descriptive": "$q$ (descriptive)", "joint_shortfall": "shortfall",
    "significant": "sig.\\ ($R^2$)", "significant_unique": "sig.\\ unique", "n_subjects": "subj.",
    "n_targets": "targets", "n_rows": "rows",
    "p_signflip": "$p$ sign-flip", "p_ttest": "$p$ $t$", "p_wilcoxon": "$p$ Wilcoxon", "q": "$q$", "dz": "$d_z$",
    "t": "$t$", "mean": "mean", "ci_low": "CI low", "ci_high": "CI high", "layer": "layer",
    "mean_a_minus_b": "$a - b$", "mixed_coef_b_minus_a": "mixed $b - a$", "mixed_p": "mixed $p$",
    "median_shortfall": "median shortfall", "max_shortfall": "max shortfall",
    "share_joint_ge_best": "joint $\\ge$ best", "depth": "depth", "difference": "$\\Delta R^2$",
    "difference_ci_low": "$\\Delta$ CI low", "difference_ci_high": "$\\Delta$ CI high", "p": "$p$",
    "r2_best": "$R^2$ best", "r2_last": "$R^2$ last", "best_layer": "best layer", "best_depth": "best depth",
    "last_layer": "last layer", "n_untrained_seeds": "seeds", "median_ceiling": "median",
    "share_at_0": "at 0", "share_at_least_0.99": "$\\ge 0.99$", "share_at_bound": "at bound",
    "median_ci_width": "CI width", "q_r2_llm": "$q$ ($R^2$)", "q_unique_llm": "$q$ (unique)",
    "r2_grouped": "$R^2$ grouped", "r2_shuffled": "$R^2$ shuffled", "r_grouped": "$r$ grouped",
    "r_shuffled": "$r$ shuffled", "r2_inflation": "$R^2$ inflation",
    "implanted_unique_r2": "implanted unique $R^2$", "mean_recovered": "recovered unique $R^2$",
    "recovery": "recovery", "learnable_limit": "learnable limit", "recovery_of_limit": "recovery / limit",
    "power": "power", "power_across_subjects": "power across subj.", "test": "test",
    "detectable": "detectable unique $R^2$",
}


def escape(text: str) -> str:
    """Text with LaTeX's special characters escaped and common Unicode symbols typeset."""
    out = "".join(_SPECIAL.get(c, c) for c in str(text))
    return "".join(_UNICODE.get(c, c) for c in out)


def header(column: str) -> str:
    """The typeset header of a column name (R², Ω, CIs, p-values), e.g. ``r2_ci`` -> ``$R^2$ 95\\% CI``."""
    name = str(column)
    if name in _HEADERS:
        return _HEADERS[name]
    suffix = re.match(r"^(?P<base>.+?) \[(?P<controls>.+)\]$", name)  # 'omega [controls]'
    if suffix:
        controls = escape(suffix["controls"]).replace("+", "+\\allowbreak{}").replace("\\_", "\\_\\allowbreak{}")
        return f"{header(suffix['base'])} ({controls})"
    for unit in (" trained", " untrained mean", " untrained range", " untrained defined"):
        if name.endswith(unit):
            return f"{header(name[: -len(unit)])} {unit.strip()}"
    return escape(name.replace("_", " "))


def _head_cell(column: str) -> str:
    """A column's header, set in a 2.6 cm paragraph when it is longer than a wrapped cell (so it can break)."""
    text = header(column)
    plain = re.sub(r"\\[a-z]+\{\}|[\\{}$^]", "", text)
    return rf"\parbox[b]{{2.6cm}}{{\raggedright {text}}}" if len(plain) > WRAP_CHARS else text


def _cell(value: object) -> str:
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, float | np.floating):
        if np.isinf(value):
            return r"$\infty$" if value > 0 else r"$-\infty$"
        if not np.isfinite(value):
            return ""
        return f"{value:.3f}" if abs(value) >= 0.001 or value == 0 else f"{value:.1e}"
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return escape(value).replace("+", "+\\allowbreak{}").replace("\\_", "\\_\\allowbreak{}")


def _column_spec(table: pd.DataFrame, column: str) -> str:
    values = table[column]
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return "r"
    longest = int(values.astype(str).str.len().max()) if len(values) else 0
    return r">{\raggedright\arraybackslash}p{2.6cm}" if longest > WRAP_CHARS else "l"


def _width(table: pd.DataFrame, column: str) -> float:
    """A column's estimated typeset width in points (footnotesize: ~4 pt per character, wrapped columns 2.6 cm),
    padding included."""
    cells = table[column].map(_cell).str.replace(r"\\[a-z]+\{\}|[\\{}$^]", "", regex=True)
    chars = max([len(re.sub(r"\\[a-z]+\{\}|[\\{}$^]", "", header(column))), *cells.str.len().tolist()])
    return chars * 4.0 + 6.0 if chars <= WRAP_CHARS else 74.0 + 6.0


def split_columns(table: pd.DataFrame, max_data_columns: int = MAX_DATA_COLUMNS,
                  budget: float = WIDTH_BUDGET) -> list[list[str]]:
    """The column lists of a table's parts: its identifying columns, then as many others (at most
    ``max_data_columns``) as fit the estimated width ``budget`` (at least one per part)."""
    ids = [c for c in table.columns if c in ID_COLUMNS]
    data = [c for c in table.columns if c not in ids]
    if not data:
        return [ids]
    room = budget - sum(_width(table, c) for c in ids)
    parts: list[list[str]] = [[]]
    used = 0.0
    for column in data:
        width = _width(table, column)
        if parts[-1] and (used + width > room or len(parts[-1]) >= max_data_columns):
            parts.append([])
            used = 0.0
        parts[-1].append(column)
        used += width
    return [ids + part for part in parts]


def latex_table(table: pd.DataFrame, caption: str, label: str,
                max_data_columns: int = MAX_DATA_COLUMNS) -> str:
    """A table as LaTeX (needs ``booktabs``, ``longtable``, ``array`` and ``graphicx``): typeset headers, one table
    per part where the table is wide (the caption says 'part i of n'), a longtable where it is long; a short part
    still wider than the text is shrunk to the text width."""
    budget = WIDTH_BUDGET if len(table) > LONG_TABLE_ROWS else SHORT_WIDTH_BUDGET
    parts = split_columns(table, max_data_columns, budget)
    blocks = []
    for i, columns in enumerate(parts, start=1):
        part = table[columns]
        spec = "".join(_column_spec(part, c) for c in columns)
        head = " & ".join(_head_cell(c) for c in columns) + r" \\"
        body = "\n".join(" & ".join(_cell(v) for v in row) + r" \\" for row in part.itertuples(index=False))
        text = escape(caption) + (f" (Part {i} of {len(parts)}.)" if len(parts) > 1 else "")
        tag = f"{label}-{i}" if len(parts) > 1 else label
        if len(part) > LONG_TABLE_ROWS:
            blocks.append("\n".join([
                r"{\footnotesize\setlength{\tabcolsep}{3pt}",
                rf"\begin{{longtable}}{{{spec}}}",
                rf"\caption{{{text}}}\label{{{tag}}}\\", r"\toprule", head, r"\midrule", r"\endfirsthead",
                r"\toprule", head, r"\midrule", r"\endhead", r"\bottomrule", r"\endfoot",
                body, r"\end{longtable}}"]))
        else:
            blocks.append("\n".join([
                r"\begin{table}[htbp]", r"\centering", r"\footnotesize", r"\setlength{\tabcolsep}{3pt}",
                rf"\caption{{{text}}}\label{{{tag}}}", rf"\sbox0{{\begin{{tabular}}{{{spec}}}", r"\toprule", head,
                r"\midrule", body, r"\bottomrule", r"\end{tabular}}",
                r"\ifdim\wd0>\linewidth\resizebox{\linewidth}{!}{\usebox0}\else\usebox0\fi",  # shrink only
                r"\end{table}"]))
    return "% needs \\usepackage{booktabs,longtable,array,graphicx}\n" + "\n\n".join(blocks) + "\n"


def standalone(paths_or_bodies: list[str]) -> str:
    """A minimal document (A4, 2 cm margins) that inputs or holds the given table bodies; for compile tests."""
    return "\n".join([r"\documentclass{article}", r"\usepackage[a4paper,margin=2cm]{geometry}",
                      r"\usepackage[T1]{fontenc}", r"\usepackage{booktabs,longtable,array,graphicx}",
                      r"\begin{document}", *paths_or_bodies, r"\end{document}", ""])
