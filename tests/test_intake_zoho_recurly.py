"""Zoho CRM deals and Recurly subscriptions exports load with no manual step, and read as worked out by hand.

The files are written here from the vendors' documented headers (Zoho CRM Deals standard fields:
Record Id, Deal Owner, Deal Name, Amount, Closing Date, Account Name, Stage, Type, Probability (%),
Expected Revenue, Next Step, Lead Source, Campaign Source, Created Time …; Recurly's Subscriptions
export: uuid, account_code, plan_code, plan_name, state, quantity, unit_amount, currency,
activated_at, canceled_at, expires_at, current_period_*, trial_*, custom_field_*), made messy the
way real exports are: a BOM, day-first dates with AM/PM times, thousands separators, blank amounts.
Every expected value below was worked out by hand from the rows.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from conftest import ROOT, rows

from kpitree.detect import not_a_segment
from kpitree.errors import LoadError
from kpitree.ingest import detect_files, ingest
from kpitree.vendors import canonical_mapping, detect_vendor, layout_entries

ZOHO_HEADERS = ["Record Id", "Deal Owner", "Deal Name", "Amount", "Closing Date", "Account Name", "Stage", "Type",
                "Probability (%)", "Expected Revenue", "Next Step", "Lead Source", "Campaign Source", "Contact Name",
                "Created By", "Modified By", "Created Time", "Modified Time", "Description", "Reason For Loss",
                "Currency", "Exchange Rate", "Customer Segment"]
# id, owner, name, amount, closing, account, stage, type, created time, next step, description, segment
ZOHO_ROWS = [
    ("zcrm_1001", "Priya Raman", "Acme - New", "136,600.00", "24/07/2026", "Acme", "Closed Won", "New Business",
     "23/05/2026 02:41 PM", "Kick-off call", "Inbound via website, wants SSO", "Mid-Market"),
    ("zcrm_1002", "Priya Raman", "Birch - New", "1,200.50", "27/07/2026", "Birch", "Closed Lost", "New Business",
     "10/05/2026 09:55 AM", "", "Renewal risk, see notes", "SMB"),
    ("zcrm_1003", "Marcus Oyelaran", "Cedar - Upsell", "48,000.00", "13/08/2026", "Cedar",
     "Closed-Lost to Competition", "Existing Business", "01/06/2026 12:05 AM", "Follow-up call", "", "Enterprise"),
    ("zcrm_1004", "Marcus Oyelaran", "Dune - Upsell", "", "15/08/2026", "Dune", "Closed Lost to Competition",
     "Existing Business", "02/06/2026 12:30 PM", "", "Lost on price", "Enterprise"),
    ("zcrm_1005", "Helena Brandt", "Elm - New", "9,999.99", "30/12/2026", "Elm", "Negotiation/Review", "",
     "14/11/2026 11:59 PM", "Send proposal", "Needs a security review first", "SMB"),
    ("zcrm_1006", "Helena Brandt", "Fir - Upsell", "20,000.00", "05/09/2026", "Fir", "Closed Won", "Existing Business",
     "03/07/2026 08:00 AM", "", "", "Mid-Market"),
]


def _csv_line(cells) -> str:
    return ",".join('"' + str(c).replace('"', '""') + '"' for c in cells)


def zoho_file(path: Path) -> Path:
    lines = [_csv_line(ZOHO_HEADERS)]
    for (rid, owner, name, amount, closing, account, stage, typ, created, step, desc, segment) in ZOHO_ROWS:
        lines.append(_csv_line([rid, owner, name, amount, closing, account, stage, typ, "50", "0.00", step,
                                "Web Download", "G2 Listing", "Eli Ng", owner, owner, created, created, desc,
                                "Price" if "Lost" in stage else "", "USD", "1.000000000", segment]))
    path.write_bytes(("\ufeff" + "\r\n".join(lines) + "\r\n").encode("utf-8"))  # Zoho writes a BOM
    return path


RECURLY_HEADERS = ["uuid", "account_code", "email", "company_name", "plan_code", "plan_name", "state", "quantity",
                   "unit_amount", "currency", "created_at", "activated_at", "canceled_at", "expires_at",
                   "current_period_started_at", "current_period_ends_at", "trial_started_at", "trial_ends_at",
                   "collection_method", "auto_renew", "custom_field_segment", "custom_field_lead_source"]


def recurly_file(path: Path) -> Path:
    rows = [
        # active, monthly, 3 seats of 1,200.00 → MRR 3,600
        ["u1", "acme", "a@x", "Acme", "growth-monthly", "Growth (Monthly)", "active", "3", "1,200.00", "USD",
         "2025-01-10 09:00:00 UTC", "2025-01-10 09:05:00 UTC", "", "", "2026-11-10 09:05:00 UTC",
         "2026-12-10 09:05:00 UTC", "", "", "automatic", "true", "SMB", "Web"],
        # canceled (will not renew): runs until expires_at 2027-01-15, not canceled_at 2026-11-20
        ["u2", "birch", "b@x", "Birch", "pro-monthly", "Pro (Monthly)", "canceled", "1", "500.00", "USD",
         "2025-03-01 10:00:00 UTC", "2025-03-01 10:00:00 UTC", "2026-11-20 16:00:00 UTC", "2027-01-15 00:00:00 UTC",
         "2026-12-15 00:00:00 UTC", "2027-01-15 00:00:00 UTC", "", "", "automatic", "false", "Mid-Market", "Ads"],
        # expired: ended at expires_at 2026-04-28
        ["u3", "cedar", "c@x", "Cedar", "enterprise-monthly", "Enterprise (Monthly)", "expired", "1", "15150.00", "USD",
         "2025-08-01 00:17:12 UTC", "2025-08-01 03:57:05 UTC", "2026-04-25 16:36:01 UTC", "2026-04-28 16:22:54 UTC",
         "", "", "", "", "manual", "false", "Enterprise", "Trade Show"],
        # annual plan, 12,000 a year → MRR 1,000; its trial ends 2025-06-15, after activation
        ["u4", "dune", "d@x", "Dune", "pro-annual", "Pro (Annual)", "active", "1", "12,000.00", "USD",
         "2025-06-01 08:00:00 UTC", "2025-06-01 08:00:00 UTC", "", "", "2026-06-15 00:00:00 UTC",
         "2027-06-15 00:00:00 UTC", "2025-06-01 08:00:00 UTC", "2025-06-15 08:00:00 UTC", "automatic", "true", "SMB",
         "Web"],
        # future: not started, left out
        ["u5", "elm", "e@x", "Elm", "growth-monthly", "Growth (Monthly)", "future", "1", "900.00", "USD",
         "2026-11-30 08:00:00 UTC", "", "", "", "", "", "", "", "automatic", "true", "SMB", "Web"],
    ]
    path.write_text("\n".join([",".join(RECURLY_HEADERS), *(_csv_line(r) for r in rows)]) + "\n", encoding="utf-8")
    return path




# --- Zoho ----------------------------------------------------------------------------------------------


def test_zoho_is_zoho_and_hubspot_needs_its_own_headers():
    assert detect_vendor(ZOHO_HEADERS) == "zoho"
    # Zoho's API names (Deals module export through the API) are the same fields.
    assert detect_vendor(["id", "Owner", "Deal_Name", "Amount", "Closing_Date", "Stage", "Created_Time"]) == "zoho"
    # 'Record ID' and 'Deal Name' alone are anyone's: HubSpot needs its 'Deal Stage' (or its won flag).
    assert detect_vendor(["Record ID", "Deal Name", "Stage", "Amount", "Created"]) is None
    assert detect_vendor(["Record ID", "Deal Name", "Deal Stage", "Create Date", "Amount"]) == "hubspot"


def test_a_zoho_deals_export_loads_as_worked_out_by_hand(ws, tmp_path):
    report = ingest(ws, [zoho_file(tmp_path / "Deals_2026_12_06.csv")])
    f = report.files[0]
    assert f.label == "Zoho CRM deals export" and f.rows_loaded == 6 and not f.rejected
    got = rows(ws, "SELECT deal_id, owner, account_id, created_date, close_date, stage, status, amount, deal_type, "
                   "segment, channel FROM deals ORDER BY deal_id")
    assert got == [
        ("zcrm_1001", "Priya Raman", "Acme", date(2026, 5, 23), date(2026, 7, 24), "Closed Won", "won", 136600.0,
         "new", "Mid-Market", "Web Download"),
        ("zcrm_1002", "Priya Raman", "Birch", date(2026, 5, 10), date(2026, 7, 27), "Closed Lost", "lost", 1200.5,
         "new", "SMB", "Web Download"),
        ("zcrm_1003", "Marcus Oyelaran", "Cedar", date(2026, 6, 1), date(2026, 8, 13), "Closed-Lost to Competition",
         "lost", 48000.0, "expansion", "Enterprise", "Web Download"),
        ("zcrm_1004", "Marcus Oyelaran", "Dune", date(2026, 6, 2), date(2026, 8, 15), "Closed Lost to Competition",
         "lost", None, "expansion", "Enterprise", "Web Download"),
        ("zcrm_1005", "Helena Brandt", "Elm", date(2026, 11, 14), date(2026, 12, 30), "Negotiation/Review", "open",
         9999.99, "new", "SMB", "Web Download"),
        ("zcrm_1006", "Helena Brandt", "Fir", date(2026, 7, 3), date(2026, 9, 5), "Closed Won", "won", 20000.0,
         "expansion", "Mid-Market", "Web Download"),
    ]
    text = " | ".join(f.rules + f.warnings)
    assert "no deal type column" not in text and "not in the stage map" not in text
    assert any("1 deal(s) have no value in 'Amount'" in w for w in f.warnings)


def test_a_hubspot_layout_with_the_type_mapped_no_longer_says_there_is_no_deal_type(tmp_path):
    """The trial's saved mapping: the HubSpot layout (as Zoho was once mistaken for) with deal_type ← Type."""
    columns = {**layout_entries("hubspot", ZOHO_HEADERS), "deal_id": "Record Id", "created_date": "Created Time",
               "close_date": "Closing Date", "stage": "Stage", "deal_type": "Type", "owner": "Deal Owner"}
    m = canonical_mapping("deals", columns, source="given", label="your mapping", fill={"deal_type": "new"})
    assert not any("no deal type column" in r for r in m.rules)
    assert any("deal_type ← Type" in r and "a blank 'Type' is read as 'new'" in r for r in m.rules)


