"""Freshsales deals and Paddle Billing subscriptions exports load with no manual step, read as worked out by hand.

The files are written here from the vendors' documented fields — Freshsales' Deals export labels (Id, Name,
Deal value, Currency, Base currency amount, Deal stage, Expected close date, Closed date, Sales owner,
Account name, Type, Source, Lost reason, Created at; dates in the account's day-first format) and Paddle
Billing's subscription entity as its API list is written out to CSV (developer.paddle.com "Subscriptions":
status active / canceled / past_due / paused / trialing, first_billed_at, canceled_at, paused_at,
billing_cycle.interval / frequency, scheduled_change.action / effective_at, items[i].price.unit_price.amount
as a string in the currency's lowest unit) — made messy the way the trial's were: a thousands separator, a
trailing space in an owner, an upper-case stage, an ISO date in a day-first column, blanks, a duplicate row,
three currencies and a zero-decimal one. Every expected value was worked out by hand.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, rows

from kpitree.ingest import ingest, preview_mapping
from kpitree.vendors import canonical_mapping, detect_vendor, layout_defaults, vendor_mapping

FRESH_HEADERS = ["Id", "Name", "Deal value", "Currency", "Base currency amount", "Deal stage", "Deal pipeline",
                 "Expected close date", "Closed date", "Sales owner", "Account name", "Type", "Source",
                 "Probability (%)", "Lost reason", "Territory", "Created at", "Updated at", "Segment"]
# id, name, value, currency, base amount, stage, expected, closed, owner, account, type, source, lost reason, created
FRESH_ROWS = [
    ("501", "Acme", "12,000.00", "USD", "12000", "Won", "15-11-2026", "14-11-2026", "Priya Raman", "Acme", "New Business",
     "Web", "", "02-10-2026 09:12:00"),
    ("502", "Bolt", "10000", "EUR", "10800", "Lost", "20-11-2026", "18-11-2026", "Tom Okafor ", "Bolt",
     "Existing Business", "Referral", "Price", "05-10-2026 16:40:00"),
    ("503", "Cato", "5000", "USD", "5000", "Proposal Sent", "24-12-2026", "", "Priya Raman", "Cato", "", "Web", "",
     "13-11-2026 11:00:00"),
    ("504", "Dune", "8000", "GBP", "10160", "WON", "03-11-2026", "", "Tom Okafor", "Dune", "New Business", "Partner",
     "", "21-09-2026 10:00:00"),
    ("505", "Echo", "", "USD", "", "Lost", "10-11-2026", "09-11-2026", "Priya Raman", "Echo", "New Business", "Web",
     "No budget", "01-10-2026 08:00:00"),
    ("506", "Fjord", "7000", "USD", "7000", "Won", "22-11-2026", "2026-11-21", "Priya Raman", "Fjord", "Renewal",
     "Web", "", "30-09-2026 08:00:00"),
]
# deal_id → (status, close date, amount, deal type, owner): by hand from the rows above
FRESH_WANT = {
    "501": ("won", "2026-11-14", 12000.0, "new", "Priya Raman"),
    "502": ("lost", "2026-11-18", 10800.0, "expansion", "Tom Okafor"),
    "503": ("open", "2026-12-24", 5000.0, "new", "Priya Raman"),
    "504": ("won", "2026-11-03", 10160.0, "new", "Tom Okafor"),  # no Closed date: the expected one
    "505": ("lost", "2026-11-09", None, "new", "Priya Raman"),  # a blank value is unknown, not 0
    "506": ("won", "2026-11-21", 7000.0, "renewal", "Priya Raman"),  # an ISO date in a day-first column
}


def fresh_file(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(FRESH_HEADERS)
        for (i, name, value, cur, base, stage, expected, closed, owner, account, typ, src, lost,
             created) in FRESH_ROWS:
            w.writerow([i, name, value, cur, base, stage, "Default Pipeline", expected, closed, owner, account, typ,
                        src, "", lost, "EMEA", created, created, "SMB"])
        w.writerow([FRESH_ROWS[4][0], "Echo", "", "USD", "", "Lost", "Default Pipeline", "10-11-2026", "09-11-2026",
                    "Priya Raman", "Echo", "New Business", "Web", "", "No budget", "EMEA", "01-10-2026 08:00:00", "",
                    "SMB"])  # a duplicate of the row above
    return path


PADDLE_HEADERS = ["id", "status", "customer_id", "address_id", "currency_code", "created_at", "started_at",
                  "first_billed_at", "next_billed_at", "paused_at", "canceled_at", "collection_mode",
                  "billing_cycle.interval", "billing_cycle.frequency", "current_billing_period.starts_at",
                  "current_billing_period.ends_at", "scheduled_change.action", "scheduled_change.effective_at",
                  "items[0].price.id", "items[0].price.description", "items[0].price.unit_price.amount",
                  "items[0].quantity", "items[1].price.unit_price.amount", "items[1].quantity", "custom_data.segment"]
T = "{}T10:15:00.123456Z"
# id, status, customer, currency, started, first billed, paused, canceled, interval, frequency, action, effective,
# amount 0, quantity 0, amount 1, quantity 1
PADDLE_ROWS = [
    ("sub_1", "active", "ctm_1", "USD", "2026-01-15", "2026-01-15", "", "", "month", "1", "", "", "4900", "2", "", ""),
    ("sub_2", "active", "ctm_2", "USD", "2026-02-01", "2026-02-01", "", "", "year", "1", "", "", "120000", "1",
     "6000", "1"),
    ("sub_3", "canceled", "ctm_3", "EUR", "2026-03-01", "2026-03-01", "", "2026-10-31", "month", "1", "", "", "9900",
     "1", "", ""),
    ("sub_4", "paused", "ctm_4", "USD", "2026-04-01", "2026-04-15", "2026-09-01", "", "month", "1", "", "", "2500", "4",
     "", ""),
    ("sub_5", "trialing", "ctm_5", "USD", "2026-12-01", "", "", "", "month", "1", "", "", "4900", "1", "", ""),
    ("sub_6", "active", "ctm_6", "USD", "2026-05-01", "2026-05-01", "", "", "month", "3", "cancel", "2027-01-10",
     "30000", "1", "", ""),
    ("sub_7", "active", "ctm_7", "JPY", "2026-06-01", "2026-06-01", "", "", "month", "1", "", "", "15000", "1", "",
     ""),
    ("sub_8", "past_due", "ctm_8", "GBP", "2026-07-01", "2026-07-01", "", "", "week", "1", "", "", "1000", "1", "", ""),
    ("sub_9", "canceled", "ctm_9", "USD", "2026-08-01", "", "", "2026-08-10", "month", "1", "", "", "4900", "1", "",
     ""),
]
# customer → (start, end, mrr): by hand. ctm_5 is in its trial, ctm_9 canceled in it: never billed, left out.
PADDLE_WANT = {
    "ctm_1": ("2026-01-15", None, 98.0),  # 4900 cents × 2
    "ctm_2": ("2026-02-01", None, 1260.0 / 12),  # (1200 + 60) a year, two items
    "ctm_3": ("2026-03-01", "2026-10-31", 99.0),
    "ctm_4": ("2026-04-15", "2026-09-01", 100.0),  # paid from first_billed_at; paused: ends when paused
    "ctm_6": ("2026-05-01", "2027-01-10", 100.0),  # 300 every 3 months; a cancel scheduled
    "ctm_7": ("2026-06-01", None, 15000.0),  # JPY has no minor unit
    "ctm_8": ("2026-07-01", None, round(10.0 * 52 / 12, 2)),  # weekly; past_due still counts
}


def paddle_file(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(PADDLE_HEADERS)
        for (sid, status, cust, cur, started, billed, paused, canceled, interval, freq, action, effective, a0, q0, a1,
             q1) in PADDLE_ROWS:
            w.writerow([sid, status, cust, "add_" + cust[4:], cur, T.format(started), T.format(started),
                        billed and T.format(billed), "", paused and T.format(paused),
                        canceled and T.format(canceled), "automatic", interval, freq, "", "", action,
                        effective and T.format(effective), "pri_" + interval, f"Pro {interval}ly", a0, q0, a1, q1,
                        "Mid-Market"])
        first = PADDLE_ROWS[0]
        w.writerow([first[0], "active", first[2], "add_1", "USD", "", T.format(first[4]), T.format(first[5]), "", "",
                    "", "automatic", "month", "1", "", "", "", "", "pri_month", "", "4900", "2", "", "", ""])
    return path


def test_both_exports_are_recognised_by_their_headers():
    assert detect_vendor(FRESH_HEADERS) == "freshsales"
    assert detect_vendor(PADDLE_HEADERS) == "paddle"
    # the same fields as a pipeline writes them (Fivetran, ingestr: underscores), and Freshsales' integration names
    assert detect_vendor([h.replace(".", "_").replace("[", "_").replace("]", "") for h in PADDLE_HEADERS]) == "paddle"
    assert detect_vendor(["deal_id", "deal_name", "deal_amount", "deal_base_currency_amount", "deal_deal_stage_name",
                          "deal_owner_name", "deal_expected_close", "deal_closed_date", "deal_created_at"]) == "freshsales"
    # neighbours keep their own: HubSpot's 'Deal Stage' with its Record ID, Zoho's 'Closing Date', Stripe's Interval
    assert detect_vendor(["Record ID", "Deal Name", "Deal Stage", "Deal owner", "Create Date", "Amount"]) == "hubspot"
    assert detect_vendor(["Record Id", "Deal Name", "Stage", "Closing Date", "Deal Owner", "Created Time"]) == "zoho"
    assert detect_vendor(["id", "Customer ID", "Status", "Amount", "Interval", "Created (UTC)"]) == "stripe"


def test_a_freshsales_deals_export_loads_as_worked_out_by_hand(ws, tmp_path):
    f = ingest(ws, [fresh_file(tmp_path / "deals_export.csv")]).files[0]
    assert (f.label, f.rows_read, f.rows_loaded, f.rows_rejected) == (
        "Freshsales (Freshworks CRM) deals export", 7, 6, 1)
    got = {r[0]: r[1:] for r in rows(ws, "SELECT deal_id, status, CAST(close_date AS VARCHAR), amount, deal_type, "
                                         "owner FROM deals")}
    assert got == FRESH_WANT
    # the base currency amount is one currency: no mixed-currency caution although 'Currency' holds three
    assert not any("several currencies" in w for w in f.warnings)
    assert any("Base currency amount" in r for r in f.rules)


def test_without_a_base_currency_amount_several_currencies_are_said(ws, tmp_path):
    path = fresh_file(tmp_path / "deals.csv")
    with path.open(newline="") as f:
        table = [r[:4] + r[5:] for r in csv.reader(f)]  # without 'Base currency amount'
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(table)
    f = ingest(ws, [path]).files[0]
    assert f.label == "Freshsales (Freshworks CRM) deals export"
    assert rows(ws, "SELECT amount FROM deals WHERE deal_id = '502'") == [(10000.0,)]
    assert any(w.startswith("amounts are in several currencies (USD 5 row(s), EUR 1 row(s), GBP 1 row(s))")
               for w in f.warnings)


def test_a_paddle_subscriptions_export_loads_as_worked_out_by_hand(ws, tmp_path):
    f = ingest(ws, [paddle_file(tmp_path / "paddle_subscriptions.csv")]).files[0]
    assert (f.label, f.rows_read, f.rows_loaded, f.rows_rejected) == ("Paddle Billing subscriptions export", 10, 7, 1)
    assert f.skipped == {"never billed (in trial, or canceled in its trial)": 2}
    got = {r[0]: (r[1], r[2], round(r[3], 2)) for r in rows(
        ws, "SELECT customer_id, CAST(CAST(start_date AS DATE) AS VARCHAR), CAST(CAST(end_date AS DATE) AS VARCHAR), "
            "mrr FROM subscriptions")}
    assert got == {k: (s, e, round(m, 2)) for k, (s, e, m) in PADDLE_WANT.items()}
    assert any(w.startswith("amounts are in several currencies (USD 7 row(s), EUR 1 row(s), GBP 1 row(s), JPY 1 row(s))")
               for w in f.warnings)
    assert rows(ws, "SELECT DISTINCT plan, segment FROM subscriptions WHERE customer_id = 'ctm_1'") == [
        ("Pro monthly", "Mid-Market")]
    # the export has no channel: said once as not in the file, not also as 7 empty values
    assert "channel" in f.missing_optional_columns and f.nulls == {"end_date": 4}


def test_a_paddle_file_without_prices_says_what_it_lacks(ws, tmp_path):
    """A script that kept `items` and `billing_cycle` as nested cells wrote no price column: the file is still
    named as Paddle's, and the load says it lacks the MRR, writing nothing."""
    path = tmp_path / "subs.csv"
    path.write_text("id,status,customer_id,billing_cycle,first_billed_at,items\nsub_1,active,ctm_1,"
                    "\"{'interval': 'month', 'frequency': 1}\",2026-01-01T00:00:00Z,"
                    "\"[{'price': {'unit_price': {'amount': '4900'}}}]\"\n")
    from kpitree.errors import LoadError
    with pytest.raises(LoadError, match=r"looks like a Paddle Billing subscriptions export but has missing required "
                                        r"column\(s\) 'mrr'"):
        ingest(ws, [path])
    assert ws.row_counts() == {}


