"""Dynamics 365 Sales opportunities and Zuora rate plan charges exports load with no manual step, read as worked out
by hand (the second pair of trial D: neither file was recognised, and Zuora's defaults gave ARR $16.0M for $10.95M).

The files are written here from the exports' own headers — Dynamics' "Export to Excel" of an Opportunities view
(three hidden `(Do Not Modify)` columns, then Topic, Potential Customer, Status Open / Won / Lost, Status Reason,
Pipeline Phase, Est. Revenue, Actual Revenue, Currency by name, Est. Close Date, Actual Close Date, Owner, Created
On; day-first dates, "$9,300.00") and Zuora's Rate Plan Charge data source (`Object.Field` headers; one row per
charge segment, RatePlanCharge.Segment numbering the amendments, EffectiveStartDate / EffectiveEndDate,
RatePlanCharge.MRR monthly) — with the trial's mess: a BOM, a duplicated row in each, two currencies, an expired
subscription whose charge has no end date, a draft and a one-time charge.
"""

from __future__ import annotations

import csv
from pathlib import Path

from conftest import rows

from kpitree.detect import not_a_segment
from kpitree.ingest import ingest
from kpitree.vendors import canonical_mapping, detect_vendor, layout_defaults, vendor_mapping

DYN_HEADERS = ["(Do Not Modify) Opportunity", "(Do Not Modify) Row Checksum", "(Do Not Modify) Modified On", "Topic",
               "Potential Customer", "Segment (Potential Customer) (Account)", "Opportunity Type", "Status",
               "Status Reason", "Pipeline Phase", "Probability", "Est. Revenue", "Actual Revenue", "Currency",
               "Est. Close Date", "Actual Close Date", "Owner", "Created On", "Rating"]
# id, customer, segment, type, status, reason, phase, est, actual, currency, est close, actual close, owner, created
DYN_ROWS = [
    ("7de1-01", "Zenith Foods", "SMB", "New Business", "Won", "Won", "4-Close", "$10,000.00", "$12,000.00",
     "US Dollar", "30/11/2026", "14/11/2026", "Lukas Meyer", "01/10/2026 09:00"),
    ("7de1-02", "Blue Pioneer GmbH", "Mid-Market", "New Business", "Lost", "Out-Sold", "4-Close", "€8,500.00", "",
     "Euro", "20/11/2026", "18/11/2026", "Sofia Lindqvist", "02/10/2026 10:30"),
    ("7de1-03", "Apex Falcon", "Enterprise", "New Business", "Open", "In Progress", "2-Develop", "$5,000.00", "",
     "US Dollar", "24/12/2026", "", "Lukas Meyer", "13/11/2026 11:00"),
    ("7de1-04", "Zenith Foods", "SMB", "Upsell", "Won", "Won", "4-Close", "$7,000.00", "", "US Dollar",
     "03/11/2026", "", "Priya Raman", "21/09/2026 16:20"),
]
# deal → (status, close date, amount, deal type): Actual Revenue / Actual Close Date for closed ones, else Est.
DYN_WANT = {
    "7de1-01": ("won", "2026-11-14", 12000.0, "new"),
    "7de1-02": ("lost", "2026-11-18", 8500.0, "new"),
    "7de1-03": ("open", "2026-12-24", 5000.0, "new"),
    "7de1-04": ("won", "2026-11-03", 7000.0, "expansion"),
}


