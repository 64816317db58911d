"""Close opportunities and Chargify (Maxio) subscriptions exports load with no manual step, read as worked out by hand.

The files are written here from the vendors' documented headers — Close's Opportunity fields
(developer.close.com: id, lead_id, lead_name, status_id, status_label, status_type active/won/lost,
value in CENTS, value_period one_time/monthly/annual, value_currency, value_formatted, confidence,
date_won, date_lost, date_created, date_updated, user_id, user_name, note, custom.<Field>) and
Chargify's Subscriptions export (help.chargify.com "Exporting Data": id, state, customer_id,
customer_reference, product_name, product_handle, product_price_in_cents, activated_at, canceled_at,
expires_at, current_period_ends_at, cancel_at_end_of_period, timestamps "2026-03-04 10:12:00 -0400")
— made messy the way the trial's were: a BOM, notes with commas, quotes and line breaks, Close's
microsecond UTC timestamps, two currencies, a value of 0. Every expected value was worked out by hand.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from conftest import ROOT, rows

from kpitree.detect import not_a_segment
from kpitree.errors import LoadError
from kpitree.ingest import ingest, read_mapping
from kpitree.vendors import canonical_mapping, detect_vendor

CLOSE_HEADERS = ["id", "organization_id", "lead_id", "lead_name", "status_id", "status_label", "status_type",
                 "pipeline_name", "value", "value_period", "value_currency", "value_formatted", "confidence",
                 "user_id", "user_name", "contact_name", "date_created", "date_updated", "date_won", "date_lost",
                 "note", "created_by_name", "custom.Segment", "custom.Lead Source", "custom.Opportunity Type"]
TS = "{} 14:03:11.250000+00:00"
# id, lead, label, type, value (cents), period, currency, formatted, owner, created, updated, won, lost, note,
# segment, source, opportunity type
CLOSE_ROWS = [
    ("oppo_1", "lead_A", "Won", "won", "3130000", "annual", "USD", "$31,300", "Dana Okafor", "2026-09-01",
     "2026-11-03", "2026-11-03", "", 'Spoke with CFO, "needs SSO", follow up', "Mid-Market", "Website",
     "New Business"),
    # a second opportunity of the same lead: one lead, many opportunities — never a duplicate
    ("oppo_2", "lead_A", "Won", "won", "150000", "monthly", "USD", "$1,500 monthly", "Dana Okafor", "2026-09-15",
     "2026-11-20", "2026-11-20", "", "", "Mid-Market", "Website", "Upsell"),
    ("oppo_3", "lead_B", "Lost", "lost", "500000", "one_time", "USD", "$5,000", "Tomás Herrera", "2026-08-02",
     "2026-10-20", "", "2026-10-20", "Lost on price,\nsee thread", "SMB", "Outbound", "New Business"),
    # a lost one without date_lost (older exports): its last update
    ("oppo_4", "lead_C", "Lost", "lost", "720000", "annual", "USD", "$7,200", "Tomás Herrera", "2026-08-05",
     "2026-10-22", "", "", "", "SMB", "", ""),
    # active, value 0: Close's empty value field
    ("oppo_5", "lead_D", "Demo Completed", "active", "0", "one_time", "USD", "$0", "", "2026-11-25",
     "2026-12-01", "", "", "", "", "Partner Referral", "New Business"),
    ("oppo_6", "lead_E", "Won", "won", "1000000", "annual", "EUR", "€10,000", "Dana Okafor", "2026-10-01",
     "2026-11-10", "2026-11-10", "", "", "Enterprise", "Webinar", "New Business"),
]


def _csv_line(cells) -> str:
    return ",".join('"' + str(c).replace('"', '""') + '"' for c in cells)


def close_file(path: Path) -> Path:
    lines = [_csv_line(CLOSE_HEADERS)]
    for (oid, lead, label, typ, value, period, cur, shown, owner, created, updated, won, lost, note, seg, src,
         otype) in CLOSE_ROWS:
        lines.append(_csv_line([oid, "orga_1", lead, f"{lead} Inc.", "stat_" + label[:4], label, typ, "Sales", value,
                                period, cur, shown, "80", "user_" + owner[:4], owner, "", TS.format(created),
                                TS.format(updated), won and TS.format(won), lost and TS.format(lost), note, owner,
                                seg, src, otype]))
    path.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"))  # the trial's file had a BOM
    return path


CHARGIFY_HEADERS = ["id", "state", "customer_id", "customer_organization", "customer_reference", "product_name",
                    "product_handle", "product_price_in_cents", "total_revenue_in_cents", "balance_in_cents",
                    "created_at", "activated_at", "current_period_ends_at", "canceled_at", "expires_at",
                    "cancel_at_end_of_period", "cancellation_message", "payment_collection_method", "Segment"]


def chargify_file(path: Path) -> Path:
    def row(sid, state, cust, product, handle, cents, activated, period_end, canceled, expires, at_end, seg):
        return [sid, state, cust, f"{cust} GmbH", "", product, handle, cents, "0", "0", activated or
                "2022-12-30 09:00:00 -0500", activated, period_end, canceled, expires, at_end, "", "automatic", seg]
    rows = [
        # active: 556800 cents = 5,568.00 a month; the local date of "07:42 -0500" is kept
        row("61", "active", "4400", "Enterprise", "enterprise", "556800", "2023-01-05 07:42:23 -0500",
            "2026-12-17 10:18:24 -0500", "", "", "false", "Enterprise"),
        # canceled immediately: ends at canceled_at, not at the period end after it
        row("62", "canceled", "4401", "Growth", "growth", "99900", "2024-01-10 10:00:00 -0500",
            "2024-04-21 12:35:10 -0400", "2024-04-07 12:42:09 -0400", "", "false", "SMB"),
        # canceled at the end of its period: ran (and paid) to current_period_ends_at
        row("63", "canceled", "4402", "Growth", "growth", "99900", "2025-02-01 10:00:00 -0500",
            "2026-11-30 10:00:00 -0500", "2026-11-02 16:20:00 -0500", "", "true", "SMB"),
        # expired: expires_at, no canceled_at
        row("64", "expired", "4403", "Pro", "pro", "250000", "2025-07-01 08:00:00 -0400",
            "2026-06-30 08:00:00 -0400", "", "2026-06-30 08:00:00 -0400", "", "Mid-Market"),
        # live, set to cancel at the end of its period: scheduled to end at current_period_ends_at
        row("65", "active", "4404", "Pro", "pro", "250000", "2025-12-20 08:00:00 -0500",
            "2026-12-20 08:00:00 -0500", "", "", "true", "Mid-Market"),
        # still in trial: never activated, not paying yet — left out
        row("66", "trialing", "4405", "Pro", "pro", "250000", "", "2026-12-15 08:00:00 -0500", "", "", "false", "SMB"),
        # an annual product (its handle says so): 1,200,000 cents a year = 1,000.00 a month
        row("67", "past_due", "4406", "Growth Annual", "growth-annual", "1200000", "2026-03-04 10:12:00 -0400",
            "2027-03-04 10:12:00 -0400", "", "", "false", "SMB"),
    ]
    path.write_text("\n".join([_csv_line(CHARGIFY_HEADERS), *map(_csv_line, rows)]) + "\n", encoding="utf-8")
    return path




# --- Close ---------------------------------------------------------------------------------------------


def test_close_and_chargify_are_recognised_by_their_headers():
    assert detect_vendor(CLOSE_HEADERS) == "close"
    assert detect_vendor(CHARGIFY_HEADERS) == "chargify"
    # Close's API field names without the custom fields, as a minimal export writes them
    assert detect_vendor(["id", "lead_id", "status_type", "value", "value_period", "date_won", "date_created"]) \
        == "close"
    # Recurly also writes state / activated_at / current_period_ends_at: its account_code keeps it Recurly
    assert detect_vendor(["uuid", "account_code", "plan_code", "state", "unit_amount", "activated_at",
                          "current_period_ends_at", "product_handle"]) == "recurly"


def test_a_close_opportunities_export_loads_as_worked_out_by_hand(ws, tmp_path):
    f = ingest(ws, [close_file(tmp_path / "close_opportunities_export_2026-12-06.csv")]).files[0]
    assert f.table == "deals" and f.label == "Close opportunities export"
    assert f.rows_loaded == 6 and not f.rejected and f.duplicate_ids == 0
    got = rows(ws, "SELECT deal_id, account_id, owner, created_date, close_date, stage, status, round(amount, 2), "
                   "deal_type, segment, channel FROM deals ORDER BY deal_id")
    assert got == [
        ("oppo_1", "lead_A", "Dana Okafor", date(2026, 9, 1), date(2026, 11, 3), "Won", "won", 31300.0, "new",
         "Mid-Market", "Website"),
        # $1,500 a month (150000 cents) is $18,000 a year
        ("oppo_2", "lead_A", "Dana Okafor", date(2026, 9, 15), date(2026, 11, 20), "Won", "won", 18000.0,
         "expansion", "Mid-Market", "Website"),
        ("oppo_3", "lead_B", "Tomás Herrera", date(2026, 8, 2), date(2026, 10, 20), "Lost", "lost", 5000.0, "new",
         "SMB", "Outbound"),
        ("oppo_4", "lead_C", "Tomás Herrera", date(2026, 8, 5), date(2026, 10, 22), "Lost", "lost", 7200.0, "new",
         "SMB", None),
        ("oppo_5", "lead_D", None, date(2026, 11, 25), None, "Demo Completed", "open", None, "new", None,
         "Partner Referral"),
        ("oppo_6", "lead_E", "Dana Okafor", date(2026, 10, 1), date(2026, 11, 10), "Won", "won", 10000.0, "new",
         "Enterprise", "Webinar"),
    ]
    warnings = " | ".join(f.warnings)
    assert "several currencies (USD 5 row(s), EUR 1 row(s))" in warnings and "no exchange rate" in warnings
    assert "100 times" not in warnings  # cents were divided: no unit warning
    assert "won/lost deal(s) have no close_date" not in warnings
    # the lifecycle columns are read (status_type) or the stage (status_label), never kept as a split
    with ws.connect() as con:
        cols = {r[0] for r in con.execute("DESCRIBE deals").fetchall()}
    assert not cols & {"status_label", "status_type", "value_period", "value", "status_id", "value_formatted"}


@pytest.mark.parametrize("column", ["status_label", "status_type", "status_id", "Deal Stage Name", "stage_label",
                                    "custom.Status Label", "Lead Status Label"])
def test_lifecycle_columns_in_any_vendors_naming_are_never_a_split(column):
    assert not_a_segment(column, ["Won", "Contract Sent", "Demo Completed"])


@pytest.mark.parametrize("column", ["pipeline_name", "custom.Segment", "product_handle", "state_of_residence"])
def test_segments_stay_splits(column):
    assert not_a_segment(column, ["Sales", "Partners"]) is None


# --- Chargify ------------------------------------------------------------------------------------------


def test_a_chargify_subscriptions_export_loads_as_worked_out_by_hand(ws, tmp_path):
    f = ingest(ws, [chargify_file(tmp_path / "subscriptions_export_2026-12-06.csv")]).files[0]
    assert f.table == "subscriptions" and f.label == "Chargify (Maxio) subscriptions export"
    assert f.rows_loaded == 6 and f.rows_skipped == 1 and not f.rejected
    got = rows(ws, "SELECT customer_id, CAST(start_date AS DATE), CAST(end_date AS DATE), round(mrr, 2), plan, "
                   "segment FROM subscriptions ORDER BY customer_id")
    assert got == [
        ("4400", date(2023, 1, 5), None, 5568.0, "Enterprise", "Enterprise"),
        ("4401", date(2024, 1, 10), date(2024, 4, 7), 999.0, "Growth", "SMB"),
        ("4402", date(2025, 2, 1), date(2026, 11, 30), 999.0, "Growth", "SMB"),
        ("4403", date(2025, 7, 1), date(2026, 6, 30), 2500.0, "Pro", "Mid-Market"),
        ("4404", date(2025, 12, 20), date(2026, 12, 20), 2500.0, "Pro", "Mid-Market"),
        ("4406", date(2026, 3, 4), None, 1000.0, "Growth Annual", "SMB"),
    ]
    assert any("never activated" in reason for reason in f.skipped)
    with ws.connect() as con:
        cols = {r[0] for r in con.execute("DESCRIBE subscriptions").fetchall()}
    assert "state" not in cols and "product_price_in_cents" not in cols


# --- a guessed table that would drop rows as duplicates --------------------------------------------------


def test_a_guessed_table_whose_key_repeats_is_refused_naming_the_file(ws, tmp_path):
    """The trial's Close file was guessed as leads and lost 240 of 2,006 rows as 'duplicate lead_id'."""
    path = tmp_path / "opps.csv"
    lines = ["lead_id,created_date,lead_source,value"]
    lines += [f"lead_{i % 40},2026-10-{1 + i % 28:02d},Website,{100 * i}" for i in range(100)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(LoadError) as err:
        ingest(ws, [path])
    said = str(err.value)
    assert said.startswith("opps.csv: read as 'leads' from its column names (a guess), but 60 of 100 rows repeat")
    assert "--as opps.csv=TABLE" in said and "Nothing was loaded" in said
    # one stray copy among many rows is a duplicate, not the wrong table: loaded, the copy rejected
    lines = ["lead_id,created_date,lead_source"] + [f"lead_{i},2026-10-01,Website" for i in range(100)]
    path.write_text("\n".join([*lines, "lead_7,2026-10-02,Website"]) + "\n", encoding="utf-8")
    f = ingest(ws, [path]).files[0]
    assert f.rows_loaded == 100 and f.duplicate_ids == 1


# --- amounts in cents ----------------------------------------------------------------------------------


def test_a_mapping_says_an_amount_is_in_cents(ws, tmp_path):
    path = close_file(tmp_path / "opps.csv")
    columns = {"deal_id": "id", "account_id": "lead_id", "created_date": "date_created", "close_date": "date_won",
               "status": "status_type", "amount": "value"}
    ingest(ws, [path], mappings={"opps.csv": {"table": "deals", "columns": columns, "units": {"amount": "cents"}}})
    assert rows(ws, "SELECT deal_id, amount FROM deals WHERE deal_id IN ('oppo_1', 'oppo_3') ORDER BY 1") == [
        ("oppo_1", 31300.0), ("oppo_3", 5000.0)]
    # without the unit, the file's own display copy (value_formatted) shows it is cents: a warning naming the fix
    f = ingest(ws, [path], mappings={"opps.csv": {"table": "deals", "columns": columns}}).files[0]
    said = [w for w in f.warnings if "100 times too large" in w]
    assert said and "'value_formatted'" in said[0] and '"units": {"amount": "cents"}' in said[0]
    assert rows(ws, "SELECT amount FROM deals WHERE deal_id = 'oppo_1'") == [(3130000.0,)]


def test_a_header_that_says_cents_is_read_as_cents_and_huge_whole_amounts_are_questioned(ws, tmp_path):
    m = canonical_mapping("subscriptions", {"customer_id": "cust", "start_date": "start",
                                            "mrr": "product_price_in_cents"})
    assert m.fields["mrr"].sql == "({mrr}) / 100.0" and any("in cents" in r for r in m.rules)
    path = tmp_path / "deals.csv"
    # whole numbers with a median of 2.4M: amounts exported in cents, most likely — said, not changed
    path.write_text("deal_id,created_date,close_date,status,amount\n"
                    "1,2026-10-01,2026-10-20,won,2400000\n2,2026-10-02,2026-10-21,won,1800000\n"
                    "3,2026-10-03,2026-10-22,lost,5400000\n", encoding="utf-8")
    f = ingest(ws, [path]).files[0]
    assert any("amount looks 100 times too large" in w and "median is 2,400,000" in w for w in f.warnings)
    assert rows(ws, "SELECT sum(amount) FROM deals") == [(9600000.0,)]
    # real money with cents in it is never questioned
    path.write_text("deal_id,created_date,close_date,status,amount\n"
                    "1,2026-10-01,2026-10-20,won,2400000.50\n2,2026-10-02,2026-10-21,won,1800000\n", encoding="utf-8")
    assert not any("100 times" in w for w in ingest(ws, [path]).files[0].warnings)


def test_a_mapping_file_names_its_units(tmp_path):
    good = tmp_path / "m.json"
    good.write_text(json.dumps({"table": "subscriptions", "columns": {"customer_id": "c", "start_date": "s",
                                                                      "mrr": "p"}, "units": {"mrr": "cents"}}))
    assert read_mapping(good)["units"] == {"mrr": "cents"}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"table": "deals", "columns": {"deal_id": "id"}, "units": {"amount": "pennies"}}))
    with pytest.raises(LoadError, match=r"bad.json: 'units' says whether a money column \(amount, services_amount"):
        read_mapping(bad)