def test_an_unmapped_stage_column_is_named_not_called_missing(ws, tmp_path):
    path = zoho_file(tmp_path / "deals.csv")
    mapping = {"table": "deals", "columns": {"deal_id": "Record Id", "created_date": "Created Time",
                                             "omit:Stage": "Stage"}}
    with pytest.raises(LoadError) as err:
        ingest(ws, [path], mappings={"deals.csv": mapping})
    said = str(err.value)
    assert "map the file's 'Stage' column as stage" in said and "(or a 'stage' to read it from)" not in said


# --- Recurly -------------------------------------------------------------------------------------------


def test_a_recurly_subscriptions_export_loads_as_worked_out_by_hand(ws, tmp_path):
    assert detect_vendor(RECURLY_HEADERS) == "recurly"
    report = ingest(ws, [recurly_file(tmp_path / "subscriptions-export-2026-12-06.csv")])
    f = report.files[0]
    assert f.label == "Recurly subscriptions export" and f.rows_loaded == 4 and not f.rejected
    got = rows(ws, "SELECT customer_id, CAST(start_date AS DATE), CAST(end_date AS DATE), round(mrr, 2), plan, "
                   "segment, channel FROM subscriptions ORDER BY customer_id")
    assert got == [
        ("acme", date(2025, 1, 10), None, 3600.0, "Growth (Monthly)", "SMB", "Web"),
        # canceled: ends when the term expires, not on the day the customer asked
        ("birch", date(2025, 3, 1), date(2027, 1, 15), 500.0, "Pro (Monthly)", "Mid-Market", "Ads"),
        ("cedar", date(2025, 8, 1), date(2026, 4, 28), 15150.0, "Enterprise (Monthly)", "Enterprise", "Trade Show"),
        # annual plan ÷ 12; the trial ends 14 days after activation, so MRR starts then
        ("dune", date(2025, 6, 15), None, 1000.0, "Pro (Annual)", "SMB", "Web"),
    ]
    assert any("left out" in r.lower() or "future" in r for r in f.rules)