def dynamics_file(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8-sig") as f:
        w = csv.writer(f)
        w.writerow(DYN_HEADERS)
        for (oid, cust, seg, typ, status, reason, phase, est, actual, cur, est_close, act_close, owner,
             created) in DYN_ROWS:
            w.writerow([oid, "727904443", "19/11/2026 11:11", f"{cust} - Platform", cust, seg, typ, status, reason,
                        phase, "100" if status == "Won" else "20", est, actual, cur, est_close, act_close, owner,
                        created, "Warm"])
        first = DYN_ROWS[0]
        w.writerow([first[0], "727904443", "19/11/2026 11:11", "Zenith Foods - Platform", first[1], first[2],
                    first[3], first[4], first[5], first[6], "100", first[7], first[8], first[9], first[10], first[11],
                    first[12], first[13], "Warm"])  # the export's duplicated row
    return path


ZUORA_HEADERS = ["Account.AccountNumber", "Account.Name", "Account.Currency", "Account.Segment__c", "Subscription.Name",
                 "Subscription.Status", "Subscription.SubscriptionStartDate", "Subscription.TermStartDate",
                 "Subscription.TermEndDate", "Subscription.CancelledDate", "Subscription.AutoRenew", "RatePlan.Name",
                 "RatePlanCharge.ChargeNumber", "RatePlanCharge.Segment", "RatePlanCharge.ChargeType",
                 "RatePlanCharge.BillingPeriod", "RatePlanCharge.EffectiveStartDate",
                 "RatePlanCharge.EffectiveEndDate", "RatePlanCharge.MRR", "RatePlanCharge.TCV"]
# account, currency, segment, subscription, status, term start, term end, cancelled, auto-renew, charge, charge
# segment, type, period, effective start, effective end, MRR
ZUORA_ROWS = [
    ("A1", "USD", "SMB", "S1", "Active", "2026-01-01", "2027-01-01", "", "true", "C1", "1", "Recurring", "Month",
     "2025-01-01", "2026-06-01", "100.00"),
    ("A1", "USD", "SMB", "S1", "Active", "2026-01-01", "2027-01-01", "", "true", "C1", "2", "Recurring", "Month",
     "2026-06-01", "2027-01-01", "150.00"),  # the upsell amendment: segment 2
    ("A2", "EUR", "Enterprise", "S2", "Cancelled", "2026-03-01", "2027-03-01", "2026-11-10", "false", "C2", "1",
     "Recurring", "Annual", "2025-03-01", "2026-11-10", "1000.00"),
    ("A3", "USD", "Mid-Market", "S3", "Expired", "2025-05-01", "2026-05-01", "", "false", "C3", "1", "Recurring",
     "Quarter", "2025-05-01", "", "300.00"),  # expired, its charge written without an end
    ("A4", "USD", "SMB", "S4", "Draft", "2026-12-01", "2027-12-01", "", "true", "C4", "1", "Recurring", "Month",
     "2026-12-01", "2027-12-01", "80.00"),
    ("A5", "USD", "SMB", "S5", "Active", "2026-02-01", "2027-02-01", "", "true", "C5", "1", "OneTime", "Month",
     "2026-02-01", "2026-02-02", "0.00"),
    ("A6", "USD", "SMB", "S6", "Active", "2026-01-15", "2027-01-15", "", "false", "C6", "1", "Recurring", "Month",
     "2026-01-15", "2027-01-15", "50.00"),  # not renewing: it ends at its term end
]
# (customer, charge # segment) → (start, end, mrr, segment)
ZUORA_WANT = {
    ("A1", "C1#1"): ("2025-01-01", "2026-06-01", 100.0, "SMB"),
    ("A1", "C1#2"): ("2026-06-01", None, 150.0, "SMB"),  # active and auto-renewing: its term end is no end
    ("A2", "C2#1"): ("2025-03-01", "2026-11-10", 1000.0, "Enterprise"),
    ("A3", "C3#1"): ("2025-05-01", "2026-05-01", 300.0, "Mid-Market"),  # expired: at its term end
    ("A6", "C6#1"): ("2026-01-15", "2027-01-15", 50.0, "SMB"),
}


def zuora_file(path: Path) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(ZUORA_HEADERS)
        for (acc, cur, seg, sub, status, term_start, term_end, cancelled, renew, charge, no, typ, period, start,
             end, mrr) in ZUORA_ROWS:
            w.writerow([acc, f"{acc} Ltd", cur, seg, sub, status, start, term_start, term_end, cancelled, renew,
                        "Starter", charge, no, typ, period, start, end, mrr, f"{float(mrr) * 12:.2f}"])
        w.writerow(["A2", "A2 Ltd", "EUR", "Enterprise", "S2", "Cancelled", "2025-03-01", "2026-03-01", "2027-03-01",
                    "2026-11-10", "false", "Starter", "C2", "1", "Recurring", "Annual", "2025-03-01", "2026-11-10",
                    "1000.00", "12000.00"])  # the export's duplicated row
    return path


def test_both_exports_are_recognised_by_their_headers():
    assert detect_vendor(DYN_HEADERS) == "dynamics"
    assert detect_vendor(ZUORA_HEADERS) == "zuora"


def test_a_dynamics_opportunities_export_loads_as_worked_out_by_hand(ws, tmp_path):
    f = ingest(ws, [dynamics_file(tmp_path / "Open Opportunities 12-6-2026 10-14-22 AM.csv")]).files[0]
    assert (f.label, f.rows_read, f.rows_loaded, f.rows_rejected) == ("Dynamics 365 Sales opportunities export", 5, 4,
                                                                      1)
    got = {r[0]: r[1:] for r in rows(ws, "SELECT deal_id, status, CAST(close_date AS VARCHAR), amount, deal_type "
                                         "FROM deals")}
    assert got == DYN_WANT
    assert rows(ws, "SELECT DISTINCT owner, segment FROM deals WHERE deal_id = '7de1-01'") == [("Lukas Meyer", "SMB")]
    # Status Reason and the hidden bookkeeping columns are read, never kept as splits
    assert f.extra_columns == ["probability", "rating"]
    # two currencies, said once (the symbols and the Currency column used to say it three times)
    said = [w for w in f.warnings if "currenc" in w]
    assert said == ["amounts are in several currencies (US DOLLAR 4 row(s), EURO 1 row(s)) and are added as they are, "
                    "with no exchange rate, so totals such as ARR mix them: export amounts in one currency (the company "
                    "currency) for exact totals"]


def test_a_zuora_rate_plan_charges_export_loads_as_worked_out_by_hand(ws, tmp_path):
    f = ingest(ws, [zuora_file(tmp_path / "RatePlanCharge_export_20261206.csv")]).files[0]
    assert (f.label, f.rows_read, f.rows_loaded, f.rows_rejected) == ("Zuora rate plan charges export", 8, 5, 1)
    assert f.skipped == {"not active yet (draft or pending)": 1, "not a recurring charge (one-time or usage)": 1}
    got = {(r[0], r[1]): r[2:] for r in rows(
        ws, "SELECT customer_id, subscription_id, CAST(CAST(start_date AS DATE) AS VARCHAR), "
            "CAST(CAST(end_date AS DATE) AS VARCHAR), mrr, segment FROM subscriptions")}
    assert got == ZUORA_WANT
    assert f.extra_columns == []  # the charge's segment number, billing period and currency are never splits
    assert any(w.startswith("amounts are in several currencies (USD 6 row(s), EUR 2 row(s))") for w in f.warnings)
    # MRR at the end of November 2026, by hand: A1's second segment 150 + A6 50 (A2 ended on the 10th)
    assert rows(ws, "SELECT sum(mrr) FROM subscriptions WHERE start_date <= DATE '2026-11-30' AND "
                    "(end_date IS NULL OR end_date > DATE '2026-11-30')") == [(200.0,)]


def test_billing_frequency_is_no_period_label():
    """BillingPeriod (Month, Quarter, Annual) says how often a charge bills — a customer's plan, a split — not which
    period a row is in (trial D called it a period label); a billing month with month values still is one."""
    assert not_a_segment("RatePlanCharge.BillingPeriod", ["Month", "Quarter", "Annual", "Month"]) is None
    assert not_a_segment("billing_period", ["monthly", "annual"]) is None
    assert not_a_segment("billing_period", ["2026-10", "2026-11"]) == "a period label (one value per period), not a segment"
    assert not_a_segment("billing_month", []) == "a period label (one value per period), not a segment"


def test_the_mapping_screen_starts_from_the_layouts_and_saved_unchanged_reads_the_same():
    for vendor, headers, table, made in (("dynamics", DYN_HEADERS, "deals", {"close_date", "amount"}),
                                         ("zuora", ZUORA_HEADERS, "subscriptions", {"end_date"})):
        start = layout_defaults(vendor, headers)
        assert made <= set(start.derived)
        saved = canonical_mapping(table, start.columns, source="saved", label="saved")
        layout = vendor_mapping(vendor, headers)
        assert {k: f.sql for k, f in saved.fields.items()} == {k: f.sql for k, f in layout.fields.items()}


def test_only_the_latest_version_of_an_amended_subscription_counts(ws, tmp_path):
    """A data source export with Subscription.Version repeats every charge in each version: an amendment that
    cancelled S7 in September wrote version 2 beside version 1's open-ended row, which would count it on."""
    path = tmp_path / "charges.csv"
    head = ["Account.AccountNumber", "Account.Currency", "Subscription.Name", "Subscription.Version",
            "Subscription.Status", "Subscription.TermEndDate", "Subscription.CancelledDate", "Subscription.AutoRenew",
            "RatePlanCharge.ChargeNumber", "RatePlanCharge.Segment", "RatePlanCharge.EffectiveStartDate",
            "RatePlanCharge.EffectiveEndDate", "RatePlanCharge.MRR"]
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(head)
        w.writerow(["A7", "USD", "S7", "1", "Expired", "2027-01-01", "", "true", "C7", "1", "2026-01-01", "2027-01-01",
                    "100"])
        w.writerow(["A7", "USD", "S7", "2", "Cancelled", "2027-01-01", "2026-09-01", "true", "C7", "1", "2026-01-01",
                    "2026-09-01", "100"])
        w.writerow(["A8", "USD", "S8", "1", "Active", "2027-03-01", "", "true", "C8", "1", "2026-03-01", "2027-03-01",
                    "40"])
    f = ingest(ws, [path]).files[0]
    assert f.skipped == {"an earlier version of an amended subscription (its latest version is in the file)": 1}
    assert sorted(rows(ws, "SELECT customer_id, CAST(CAST(end_date AS DATE) AS VARCHAR), mrr FROM subscriptions")) == [
        ("A7", "2026-09-01", 100.0), ("A8", None, 40.0)]
