"""The consultant's report: one HTML file that opens offline, its PDF, its CSV exports, its command.

The demo report is built once for the module (a few CPU seconds) and checked as a document (strictly
balanced HTML, nothing fetched, one SVG per chart), in a real browser (a screenshot that shows the
coloured tree) and on paper (the PDF's first page as PNG, through pdftoppm).
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml
from conftest import copy_demo, make_workspace

from kpitree.owners import csv_number
from kpitree.report import build_report, check_out
from kpitree.report_html import _table
from kpitree.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
RED_FILL, GREEN_FILL = (0xF9, 0xDC, 0xDC), (0xE3, 0xF1, 0xE4)  # charts.STATUS_FILL


class StrictHTML(HTMLParser):
    """Python's parser made strict: every element closed in order, no stray end tag, ids unique."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.ids: list[str] = []
        self.tags: list[tuple[str, dict]] = []
        self.doctype = False

    def handle_decl(self, decl: str) -> None:
        self.doctype = self.doctype or decl.lower() == "doctype html"

    def handle_starttag(self, tag: str, attrs) -> None:
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs) -> None:  # <path .../> inside SVG
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if "id" in attrs:
            self.ids.append(attrs["id"])

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> at {self.getpos()} closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()


def parsed(html: str) -> StrictHTML:
    p = StrictHTML()
    p.feed(html)
    p.close()
    return p


def sections(html: str) -> dict[str, str]:
    """Each charted node's section text by node anchor."""
    return {m.group(1): m.group(0) for m in re.finditer(r'<section class="node" id="([^"]+)".*?</section>', html, re.S)}


