"""Copper CRM opportunities and Braintree subscriptions exports load with no manual step, read as worked out by hand.

The files are written here in the shape of trial E's exports (/tmp/trialE): Braintree's subscription search
download (Subscription ID, Plan ID, Status Active / Canceled / Expired / Past Due / Pending, Price PER BILLING
CYCLE, Currency ISO Code, First Billing Date, Paid Through Date, Billing Period Start / End Date, US dates
m/d/yyyy …) and Copper's opportunities export (Copper ID, Status Open / Won / Lost / Abandoned, Value, Source,
Primary Contact, Tags …). Trial E loaded the Braintree file as accounts (no ARR), then by hand with Price as MRR
(ARR 11 times too high: annual plans bill a year's Price), and lost Copper's 141 Abandoned opportunities (8 %) row
by row. Every expected value below was worked out by hand.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from conftest import rows

from kpitree.detect import not_a_segment
from kpitree.evaluate import Engine
from kpitree.ingest import ingest
from kpitree.periods import parse_period
from kpitree.vendors import EXPORT_NAMES, detect_vendor, form_start, vendor_mapping

BT_HEADERS = ["Subscription ID", "Plan ID", "Status", "Price", "Currency ISO Code", "Billing Day of Month",
              "First Billing Date", "Next Billing Date", "Paid Through Date", "Billing Period Start Date",
              "Billing Period End Date", "Days Past Due", "Number Of Billing Cycles", "Current Billing Cycle",
              "Balance", "Failure Count", "Merchant Account ID", "Customer ID", "Customer Email", "Created At",
              "Updated At"]


def _bt(sid, plan, status, price, first, paid, start, end, cust, merchant="acme_US", created=None):
    return [sid, plan, status, price, "USD", "1", first, "", paid, start, end, "0", "", "3", "0.00", "0", merchant,
            cust, f"billing@{cust}.example", created or f"{first} 9:15", "11/20/2026 8:00"]


BT_ROWS = [
    # monthly, active: 199 a month
    _bt("a1", "growth-monthly", "Active", "199.00", "1/29/2025", "12/28/2026", "11/29/2026", "12/28/2026", "100"),
    # yearly, active: 24,000 a year is 2,000 a month (the period 1/20/2026 → 1/20/2027 says 12 months)
    _bt("a2", "business-annual", "Active", "24000.00", "1/20/2025", "1/20/2027", "1/20/2026", "1/20/2027", "101",
        "acme_EMEA"),
    # a plan whose name says nothing, billed every 3 months by its period: 600 a quarter is 200 a month
    _bt("a3", "team", "Active", "600.00", "3/5/2026", "12/4/2026", "9/5/2026", "12/4/2026", "102"),
    # yearly by its name, no billing period dates written: 4,800 ÷ 12 = 400 (said in a warning)
    _bt("a4", "pro-annual", "Past Due", "4800.00", "6/1/2026", "6/1/2027", "", "", "103"),
    # canceled: ends at its Paid Through Date
    _bt("a5", "growth-monthly", "Canceled", "199.00", "12/29/2024", "11/28/2025", "10/29/2025", "11/28/2025", "104"),
    # expired yearly: 4,800 a year, ended 2/16/2026
    _bt("a6", "pro-annual", "Expired", "4800.00", "2/16/2025", "2/16/2026", "2/16/2025", "2/16/2026", "105"),
    # canceled before it ever paid (no Paid Through Date): left out
    _bt("a7", "growth-monthly", "Canceled", "199.00", "10/3/2026", "", "", "", "106"),
    # not started yet: left out
    _bt("a8", "growth-monthly", "Pending", "199.00", "12/20/2026", "", "", "", "107"),
    # a $0 trial plan: no revenue, left out
    _bt("a9", "trial-14d", "Active", "0.00", "11/1/2026", "12/1/2026", "11/1/2026", "12/1/2026", "108"),
    # the same subscription twice (the trial's duplicate line): rejected as a duplicate, said
    _bt("a2", "business-annual", "Active", "24000.00", "1/20/2025", "1/20/2027", "1/20/2026", "1/20/2027", "101",
        "acme_EMEA"),
    # a plan named annual that Braintree bills monthly (its period is one month): the period wins, said
    _bt("a10", "annual-legacy", "Active", "99.00", "5/10/2026", "12/9/2026", "11/10/2026", "12/9/2026", "109"),
]


def _line(cells) -> str:
    return ",".join('"' + str(c).replace('"', '""') + '"' if any(x in str(c) for x in ',"\n') else str(c)
                    for c in cells)


def braintree_file(path: Path, headers=BT_HEADERS, data=BT_ROWS) -> Path:
    keep = [BT_HEADERS.index(h) for h in headers]
    path.write_text("\n".join([_line(headers), *(_line([r[i] for i in keep]) for r in data)]) + "\n",
                    encoding="utf-8")
    return path


COPPER_HEADERS = ["Copper ID", "Name", "Company", "Primary Contact", "Pipeline", "Stage", "Status", "Value",
                  "Currency", "Close Date", "Owner", "Loss Reason", "Priority", "Win Probability", "Source",
                  "Date Created", "Date Modified", "Tags", "Segment", "Region", "Description"]
# id, company, contact, stage, status, value, close, owner, loss reason, source, created, tags, segment
COPPER_ROWS = [
    ("24017001", "Acme Corp", "Jane Roe", "Closed Won", "Won", "30000.00", "11/12/2026", "Aiko Tanaka", "",
     "Partner", "9/1/2026 8:18", "inbound", "Mid-Market"),
    ("24017002", "Globex", "Tom Baker", "Closed Lost", "Lost", "12000.00", "11/20/2026", "James Okafor ", "Price",
     "Outbound", "9/15/2026 14:09", "", "SMB"),
    # Abandoned: closed without a sale — lost, not rejected
    ("24017003", "Initech", "Li Wei", "Proposal", "Abandoned", "8000.00", "11/25/2026", "Aiko Tanaka", "",
     "Website", "10/2/2026 11:32", "q4-push", "SMB"),
    ("24017004", "Umbrella", "", "Demo", "Open", "", "1/15/2027", "James Okafor", "", "Paid Search",
     "11/3/2026 7:13", "", "Enterprise"),
    ("24017005", "Hooli", "Jane Roe", "Closed Won", "Won", "5000.00", "10/30/2026", "Maria Lopez", "", "Referral",
     "8/20/2026 16:40", "inbound", "SMB"),
    # the same opportunity twice: a duplicate Copper ID, rejected and said
    ("24017005", "Hooli", "Jane Roe", "Closed Won", "Won", "5000.00", "10/30/2026", "Maria Lopez", "", "Referral",
     "8/20/2026 16:40", "inbound", "SMB"),
]


def copper_file(path: Path) -> Path:
    lines = [_line(COPPER_HEADERS)]
    for cid, company, contact, stage, status, value, close, owner, reason, source, created, tags, seg in COPPER_ROWS:
        lines.append(_line([cid, f"{company} - New", company, contact, "Sales", stage, status, value, "USD", close,
                            owner, reason, "High", "50", source, created, created, tags, seg, "NA",
                            "Spoke with CFO, \"needs SSO\""]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def value(ws, metric: str, period: str) -> float | None:
    df = Engine(ws).query(metric, [parse_period(period)])
    return None if df.empty else float(df["value"].iloc[0])


# --- recognition -----------------------------------------------------------------------------------------


def test_copper_and_braintree_are_recognised_and_named():
    assert detect_vendor(BT_HEADERS) == "braintree"
    assert detect_vendor(COPPER_HEADERS) == "copper"
    # Copper without its 'Copper ID' column: Status beside Primary Contact, Win Probability and Pipeline
    assert detect_vendor([h for h in COPPER_HEADERS if h != "Copper ID"] + ["ID"]) == "copper"
    assert {"Copper", "Braintree"} <= set(EXPORT_NAMES)
    # no other layout claims them, and they claim no other vendor's file
    assert detect_vendor(["id", "customer_id", "status", "plan_id", "price", "created_at"]) != "braintree"


# --- Braintree -----------------------------------------------------------------------------------------


def test_a_braintree_export_loads_mrr_per_month_of_its_billing_cycle(ws, tmp_path):
    f = ingest(ws, [braintree_file(tmp_path / "braintree_subscriptions_20261207.csv")]).files[0]
    assert (f.table, f.label) == ("subscriptions", "Braintree subscriptions export")
    assert (f.rows_read, f.rows_loaded, f.rows_skipped, f.duplicate_ids) == (11, 7, 3, 1)
    assert set(f.skipped) == {"not started yet (status Pending)",
                              "a $0 subscription (a free trial or free plan): no recurring revenue",
                              "canceled or expired before it ever paid"}
    got = rows(ws, "SELECT subscription_id, customer_id, CAST(start_date AS DATE), CAST(end_date AS DATE), "
                   "round(mrr, 2), plan FROM subscriptions ORDER BY subscription_id")
    assert got == [
        ("a1", "100", date(2025, 1, 29), None, 199.0, "growth-monthly"),
        ("a10", "109", date(2026, 5, 10), None, 99.0, "annual-legacy"),
        ("a2", "101", date(2025, 1, 20), None, 2000.0, "business-annual"),
        ("a3", "102", date(2026, 3, 5), None, 200.0, "team"),
        ("a4", "103", date(2026, 6, 1), None, 400.0, "pro-annual"),
        ("a5", "104", date(2024, 12, 29), date(2025, 11, 28), 199.0, "growth-monthly"),
        ("a6", "105", date(2025, 2, 16), date(2026, 2, 16), 400.0, "pro-annual"),
    ]
    # ARR at the end of 2026-11: (199 + 99 + 2,000 + 200 + 400) × 12 — not 24,000 × 12 for the yearly plan
    assert value(ws, "arr", "2026-11") == pytest.approx(2898 * 12)
    warnings = " | ".join(f.warnings)
    assert "duplicate" in " ".join(r.reason for r in f.rejected) and f.rejected[0].value == "a2"
    assert "1 subscription(s) have no billing period dates" in warnings and "Plan ID" in warnings
    assert "1 subscription(s) on a plan whose name says annual or quarterly bill over a different period" in warnings
    said = " ".join(f.rules)
    assert "Price is per billing cycle" in said and "Paid Through Date" in said
    # Braintree's bookkeeping is read, not kept as splits; the merchant account (a region) is a split
    assert f.extra_columns == []
    assert rows(ws, "SELECT merchant_account, count(*) FROM subscriptions GROUP BY 1 ORDER BY 1") == [
        ("acme_EMEA", 1), ("acme_US", 6)]
    assert Engine(ws).profile.dimensions("subscriptions") == ["plan", "merchant_account"]


def test_braintree_without_period_dates_says_plans_are_read_from_their_name(ws, tmp_path):
    headers = [h for h in BT_HEADERS if not h.startswith("Billing Period")]
    f = ingest(ws, [braintree_file(tmp_path / "subs.csv", headers)]).files[0]
    got = dict(rows(ws, "SELECT subscription_id, round(mrr, 2) FROM subscriptions"))
    assert got["a2"] == 2000.0 and got["a1"] == 199.0
    assert got["a3"] == 600.0  # nothing says 'team' bills quarterly: read as monthly, and said
    assert got["a10"] == pytest.approx(99 / 12, abs=0.01)  # its name says annual
    warnings = " | ".join(f.warnings)
    assert "read as billed monthly only because their Plan ID says nothing else" in warnings
    assert "12 times too high" in warnings


def test_braintree_with_a_billing_frequency_column_uses_it(ws, tmp_path):
    path = tmp_path / "subs.csv"
    lines = ["Subscription ID,Plan ID,Status,Price,Billing Frequency,First Billing Date,Paid Through Date,Customer ID",
             "s1,gold,Active,1200.00,12,1/5/2026,1/5/2027,c1",
             "s2,gold-monthly,Active,100.00,1,1/5/2026,12/5/2026,c2",
             "s3,six,Canceled,300.00,6,1/5/2025,7/5/2025,c3"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    f = ingest(ws, [path]).files[0]
    assert f.source == "braintree" and f.rows_loaded == 3
    got = rows(ws, "SELECT subscription_id, round(mrr, 2), CAST(end_date AS DATE) FROM subscriptions ORDER BY 1")
    assert got == [("s1", 100.0, None), ("s2", 100.0, None), ("s3", 50.0, date(2025, 7, 5))]


def test_braintree_with_a_billing_period_in_words_uses_it(ws, tmp_path):
    path = tmp_path / "subs.csv"
    lines = ["Subscription ID,Plan ID,Status,Price,Billing Period,First Billing Date,Paid Through Date,Customer ID",
             "s1,gold,Active,1200.00,Yearly,1/5/2026,1/5/2027,c1",
             "s2,gold,Active,300.00,Quarterly,1/5/2026,4/5/2026,c2",
             "s3,gold,Active,100.00,1 month,1/5/2026,12/5/2026,c3",
             "s4,gold-annual,Active,2400.00,,1/5/2026,1/5/2027,c4"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    f = ingest(ws, [path]).files[0]
    assert f.source == "braintree"
    got = dict(rows(ws, "SELECT subscription_id, round(mrr, 2) FROM subscriptions"))
    assert got == {"s1": 100.0, "s2": 100.0, "s3": 100.0, "s4": 200.0}  # s4: no period given, its name says annual


def test_the_mapping_screen_starts_from_the_braintree_layout():
    start = form_start(BT_HEADERS, "subscriptions")
    assert start is not None
    assert start.columns["customer_id"] == "Customer ID" and start.columns["plan"] == "Plan ID"
    assert "mrr" in start.derived and "end_date" in start.derived  # made from several columns, kept as made
    m = vendor_mapping("braintree", BT_HEADERS)
    assert m.key == "subscription_id"


# --- Copper --------------------------------------------------------------------------------------------


def test_a_copper_export_loads_abandoned_as_lost(ws, tmp_path):
    f = ingest(ws, [copper_file(tmp_path / "opportunities_export_2026-12-07.csv")]).files[0]
    assert (f.table, f.label) == ("deals", "Copper CRM opportunities export")
    assert f.rows_loaded == 5 and f.rows_rejected == 1 and f.duplicate_ids == 1
    got = rows(ws, "SELECT deal_id, account_id, owner, created_date, close_date, stage, status, amount, channel, "
                   "segment FROM deals ORDER BY deal_id")
    assert got == [
        ("24017001", "Acme Corp", "Aiko Tanaka", date(2026, 9, 1), date(2026, 11, 12), "Closed Won", "won", 30000.0,
         "Partner", "Mid-Market"),
        ("24017002", "Globex", "James Okafor", date(2026, 9, 15), date(2026, 11, 20), "Closed Lost", "lost", 12000.0,
         "Outbound", "SMB"),
        ("24017003", "Initech", "Aiko Tanaka", date(2026, 10, 2), date(2026, 11, 25), "Proposal", "lost", 8000.0,
         "Website", "SMB"),
        ("24017004", "Umbrella", "James Okafor", date(2026, 11, 3), date(2027, 1, 15), "Demo", "open", None,
         "Paid Search", "Enterprise"),
        ("24017005", "Hooli", "Maria Lopez", date(2026, 8, 20), date(2026, 10, 30), "Closed Won", "won", 5000.0,
         "Referral", "SMB"),
    ]
    # November closed: 1 won, 1 lost, 1 abandoned (a loss) — a third, not a half
    assert value(ws, "win_rate", "2026-11") == pytest.approx(1 / 3)
    warnings = " | ".join(f.warnings)
    assert "1 opportunity(ies) have Status 'Abandoned'" in warnings and "counted as lost" in warnings
    assert "Abandoned" in " ".join(f.rules)
    with ws.connect() as con:
        cols = {r[0] for r in con.execute("DESCRIBE deals").fetchall()}
    # a person, free tags, a typed probability and the last edit are never kept as splits
    assert not cols & {"primary_contact", "tags", "win_probability", "date_modified", "copper_id"}
    assert {"region", "priority"} <= cols


# --- columns that are no split ---------------------------------------------------------------------------


@pytest.mark.parametrize("column", ["Primary Contact", "primary_contact", "Contact", "Contact Name", "Customer Email",
                                    "Tags", "Deal Tags", "tag", "Labels", "Keywords"])
def test_a_contact_person_or_free_tags_are_never_a_split(column):
    assert not_a_segment(column, ["Jane Roe", "Tom Baker", "Li Wei"])


@pytest.mark.parametrize("column", ["Owner", "Sales Person", "Region", "Priority", "Source", "Contact Type",
                                    "campaign_tag", "Merchant Account ID"])
def test_owners_regions_and_categories_stay_splits(column):
    assert not_a_segment(column, ["A", "B"]) is None


# --- a price per billing cycle mapped by hand -------------------------------------------------------------

SUBS = ("customer,plan,price,every,started,ended\n"
        "c1,pro-annual,4800,,2026-01-05,\n"
        "c2,growth-monthly,199,,2026-02-01,\n"
        "c3,team,600,quarter,2026-03-01,\n"
        "c4,custom,1200,12,2026-03-01,2026-09-01\n")


def test_a_price_per_billing_cycle_mapped_by_hand_is_divided_by_its_months(ws, tmp_path):
    path = tmp_path / "subs.csv"
    path.write_text(SUBS, encoding="utf-8")
    mapping = {"table": "subscriptions", "derive": {"mrr": "per_cycle"},
               "columns": {"customer_id": "customer", "plan": "plan", "mrr": "price", "billing_months": "every",
                           "start_date": "started", "end_date": "ended"}}
    f = ingest(ws, [path], mappings={path.name: mapping}).files[0]
    got = rows(ws, "SELECT customer_id, round(mrr, 2) FROM subscriptions ORDER BY 1")
    # a year's 4,800 → 400; 199 a month; 600 a quarter → 200; 1,200 every 12 months → 100
    assert got == [("c1", 400.0), ("c2", 199.0), ("c3", 200.0), ("c4", 100.0)]
    assert any("divided by the months a bill covers" in r for r in f.rules)
    assert not [w for w in f.warnings if "12 times too high" in w]


def test_a_plan_named_annual_with_its_amount_read_as_monthly_is_said(ws, tmp_path):
    """Trial E mapped Braintree's Price as MRR by hand: ARR 11 times too high, and nothing warned."""
    path = tmp_path / "subs.csv"
    path.write_text(SUBS, encoding="utf-8")
    mapping = {"table": "subscriptions", "columns": {"customer_id": "customer", "plan": "plan", "mrr": "price",
                                                     "start_date": "started", "end_date": "ended"}}
    f = ingest(ws, [path], mappings={path.name: mapping}).files[0]
    said = [w for w in f.warnings if "12 times too high" in w]
    assert len(said) == 1 and said[0].startswith("1 subscription(s) are on a plan whose name says annual or yearly "
                                                 "(first on line 2): their 'price' is read as a MONTHLY amount")


