"""Each catalogue formula on a tiny table whose expected value is worked out by hand below."""

from __future__ import annotations

import pytest
from conftest import make_workspace

from kpitree.evaluate import Engine
from kpitree.periods import parse_period

DEALS = """
deal_id,account_id,owner,created_date,close_date,stage,status,amount,deal_type,segment,channel,services_amount
D1,A1,Ann,2026-09-01,2026-10-10,Closed Won,won,12000,new,SMB,Organic,2000
D2,A2,Ann,2026-09-15,2026-10-20,Closed Lost,lost,8000,new,SMB,Paid Search,
D3,A3,Bob,2026-08-01,2026-10-31,Closed Won,won,30000,new,Enterprise,Outbound,0
D4,A1,Bob,2026-10-05,2026-10-25,Closed Won,won,6000,expansion,SMB,Organic,
D5,A4,Cy,2026-10-02,2026-12-01,Proposal,open,50000,new,Enterprise,Partner,
D6,A5,Cy,2026-09-20,2026-09-30,Closed Won,won,9000,new,SMB,Organic,
D7,A6,Ann,2026-10-01,2026-11-02,Closed Lost,lost,4000,new,SMB,Organic,
D8,A7,Bob,2026-09-30,2026-10-15,Closed Lost,lost,20000,renewal,Enterprise,Outbound,
"""
SUBSCRIPTIONS = """
customer_id,start_date,end_date,mrr,plan,segment,channel
C1,2026-01-01,,100,Pro,SMB,Organic
C2,2026-03-01,2026-10-15,200,Pro,SMB,Organic
C3,2026-02-01,2026-10-01,50,Starter,SMB,Organic
C3,2026-10-01,,80,Pro,SMB,Organic
C4,2026-05-01,2026-10-10,300,Enterprise,Enterprise,Outbound
C4,2026-10-10,,120,Pro,Enterprise,Outbound
C5,2026-10-05,,70,Pro,SMB,Paid Search
C6,2026-01-01,2026-06-01,40,Starter,SMB,Organic
C6,2026-10-20,,60,Pro,SMB,Organic
C7,2026-11-01,,90,Pro,SMB,Organic
C8,2026-09-30,2026-09-30,500,Pro,SMB,Organic
C8,2026-10-03,,10,Starter,SMB,Organic
"""
LEADS = """
lead_id,created_date,channel,owner,segment,mql_date,sql_date,deal_id
L1,2026-10-01,Organic,Sam,SMB,2026-10-03,2026-10-10,D1
L2,2026-10-05,Paid Search,Sam,SMB,2026-10-06,,
L3,2026-09-20,Organic,Kim,SMB,2026-10-02,2026-10-05,D2
L4,2026-10-10,Organic,Kim,SMB,,,
L5,2026-09-01,Outbound,Sam,Enterprise,2026-09-02,2026-10-01,D3
"""
ACTIVITIES = """
activity_id,date,owner,type,account_id
a1,2026-10-01,Sam,call,A1
a2,2026-10-02,Sam,email,A2
a3,2026-10-03,Kim,call,A3
a4,2026-10-04,Ann,demo,A1
a5,2026-09-30,Sam,call,A1
"""
QUOTAS = """
owner,period,quota
Ann,2026-10,30000
Bob,2026-10,50000
Cy,2026-Q4,92000
"""
SPEND = """
month,channel,amount
2026-10-01,Organic,1000
2026-10-01,Paid Search,2000
2026-09-01,Organic,500
"""

OCT = parse_period("2026-10")


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    ws = make_workspace(tmp_path_factory.mktemp("metrics"), deals=DEALS, subscriptions=SUBSCRIPTIONS, leads=LEADS, activities=ACTIVITIES,
                 quotas=QUOTAS, spend=SPEND)
    ws_settings = ws.settings()
    ws_settings.as_of = "2026-11-20"
    ws.save_settings(ws_settings)
    return Engine(ws)


def value(engine: Engine, name: str, period=OCT, filters=()) -> float:
    df = engine.query(name, [period], filters=filters)
    return float(df.loc[df.pkey == period.key, "value"].iloc[0])