@pytest.fixture(scope="module")
def demo_ws(tmp_path_factory) -> Workspace:
    return copy_demo(tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def demo(demo_ws):
    report = build_report(demo_ws, period="2026-10")
    return report, report.html()


def test_demo_report_is_strict_html_with_one_svg_per_chart(demo):
    report, html = demo
    p = parsed(html)
    assert p.doctype and not p.errors and not p.stack, (p.errors[:5], p.stack[-5:])
    assert len(p.ids) == len(set(p.ids)), "duplicate ids (two SVGs sharing a clip path id)"
    assert [t for t, _ in p.tags].count("body") == 1
    # the tree, then one SVG per chart, each in its own figure, each charted node's count as announced
    assert html.count("<svg") == 1 + sum(len(s.charts) for s in report.sections)
    assert re.search(r'<figure class="tree"><svg', html)
    found = sections(html)
    assert len(found) == len(report.sections) >= 5
    for s in report.sections:
        text = found["node-" + s.id]
        assert f'data-charts="{len(s.charts)}"' in text
        assert text.count("<svg") == len(s.charts) >= 2, s.id  # a trend and a segment chart at least
        assert text.count("<figure") == len(s.charts)
    # every red number is charted, the red path first, and the waterfall where the page has one
    red = [n.id for n in report.evaluation.nodes if n.status == "red"]
    assert set(red) <= {s.id for s in report.sections}
    assert [s.id for s in report.sections][:len(report.explanation.red_path)] == [s.id for s in report.explanation.red_path]
    kinds = {s.id: [c.kind for c in s.charts] for s in report.sections}
    for node_id, drawn in kinds.items():  # as on the page: the ARR bridge on ARR, a waterfall on an exact formula
        n = report.evaluation.node(node_id)
        assert drawn == ["bridge"] * (n.metric == "arr") + ["waterfall"] * bool(n.formula) + ["trend", "segments"], \
            (node_id, drawn)
    assert kinds["new_business_arr"] == ["waterfall", "trend", "segments"] and kinds["arr"][0] == "bridge"
    assert "Dana Whitfield" in html and "Maria Chen (CEO)" in html  # the planted cause and its owners


def test_demo_report_references_nothing_outside(demo):
    _, html = demo
    p = parsed(html)
    for tag, attrs in p.tags:
        for name in ("src", "href", "xlink:href", "action", "srcset", "poster", "data"):
            value = attrs.get(name)
            if value is not None:
                assert value.startswith("#"), (tag, name, value)
        assert tag not in ("script", "link", "img", "iframe", "object", "embed", "base"), tag
    assert "@import" not in html and "@font-face" not in html
    assert not re.search(r"url\((?!#)", html), "a CSS url() that is not an in-page reference"
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)""", html, re.I)


def test_demo_report_states_period_baseline_data_date_and_target_sources(demo):
    report, html = demo
    assert "2026-10" in html and f"data as of <b>{report.as_of}</b>" in html
    assert "compared with their targets" in html
    assert html.count(">set<") >= len(report.evaluation.nodes) - 1  # every demo target is set (none suggested)
    assert "Data and quality" in html and "deals" in html
    rows = {d.table: d for d in report.data}
    assert rows["deals"].rows > 10_000 and rows["deals"].first is not None and rows["deals"].files
    assert report.seconds > 0
    # ARR at start's section says it was carried over (no cause to chase this period), as Owners does
    start = next(s for s in report.sections if s.id == "arr_start")
    assert start.sentences[0].startswith("Carried over from 2026-09's closing ARR")


def test_demo_report_renders_in_chromium_showing_the_tree(demo, tmp_path, browser):
    # the suite's one Chromium (conftest `browser`): a second sync Playwright in the same process
    # refuses to start once the first is running
    from PIL import Image

    _, html = demo
    page_file = tmp_path / "report.html"
    page_file.write_text(html, encoding="utf-8")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report_demo.png"
    fetched: list[str] = []
    context = browser.new_context(viewport={"width": 1100, "height": 1400}, java_script_enabled=False)
    try:
        page = context.new_page()
        page.route("**/*", lambda route: (fetched.append(route.request.url), route.continue_()
                                          if route.request.url.startswith("file:") else route.abort()))
        page.goto(page_file.as_uri())
        tree = page.locator("figure.tree svg")
        box = tree.bounding_box()
        assert box is not None and box["width"] > 600 and box["height"] > 300, box
        labels = tree.locator("text").all_text_contents()
        assert "ARR" in labels and any("Win rate" in t for t in labels), labels[:10]
        tree.screenshot(path=str(ARTIFACTS / "report_demo_tree.png"))
        page.screenshot(path=str(shot), full_page=True)
        charts = page.locator("section.node figure svg")
        assert charts.count() >= 10
        first = charts.first.bounding_box()
        assert first is not None and first["width"] > 300 and first["height"] > 100
    finally:
        context.close()
    assert fetched == [page_file.as_uri()], fetched  # the page alone: no font, image or script fetched
    img = Image.open(ARTIFACTS / "report_demo_tree.png").convert("RGB")
    colours = {c for _, c in img.getcolors(maxcolors=1 << 20)}
    assert RED_FILL in colours and GREEN_FILL in colours  # red and green boxes drawn


def test_demo_pdf_is_the_page_printed(demo, tmp_path):
    from PIL import Image

    report, _ = demo
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm is not installed (Debian: apt-get install poppler-utils)")
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(report.pdf())
    assert pdf.read_bytes()[:5] == b"%PDF-"
    subprocess.run(["pdftoppm", "-r", "70", "-f", "1", "-l", "2", "-png", str(pdf), str(tmp_path / "page")],
                   check=True, timeout=120)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) == 2
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(pages[0], ARTIFACTS / "report_demo_pdf_page1.png")
    img = Image.open(pages[0]).convert("RGB")
    colours = {c for _, c in img.getcolors(maxcolors=1 << 20)}
    assert RED_FILL in colours and GREEN_FILL in colours  # the coloured tree is on the first page
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert int(re.search(r"Pages:\s+(\d+)", info).group(1)) >= 3


def test_user_text_is_escaped_in_html_and_neutralised_in_csv(demo_ws, tmp_path):
    tree = yaml.safe_load((ROOT / "data" / "trees" / "revops.yaml").read_text())
    keep = {"arr", "arr_new", "nrr"}
    nodes = [n for n in tree["nodes"] if n["id"] in keep]
    for n in nodes:
        if n["id"] == "arr":
            n["label"] = '=HYPERLINK("x")'
            n["owner"] = "<script>alert(1)</script>"
            n["children"] = ["arr_new", "nrr"]
            n.pop("formula", None)
        else:
            n["children"] = []
            n.pop("formula", None)
    tree["nodes"] = nodes
    path = tmp_path / "hostile.yaml"
    path.write_text(yaml.safe_dump(tree, sort_keys=False))
    report = build_report(demo_ws, path, "2026-10")
    html = report.html()
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '=HYPERLINK(&quot;x&quot;)' in html or "=HYPERLINK(&#x27;" in html
    assert not parsed(html).errors
    values, causes = report.node_values_csv(), report.causes_csv()
    assert '"\'=HYPERLINK(""x"")"' in values and "<script>alert(1)</script>" in values
    assert '"\'=HYPERLINK(""x"")"' in causes
    for text in (values, causes):
        for line in text.splitlines():
            for cell in re.findall(r'"((?:[^"]|"")*)"', line):
                assert cell[:1] not in ("=", "+", "@", "\t", "\r") and not (cell[:1] == "-" and not
                                                                               re.fullmatch(r"-[\d.e+-]+", cell)), cell
    # segment values and file names come from user files too: a table cell is text, never markup
    assert _table(["segment"], [["<b onmouseover=x>"]]) == (
        "<table><thead><tr><th>segment</th></tr></thead><tbody><tr><td>&lt;b onmouseover=x&gt;</td></tr></tbody></table>")


def test_unknown_tree_is_one_sentence(demo_ws):
    from kpitree.errors import KpiTreeError

    with pytest.raises(KpiTreeError, match=r"no tree 'nosuch': give a tree YAML file, a tree of workspace"):
        build_report(demo_ws, "nosuch", "2026-10", charts=False)


def test_versus_previous_period_is_said(demo_ws):
    report = build_report(demo_ws, period="2026-10", versus="previous", charts=False)
    html = report.html()
    assert report.baseline_key == "2026-09"
    assert "the previous period (2026-09)" in html
    assert report.baselines["arr"] == report.evaluation.node("arr").previous
    assert not parsed(html).errors


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kpitree", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=300)


def test_cli_errors_are_one_sentence(tmp_path, monkeypatch):
    run = cli("report", "--workspace", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r.html"))
    assert run.returncode != 0 and "does not exist" in run.stderr
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    run = cli("report", "--workspace", str(tmp_path), "--out", str(tmp_path / "r.docx"))
    assert run.returncode != 0 and ".html or .pdf" in run.stderr and run.stderr.count("\n") == 1
    run = cli("report", "--workspace", str(tmp_path), "--out", str(tmp_path / "no" / "r.html"))
    assert run.returncode != 0 and "does not exist" in run.stderr and run.stderr.count("\n") == 1
    with pytest.raises(Exception, match="html or .pdf"):
        check_out("report.txt")
    env_run = subprocess.run([sys.executable, "-m", "kpitree", "report", "--workspace", str(tmp_path), "--out",
                              str(tmp_path / "r.pdf")], capture_output=True, text=True, cwd=ROOT, timeout=120,
                             env={**__import__("os").environ, "KPITREE_CHROMIUM": str(tmp_path / "no-chromium")})
    assert env_run.returncode != 0 and "needs Chromium" in env_run.stderr and "apt-get install chromium" in env_run.stderr
    assert env_run.stderr.count("\n") == 1


def test_deals_only_workspace_reports_without_crashing(tmp_path):
    """A user's own Salesforce opportunities, nothing else: the report says what is missing instead of failing."""
    ws = tmp_path / "own"
    run = cli("ingest", "--workspace", str(ws), str(ROOT / "tests" / "fixtures" / "own_data" / "sf_Opportunity.csv"))
    assert run.returncode == 0, run.stderr
    out = tmp_path / "own.html"
    values, causes = tmp_path / "values.csv", tmp_path / "causes.csv"
    run = cli("report", "--workspace", str(ws), "--out", str(out), "--values-csv", str(values), "--causes-csv",
              str(causes), "--format", "json")
    assert run.returncode == 0, run.stderr
    import json

    said = json.loads(run.stdout)
    html = out.read_text()
    p = parsed(html)
    assert not p.errors and not p.stack
    assert html.count("<svg") == 1 + said["charts"]
    assert any("suggested" in w for w in said["warnings"])  # a first tree's targets are suggestions
    assert any(w.startswith("amount is blank in 10 of 126 deals rows") for w in said["warnings"])  # the export's gaps
    # what the load itself warned about, stored with it: the report needs no Upload page open
    assert any(w.startswith("When loaded, sf_Opportunity.csv: 10 deal(s) have no value in 'Amount'")
               for w in said["warnings"])
    assert "~" in html and "suggested ~" in html
    assert values.read_bytes().count(b"\r\n") >= 3 and causes.read_text().startswith('"rank"')