@pytest.mark.parametrize("make", [braintree_file, copper_file], ids=["braintree", "copper"])
def test_a_mapping_saved_unchanged_from_the_screen_loads_as_the_layout_does(tmp_path, make):
    """Saving the mapping screen as it opens on these layouts changes no loaded value, column or row (Braintree's
    MRR per billing cycle and end date, Copper's Abandoned as lost stay as the layout makes them)."""
    from kpitree.ingest import detect_files
    from kpitree.vendors import header_key
    from kpitree.workspace import Workspace

    path = make(tmp_path / "export.csv")
    d = detect_files(None, [path])[0]
    detected = Workspace(tmp_path / "detected", create=True)
    ingest(detected, [path], table=d.table)
    saved = Workspace(tmp_path / "saved", create=True)
    start = form_start(d.headers, d.table)
    saved.save_mapping(header_key(d.headers), d.headers, d.table, start.columns, fill=start.fill, file=path.name)
    assert detect_files(saved, [path])[0].label == f"saved mapping → {d.table}"
    ingest(saved, [path], table=d.table)
    with detected.connect() as a, saved.connect() as b:
        query = f'SELECT * FROM "{d.table}" ORDER BY ALL'
        assert a.execute(f'DESCRIBE "{d.table}"').fetchall() == b.execute(f'DESCRIBE "{d.table}"').fetchall()
        assert a.execute(query).fetchall() == b.execute(query).fetchall() != []


def test_an_unrecognised_billing_export_is_not_loaded_as_accounts():
    """Trial E's Braintree file was read as accounts (Customer ID, Created At), '19 kept as extra text', with no
    question asked, and gave no ARR. A file that names subscriptions is not an accounts list without asking."""
    from kpitree.detect import best_fit, fit_table

    headers = ["Subscription ID", "Plan ID", "Status", "Price", "Currency ISO Code", "Customer ID", "Created At"]
    sample = [["a1", "pro-annual", "Active", "4800.00", "USD", "100", "1/2/2025 9:00"]]
    accounts = fit_table("accounts", headers, sample)
    assert accounts.complete and not accounts.confident
    fit = best_fit(headers, sample)
    assert fit is None or not (fit.complete and fit.confident)
    # a plain customer list stays an accounts list
    plain = fit_table("accounts", ["Customer ID", "Name", "Segment", "Created At"], [["1", "Acme", "SMB", "2025-01-02"]])
    assert plain.complete and plain.confident
