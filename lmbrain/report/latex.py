"""Publication LaTeX tables: one notation ($R^2$, $\\Omega$, true minus signs), readable dataset and control names,
numbers aligned on the decimal point (siunitx), never sliced by columns: a table too wide for a portrait A4 page is
set on a landscape page (pdflscape) with its text columns wrapped to fit, and a long one breaks across pages by rows
(longtable). Every table is \\footnotesize, so sizes do not vary from table to table."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from lmbrain.report.names import readable_controls, readable_dataset

#: text width of A4 with 2 cm margins, portrait and landscape, in points, and the share of it the width estimates
#: may use (they count characters, not glyphs)
PORTRAIT_WIDTH, LANDSCAPE_WIDTH, MARGIN = 483.0, 728.0, 0.94
#: tables longer than this get no LaTeX file (a 1,000-row table is read from its CSV, not typeset for a paper)
LATEX_MAX_ROWS = 400
#: string cells longer than this wrap in a paragraph column
WRAP_CHARS = 28
#: the packages every table needs (``standalone`` loads them)
PACKAGES = ("booktabs", "longtable", "array", "siunitx", "pdflscape", "lmodern")
#: points per character of \footnotesize text, and the padding of one column
CHAR_PT, PAD_PT = 4.6, 6.0

_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
            "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
            "<": r"\textless{}", ">": r"\textgreater{}"}
_UNICODE = {"²": r"\textsuperscript{2}", "Ω": r"$\Omega$", "−": r"$-$", "–": "--", "≤": r"$\le$", "≥": r"$\ge$",
            "×": r"$\times$", "±": r"$\pm$", "ρ": r"$\rho$", "κ": r"$\kappa$", "σ": r"$\sigma$", "α": r"$\alpha$",
            "·": r"$\cdot$", "√": r"$\surd$", "✔": r"$\checkmark$", "∞": r"$\infty$"}
#: columns that identify a row (kept as columns when a table is set in long form)
ID_COLUMNS = ("dataset", "controls", "model", "roi", "subject", "quantity", "metric", "model_a", "model_b",
              "feature_set", "scheme", "implanted_unique_r2", "smaller")
#: columns whose cells are dataset ids or control-set labels, shown readably
_DATASET_COLUMNS, _CONTROL_COLUMNS = ("dataset",), ("controls", "smaller", "feature_set", "added")

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


def _minus(text: str) -> str:
    """A hyphen before a digit (a negative number in text) as a true minus sign."""
    return re.sub(r"(?<![\w.])-(?=\d)", "\u2212", text)


def escape(text: str) -> str:
    """Text with LaTeX's special characters escaped, R² as $R^2$, negative numbers with true minus signs and other
    Unicode symbols typeset."""
    text = _minus(str(text)).replace("R²", "\x00")
    out = "".join(_SPECIAL.get(c, c) for c in text)
    return "".join(_UNICODE.get(c, c) for c in out).replace("\x00", "$R^2$")


def header(column: str) -> str:
    """The typeset header of a column name (R², Ω, CIs, p-values), e.g. ``r2_ci`` -> ``$R^2$ 95\\% CI``."""
    name = str(column)
    if name in _HEADERS:
        return _HEADERS[name]
    suffix = re.match(r"^(?P<base>.+?) \[(?P<controls>.+)\]$", name)  # 'omega [controls]'
    if suffix:
        return f"{header(suffix['base'])} ({escape(readable_controls(suffix['controls']))})"
    for unit in (" trained", " untrained mean", " untrained range", " untrained defined"):
        if name.endswith(unit):
            return f"{header(name[: -len(unit)])} {unit.strip()}"
    return escape(name.replace("_", " "))


def _numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


def _integral(values: pd.Series) -> bool:
    """A numeric column of counts or indices (every finite value a whole number, some above 1)."""
    finite = values.to_numpy(float)
    finite = finite[np.isfinite(finite)]
    return bool(len(finite)) and bool(np.all(finite == np.round(finite))) and bool((np.abs(finite) > 1).any())


def _number(value: float, integer: bool = False) -> str:
    """A number for an siunitx column: 3 decimals, or 2 significant digits in scientific form when tiny; counts and
    indices as integers."""
    if not np.isfinite(value):
        return r"{$\infty$}" if value == np.inf else r"{$-\infty$}" if value == -np.inf else "{}"
    if integer:
        return f"{round(value)}"
    value = 0.0 if value == 0 else value  # no '-0.000'
    return f"{value:.3f}" if abs(value) >= 0.0005 or value == 0 else f"{value:.1e}"


def _text(column: str, value: object) -> str:
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    text = str(value)
    if column in _DATASET_COLUMNS:
        text = readable_dataset(text)
    elif column in _CONTROL_COLUMNS:
        text = readable_controls(text)
    return escape(text).replace(":", ":\\allowbreak{}").replace("\\_", "\\_\\allowbreak{}")


def _plain(text: str) -> str:
    return re.sub(r"\\[a-z]+\{\}|\$[^$]*\$|[\\{}$^]", "x", text)


def _natural_width(table: pd.DataFrame, column: str) -> float:
    """A column's unwrapped typeset width in points (header included)."""
    if _numeric(table[column]):
        cells = [_number(float(v), _integral(table[column])) for v in table[column]]
    else:
        cells = [_plain(_text(column, v)) for v in table[column]]
    longest = max([len(c) for c in cells] + [0])
    plain = _plain(header(column))
    words = max((len(w) for w in plain.split()), default=0)
    line = 10 if _numeric(table[column]) else 14  # headers are stacked in lines of about this many characters
    head = max(words, min(len(plain), line))
    return max(longest, head) * CHAR_PT + PAD_PT