def test_report_buttons_prepare_and_offer_downloads(demo_ws, monkeypatch):
    """The page's helper: one click builds the report; HTML and both CSVs are offered, the PDF where
    Chromium is, and a missing Chromium is one sentence (no traceback)."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("KPITREE_CHROMIUM", "/nonexistent/chromium")  # the page's PDF route said missing
    script = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
from kpitree.periods import parse_period
from kpitree.suggest import tree_for_workspace
from kpitree.tree import load_tree
from kpitree.workspace import Workspace
from ui_report import report_buttons
ws = Workspace({str(demo_ws.root)!r})
report_buttons(ws, load_tree(tree_for_workspace(ws)), parse_period("2026-10"), "month", "target")
"""
    at = AppTest.from_string(script, default_timeout=120)
    at.run()
    assert not at.exception
    assert [b.label for b in at.button] == ["Prepare the report"]
    at.button[0].click().run()
    assert not at.exception and not at.error
    labels = " ".join(e.proto.label for e in at.main if e.type == "download_button")
    assert "Report (HTML)" in labels and "Node values (CSV)" in labels and "Causes (CSV)" in labels
    assert "Report (PDF)" not in labels
    assert any("needs Chromium" in c.value for c in at.caption)


def test_each_load_warning_is_printed_once(tmp_path):
    """The Tree page hands the report its latest loads' warnings, which are the ones stored with those
    loads: the trial's report printed each twice ("Latest load: …" and "When loaded, …"). Each is said
    once; a warning the caller has and no load stored still reaches the report, once."""
    from kpitree.loads import latest_warnings
    from kpitree.report_html import esc, render_html

    ws = tmp_path / "own"
    run = cli("ingest", "--workspace", str(ws), str(ROOT / "tests" / "fixtures" / "own_data" / "sf_Opportunity.csv"))
    assert run.returncode == 0, run.stderr
    stored = latest_warnings(Workspace(ws))
    amount = "sf_Opportunity.csv: 10 deal(s) have no value in 'Amount'"
    assert any(w.startswith(amount) for w in stored)  # what the page passes in
    extra = "deals.csv: amounts in 2 currencies were added as they are"
    report = build_report(ws, charts=False, load_warnings=[*stored, extra, stored[0]])
    said = [w for w in report.warnings if amount in w]
    assert said == [next(f"When loaded, {w}" for w in stored if w.startswith(amount))]
    assert report.warnings.count(f"Latest load: {extra}") == 1
    assert len(report.warnings) == len(set(report.warnings))
    html = render_html(report)
    warned = html.split("<h3>Quality warnings</h3>", 1)[1].split("</ul>", 1)[0]
    for w in stored:
        assert warned.count(esc(w)) == 1, w
    assert warned.count(esc(extra)) == 1


