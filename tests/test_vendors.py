"""Vendor exports load with no manual step, and the numbers they give are the ones worked out by hand.

Fixtures: tests/fixtures/exports (written by tests/fixtures/make_fixtures.py from the documented
headers in /work/notes/vendor_exports.md).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, rows

from kpitree.detect import suggest_mapping
from kpitree.evaluate import Engine, evaluate_tree
from kpitree.ingest import detect_files, ingest
from kpitree.periods import parse_period
from kpitree.tree import load_tree
from kpitree.vendors import detect_vendor, header_key, vendor_mapping
from kpitree.workspace import Workspace

EXPORTS = Path(__file__).resolve().parent / "fixtures" / "exports"
HUBSPOT = EXPORTS / "hubspot-crm-exports-all-deals-2026-11-02.csv"
HUBSPOT_FR = EXPORTS / "hubspot-crm-exports-fr-2026-11-02.csv"
SALESFORCE = EXPORTS / "salesforce_opportunities_report.csv"
PIPEDRIVE = EXPORTS / "deals-8421437-7.csv"
STRIPE = EXPORTS / "subscriptions.csv"
STRIPE_API = EXPORTS / "stripe_subscriptions_api.csv"
CRM = EXPORTS / "crm_sales_opportunities"
CRM_FILES = [CRM / n for n in ("sales_pipeline.csv", "accounts.csv", "products.csv", "sales_teams.csv")]



def value(ws: Workspace, metric: str, period: str) -> float | None:
    df = Engine(ws).query(metric, [parse_period(period)])
    return None if df.empty else float(df["value"].iloc[0])



def headers(path: Path) -> list[str]:
    import csv

    with open(path, encoding="utf-8-sig", newline="") as fh:
        return next(csv.reader(fh))


@pytest.mark.parametrize("path, vendor", [
    (HUBSPOT, "hubspot"), (HUBSPOT_FR, "hubspot"), (SALESFORCE, "salesforce"), (PIPEDRIVE, "pipedrive"),
    (STRIPE, "stripe"), (STRIPE_API, "stripe"), (CRM / "sales_pipeline.csv", "crm_pipeline"),
    (CRM / "accounts.csv", "crm_accounts"), (CRM / "products.csv", "crm_products"),
    (CRM / "sales_teams.csv", "crm_teams"),
])
def test_layouts_are_recognised_by_their_headers(path, vendor):
    assert detect_vendor(headers(path)) == vendor


def test_detection_ignores_case_and_spacing_of_labels():
    assert detect_vendor(["RECORD ID", "deal  name", "Deal stage", "Create date"]) == "hubspot"
    assert detect_vendor(["deal_id", "created_date", "status", "amount"]) is None


def test_hubspot_deals(ws):
    f = ingest(ws, [HUBSPOT]).files[0]
    assert (f.source, f.table, f.rows_loaded, f.rows_rejected) == ("hubspot", "deals", 8, 0)
    assert f.mapping["created_date"] == "Create Date" and f.mapping["owner"] == "Deal owner"
    # Won new business closed in September: 24,000 (Acme) + 4,500 (the custom '#09 WON' stage).
    assert value(ws, "new_business_arr", "2026-09") == 28500
    assert value(ws, "expansion_arr", "2026-09") == 6000  # 'Existing Business'
    assert value(ws, "win_rate", "2026-09") == pytest.approx(4 / 5)
    assert rows(ws, "SELECT status, deal_type FROM deals WHERE deal_id = '189164774907'") == [("won", "renewal")]
    assert any("'#09 WON' → won" in w for w in f.warnings)  # a guessed stage is said so
    assert any("no value in 'Amount in company currency / Amount'" in w and "line 7" in w for w in f.warnings)
    assert {"deal_name", "pipeline"} <= set(f.extra_columns)


def test_hubspot_day_first_dates_and_closed_flags(ws):
    f = ingest(ws, [HUBSPOT_FR]).files[0]
    assert rows(ws, "SELECT deal_id, close_date::VARCHAR, status FROM deals ORDER BY 1") == [
        ("3001", "2026-09-22", "won"), ("3002", "2026-09-25", "lost"), ("3003", "2026-11-30", "open")]
    assert {s["source"] for s in f.stages} == {"file"}  # 'Signé'/'Perdu' need no stage map: the flags say it
    assert any("day-first" in r for r in f.rules)


def test_salesforce_report_with_footer(ws):
    f = ingest(ws, [SALESFORCE]).files[0]
    # the three footer lines are read and skipped on purpose (read = loaded + rejected + skipped)
    assert (f.source, f.rows_read, f.rows_loaded, f.footer_rows, f.rows_skipped, f.rejected) == (
        "salesforce", 9, 6, 3, 3, [])
    assert value(ws, "new_business_arr", "2026-09") == 30000
    assert value(ws, "expansion_arr", "2026-09") == 12000  # '$12,000.00', 'Existing Customer - Upgrade'
    assert value(ws, "win_rate", "2026-09") == pytest.approx(2 / 3)
    assert rows(ws, "SELECT deal_type, created_date::VARCHAR FROM deals WHERE deal_id = '0065g00000AbCdJ'") == [
        ("renewal", "2026-09-30")]
    assert {(s["stage"], s["status"]) for s in f.stages} >= {("Negotiation/Review", "open"), ("Closed Lost", "lost")}


def test_pipedrive_deals(ws):
    f = ingest(ws, [PIPEDRIVE]).files[0]
    assert (f.source, f.rows_loaded, f.skipped) == ("pipedrive", 4, {"deleted in Pipedrive": 1})
    assert rows(ws, "SELECT deal_id, status, close_date::VARCHAR, amount FROM deals ORDER BY 1") == [
        ("101", "won", "2026-09-10", 10000.0), ("102", "lost", "2026-09-20", 1250.5),
        ("103", "open", "2026-12-01", 7000.0), ("104", "won", "2026-09-25", 5000.0)]
    assert value(ws, "new_business_arr", "2026-09") == 15000
    assert any("no deal type column" in r for r in f.rules)


def test_stripe_dashboard_subscriptions(ws):
    f = ingest(ws, [STRIPE]).files[0]
    assert (f.source, f.rows_loaded, f.skipped) == ("stripe", 5, {"never became active (status incomplete)": 1})
    # 49 monthly + 1188 yearly (99) + 3 × 20 + 12 weekly (52); the canceled 49 ended on 2026-06-20.
    assert value(ws, "mrr", "2026-10") == pytest.approx(260)
    assert value(ws, "mrr", "2026-05") == pytest.approx(309)
    assert rows(ws, "SELECT start_date::VARCHAR FROM subscriptions WHERE customer_id = 'cus_E'") == [("2026-04-15",)]
    assert rows(ws, "SELECT end_date::VARCHAR FROM subscriptions WHERE customer_id = 'cus_D'") == [("2026-06-20",)]
    assert any("currency units" in r for r in f.rules)
    assert rows(ws, "SELECT segment FROM subscriptions WHERE customer_id = 'cus_B'") == [("Mid-Market",)]


def test_stripe_api_amounts_in_cents(ws):
    f = ingest(ws, [STRIPE_API]).files[0]
    assert any("read as cents" in r for r in f.rules)
    got = rows(ws, "SELECT customer_id, mrr, start_date::VARCHAR, end_date::VARCHAR FROM subscriptions ORDER BY 1")
    assert got == [
        ("cus_W", 100.0, "2026-01-01", "2026-07-01"),  # 120000 cents a year
        ("cus_X", 49.0, "2026-01-01", None),
        ("cus_Y", 100.0, "2026-02-01", None),  # 15000 cents per 3 months × 2 seats
        ("cus_Z", 5000.0, "2026-03-01", None),  # yen have no cents
    ]
    assert any("several currencies" in w for w in f.warnings)


def test_crm_sales_opportunities_with_side_files(ws):
    report = ingest(ws, CRM_FILES)
    by_file = {f.file: f for f in report.files}
    pipeline = by_file["sales_pipeline.csv"]
    assert (pipeline.rows_loaded, pipeline.rows_rejected) == (10, 1)
    assert pipeline.rejected[0].line == 12 and pipeline.rejected[0].column == "engage_date"
    assert by_file["products.csv"].table == "" and report.tables == {"accounts": 7, "deals": 10}
    assert value(ws, "new_business_arr", "2026-09") == 1054 + 4514 + 50 + 588
    assert value(ws, "win_rate", "2026-09") == pytest.approx(4 / 6)
    # Open and lost deals are priced at list price ('GTXPro' is 'GTX Pro'); side columns joined in.
    got = rows(ws, "SELECT deal_id, amount, segment, industry, manager, regional_office, product_series "
                   "FROM deals WHERE deal_id IN ('5BYOZV7U', 'PE84CX4O', '7GN8Q4LL') ORDER BY 1")
    assert got == [("5BYOZV7U", 4821.0, "Mid-Market", "services", "Summer Sewald", "West", "GTX"),
                   ("7GN8Q4LL", 601.0, "Enterprise", "technology", "Celia Rouche", "West", "GTX"),
                   ("PE84CX4O", 550.0, "Mid-Market", "services", "Summer Sewald", "West", "GTX")]
    assert rows(ws, "SELECT segment, industry FROM accounts WHERE account_id = 'Cheers'") == [
        ("Enterprise", "technology")]


def test_crm_pipeline_alone_says_what_is_missing(ws):
    f = ingest(ws, [CRM / "sales_pipeline.csv"]).files[0]
    assert any("products.csv was not in this load" in r for r in f.rules)
    assert any("no list price" in w for w in f.warnings)


def test_a_side_file_alone_is_refused_with_a_reason(ws):
    from kpitree.errors import LoadError

    with pytest.raises(LoadError, match="products.csv: .*load it together with that file"):
        ingest(ws, [CRM / "products.csv"])


@pytest.mark.parametrize("files, period, node", [
    ([HUBSPOT], "2026-09", "new_business_arr"), ([SALESFORCE], "2026-09", "new_business_arr"),
    ([PIPEDRIVE], "2026-09", "win_rate"), ([STRIPE], "2026-04", "arr"), (CRM_FILES, "2026-09", "win_rate"),
])
def test_each_export_evaluates_the_template_tree(ws, files, period, node):
    ingest(ws, files)
    result = evaluate_tree(ws, load_tree(ROOT / "data" / "trees" / "revops.yaml"), period)
    by_id = {n.id: n for n in result.nodes}
    assert by_id[node].value is not None
    assert all(n.status in ("green", "amber", "red", "no_target", "no_data") for n in result.nodes)


def test_vendors_and_canonical_files_load_together(ws):
    report = ingest(ws, [HUBSPOT, STRIPE])
    assert report.tables == {"deals": 8, "subscriptions": 5}


def test_cli_uses_the_same_detection_and_exit_codes(tmp_path):
    w = tmp_path / "cliws"
    run = subprocess.run([sys.executable, "-m", "kpitree", "ingest", "--workspace", str(w), str(SALESFORCE),
                          "--format", "json"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["files"][0]["source"] == "salesforce" and out["files"][0]["footer_rows"] == 3
    bad = tmp_path / "notes.csv"
    bad.write_text("what,ever\n1,2\n")
    run = subprocess.run([sys.executable, "-m", "kpitree", "ingest", "--workspace", str(w), str(bad)], cwd=ROOT,
                         capture_output=True, text=True)
    assert run.returncode == 2 and "notes.csv: cannot tell which table" in run.stderr


def test_saved_stage_map_wins_over_defaults_and_guesses(ws):
    ws.save_stage_map({"#09 WON": "lost", "Contract Sent": "won"})
    f = ingest(ws, [HUBSPOT]).files[0]
    got = dict(rows(ws, "SELECT deal_id, status FROM deals WHERE deal_id IN ('189164774905', '189164774908')"))
    assert got == {"189164774905": "won", "189164774908": "lost"}
    assert {s["stage"]: s["source"] for s in f.stages}["#09 WON"] == "saved"


def test_saved_mapping_is_reused_by_header_set(ws, tmp_path):
    path = tmp_path / "opps.csv"
    path.write_text("Opp #,Rep,Opened,Closed,Result,Value\nO1,Ann,2026-09-01,2026-09-20,Won,5000\n"
                    "O2,Bob,2026-09-02,2026-09-21,Lost,7000\n", encoding="utf-8")
    detection = detect_files(ws, [path])[0]
    assert detection.needs_mapping and detection.table is None
    hdrs = headers(path)
    guess = suggest_mapping(hdrs, "deals")
    assert guess["owner"] == "Rep" and guess["amount"] == "Value"
    ws.save_mapping(header_key(hdrs), hdrs, "deals", {"deal_id": "Opp #", "owner": "Rep", "created_date": "Opened",
                                                     "close_date": "Closed", "stage": "Result", "amount": "Value"})
    f = ingest(ws, [path]).files[0]
    assert (f.source, f.rows_loaded) == ("saved", 2)
    assert value(ws, "win_rate", "2026-09") == pytest.approx(0.5)
    # The same headers in another order and case are the same layout, also from the command line.
    again = tmp_path / "opps2.csv"
    again.write_text("value,opp #,rep,opened,closed,result\n9000,O3,Cy,2026-09-03,2026-09-22,Won\n", encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "kpitree", "ingest", "--workspace", str(ws.root), str(again)],
                         cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "saved mapping" in run.stdout


def test_vendor_files_inside_a_zip(ws, tmp_path):
    import zipfile

    archive = tmp_path / "crm.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in CRM_FILES:
            zf.write(p, f"CRM Sales Opportunities/{p.name}")
        zf.writestr("CRM Sales Opportunities/metadata.csv", "Table,Field,Description\naccounts,account,Company name\n")
        zf.writestr("README.txt", "Maven Analytics data playground")
    report = ingest(ws, [archive])
    loaded = {f.file for f in report.files if f.rows_loaded}
    assert loaded == {f"crm.zip:CRM Sales Opportunities/{p.name}" for p in CRM_FILES}
    assert report.tables["deals"] == 10
    notes = [w for f in report.files for w in f.warnings]
    assert any(w.startswith("not loaded — ") and "data dictionary" in w for w in notes)
    assert any("README.txt" in w for w in notes)


def test_detection_reports_every_file_without_loading(ws, tmp_path):
    copy = tmp_path / "x.csv"
    shutil.copy(PIPEDRIVE, copy)
    found = detect_files(ws, [HUBSPOT, copy, STRIPE])
    assert [d.source for d in found] == ["hubspot", "pipedrive", "stripe"]
    assert found[1].mapping["status"].startswith("file flags")
    assert len(found[0].sample) == 5 and not ws.tables()


def test_stripe_mapping_states_its_rules():
    m = vendor_mapping("stripe", headers(STRIPE))
    assert m.table == "subscriptions" and m.key == "subscription_id"
    assert any("yearly ÷ 12" in r for r in m.rules)


def _kpitree(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kpitree", *args], cwd=ROOT, capture_output=True, text=True)


def test_cli_stage_map_dry_run_and_reappend(tmp_path):
    """A consultant's loop: check a client's export without touching anything, then load it with
    the client's own stage meanings, which stay saved for the next load."""
    w = tmp_path / "client"
    stages = tmp_path / "stages.csv"
    stages.write_text("stage,status\n#09 WON,lost\nContract Sent,won\n", encoding="utf-8")
    run = _kpitree("ingest", "--workspace", str(w), str(HUBSPOT), "--stage-map", str(stages), "--dry-run",
                   "--format", "json")
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)
    assert out["dry_run"] is True and out["tables"] == {"deals": 8}
    assert {s["stage"]: s["source"] for s in out["files"][0]["stages"]}["#09 WON"] == "saved"
    assert not w.exists()  # a dry run creates nothing

    run = _kpitree("ingest", "--workspace", str(w), str(HUBSPOT), "--stage-map", str(stages))
    assert run.returncode == 0, run.stderr
    ws = Workspace(w)
    assert ws.stage_map() == {"#09 won": "lost", "contract sent": "won"}
    got = dict(rows(ws, "SELECT deal_id, status FROM deals WHERE deal_id IN ('189164774905', '189164774908')"))
    assert got == {"189164774905": "won", "189164774908": "lost"}

    # dry run over an existing workspace: the report, and the workspace unchanged
    before = (w / "kpitree.duckdb").stat().st_mtime_ns
    run = _kpitree("ingest", "--workspace", str(w), str(STRIPE), "--dry-run")
    assert run.returncode == 0, run.stderr
    assert "nothing was written" in run.stdout and (w / "kpitree.duckdb").stat().st_mtime_ns == before
    assert "subscriptions" not in ws.tables()

    # append the same file twice: skipped, unless --reappend
    assert _kpitree("ingest", "--workspace", str(w), "--mode", "append", str(STRIPE)).returncode == 0
    run = _kpitree("ingest", "--workspace", str(w), "--mode", "append", "--reappend", str(STRIPE), "--format", "json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["tables"]["subscriptions"] == 5

    bad = tmp_path / "bad-stages.csv"
    bad.write_text("stage,status\nQualified,open\nNegotiation,maybe\n", encoding="utf-8")
    run = _kpitree("ingest", "--workspace", str(w), str(HUBSPOT), "--stage-map", str(bad))
    assert run.returncode == 2
    assert "bad-stages.csv, line 3, column 'status': 'maybe' is not open, won or lost" in run.stderr


# --- "Change the mapping" starts from what detection read (trial finding) ----------------------

TRIAL = Path(__file__).resolve().parent / "fixtures" / "trial"
PIPEDRIVE_TRIAL = TRIAL / "pipedrive_deals_export.csv"
HUBSPOT_TRIAL = TRIAL / "hubspot-deals-export-2026-12-06.csv"


def _headers(path: Path) -> list[str]:
    return detect_files(None, [path])[0].headers


def _shown(columns: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in columns.items() if not k.startswith("layout:")}


def test_mapping_screen_starts_from_the_pipedrive_layout():
    """The trial's screen came up with created_date, close_date and account_id blank ('missing required
    column created_date', Save disabled). It starts from the layout: every column it reads, the close
    date shown as derived (won time, lost time or expected date by status) and kept, deal type 'new'."""
    from kpitree.vendors import form_start

    start = form_start(_headers(PIPEDRIVE_TRIAL), "deals")
    assert start is not None and _shown(start.columns) == {
        "deal_id": "Deal - ID", "account_id": "Organization - Name", "owner": "Deal - Owner",
        "created_date": "Deal - Deal created", "stage": "Deal - Stage", "status": "Deal - Status",
        "amount": "Deal - Value", "derived:close_date": "Deal - Expected close date"}
    assert list(start.derived) == ["close_date"] and "won time for won deals" in start.derived["close_date"]
    assert start.fill == {"deal_type": "new"}
    assert form_start(_headers(PIPEDRIVE_TRIAL), "subscriptions") is None  # another table: no layout to start from


def test_mapping_screen_starts_from_the_hubspot_layout():
    """The trial's screen left account_id ('Associated Company') and channel ('Original Source Type') blank."""
    from kpitree.vendors import form_start

    start = form_start(_headers(HUBSPOT_TRIAL), "deals")
    assert start is not None and _shown(start.columns) == {
        "deal_id": "Record ID", "account_id": "Associated Company", "owner": "Deal owner",
        "created_date": "Create Date", "close_date": "Close Date", "stage": "Deal Stage", "amount": "Amount",
        "deal_type": "Deal Type", "segment": "Segment", "channel": "Original Source Type"}
    assert start.derived == {} and start.fill == {}
    # the generic guess the screen used to start from lacked both
    guess = suggest_mapping(_headers(HUBSPOT_TRIAL), "deals")
    assert guess["account_id"] is None and guess["channel"] is None


OWN = Path(__file__).resolve().parent / "fixtures" / "own_data"
LAYOUT_FILES = [PIPEDRIVE_TRIAL, HUBSPOT_TRIAL, *sorted(EXPORTS.glob("*.csv")),
                *(OWN / n for n in ("sf_Opportunity.csv", "sf_Campaign.csv", "sf_Lead.csv", "sf_Account.csv"))]


@pytest.mark.parametrize("path", LAYOUT_FILES, ids=[p.name for p in LAYOUT_FILES])
def test_a_mapping_saved_unchanged_from_the_screen_loads_as_the_layout_does(tmp_path, path):
    """Every recognised layout among the fixtures: saving the screen as it opens changes no loaded value,
    column or row (derived columns, constants, skipped rows, columns the layout reads and loads nowhere)."""
    from kpitree.vendors import form_start

    d = detect_files(None, [path])[0]
    assert detect_vendor(d.headers) and d.table
    detected = Workspace(tmp_path / "detected", create=True)
    ingest(detected, [path], table=d.table)
    saved = Workspace(tmp_path / "saved", create=True)
    start = form_start(d.headers, d.table)
    saved.save_mapping(header_key(d.headers), d.headers, d.table, start.columns, fill=start.fill, file=path.name)
    assert detect_files(saved, [path])[0].label == f"saved mapping → {d.table}"
    report = ingest(saved, [path], table=d.table)
    with detected.connect() as a, saved.connect() as b:
        query = f'SELECT * FROM "{d.table}" ORDER BY ALL'
        assert report.tables[d.table] == len(a.execute(query).fetchall()) > 0
        assert a.execute(f'DESCRIBE "{d.table}"').fetchall() == b.execute(f'DESCRIBE "{d.table}"').fetchall()
        assert a.execute(query).fetchall() == b.execute(query).fetchall()


def test_a_pipedrive_mapping_changed_on_the_screen_keeps_what_it_did_not_change(tmp_path):
    """Mapping account_id to the person and leaving the label out: the close date stays derived, the
    deleted deal stays out, and the organisation, no longer mapped, is kept as an extra column."""
    from kpitree.vendors import form_start, leave_out

    headers = _headers(PIPEDRIVE_TRIAL)
    start = form_start(headers, "deals")
    columns = leave_out(start.columns | {"account_id": "Person - Name"}, ["Deal - Label"])
    ws = Workspace(tmp_path / "ws", create=True)
    ws.save_mapping(header_key(headers), headers, "deals", columns, fill=start.fill, file=PIPEDRIVE_TRIAL.name)
    ingest(ws, [PIPEDRIVE_TRIAL])
    with ws.connect() as con:
        got = {r[0]: r[1:] for r in con.execute(
            "SELECT deal_id, account_id, close_date, status, organization_name FROM deals").fetchall()}
        cols = {r[0] for r in con.execute("DESCRIBE deals").fetchall()}
    assert "9999" not in got and len(got) == 43  # the deleted deal is left out, as the layout does
    # deal 1002 lost on 2025-06-24 (its lost time); 1040 won on 2025-07-28; open 2206 expects 2026-12-29
    assert str(got["1002"][1]) == "2025-06-24" and got["1002"][2] == "lost"
    assert str(got["1040"][1]) == "2025-07-28" and str(got["2206"][1]) == "2026-12-29"
    assert got["1002"][0] == "Person 656" and got["1002"][3] == "Org 487"
    assert "deal_label" not in cols


def test_the_readme_and_the_upload_page_name_every_recognised_export():
    """The Upload page lists `EXPORT_NAMES`; the README must name the same exports (trial D found the page
    listing five vendors where the README listed nine)."""
    from kpitree.vendors import EXPORT_NAMES, VENDORS

    readme = (ROOT / "README.md").read_text()
    upload_list = readme.split("**Upload** (", 1)[1].split("are recognised", 1)[0]
    assert [n for n in EXPORT_NAMES if n not in upload_list] == []
    # every export layout of VENDORS is one of the names (its source word in the name, lower-cased)
    sources = {name.split("_")[0] for name, _, _ in VENDORS} - {"crm", "sf"}
    names = " ".join(EXPORT_NAMES).lower().replace("/", " ")
    assert sorted(s for s in sources if s not in names) == []