def test_recurly_plan_interval_columns_and_cents(ws, tmp_path):
    path = tmp_path / "subs.csv"
    path.write_text("subscription_id,account_code,plan_code,state,quantity,unit_amount_in_cents,activated_at,"
                    "canceled_at,expires_at,plan_interval_length,plan_interval_unit\n"
                    "s1,acme,pro-q,active,2,30000,2026-01-05,,,3,months\n"
                    "s2,birch,basic,expired,1,4900,2025-02-01,2026-03-01,,1,months\n", encoding="utf-8")
    ingest(ws, [path])
    got = rows(ws, "SELECT customer_id, round(mrr, 2), CAST(end_date AS DATE) FROM subscriptions ORDER BY 1")
    # 2 × 300.00 per 3 months = 200.00 a month; an expired one without expires_at ends at canceled_at
    assert got == [("acme", 200.0, None), ("birch", 49.0, date(2026, 3, 1))]


# --- splits ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("column, values, flagged", [
    ("auto_renew", ["true", "false"], True),
    ("Renews", ["Yes", "No"], True),
    ("is_partner", None, True),
    ("next_step", ["Follow-up call", "Send proposal"], True),
    ("Description", ["Inbound via website, wants SSO", "Renewal risk, see notes"], True),
    ("info", ["Inbound via the website, wants SSO", "Renewal risk, please see the notes"], True),
    ("custom_field_segment", ["SMB", "Enterprise"], False),
    ("campaign_source", ["G2 Listing", "Trade Show", "Cold Call"], False),
    ("deal_kind", ["Existing Customer - Upgrade", "New Customer"], False),
    ("is_partner", ["0", "1"], True),
    ("seats", ["1", "0", "1"], False),  # 0 / 1 alone is a count unless the name says flag
])
def test_flags_and_free_text_are_never_a_split(column, values, flagged):
    assert bool(not_a_segment(column, values)) is flagged