ROUNDED_DEALS = """
deal_id,account_id,owner,created_date,close_date,status,amount,deal_type
D1,A1,Ann,2026-08-01,2026-09-03,won,12958.42,new
D2,A2,Ann,2026-08-02,2026-09-10,won,76421.60,new
D3,A3,Bob,2026-08-03,2026-09-12,won,68975.94,new
D4,A4,Bob,2026-08-04,2026-09-20,won,23701.14,new
D5,A5,Bob,2026-08-05,2026-09-21,lost,5000,new
D6,A6,Ann,2026-08-06,2026-09-22,lost,7000,new
"""
ROUNDED_TREE = """
name: Rounded
nodes:
  - id: new_business_arr
    label: New business ARR
    level: north_star
    metric: new_business_arr
    owner: Ann
    review: weekly
    target:
      by_period: {"2026-09": 200000.5}
    children: [win_rate]
  - id: win_rate
    label: Win rate
    level: driver
    metric: win_rate
    owner: Bob
    review: weekly
    target: 0.7
"""


def test_the_values_csv_writes_numbers_as_a_person_types_them(tmp_path):
    """Trial E: "1025437.9199999998" in the values CSV. Hand-checked: 12,958.42 + 76,421.60 + 68,975.94 +
    23,701.14 = $182,057.10 (Python's float sum of the four reads 182057.10000000003); 4 won of 6 decided =
    66.67 %; whole numbers without ".0"."""
    ws = make_workspace(tmp_path, deals=ROUNDED_DEALS)
    path = tmp_path / "rounded.yaml"
    path.write_text(ROUNDED_TREE)
    report = build_report(ws, path, "2026-09", charts=False)
    assert report.evaluation.node("new_business_arr").value == pytest.approx(182057.10, abs=1e-6)
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(report.node_values_csv()))}
    assert (rows["new_business_arr"]["value"], rows["new_business_arr"]["target"]) == ("182057.1", "200000.5")
    assert (rows["win_rate"]["value"], rows["win_rate"]["target"]) == ("0.6667", "0.7")
    assert rows["win_rate"]["unit"] == "percent" and rows["new_business_arr"]["unit"] == "money"
    # the rule, unit by unit: cents for money, a hundredth of a percentage point for a rate
    assert csv_number(1025437.9199999998, "money") == 1025437.92 and csv_number(881234.9700000001, "money") == 881234.97
    assert repr(csv_number(38713824.0, "money")) == "38713824" and csv_number(0.44303797, "percent") == 0.443
    assert csv_number(-0.0000001, "money") == 0 and csv_number(12.345678, "days") == 12.35
    assert csv_number(None, "money") is None and csv_number("n/a", "money") == "n/a"
    for line in report.causes_csv().splitlines()[1:]:
        share = next(csv.reader([line]))[9]
        assert share == "" or len(share.split(".")[-1]) <= 4, share