def _number_format(values: pd.Series) -> str | None:
    """siunitx ``table-format`` of a numeric column (None: some value needs scientific notation)."""
    finite = values.to_numpy(float)
    finite = finite[np.isfinite(finite)]
    if not len(finite):
        return "1.3"
    if _integral(values):
        return f"{'-' if (finite < 0).any() else ''}{len(str(int(np.abs(finite).max())))}.0"
    if (np.abs(finite[finite != 0]) < 0.0005).any():
        return None
    digits = max(1, len(str(int(np.abs(finite).max()))))
    return f"{'-' if (finite <= -0.0005).any() else ''}{digits}.3"


def column_layout(table: pd.DataFrame) -> tuple[list[str], bool]:
    """Each column's spec and whether the table needs a landscape page: numbers in siunitx columns, text in
    paragraph columns narrowed (widest first) until the table fits the page."""
    natural = {c: _natural_width(table, c) for c in table.columns}
    landscape = sum(natural.values()) > PORTRAIT_WIDTH * MARGIN
    budget = (LANDSCAPE_WIDTH if landscape else PORTRAIT_WIDTH) * MARGIN
    width = dict(natural)
    text = [c for c in table.columns if not _numeric(table[c])]
    floor = {c: _floor(table, c) for c in text}  # a wrapped column keeps its longest word on one line
    while sum(width.values()) > budget:
        wide = [c for c in text if width[c] > floor[c]]
        if not wide:
            break
        widest = max(wide, key=lambda c: width[c])
        width[widest] = max(floor[widest], width[widest] - CHAR_PT)
    specs = []
    for c in table.columns:
        if _numeric(table[c]):
            fmt = _number_format(table[c])
            specs.append(f"S[table-format={fmt}]" if fmt else "S[exponent-mode=scientific, table-format=-1.1e-1]")
        elif width[c] < natural[c] or natural[c] > WRAP_CHARS * CHAR_PT:
            specs.append(rf">{{\raggedright\arraybackslash}}p{{{width[c] - PAD_PT:.0f}pt}}")
        else:
            specs.append("l")
    return specs, landscape


def _stacked(text: str, chars: int) -> str:
    """A header set in lines of about ``chars`` characters (math kept whole), as a bottom-aligned inner tabular."""
    words = re.findall(r"\$[^$]*\$\S*|\S+", text)
    lines: list[str] = []
    for word in words:
        if lines and len(_plain(lines[-1] + " " + word)) <= chars:
            lines[-1] += " " + word
        else:
            lines.append(word)
    if len(lines) <= 1:
        return text
    return r"\begin{tabular}[b]{@{}c@{}}" + r"\\".join(lines) + r"\end{tabular}"


def _floor(table: pd.DataFrame, column: str) -> float:
    """The narrowest a text column may wrap to: about 9 characters, or its longest unbreakable word."""
    words = [w for v in table[column] for w in re.split(r"[\s:_/+-]+", _plain(_text(column, v)))]
    longest = max([len(w) for w in words] + [9])
    return min(longest * CHAR_PT + PAD_PT, _natural_width(table, column))


