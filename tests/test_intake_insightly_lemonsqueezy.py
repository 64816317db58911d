"""Insightly opportunities and Lemon Squeezy subscriptions exports load as worked out by hand (trial F, /tmp/trialF).

Trial F's Insightly file was read as a Salesforce report and refused ("missing required column 'created_date'"
beside DATE_CREATED_UTC); mapped by hand, OPPORTUNITY_STATE was left out as a lifecycle status and 1,134 of
1,136 deals read as open, and BID_TYPE 'Per Month' bids were added as they are (new business ARR $40,984 where a
year of the bids is $78,340). Its Lemon Squeezy subscriptions loaded as 203 deals. Every expected value below was
worked out by hand.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from conftest import rows

from kpitree.detect import not_a_segment
from kpitree.errors import LoadError
from kpitree.evaluate import Engine
from kpitree.ingest import ingest
from kpitree.periods import parse_period
from kpitree.vendors import EXPORT_NAMES, detect_vendor, form_start, mapped_headers

INS_HEADERS = ["OPPORTUNITY_ID", "OPPORTUNITY_NAME", "OPPORTUNITY_STATE", "BID_AMOUNT", "BID_CURRENCY", "BID_TYPE",
               "BID_DURATION", "FORECAST_CLOSE_DATE", "ACTUAL_CLOSE_DATE", "PROBABILITY", "RESPONSIBLE_USER",
               "OWNER_USER", "PIPELINE", "STAGE", "CATEGORY", "DATE_CREATED_UTC", "DATE_UPDATED_UTC",
               "ORGANISATION_ID", "LAST_ACTIVITY_DATE_UTC", "Industry__c"]
# id, state, bid, bid type, duration, forecast close, actual close, responsible, owner, stage, category
INS_ROWS = [
    ("1", "WON", "1000", "Per Month", "12", "2026-11-03", "2026-11-05", "Ana", "Tom", "Closed", "New Business"),
    ("2", "WON", "5000", "Fixed Bid", "", "2026-11-10", "2026-11-10", "", "Tom", "Closed", "Upsell"),
    ("3", "WON", "150", "Per Hour", "80", "2026-11-12", "2026-11-12", "Ana", "Ana", "Closed", "New Business"),
    ("4", "WON", "9000", "Per Year", "1", "2026-11-20", "2026-11-20", "Mei", "Mei", "Closed", "New Business"),
    ("5", "LOST", "2000", "Fixed Bid", "", "2026-11-15", "2026-11-16", "Mei", "Mei", "Closed", "Renewal"),
    ("6", "ABANDONED", "700", "Per Month", "6", "2026-11-18", "2026-11-21", "Ana", "Ana", "Closed", "New Business"),
    ("7", "SUSPENDED", "400", "Per Month", "12", "2027-01-15", "", "Mei", "Mei", "Pilot", "New Business"),
    ("8", "OPEN", "300", "Per Day", "", "2026-12-20", "", "Ana", "Ana", "Qualify", "New Business"),
]


def insightly_file(path: Path) -> Path:
    lines = [",".join(INS_HEADERS)]
    for oid, state, bid, kind, dur, fc, ac, resp, owner, stage, cat in INS_ROWS:
        lines.append(",".join([oid, f"Deal {oid}", state, bid, "USD", kind, dur, fc, ac, "50", resp, owner,
                               "Sales Pipeline", stage, cat, "2026-09-01T09:38:01Z", "2026-11-30T10:00:00Z", "900",
                               "2026-11-29T09:41:44Z", "SaaS"]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def value(ws, metric: str, period: str) -> float | None:
    df = Engine(ws).query(metric, [parse_period(period)])
    return None if df.empty else float(df["value"].iloc[0])


def test_insightly_is_recognised_as_itself_not_as_salesforce():
    assert detect_vendor(INS_HEADERS) == "insightly"
    assert "Insightly" in EXPORT_NAMES
    # the mapping screen starts with OPPORTUNITY_STATE as the status, so it is never offered to leave out
    start = form_start(INS_HEADERS, "deals")
    assert start is not None
    assert start.columns["status"] == "OPPORTUNITY_STATE" and start.columns["deal_id"] == "OPPORTUNITY_ID"
    assert start.columns["created_date"] == "DATE_CREATED_UTC"
    assert start.derived["owner"] == "RESPONSIBLE_USER / OWNER_USER"  # the responsible user, else the owner
    assert "amount" in start.derived and "close_date" in start.derived
    # nothing the layout reads to make its rows is offered under "Leave these columns out"
    assert {"OPPORTUNITY_STATE", "BID_TYPE", "BID_DURATION", "FORECAST_CLOSE_DATE"} <= mapped_headers(start.columns)
    ls = form_start(LS_HEADERS, "subscriptions")
    assert ls is not None and {"status", "ends_at", "trial_ends_at", "variant_id"} <= mapped_headers(ls.columns)
    assert ls.columns["derived:mrr"] == "variant_id"


def test_insightly_states_and_bids_load_as_a_year_of_value(ws, tmp_path):
    f = ingest(ws, [insightly_file(tmp_path / "insightly_opportunities.csv")]).files[0]
    assert (f.table, f.label, f.rows_loaded) == ("deals", "Insightly opportunities export", 8)
    got = rows(ws, "SELECT deal_id, status, round(amount, 2), CAST(close_date AS DATE), owner, deal_type "
                   "FROM deals ORDER BY CAST(deal_id AS INT)")
    assert got == [
        ("1", "won", 12000.0, date(2026, 11, 5), "Ana", "new"),  # 1,000 per month × 12
        ("2", "won", 5000.0, date(2026, 11, 10), "Tom", "expansion"),  # no responsible user: the owner
        ("3", "won", 12000.0, date(2026, 11, 12), "Ana", "new"),  # 150 per hour × 80 hours
        ("4", "won", 9000.0, date(2026, 11, 20), "Mei", "new"),
        ("5", "lost", 2000.0, date(2026, 11, 16), "Mei", "renewal"),
        ("6", "lost", 8400.0, date(2026, 11, 21), "Ana", "new"),  # ABANDONED is lost
        ("7", "open", 4800.0, date(2027, 1, 15), "Mei", "new"),  # SUSPENDED is open, forecast close
        ("8", "open", 300.0, date(2026, 12, 20), "Ana", "new"),  # per day with no duration: the bid
    ]
    assert value(ws, "win_rate", "2026-11") == pytest.approx(4 / 6)
    assert value(ws, "new_business_arr", "2026-11") == pytest.approx(12000 + 12000 + 9000)
    assert value(ws, "new_arr", "2026-11") == pytest.approx(12000 + 12000 + 9000 + 5000)  # with the upsell
    assert "ABANDONED" in " ".join(f.warnings)
    said = " ".join(f.rules)
    assert "SUSPENDED as open" in said and "Per Month × 12" in said
    assert f.extra_columns == ["pipeline", "industry_c"]


def test_payment_details_are_never_a_split():
    """Trial F's control month named 'Pro yearly × visa' as explaining the whole ARR gap: a card is how a customer
    pays, not a group anyone owns."""
    for column, values in [("card_brand", ["visa", "mastercard", "amex"]), ("card_last_four", ["1535", "8178"]),
                           ("payment_method", ["card", "paypal"]), ("subscriptions_card_brand", ["visa"]),
                           ("Payment Method Type", ["card"]), ("card_exp_month", ["4", "11"])]:
        assert not_a_segment(column, values) is not None, column
    for column, values in [("card_brand", ["visa"]), ("card_last_four", ["1535", "8178"])]:
        assert "payment detail" in not_a_segment(column, values), column
    assert not_a_segment("plan", ["Pro yearly", "Team monthly"]) is None
    assert not_a_segment("pipeline", ["Sales Pipeline", "Partner Pipeline"]) is None


LS_HEADERS = ["id", "store_id", "customer_id", "order_id", "order_item_id", "product_id", "variant_id", "product_name",
              "variant_name", "user_name", "user_email", "status", "status_formatted", "card_brand", "card_last_four",
              "pause", "cancelled", "trial_ends_at", "billing_anchor", "renews_at", "ends_at", "created_at",
              "updated_at", "test_mode"]
# id, customer, variant id, variant name, status, trial_ends_at, ends_at, created_at
LS_ROWS = [
    ("s1", "c1", "101", "Starter monthly", "active", "", "", "2026-01-10T09:00:00Z"),
    ("s2", "c2", "103", "Pro yearly", "active", "", "", "2026-02-01T09:00:00Z"),
    ("s3", "c3", "102", "Pro monthly", "cancelled", "", "2026-11-15T09:00:00Z", "2026-03-01T09:00:00Z"),
    ("s4", "c4", "102", "Pro monthly", "expired", "", "2026-06-01T09:00:00Z", "2026-01-01T09:00:00Z"),
    ("s5", "c5", "103", "Pro yearly", "on_trial", "2026-12-13T09:00:00Z", "", "2026-11-29T09:00:00Z"),
    ("s6", "c6", "101", "Starter monthly", "past_due", "", "", "2026-05-05T09:00:00Z"),
    ("s2", "c2", "103", "Pro yearly", "active", "", "", "2026-02-01T09:00:00Z"),  # the same subscription twice
    # the trial's line twice (trial F's id 880006): left out both times, and the duplicate line is said
    ("s5", "c5", "103", "Pro yearly", "on_trial", "2026-12-13T09:00:00Z", "", "2026-11-29T09:00:00Z"),
]
VARIANTS = "id,product_id,name,price,interval,interval_count,status\n101,55,Starter monthly,1900,month,1,published\n" \
           "102,55,Pro monthly,4900,month,1,published\n103,55,Pro yearly,49000,year,1,published\n"


def ls_file(path: Path, mrr: dict[str, str] | None = None) -> Path:
    head = LS_HEADERS + (["mrr"] if mrr else [])
    lines = [",".join(head)]
    for sid, cust, vid, name, status, trial, ends, created in LS_ROWS:
        cells = [sid, "55", cust, "o", "oi", "55", vid, "KPI SaaS", name, "Jo", "jo@example.com", status,
                 status.title(), "visa", "4242", "", "false", trial, "5", "2026-12-20T09:00:00Z", ends, created,
                 "2026-12-01T09:00:00Z", "false"]
        lines.append(",".join(cells + ([mrr[name]] if mrr else [])))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_lemon_squeezy_subscriptions_are_subscriptions_priced_by_their_variants(ws, tmp_path):
    (tmp_path / "variants.csv").write_text(VARIANTS, encoding="utf-8")
    assert detect_vendor(LS_HEADERS) == "lemon_squeezy" and "Lemon Squeezy" in EXPORT_NAMES
    report = ingest(ws, [ls_file(tmp_path / "subscriptions.csv"), tmp_path / "variants.csv"])
    f = next(f for f in report.files if f.table == "subscriptions")
    assert (f.label, f.rows_read, f.rows_loaded, f.rows_skipped, f.duplicate_ids) == (
        "Lemon Squeezy subscriptions export", 8, 5, 2, 1)
    got = rows(ws, "SELECT subscription_id, round(mrr, 2), CAST(end_date AS DATE), plan FROM subscriptions ORDER BY 1")
    assert got == [("s1", 19.0, None, "Starter monthly"), ("s2", 40.83, None, "Pro yearly"),
                   ("s3", 49.0, date(2026, 11, 15), "Pro monthly"), ("s4", 49.0, date(2026, 6, 1), "Pro monthly"),
                   ("s6", 19.0, None, "Starter monthly")]
    # ARR at the end of 2026-11: (19 + 490/12 + 19) × 12 — s3 ended on the 15th, the trial is not paying yet
    assert value(ws, "arr", "2026-11") == pytest.approx(19 * 12 + 490 + 19 * 12)
    assert "on_trial" in " ".join(f.skipped)
    assert any("'s5' on lines 6 and 9" in w and "left out on purpose" in w for w in f.warnings)
    # payment details are read, not kept as splits
    assert not {"card_brand", "card_last_four"} & set(f.extra_columns)


def test_lemon_squeezy_without_a_price_is_refused_saying_what_to_add(ws, tmp_path):
    with pytest.raises(LoadError, match="variants export .* or add an 'mrr' column"):
        ingest(ws, [ls_file(tmp_path / "subscriptions.csv")])
    # with an mrr column it loads, the amount read as monthly
    f = ingest(ws, [ls_file(tmp_path / "s2.csv", {"Starter monthly": "19", "Pro yearly": "40.83",
                                                   "Pro monthly": "49"})]).files[0]
    assert f.table == "subscriptions" and f.rows_loaded == 5
    assert not any("12 times too high" in w for w in f.warnings)
    assert value(ws, "arr", "2026-11") == pytest.approx((19 + 40.83 + 19) * 12)


@pytest.mark.parametrize(("amounts", "said"), [
    ({"Pro yearly": "40.83", "Pro monthly": "49", "Team monthly": "149"}, None),  # already monthly: no alarm
    ({"Pro yearly": "490", "Pro monthly": "49", "Team monthly": "49"}, "ARR comes out 12 times too high"),
    ({"Pro yearly": "490"}, "is their amount per MONTH?"),  # nothing to compare with: asked, not asserted
])
def test_a_yearly_plan_is_said_to_be_12_times_too_high_only_when_its_amounts_look_annual(ws, tmp_path, amounts,
                                                                                       said):
    """Trial F's mrr column was monthly for 'Pro yearly' (40.83) and the warning still said ARR is 12 times too high."""
    path = tmp_path / "subs.csv"
    plans = list(amounts)
    lines = ["customer,plan,mrr,started"] + [f"c{i},{plans[i % len(plans)]},{amounts[plans[i % len(plans)]]},2026-01-05"
                                             for i in range(6)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    mapping = {"table": "subscriptions", "columns": {"customer_id": "customer", "plan": "plan", "mrr": "mrr",
                                                     "start_date": "started"}}
    f = ingest(ws, [path], mappings={path.name: mapping}).files[0]
    found = [w for w in f.warnings if "annual or yearly" in w]
    if said is None:
        assert found == []
    else:
        assert len(found) == 1 and said in found[0]
