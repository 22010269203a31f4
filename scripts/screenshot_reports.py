"""Render each shipped report with headless Chromium and write its first screen on a desktop (1400 x 900) and on a
phone (390 x 844) to docs/screenshots/.

Usage: python scripts/screenshot_reports.py [REPORT_DIR ...] [--out docs/screenshots] [--height 900]
(default: reports/default, reports/family_comparison, reports/split_audit). Needs Debian's ``chromium``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REPORTS = ("reports/default", "reports/family_comparison", "reports/split_audit")


def chromium() -> str | None:
    """The Chromium executable, or None."""
    return next((path for name in ("chromium", "chromium-browser", "google-chrome") if (path := shutil.which(name))),
                None)


def screenshot(page: Path, out: Path, width: int = 1400, height: int = 900) -> Path:
    """A PNG of the first ``width`` x ``height`` pixels of ``page`` as headless Chromium renders it."""
    browser = chromium()
    if browser is None:
        raise SystemExit("chromium not found (Debian: apt-get install chromium)")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={profile}", f"--window-size={width},{height}", f"--screenshot={out}",
                        page.resolve().as_uri()], check=True, capture_output=True, timeout=120)
    out.chmod(0o644)
    return out


def headline_pdf_page(report: Path, out: Path) -> Path | None:
    """Page 1 of the report's headline table compiled with pdflatex (A4, as lmbrain's standalone wrapper), as PNG;
    None where pdflatex or pdftoppm is missing."""
    sys.path.insert(0, str(REPO))
    from lmbrain.report.latex import standalone

    table = report / "tables" / "headline.tex"
    if not table.is_file() or not (shutil.which("pdflatex") and shutil.which("pdftoppm")):
        return None
    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / "headline.tex"
        source.write_text(standalone([f"\\input{{{table.resolve()}}}"]))
        subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", source.name], cwd=work,
                       check=True, capture_output=True, timeout=300)
        subprocess.run(["pdftoppm", "-r", "80", "-png", "-f", "1", "-l", "1", "-singlefile", "headline.pdf",
                        str(out.with_suffix(""))], cwd=work, check=True, capture_output=True, timeout=120)
    out.chmod(0o644)
    return out


def main(argv: list[str] | None = None) -> int:
    """Screenshot each report's index.html; prints the files written."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="*", default=list(REPORTS))
    parser.add_argument("--out", default=str(REPO / "docs" / "screenshots"))
    parser.add_argument("--height", type=int, default=900)
    args = parser.parse_args(argv)
    for report in args.reports:
        page = (REPO / report if not Path(report).is_absolute() else Path(report)) / "index.html"
        if not page.is_file():
            print(f"skipped {report}: no index.html", file=sys.stderr)
            continue
        suffix = "first_screen" if args.height == 900 else f"{args.height}px"
        out = screenshot(page, Path(args.out) / f"{Path(report).name}_{suffix}.png", height=args.height)
        print(f"wrote {out}")
        phone = screenshot(page, Path(args.out) / f"{Path(report).name}_phone.png", width=390, height=844)
        print(f"wrote {phone}")
        pdf = headline_pdf_page(page.parent, Path(args.out) / f"{Path(report).name}_headline_table.png")
        if pdf is not None:
            print(f"wrote {pdf}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