def _fits(table: pd.DataFrame) -> bool:
    """Whether a table's columns fit a landscape page with every text column wrapped to its floor."""
    return sum(_natural_width(table, c) if _numeric(table[c]) else _floor(table, c)
               for c in table.columns) <= LANDSCAPE_WIDTH * MARGIN


def long_form(table: pd.DataFrame) -> pd.DataFrame:
    """A table too wide for any page as rows: its identifying columns, then one row per other column
    (``quantity``, ``value``), so that it breaks across pages by rows."""
    ids = [c for c in table.columns if c in ID_COLUMNS] or [table.columns[0]]
    rest = [c for c in table.columns if c not in ids]
    name = next(n for n in ("quantity", "measure", "column") if n not in ids)  # an id column may be "quantity"
    out = table.astype({c: object for c in rest}).melt(id_vars=ids, value_vars=rest, var_name=name,
                                                       value_name="value")
    out["value"] = [("" if v is None or (isinstance(v, float) and np.isnan(v)) else
                     ("∞" if v > 0 else "−∞") if isinstance(v, float | np.floating) and np.isinf(v) else
                     _number(float(v)) if isinstance(v, float | np.floating) else str(v)) for v in out["value"]]
    out[name] = out[name].map(lambda c: _plain_header(c))
    return out.sort_values(ids, kind="stable").reset_index(drop=True)


def _plain_header(column: str) -> str:
    """A column name in words for a long-form table's ``quantity`` cells (typeset there by :func:`escape`)."""
    return str(column).replace("r2", "R²").replace("_", " ")


def latex_table(table: pd.DataFrame, caption: str, label: str) -> str:
    """A table as LaTeX (needs :data:`PACKAGES`): one longtable (breaking across pages by rows), all its columns,
    on a landscape page where it is too wide for portrait; a table too wide even for landscape is set in long form
    (:func:`long_form`); \\footnotesize throughout."""
    if not _fits(table):
        table = long_form(table)
        caption += " (Set in long form: one row per quantity.)"
    specs, landscape = column_layout(table)
    columns = list(table.columns)
    head = " & ".join(f"{{{_stacked(header(c), 10)}}}" if spec.startswith("S") else
                      header(c) if spec.startswith(">") else _stacked(header(c), 14)
                      for c, spec in zip(columns, specs, strict=True)) + r" \\"
    numeric = [_numeric(table[c]) for c in columns]
    integer = [is_number and _integral(table[c]) for c, is_number in zip(columns, numeric, strict=True)]
    scientific = ["exponent-mode" in spec for spec in specs]

    def cell(c: str, v: object, is_number: bool, whole: bool, sci: bool) -> str:
        if not is_number:
            return _text(c, v)
        return f"{float(v):.1e}" if sci and np.isfinite(float(v)) else _number(float(v), whole)

    body = "\n".join(" & ".join(cell(*args) for args in zip(columns, row, numeric, integer, scientific, strict=True))
                      + r" \\" for row in table.itertuples(index=False))
    lines = [r"{\footnotesize\setlength{\tabcolsep}{3pt}\setlength{\LTcapwidth}{\linewidth}"
             r"\sisetup{group-digits=false}",
             rf"\begin{{longtable}}{{{''.join(specs)}}}", rf"\caption{{{escape(caption)}}}\label{{{label}}}\\",
             r"\toprule", head, r"\midrule", r"\endfirsthead", r"\toprule", head, r"\midrule", r"\endhead",
             r"\bottomrule", r"\endfoot", body, r"\end{longtable}}"]
    if landscape:
        lines = [r"\begin{landscape}", *lines, r"\end{landscape}"]
    return f"% needs \\usepackage[T1]{{fontenc}} and \\usepackage{{{','.join(PACKAGES)}}}\n" + "\n".join(lines) + "\n"


def standalone(paths_or_bodies: list[str]) -> str:
    """A minimal A4 document (2 cm margins, T1 fonts) that inputs or holds the given table bodies."""
    return "\n".join([r"\documentclass{article}", r"\usepackage[a4paper,margin=2cm]{geometry}",
                      r"\usepackage[T1]{fontenc}", rf"\usepackage{{{','.join(PACKAGES)}}}",
                      r"\begin{document}", *paths_or_bodies, r"\end{document}", ""])