def test_the_command_line_loads_both_exports_with_no_mapping(tmp_path):
    run = subprocess.run([sys.executable, "-m", "kpitree", "ingest", "--workspace", str(tmp_path / "ws"),
                          str(fresh_file(tmp_path / "freshsales_deals.csv")),
                          str(paddle_file(tmp_path / "paddle_subscriptions.csv"))],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "→ deals (Freshsales (Freshworks CRM) deals export): 7 read, 6 loaded, 1 rejected" in run.stdout
    assert "→ subscriptions (Paddle Billing subscriptions export): 10 read, 7 loaded, 1 rejected" in run.stdout


@pytest.mark.parametrize("vendor, headers, table", [("freshsales", FRESH_HEADERS, "deals"),
                                                    ("paddle", PADDLE_HEADERS, "subscriptions")])
def test_the_mapping_screen_starts_from_the_layout_and_saved_unchanged_reads_the_same(vendor, headers, table):
    start = layout_defaults(vendor, headers)
    made = {"freshsales": {"close_date"}, "paddle": {"mrr", "end_date", "start_date"}}[vendor]
    assert made <= set(start.derived)
    saved = canonical_mapping(table, start.columns, source="saved", label="saved")
    layout = vendor_mapping(vendor, headers)
    assert {k: f.sql for k, f in saved.fields.items()} == {k: f.sql for k, f in layout.fields.items()}


def test_a_mapping_preview_reads_cents_as_the_load_will(tmp_path):
    """The preview of a mapping that says an amount is in cents shows it divided by 100, as it loads."""
    path = tmp_path / "opps.csv"
    path.write_text("id,created,value\no1,2026-11-02,31300\n")
    columns = {"deal_id": "id", "created_date": "created", "amount": "value"}
    fill = {"status": "open"}
    assert preview_mapping(path, "deals", columns, fill=fill).rows[0]["amount"] == 31300
    assert preview_mapping(path, "deals", columns, fill=fill, units={"amount": "cents"}).rows[0]["amount"] == 313


def test_a_paddle_transactions_report_beside_it_is_recognised_and_left_out(ws, tmp_path):
    """Bills are not subscriptions: the report is named, left out, and says which export carries MRR."""
    txns = tmp_path / "transactions_report.csv"
    txns.write_text("id,status,invoice_number,customer_id,customer_email,subscription_id,origin,currency_code,"
                    "created_at,billed_at,grand_total\n"
                    "txn_1,completed,8291-10001,ctm_1,a@example.com,sub_1,subscription_recurring,USD,"
                    "2026-11-15T10:00:00Z,2026-11-15T10:00:00Z,9800\n")
    report = ingest(ws, [txns, paddle_file(tmp_path / "paddle_subscriptions.csv")])
    left = report.files[0] if report.files[0].file.startswith("transactions") else report.files[1]
    assert left.role == "ignored" and "Paddle transactions (recognised, not needed" in left.label
    assert ws.row_counts() == {"subscriptions": 7}


def test_paddle_amounts_a_pipeline_turned_into_currency_units_are_not_divided_again(ws, tmp_path):
    """'49.00' is no lowest-unit amount (Paddle writes '4900'): read as written, and said."""
    path = paddle_file(tmp_path / "subs.csv")
    with path.open(newline="") as f:
        table = list(csv.reader(f))
    col = PADDLE_HEADERS.index("items[0].price.unit_price.amount")
    for r in table[1:]:
        r[col] = f"{int(r[col]) / 100:.2f}" if r[col] else ""
    with path.open("w", newline="") as f:
        csv.writer(f).writerows(table)
    f = ingest(ws, [path]).files[0]
    assert any(r.startswith("amounts carry decimals (49.00)") for r in f.rules)
    # ctm_1: 49.00 × 2 a month, as before; the JPY row now reads 150.00, as the file wrote it
    assert rows(ws, "SELECT round(mrr, 2) FROM subscriptions WHERE customer_id = 'ctm_1'") == [(98.0,)]