# --- the command line ----------------------------------------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kpitree", *args], cwd=ROOT, capture_output=True, text=True)


def test_the_command_line_loads_both_exports_and_names_its_own_flags(tmp_path):
    ws = tmp_path / "w"
    deals, subs = zoho_file(tmp_path / "Deals.csv"), recurly_file(tmp_path / "subscriptions-export.csv")
    run = cli("ingest", "--workspace", str(ws), str(deals), str(subs))
    assert run.returncode == 0, run.stderr
    assert "Zoho CRM deals export" in run.stdout and "Recurly subscriptions export" in run.stdout
    odd = tmp_path / "odd.csv"
    odd.write_text("foo,bar\n1,2\n", encoding="utf-8")
    run = cli("ingest", "--workspace", str(ws), "--dry-run", str(odd))
    assert run.returncode == 2 and "--as odd.csv=TABLE" in run.stderr and "Load as" not in run.stderr
    page = detect_files(None, [odd])[0]
    assert "'Load as'" in page.problem and "--as" not in page.problem


def test_the_mapping_screen_starts_from_the_recurly_layout_and_keeps_its_derivations():
    """Saved unchanged, the screen's start reads MRR and the end date exactly as the layout does."""
    from kpitree.vendors import layout_defaults, vendor_mapping

    start = layout_defaults("recurly", RECURLY_HEADERS)
    assert start.columns["customer_id"] == "account_code" and set(start.derived) == {"end_date", "mrr"}
    saved = canonical_mapping("subscriptions", start.columns, source="saved", label="saved")
    layout = vendor_mapping("recurly", RECURLY_HEADERS)
    assert saved.fields["mrr"].sql == layout.fields["mrr"].sql
    assert saved.fields["end_date"].sql == layout.fields["end_date"].sql


def test_a_file_nobody_described_ends_a_subscription_when_it_expires():
    from kpitree.detect import fit_table

    fit = fit_table("subscriptions", ["account_code", "start_date", "canceled_at", "expires_at", "mrr"],
                    [["acme", "2026-01-01", "2026-05-02", "2026-06-01", "100"]])
    assert fit.columns["customer_id"] == "account_code" and fit.columns["end_date"] == "expires_at"


def test_a_file_with_a_vendors_column_names_but_not_its_layout_loads_as_what_it_is(ws, tmp_path):
    """'Record ID' and 'Deal Stage' are HubSpot's names, but HubSpot's export always has 'Create Date':
    a file without it whose columns fit deals by name loads as deals, saying why it is not HubSpot's."""
    path = tmp_path / "crm.csv"
    path.write_text("Record ID,Deal Name,Deal Stage,Amount,creation_date\n"
                    "7,Acme,Closed Won,\"1,000\",2026-10-01\n", encoding="utf-8")
    f = ingest(ws, [path]).files[0]
    assert f.rows_loaded == 1 and "HubSpot" not in f.label
    assert any("not read as a HubSpot deals export" in e and "'created_date'" in e for e in f.evidence)
    assert rows(ws, "SELECT deal_id, created_date, status, amount FROM deals") == [
        ("7", date(2026, 10, 1), "won", 1000.0)]


def test_a_subscription_that_starts_after_today_is_said_in_the_report(ws, tmp_path):
    """Scheduled starts (Recurly's future-dated activations in the trial) move the as-of date: said."""
    path = tmp_path / "subscriptions.csv"
    path.write_text("customer_id,start_date,mrr\nacme,2026-01-01,100\nbirch,2099-01-01,50\n", encoding="utf-8")
    f = ingest(ws, [path]).files[0]
    assert any(w.startswith("1 row(s) have a start_date after today (first on line 3)") for w in f.warnings)


def test_a_sales_stage_column_is_a_stage_for_a_file_nobody_described():
    from kpitree.detect import fit_table

    fit = fit_table("deals", ["Opportunity Number", "Sales Stage", "Created On", "Closing Date", "Value"],
                    [["1", "Closed Won", "2026-10-01", "2026-11-02", "100"]])
    assert fit.complete and fit.columns["stage"] == "Sales Stage"
    assert fit.columns["created_date"] == "Created On" and fit.columns["close_date"] == "Closing Date"
