"""Turning a report into files that need nothing else: Altair specs into SVG, an HTML page into PDF.

SVG: vl-convert-python runs Vega-Lite inside the Python process (no browser, no network), so the
charts of a report are the charts the page draws, as inline SVG. PDF: the same HTML printed by
headless Chromium — the browser the test suite already drives — so the PDF is exactly the HTML page
on paper, with no second layout engine to keep in line with it (see README, "Reports").
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from .errors import KpiTreeError

PDF_SECONDS = 120  # a stuck browser is stopped, and the user is told
_CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-extensions", "--no-first-run",
                  "--no-pdf-header-footer", "--run-all-compositor-stages-before-draw")
_SVG_IDS = itertools.count(1)
_ID_ATTR = re.compile(r'\bid="([^"]+)"')


def svg_of(spec: dict) -> str:
    """The Vega-Lite spec drawn as one standalone `<svg>` element, offline.

    Vega numbers its clip paths and gradients from 1 in every drawing, so two charts in one page
    would share `id="clip1"` and the second would clip to the first's box: every id (and each
    reference to it) gets a prefix unique in this process."""
    try:
        import vl_convert as vlc
    except ImportError:
        raise KpiTreeError("charts in a report need the Python package vl-convert-python: run "
                           "`pip install -r requirements.txt`") from None
    try:
        # dates in inline data (a trend's period starts) as ISO text, as the page's JSON sends them
        svg = vlc.vegalite_to_svg(json.loads(json.dumps(spec, default=str)))
    except Exception as exc:  # vl-convert reports a bad spec as a plain ValueError/RuntimeError
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise KpiTreeError(f"a chart of the report could not be drawn ({first})") from None
    svg = svg[svg.find("<svg"):]  # no XML prolog inside HTML
    prefix = f"k{next(_SVG_IDS)}-"
    ids = set(_ID_ATTR.findall(svg))
    for old in sorted(ids, key=len, reverse=True):
        new = prefix + old
        svg = svg.replace(f'id="{old}"', f'id="{new}"').replace(f"url(#{old})", f"url(#{new})") \
            .replace(f'href="#{old}"', f'href="#{new}"')
    return svg


def chromium_path() -> str | None:
    """The Chromium to print with: $KPITREE_CHROMIUM, else the first one on PATH; None when absent."""
    wanted = os.environ.get("KPITREE_CHROMIUM")
    if wanted:
        return wanted if Path(wanted).exists() else None
    return next((p for p in map(shutil.which, _CHROMIUM_NAMES) if p), None)


PDF_MISSING = ("a PDF report needs Chromium, which is not installed on this machine: install it "
               "(`apt-get install chromium` on Debian, or set KPITREE_CHROMIUM to a Chrome/Chromium binary), or "
               "save the HTML report and print it to PDF from any browser")


def pdf_available() -> bool:
    return chromium_path() is not None


def html_to_pdf(html: str) -> bytes:
    """The page printed by headless Chromium (A4, backgrounds on); a KpiTreeError in one sentence when
    Chromium is missing, fails or takes longer than `PDF_SECONDS`."""
    browser = chromium_path()
    if browser is None:
        raise KpiTreeError(PDF_MISSING)
    with tempfile.TemporaryDirectory(prefix="kpitree-pdf-") as tmp:
        page = Path(tmp) / "report.html"
        out = Path(tmp) / "report.pdf"
        page.write_text(html, encoding="utf-8")
        # a profile of its own: two prints at once (two users) never share one, and nothing is left behind
        cmd = [browser, *_CHROMIUM_ARGS, f"--user-data-dir={Path(tmp) / 'profile'}",
               f"--print-to-pdf={out}", page.as_uri()]
        try:
            done = subprocess.run(cmd, capture_output=True, timeout=PDF_SECONDS, check=False)
        except subprocess.TimeoutExpired:
            raise KpiTreeError(f"Chromium took longer than {PDF_SECONDS} s to print the report and was stopped: "
                               "save the HTML report and print it from a browser") from None
        except OSError as exc:
            raise KpiTreeError(f"Chromium ({browser}) could not be started ({exc.strerror or exc}): "
                               "save the HTML report and print it from a browser") from None
        if not out.exists() or out.stat().st_size == 0:
            said = done.stderr.decode("utf-8", "replace").strip().splitlines()
            raise KpiTreeError(f"Chromium did not print the report (exit {done.returncode}"
                               + (f": {said[-1][:200]}" if said else "") + "): save the HTML report and print "
                               "it from a browser")
        return out.read_bytes()
