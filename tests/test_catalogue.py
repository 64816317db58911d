"""The metrics added for the seeds' whole catalogue, each on a tiny table worked out by hand below;
filters and splits that span several tables; parameters; identities as properties; the docs."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import pandas as pd
import pytest
from conftest import make_workspace
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_metrics import ACTIVITIES, DEALS, LEADS, QUOTAS, SPEND, SUBSCRIPTIONS

from kpitree.errors import QueryError
from kpitree.evaluate import Engine, evaluate_tree
from kpitree.metrics import (
    BENCHMARKS,
    BUILTIN,
    CATALOGUE,
    FORMULAS,
    GROUPS,
    PARAMETERS,
    SMALL_VALUES,
    Absent,
    MetricQuery,
    Profile,
    compute,
    compute_many,
    describe,
    journey_metric,
    metric,
    metric_params,
    missing_data,
    picks,
    read_profile,
    worked_example,
)
from kpitree.periods import parse_period
from kpitree.tree import parse_yaml
from kpitree.workspace import Settings

OCT = parse_period("2026-10")
W44 = parse_period("2026-W44")  # Mon 26 Oct – Sun 1 Nov

# D9 adds a won renewal; the rest is test_metrics' deals.
DEALS_MORE = DEALS.rstrip() + "\nD9,A8,Dee,2026-09-01,2026-10-12,Closed Won,won,15000,renewal,SMB,Organic,\n"
ACTIVITIES_MORE = ACTIVITIES.rstrip() + """
a6,2026-10-06,Gina,health_check,A1
a7,2026-10-07,Gina,health_check,A3
a8,2026-10-08,Hal,health_check,A4
"""
TICKETS = """
ticket_id,account_id,opened_at,resolved_at,first_response_at
T1,C1,2026-10-01 09:00:00,2026-10-01 21:00:00,2026-10-01 10:00:00
T2,C3,2026-09-30 22:00:00,2026-10-02 10:00:00,2026-09-30 23:00:00
T3,C4,2026-10-30 12:00:00,,2026-10-31 12:00:00
T4,C1,2026-10-15 08:00:00,2026-11-01 08:00:00,2026-10-15 12:00:00
T5,C5,2026-10-20 10:00:00,2026-10-20 16:00:00,2026-10-20 10:30:00
"""
NPS = """
account_id,date,score
C1,2026-10-02,10
C3,2026-10-05,9
C4,2026-10-07,7
C6,2026-10-11,6
C8,2026-10-12,9
C1,2026-09-20,0
"""
EVENTS = """
user_id,account_id,timestamp,feature
u1,C1,2026-10-01 09:00:00,dashboards
u1,C1,2026-10-01 09:10:00,reports
u1,C1,2026-10-01 09:25:00,sharing
u1,C1,2026-10-01 10:30:00,reports
u2,C1,2026-10-02 14:00:00,dashboards
u2,C1,2026-10-02 14:05:00,reports
u2,C1,2026-10-20 14:00:00,reports
u3,C3,2026-10-05 08:00:00,alerts
u3,C3,2026-10-05 08:20:00,alerts
u3,C3,2026-10-31 23:50:00,dashboards
u4,C4,2026-10-29 12:00:00,dashboards
u4,C4,2026-10-29 12:29:00,alerts
u4,C4,2026-10-30 12:00:00,reports
u4,C4,2026-11-02 12:00:00,sharing
u5,C5,2026-10-06 10:00:00,reports
"""
TIMESHEETS = """
entry_id,date,owner,hours,billable,account_id,project
E1,2026-10-01,Iris,6,yes,C1,Implementation
E2,2026-10-01,Iris,2,no,,Internal
E3,2026-10-02,Noah,8,Yes,C3,Implementation
E4,2026-10-02,Noah,0,no,,Internal
E5,2026-09-30,Iris,8,yes,C1,Implementation
E6,2026-10-03,Noah,4,FALSE,,Internal
"""
JOURNEY = (("feature", ("dashboards", "reports", "sharing")),)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    ws = make_workspace(tmp_path_factory.mktemp("catalogue"), deals=DEALS_MORE, subscriptions=SUBSCRIPTIONS,
                        leads=LEADS, activities=ACTIVITIES_MORE, quotas=QUOTAS, spend=SPEND, tickets=TICKETS, nps=NPS,
                        events=EVENTS, timesheets=TIMESHEETS)
    s = ws.settings()
    s.as_of = "2026-11-20"
    ws.save_settings(s)
    return Engine(ws)


def value(engine: Engine, name: str, period=OCT, filters=()) -> float:
    df = engine.query(name, [period], filters=filters)
    return float(df.loc[df.pkey == period.key, "value"].iloc[0])


def with_params(engine: Engine, name: str, params: dict, period=OCT, filters=()) -> float:
    q = MetricQuery(name, (period,), engine.as_of, None, filters, engine.columns, tuple(params.items()))
    with engine.workspace.connect() as con:
        return float(compute(con, q)["value"].iloc[0])


# Customers' MRR at month ends (see test_metrics): Jul 31, Aug 31 and Sep 30 = C1, C2, C3, C4 (650);
# Oct 31 = C1 100, C3 80, C4 120, C5 70, C6 60, C8 10 (440, 6 customers). Logo churn: Aug 0, Sep 0,
# Oct 1/4 (C2) → mean 1/12. ARPA = 440/6. Won new deals in Oct: A1 (D1), A3 (D3); spend Oct 3000, Sep 500.
ARPA = 440 / 6
LTV = ARPA * 0.8 / (1 / 12)
CAC = 3000 / 2


@pytest.mark.parametrize(
    "name, expected",
    [
        ("renewal_arr", 15000),  # D9
        ("health_checks_per_csm_week", 3 / 2 / (31 / 7)),  # Gina 2, Hal 1
        ("ltv", LTV),
        ("cac", CAC),
        ("ltv_cac", LTV / CAC),
        ("cac_payback_months", CAC / (ARPA * 0.8)),
        ("magic_number", 12 * (440 - 650) / 500),
        ("roas", (12000 + 30000 + 6000) / 3000),
        # Tickets: opened in Oct T1, T3, T4, T5; resolved in Oct T1 12 h, T2 36 h, T5 6 h;
        # first answered in Oct T1 1 h, T3 24 h, T4 4 h, T5 0.5 h.
        ("tickets_opened", 4),
        ("mttr_hours", (12 + 36 + 6) / 3),
        ("first_response_hours", (1 + 24 + 4 + 0.5) / 4),
        # NPS in Oct: 10, 9, 9 promoters, 7 passive, 6 detractor → 100 × (3 − 1) / 5.
        ("nps", 40),
        # Users by day: u1 Oct 1; u2 Oct 2, 20; u3 Oct 5, 31; u4 Oct 29, 30; u5 Oct 6 → 8 user-days.
        ("dau", 8 / 31),
        ("wau", 2),  # Oct 25–31: u3, u4
        ("mau", 4),  # Oct 2–31: u2, u3, u4, u5 (u1 only on Oct 1)
        ("dau_mau", 8 / 31 / 4),
        # Accounts with events in Oct: C1, C3, C4, C5; (account, feature) pairs: C1 3, C3 2, C4 3, C5 1
        # over 4 features → mean adoption 9 / (4 × 4).
        ("feature_adoption", 9 / 16),
        # Sessions started in Oct, minutes per user: u1 25 + 0, u2 5 + 0, u3 20 + 0, u4 29 + 0, u5 0.
        ("time_in_product_minutes", 20),
        # Customers whose first subscription starts in Oct: C5 (Oct 5, first event Oct 6) and C8
        # (Oct 3; its Sep 30 row never counted; no event yet) → 1 day over 1 activated customer.
        ("time_to_first_value_days", 1),
        ("ps_utilization", (6 + 8) / (6 + 2 + 8 + 0 + 4)),
    ],
)
def test_metric_by_hand(engine, name, expected):
    assert value(engine, name) == pytest.approx(expected, rel=1e-12)


def test_components_are_reported(engine):
    df = engine.query("time_to_first_value_days", [OCT])
    assert (df["started"].iloc[0], df["activated"].iloc[0], df["days"].iloc[0]) == (2, 1, 1)
    nps = engine.query("nps", [OCT]).iloc[0]
    assert (nps["promoters"], nps["detractors"], nps["responses"]) == (3, 1, 5)


def test_week_identity_dau_wau_mau(engine):
    # W44: user-days u3 Oct 31, u4 Oct 29 and 30; users u3, u4; 30 days to Nov 1: u2, u3, u4, u5.
    assert value(engine, "dau", W44) == pytest.approx(3 / 7)
    assert value(engine, "wau", W44) == 2
    assert value(engine, "mau", W44) == 4


def test_feature_adoption_filter_is_the_numerator_only(engine):
    # reports: C1, C4, C5 of the 4 accounts with any event.
    assert value(engine, "feature_adoption", filters=(("feature", ("reports",)),)) == pytest.approx(3 / 4)
    # two features: pairs C1 reports, C1 sharing, C4 reports, C5 reports → 4 / (2 × 4)
    assert value(engine, "feature_adoption", filters=(("feature", ("reports", "sharing")),)) == pytest.approx(1 / 2)
    split = engine.query("feature_adoption", [OCT], dimension="feature").set_index("segment")["value"]
    assert split.to_dict() == pytest.approx({"alerts": 0.5, "dashboards": 0.75, "reports": 0.75, "sharing": 0.25})
    only = engine.query("feature_adoption", [OCT], dimension="feature", filters=(("feature", ("sharing",)),))
    assert only.set_index("segment")["value"].to_dict() == pytest.approx({"sharing": 0.25})


def test_journey_completion(engine):
    # Started (dashboards in Oct): u1 (→ reports → sharing, same hour), u2 (no sharing), u3 (Oct 31,
    # nothing after), u4 (Oct 29 → reports Oct 30 → sharing Nov 2, within 14 days).
    assert value(engine, "journey_completion", filters=JOURNEY) == pytest.approx(2 / 4)
    assert with_params(engine, "journey_completion", {"journey_window_days": 2}, filters=JOURNEY) == pytest.approx(1 / 4)
    two = journey_metric(["dashboards", "reports"])
    assert two == journey_metric(("dashboards", "reports"))  # same steps, same metric
    assert value(engine, two) == pytest.approx(3 / 4)  # u1, u2, u4
    with pytest.raises(QueryError, match="needs its steps"):
        value(engine, "journey_completion")


def test_time_in_product_filter_and_gap(engine):
    # alerts only: u3 20 min, u4 one event (0) → median 10.
    assert value(engine, "time_in_product_minutes", filters=(("feature", ("alerts",)),)) == pytest.approx(10)
    # a 20-minute gap splits u4's 29-minute session: minutes 25, 5, 20, 0, 0 → median 5.
    assert with_params(engine, "time_in_product_minutes", {"session_gap_minutes": 20}) == pytest.approx(5)


# Health at Oct 31 of the accounts paying then (C1, C3, C4, C5, C6, C8):
#   usage: active days Oct 4–31 vs Aug 9–Oct 3: C1 1 vs 2 → (1.5)/(1.5) → 100; C3, C4, C5 recent only → 100;
#          C6, C8 no events → 0.
#   tickets in 90 days: C1 2 → 80; C3, C4, C5 1 → 90; C6, C8 → 100.
#   NPS mean ×10: C1 (10, 0) 50; C3 90; C4 70; C6 60; C8 90; C5 none (weights rescaled).
HEALTH = {
    "C1": 0.5 * 100 + 0.2 * 80 + 0.3 * 50, "C3": 0.5 * 100 + 0.2 * 90 + 0.3 * 90,
    "C4": 0.5 * 100 + 0.2 * 90 + 0.3 * 70, "C5": (0.5 * 100 + 0.2 * 90) / 0.7,
    "C6": 0.2 * 100 + 0.3 * 60, "C8": 0.2 * 100 + 0.3 * 90,
}


def test_health_by_hand(engine):
    assert value(engine, "health_score") == pytest.approx(sum(HEALTH.values()) / 6)
    assert value(engine, "at_risk_accounts") == 1  # C6 (38)
    assert with_params(engine, "at_risk_accounts", {"health_at_risk_below": 50}) == 2  # and C8 (47)
    # Upsell: healthy, usage not falling and ≥ 3 features in 28 days: only C4.
    assert value(engine, "upsell_eligible_accounts") == 1
    split = engine.query("health_score", [OCT], dimension="segment").set_index("segment")["value"]
    assert split["Enterprise"] == pytest.approx(HEALTH["C4"])
    no_nps = {"health_weight_nps": 0.0}
    assert with_params(engine, "health_score", no_nps) == pytest.approx(
        sum((0.5 * u + 0.2 * t) / 0.7 for u, t in [(100, 80), (100, 90), (100, 90), (100, 90), (0, 100), (0, 100)]) / 6)


def test_account_health_lists_the_accounts(engine):
    from kpitree.usage import account_health

    table = account_health(engine, OCT)
    assert list(table["account_id"])[:2] == ["C6", "C8"]  # least healthy first
    assert table.set_index("account_id")["health"].to_dict() == pytest.approx(HEALTH)


def test_gross_margin_is_a_parameter(engine):
    assert with_params(engine, "ltv", {"gross_margin": 0.5}) == pytest.approx(ARPA * 0.5 * 12)
    assert with_params(engine, "cac_payback_months", {"gross_margin": 0.5}) == pytest.approx(CAC / (ARPA * 0.5))
    settings_ = Settings(gross_margin=0.7, extra={"health_weight_nps": 0.4, "health_ticket_cap": "ten"})
    assert dict(metric_params(settings_)) == {"gross_margin": 0.7, "health_weight_nps": 0.4}


def test_filters_apply_to_every_table_with_the_column(engine):
    organic = (("channel", ("Organic",)),)
    assert value(engine, "roas", filters=organic) == pytest.approx((12000 + 6000) / 1000)  # D1 + D4
    assert value(engine, "cac", filters=organic) == pytest.approx(1000 / 1)  # A1
    split = engine.query("roas", [OCT], dimension="channel").set_index("segment")["value"]
    assert split["Organic"] == pytest.approx(18) and split["Paid Search"] == 0 and pd.isna(split["Outbound"])
    # Ann's coverage: her pipeline at Oct 1 (D1, D2, D7: 24000) over her quota (30000), not everyone's.
    assert value(engine, "pipeline_coverage", filters=(("owner", ("Ann",)),)) == pytest.approx(0.8)
    with pytest.raises(QueryError, match="cannot filter 'roas' on 'plan'"):
        value(engine, "roas", filters=(("plan", ("Pro",)),))


def test_per_dimension_variants(engine):
    leads = engine.query("leads", [OCT], dimension="channel").set_index("segment")["value"]
    assert leads.to_dict() == {"Organic": 2.0, "Paid Search": 1.0}
    win = engine.query("win_rate", [OCT], dimension="owner").set_index("segment")["value"]
    assert win["Ann"] == pytest.approx(1 / 2) and win["Bob"] == pytest.approx(2 / 3)
    assert value(engine, "ps_utilization", filters=(("owner", ("Iris",)),)) == pytest.approx(6 / 8)


def test_a_missing_table_means_no_data(tmp_path):
    ws = make_workspace(tmp_path, subscriptions=SUBSCRIPTIONS)
    engine = Engine(ws)
    tree, problems = parse_yaml("""