# --- the command line, end to end ------------------------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kpitree", *args], cwd=ROOT, capture_output=True, text=True)


def test_the_command_line_loads_both_exports_with_no_mapping(tmp_path):
    ws = tmp_path / "w"
    deals = close_file(tmp_path / "close_opportunities_export.csv")
    subs = chargify_file(tmp_path / "subscriptions_export.csv")
    run = cli("ingest", "--workspace", str(ws), str(deals), str(subs))
    assert run.returncode == 0, run.stderr
    assert "→ deals (Close opportunities export): 6 read, 6 loaded, 0 rejected" in run.stdout
    assert "→ subscriptions (Chargify (Maxio) subscriptions export): 7 read, 6 loaded, 0 rejected" in run.stdout


@pytest.mark.parametrize("vendor, headers, table", [("close", CLOSE_HEADERS, "deals"),
                                                    ("chargify", CHARGIFY_HEADERS, "subscriptions")])
def test_the_mapping_screen_starts_from_the_layout_and_saved_unchanged_reads_the_same(vendor, headers, table):
    """Cents, the annualised value and the dates by status stay as the layout makes them ('derived')."""
    from kpitree.vendors import layout_defaults, vendor_mapping

    start = layout_defaults(vendor, headers)
    made = {"close": {"amount", "close_date"}, "chargify": {"mrr", "end_date"}}[vendor]
    assert made <= set(start.derived)
    saved = canonical_mapping(table, start.columns, source="saved", label="saved")
    layout = vendor_mapping(vendor, headers)
    assert {k: f.sql for k, f in saved.fields.items()} == {k: f.sql for k, f in layout.fields.items()}
    assert saved.file_status == layout.file_status