@pytest.mark.parametrize(
    "name, expected",
    [
        # Bookings: closed in Oct are D1 won 12000 new, D2 lost new, D3 won 30000 new,
        # D4 won 6000 expansion, D8 lost renewal.
        ("new_business_arr", 12000 + 30000),
        ("expansion_arr", 6000),
        ("new_arr", 48000),
        ("won_deals", 3),
        ("closed_deals", 5),
        ("win_rate", 3 / 5),
        ("avg_deal_size", (12000 + 30000 + 6000) / 3),
        # D1 Sep 1 → Oct 10 = 39 days, D3 Aug 1 → Oct 31 = 91, D4 Oct 5 → Oct 25 = 20.
        ("sales_cycle_days", (39 + 91 + 20) / 3),
        ("opportunities_created", 3),  # D4, D5, D7
        ("opp_win_rate", 1 / 3),  # of those, D4 won (D5 is open, D7 lost)
        # Open at Oct 1: D1, D2, D3, D7 (created Oct 1), D8 — not D6 (closed Sep 30).
        ("open_pipeline", 12000 + 8000 + 30000 + 4000 + 20000),
        ("open_deals", 5),
        ("quota", 30000 + 50000 + 92000 * 31 / 92),
        ("pipeline_coverage", 74000 / 111000),
        ("pipeline_velocity", 5 * 16000 * 0.6 / 50),
        ("renewals_due", 1),
        ("new_customers", 2),  # A1, A3
        ("ps_attach_rate", 1 / 2),  # D1 has services, D3 has 0
        # Revenue: MRR at Sep 30 = C1 100 + C2 200 + C3 50 + C4 300 = 650;
        # at Oct 31 = C1 100 + C3 80 + C4 120 + C5 70 + C6 60 + C8 10 = 440.
        ("mrr", 440),
        ("arr", 12 * 440),
        ("mrr_start", 650),
        ("arr_start", 12 * 650),
        ("mrr_new", 70 + 10),  # C5, and C8 whose zero-length subscription never counted
        ("mrr_reactivation", 60),  # C6
        ("mrr_expansion", 30),  # C3 50 → 80
        ("mrr_contraction", 180),  # C4 300 → 120
        ("mrr_churn", 200),  # C2
        ("arr_churn", 2400),
        ("nrr", (100 + 0 + 80 + 120) / 650),
        ("grr", (100 + 0 + 50 + 120) / 650),
        ("expansion_rate", 30 / 650),
        ("logo_churn_rate", 1 / 4),
        ("active_customers", 6),
        ("arpa", 440 / 6),
        # Leads created in Oct: L1, L2, L4; MQL in Oct: L1, L2, L3; SQL in Oct: L1 (D1 won),
        # L3 (D2 lost), L5 (D3 won).
        ("leads", 3),
        ("lead_to_opp_rate", 1 / 3),
        ("mql_to_sql_rate", 2 / 3),
        ("sql_to_won_rate", 2 / 3),
        ("activities", 4),
        ("touches_per_rep_week", 3 / 2 / (31 / 7)),
        ("spend", 3000),
    ],
)
def test_metric_by_hand(engine, name, expected):
    assert value(engine, name) == pytest.approx(expected, rel=1e-12)


def test_filters_restrict_rows(engine):
    assert value(engine, "win_rate", filters=(("deal_type", ("new",)),)) == pytest.approx(2 / 3)
    assert value(engine, "activities", filters=(("type", ("demo",)),)) == 1
    assert value(engine, "leads", filters=(("channel", ("Organic", "Paid Search")),)) == 3


def test_mrr_bridge_holds_on_the_hand_table(engine):
    moves = {n: value(engine, n) for n in
             ("mrr_start", "mrr_new", "mrr_reactivation", "mrr_expansion", "mrr_contraction", "mrr_churn")}
    bridge = (moves["mrr_start"] + moves["mrr_new"] + moves["mrr_reactivation"] + moves["mrr_expansion"]
              - moves["mrr_contraction"] - moves["mrr_churn"])
    assert bridge == pytest.approx(value(engine, "mrr"))


def test_segments_sum_to_total_for_additive_metrics(engine):
    for name in ("new_arr", "mrr", "leads", "open_pipeline"):
        split = engine.query(name, [OCT], dimension="segment")
        assert split["value"].sum() == pytest.approx(value(engine, name))


def test_segment_split_by_owner_and_channel(engine):
    split = engine.query("win_rate", [OCT], dimension="owner").set_index("segment")
    assert split.loc["Ann", "won"] == 1 and split.loc["Ann", "decided"] == 2
    assert split.loc["Bob", "value"] == pytest.approx(2 / 3)
    by_channel = engine.query("new_business_arr", [OCT], dimension="channel").set_index("segment")["value"]
    assert by_channel.to_dict() == {"Organic": 12000.0, "Outbound": 30000.0, "Paid Search": 0.0}


def test_running_pipeline_coverage_uses_the_quota_of_the_month_ahead(engine):
    nov = parse_period("2026-11")
    # Open now (as of Nov 20): D5 50000; the month ahead, Nov 20 – Dec 19, holds 30 of the 92 days of
    # Cy's Q4 quota of 92000 (Ann's and Bob's are October's). A running week reads the same.
    assert value(engine, "pipeline_coverage_running", nov) == pytest.approx(50000 / (92000 * 30 / 92))
    week = parse_period("2026-W47")  # Mon 16 – Sun 22 November
    assert value(engine, "pipeline_coverage_running", week) == pytest.approx(50000 / (92000 * 30 / 92))


def test_pipeline_coverage_takes_the_quota_of_the_month_from_the_start_of_p(engine):
    # Week 41 starts Mon Oct 5: open then (created on or before it) are D1 12000, D2 8000, D3 30000,
    # D4 6000 (created that day), D5 50000, D7 4000, D8 20000 = 130000; not D6 (closed Sep 30).
    # The month ahead, Oct 5 – Nov 4, holds 27
    # of October's 31 days of Ann's 30000 and Bob's 50000, and 31 of Q4's 92 days of Cy's 92000.
    w41 = parse_period("2026-W41")
    quota = (30000 + 50000) * 27 / 31 + 92000 * 31 / 92
    assert value(engine, "pipeline_coverage", w41) == pytest.approx(130000 / quota)
    # Q4 starts with October: the same horizon as the month's.
    assert value(engine, "pipeline_coverage", parse_period("2026-Q4")) == pytest.approx(74000 / 111000)


def test_several_periods_in_one_query(engine):
    sep = parse_period("2026-09")
    df = engine.query("new_business_arr", [sep, OCT]).set_index("pkey")["value"]
    assert df.to_dict() == {"2026-09": 9000.0, "2026-10": 42000.0}
    q3 = engine.query("new_business_arr", [parse_period("2026-Q4")])
    assert q3["value"].iloc[0] == 42000.0