nodes:
  - {id: mrr, label: MRR, level: 1, metric: mrr, owner: CEO, target: 400, children: [util, health]}
  - {id: util, label: Utilization, level: 2, metric: ps_utilization, owner: PS lead, target: 0.7}
  - {id: health, label: Health, level: 2, metric: health_score, owner: CS lead, target: 70}
""")
    assert tree is not None, problems
    result = evaluate_tree(engine, tree, OCT)
    assert [(n.id, n.status) for n in result.nodes] == [("mrr", "green"), ("util", "no_data"), ("health", "no_data")]
    example = worked_example(engine, "health_score", OCT)
    assert example.value is None and set(example.missing) == {"events", "tickets", "nps"}


def test_a_profile_lists_small_value_sets_and_only_a_listed_set_shows_a_value_is_absent():
    con = duckdb.connect()
    con.execute("CREATE TABLE deals AS SELECT 'D' || i AS deal_id, CASE WHEN i % 2 = 0 THEN 'won' ELSE 'lost' END "
                "AS status, 'new' AS deal_type, ' ' AS channel, i * 10.0 AS amount FROM range(100) r(i)")
    cols = {"deals": ["deal_id", "status", "deal_type", "channel", "amount"]}
    data = read_profile(con, cols)
    assert data.rows == {"deals": 100} and data.filled["deals"]["channel"] == 0
    assert data.distinct("deals", "status") == ("lost", "won") and data.distinct("deals", "deal_type") == ("new",)
    assert 100 > SMALL_VALUES and data.distinct("deals", "deal_id") is None  # a name or an id: not listed
    assert data.distinct("deals", "amount") is None and data.distinct("deals", "channel") is None
    assert data.holds("deals", "deal_id", ["D999"])  # too many to tell: nothing concluded
    assert not data.holds("deals", "deal_type", ["expansion"]) and data.holds("deals", "status", ["won", "open"])
    assert read_profile(con, cols, small=0).values == {"deals": {}}

    assert ("deals", "deal_type", ("expansion",)) in picks(metric("expansion_arr"))
    assert ("deals", "status", ("lost",)) in picks(metric("win_rate"))  # over won deals only it is 100 %
    lacking = missing_data(metric("expansion_arr"), data)
    assert lacking is not None and lacking.absent == (Absent("deals", "deal_type", ("expansion",), ("new",)),)
    assert lacking.reason().startswith("needs deals with deal_type = expansion — none of your deals has it")
    assert missing_data(metric("new_arr"), data) is None  # new or expansion: the new deals are there
    assert missing_data(metric("expansion_arr"), Profile(data.rows, data.filled)) is None  # values not read


def test_worked_example_uses_the_workspace_parameters(engine):
    ex = worked_example(engine, "ltv", OCT)
    assert ex.value == pytest.approx(LTV)
    assert ex.components["active"] == 6 and ex.components["margin_mrr"] == pytest.approx(440 * 0.8)


# --- the catalogue documents itself ----------------------------------------------------------------


def test_every_metric_is_documented():
    grouped = [n for names in GROUPS.values() for n in names]
    assert sorted(grouped) == sorted(BUILTIN)
    for name in BUILTIN:
        doc = describe(name)
        assert doc.formula == FORMULAS[name] and doc.definition and doc.columns, name
        assert all(p.name in PARAMETERS for p in doc.parameters)
    assert describe("ltv").parameters[0].default == 0.8
    assert {p.name for p in describe("health_score").parameters} >= {"health_weight_usage", "health_weight_nps"}
    assert set(BENCHMARKS) == {"ltv_cac", "dau_mau", "first_response_hours", "feature_adoption"}
    assert describe("sql_to_won_rate").columns["deals"] == ("deal_id", "status")


NEW = ["renewal_arr", "health_checks_per_csm_week", "ltv", "cac", "ltv_cac", "cac_payback_months", "magic_number",
       "roas", "tickets_opened", "mttr_hours", "first_response_hours", "nps", "dau", "wau", "mau", "dau_mau",
       "feature_adoption", "time_in_product_minutes", "time_to_first_value_days", "health_score",
       "at_risk_accounts", "upsell_eligible_accounts", "ps_utilization"]


def test_the_explanation_can_recompute_every_new_value(engine):
    """explain evaluates value expressions on components in memory: they must agree with SQL, and
    metrics with parameters must take its catalogue-query path (not raw finest cells)."""
    explain = pytest.importorskip("kpitree.explain")
    ValueFn, _cells_ok = explain.ValueFn, explain._cells_ok  # noqa: N806

    for name in NEW:
        m = CATALOGUE[name]
        row = engine.query(name, [OCT]).iloc[0]
        again = float(ValueFn(m.value, m.components)({c: row[c] for c in m.components}))
        assert again == pytest.approx(float(row["value"]), rel=1e-12), name
        if m.parameters:
            assert not _cells_ok(m), name


# --- identities on any data (hypothesis) -----------------------------------------------------------

BASE = date(2026, 3, 1)
WEEKS = (parse_period("2026-W10"), parse_period("2026-W11"), parse_period("2026-W12"))
MONTHS = (parse_period("2026-03"), parse_period("2026-04"))


def _con(**frames: pd.DataFrame) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for name, frame in frames.items():
        con.register(f"{name}_frame", frame)
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM {name}_frame")
    return con


def _values(con, name: str, periods, filters=()) -> pd.Series:
    return compute(con, MetricQuery(name, periods, date(2026, 12, 31), None, filters)).set_index("pkey")["value"]


event = st.tuples(st.sampled_from(["u1", "u2", "u3", "u4"]), st.sampled_from(["A", "B"]), st.integers(0, 60 * 24 * 50),
                  st.sampled_from(["x", "y", "z"]))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(event, min_size=1, max_size=25))
def test_active_users_identities(rows):
    frame = pd.DataFrame([{"user_id": u, "account_id": a, "timestamp": pd.Timestamp(BASE) + pd.Timedelta(minutes=m),
                           "feature": f} for u, a, m, f in rows])
    con = _con(events=frame)
    periods = WEEKS + MONTHS
    names = ["dau", "wau", "mau", "feature_adoption"]
    got = compute_many(con, MetricQuery("dau", periods, date(2026, 12, 31)), names)
    # A period without any event has no value (evaluate reports no data); as counts, that is 0.
    dau, wau, mau, adoption = (got[n].set_index("pkey")["value"].fillna(0.0) for n in names)
    one = _values(con, "feature_adoption", periods, (("feature", ("x",)),)).fillna(0.0)
    for p in WEEKS:  # a week is its own 7-day window, inside the 30 days ending with it
        assert dau[p.key] <= wau[p.key] + 1e-12 and wau[p.key] <= mau[p.key]
    for p in periods:
        assert wau[p.key] <= mau[p.key]
        assert 0 <= adoption[p.key] <= 1 and 0 <= one[p.key] <= 1


deal = st.tuples(st.integers(0, 80), st.integers(0, 60), st.sampled_from(["won", "lost", "open"]),
                 st.sampled_from(["new", "expansion", "renewal"]), st.sampled_from(["SMB", "Enterprise"]))
lead = st.tuples(st.integers(0, 80), st.one_of(st.none(), st.integers(0, 20)), st.one_of(st.none(), st.integers(0, 20)),
                 st.booleans(), st.integers(0, 9))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(deal, min_size=1, max_size=10), st.lists(lead, min_size=1, max_size=12))
def test_funnel_rates_are_shares(deals, leads):
    day = lambda n: BASE + timedelta(days=n)  # noqa: E731
    d = pd.DataFrame([{"deal_id": f"D{i}", "account_id": f"A{i % 3}", "owner": "o", "created_date": day(c),
                       "close_date": day(c + n), "stage": "s", "status": s, "amount": 1000.0, "deal_type": t,
                       "segment": g, "channel": "c", "services_amount": 0.0}
                      for i, (c, n, s, t, g) in enumerate(deals)])
    ls = pd.DataFrame([{"lead_id": f"L{i}", "created_date": day(c), "channel": "c", "owner": "o", "segment": "s",
                        "mql_date": None if m is None else day(c + m),
                        "sql_date": None if m is None or q is None else day(c + m + q),
                        "deal_id": f"D{k % len(deals)}" if has else None}
                       for i, (c, m, q, has, k) in enumerate(leads)])
    ls["mql_date"] = pd.to_datetime(ls["mql_date"])
    ls["sql_date"] = pd.to_datetime(ls["sql_date"])
    con = _con(deals=d, leads=ls)
    for names in (["win_rate", "ps_attach_rate"], ["lead_to_opp_rate", "mql_to_sql_rate", "sql_to_won_rate"]):
        for name, df in compute_many(con, MetricQuery(names[0], MONTHS, date(2026, 12, 31)), names).items():
            assert all(pd.isna(v) or 0 <= v <= 1 for v in df["value"]), name