# --- the trial's own files (a slice): equal to the control conversion done by hand -----------------------

TRIAL4 = Path(__file__).parent / "fixtures" / "trial4"  # rows of trial 4's exports (synthetic data, make_data.py)


def test_the_trials_files_load_equal_to_the_control_conversion(ws):
    """The trial's control: value ÷ 100, × 12 when monthly, close date won/lost by status, 0 as blank;
    Chargify price ÷ 100, end at canceled_at else expires_at (the export has no cancel-at-end flag)."""
    import csv

    deals = TRIAL4 / "close_opportunities_export_2026-12-06.csv"
    subs = TRIAL4 / "subscriptions_export_2026-12-06.csv"
    report = ingest(ws, [deals, subs])
    assert [(f.label, f.rows_rejected) for f in report.files] == [
        ("Close opportunities export", 0), ("Chargify (Maxio) subscriptions export", 0)]
    want = []
    for r in csv.DictReader(deals.open(encoding="utf-8-sig", newline="")):
        v = int(r["value"]) / 100 * (12 if r["value_period"] == "monthly" else 1)
        status = {"active": "open"}.get(r["status_type"], r["status_type"])
        close = (r["date_won"] or r["date_lost"])[:10] or None
        want.append((r["id"], status, close, round(v, 2) if v else None))
    got = rows(ws, "SELECT deal_id, status, CAST(close_date AS VARCHAR), round(amount, 2) FROM deals")
    assert sorted(got) == sorted(want) and len(got) == 91
    assert any(w.startswith("amounts are in several currencies (USD ") for w in report.files[0].warnings)
    want = [(r["customer_id"], r["activated_at"][:10], (r["canceled_at"] or r["expires_at"])[:10] or None,
             int(r["product_price_in_cents"]) / 100) for r in csv.DictReader(subs.open(newline=""))]
    got = rows(ws, "SELECT customer_id, CAST(CAST(start_date AS DATE) AS VARCHAR), "
                   "CAST(CAST(end_date AS DATE) AS VARCHAR), round(mrr, 2) FROM subscriptions")
    assert sorted(got) == sorted(want) and len(got) == 60


def test_a_close_date_only_won_deals_have_is_said_to_overstate_win_rates(ws, tmp_path):
    """The trial's own mapping read close_date from date_won: 1,344 lost deals had none, win rate 100 %."""
    path = close_file(tmp_path / "opps.csv")
    columns = {"deal_id": "id", "created_date": "date_created", "close_date": "date_won", "status": "status_type",
               "amount": "value"}
    f = ingest(ws, [path], mappings={"opps.csv": {"table": "deals", "columns": columns,
                                                  "units": {"amount": "cents"}}}).files[0]
    said = [w for w in f.warnings if "no close_date" in w]
    assert said == ["2 won/lost deal(s) have no close_date and are left out of bookings metrics — 2 of the 2 lost "
                    "deals have none ('date_won'), so win rates count the won deals alone: map close_date to the "
                    "date each deal closed, won or lost (a lost date column where there is one)"]
