"""No false reds from immature cohorts, and pipeline coverage that reads alike at every grain.

The cohorts below are built so that every figure can be checked by hand: two earlier cohorts of
60 MQLs converted 60 % of their conversions by day 5 and all of them by day 30; the latest cohort is
5 days old on the as-of day.
"""

from __future__ import annotations

import pandas as pd
import pytest
from conftest import make_workspace

from kpitree.charts import box_value_line, legend_html, tree_frame, waterfall_chart
from kpitree.evaluate import GREEN, MATURING, RED, Engine, evaluate_tree
from kpitree.layout import layout_tree
from kpitree.metrics import MIN_COMPLETION, MIN_EFFECTIVE, MIN_HISTORY, Maturity, metric
from kpitree.periods import parse_period
from kpitree.tree import parse_yaml

AS_OF = "2026-11-20"  # a Friday: the latest complete week is 2026-W46, Mon 9 – Sun 15 November
LEAD_HEADER = "lead_id,created_date,channel,owner,segment,mql_date,sql_date,deal_id"
DEAL_HEADER = "deal_id,account_id,owner,created_date,close_date,stage,status,amount,deal_type,segment,channel"


def _cohort(prefix: str, day: str, size: int, lags: list[int]) -> tuple[list[str], list[str]]:
    """`size` leads created (and MQL'd) on `day`; the first len(lags) become an SQL and an
    opportunity (a deal created that day) `lag` days later, the rest never convert."""
    from datetime import date, timedelta

    start = date.fromisoformat(day)
    leads, deals = [], []
    for i in range(size):
        if i < len(lags):
            done = (start + timedelta(days=lags[i])).isoformat()
            leads.append(f"{prefix}{i},{day},Organic,Sam,SMB,{day},{done},D{prefix}{i}")
            deals.append(f"D{prefix}{i},A{prefix}{i},Ann,{done},2027-03-01,Proposal,open,1000,new,SMB,Organic")
        else:
            leads.append(f"{prefix}{i},{day},Organic,Sam,SMB,{day},,")
    return leads, deals


def _files(cohorts: list[tuple[str, str, int, list[int]]]) -> dict[str, str]:
    leads, deals = [LEAD_HEADER], [DEAL_HEADER]
    for c in cohorts:
        more_leads, more_deals = _cohort(*c)
        leads += more_leads
        deals += more_deals
    return {"leads": "\n".join(leads) + "\n", "deals": "\n".join(deals) + "\n"}


# Earlier cohorts A (1 Sep) and B (1 Oct): 60 MQLs, 30 convert — 18 on day 5 (60 % of them), 12 on
# day 30 (100 %): a final rate of 50 %. The latest cohort C (15 Nov, 5 days old): 60 MQLs, 9 converted
# on day 3, 15 % so far.
EARLIER = [18 * [5] + 12 * [30]]
COHORTS = [("A", "2026-09-01", 60, EARLIER[0]), ("B", "2026-10-01", 60, EARLIER[0]), ("C", "2026-11-15", 60, 9 * [3])]

TREE = """
name: funnel
nodes:
  - id: sqls
    level: 1
    metric: mql_to_sql_rate
    owner: CMO
    target: {target}
    children: [opps]
  - id: opps
    level: 2
    metric: lead_to_opp_rate
    owner: CMO
    target: {target}
"""


def _workspace(tmp_path_factory, name: str, cohorts) -> Engine:
    ws = make_workspace(tmp_path_factory.mktemp(name), **_files(cohorts))
    settings = ws.settings()
    settings.as_of = AS_OF
    ws.save_settings(settings)
    return Engine(ws)


def _tree(target: float):
    tree, problems = parse_yaml(TREE.format(target=target))
    assert not [p for p in problems if p.severity == "error"]
    return tree


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    return _workspace(tmp_path_factory, "cohorts", COHORTS)


def test_the_latest_week_is_judged_on_its_expected_final_value(engine):
    """By hand: every conversion seen has a lag of 3, 5 or 30 days, so the horizon (99 %) is 30 days
    and the reference cohorts are A and B (80 and 50 days old), whose 60 conversions are 36 by day 5
    (F(5) = 0.6) and 60 by day 30 (usual lag = 30 days). C's 60 rows are all 5 days old: completion
    0.6, effective 60 × 0.6 = 36 ≥ 30, expected final = 15 % / 0.6 = 25 %."""
    week = parse_period("2026-W46")
    evaluation = evaluate_tree(engine, _tree(0.24), week)
    for node_id in ("sqls", "opps"):
        n = evaluation.node(node_id)
        assert n.value == pytest.approx(9 / 60)
        assert n.maturing is True
        assert n.completion == pytest.approx(0.6)
        assert n.usual_lag == 30
        assert n.expected_final == pytest.approx(0.25)
        assert n.status == GREEN  # 15 % against 24 % would be red; 25 % expected is on target
        assert n.judged == pytest.approx(0.25) and n.gap == pytest.approx(0.01)
    grown = engine.maturity(_tree(0.24).node("sqls"), week)
    assert grown == Maturity(True, pytest.approx(0.6), 30, 60, pytest.approx(36.0))


def test_a_maturing_cohort_below_target_is_still_red(engine):
    """Maturity removes the false red, not a true one: 25 % expected against 30 % is red."""
    n = evaluate_tree(engine, _tree(0.30), parse_period("2026-W46")).node("opps")
    assert n.maturing and n.expected_final == pytest.approx(0.25) and n.status == RED


@pytest.mark.parametrize("key, value", [("2026-09", 0.5), ("2026-10", 0.5), ("2026-Q3", 0.5)])
def test_an_old_enough_cohort_is_not_maturing(engine, key, value):
    """September's cohort is 80 days old and October's 50, both past the usual 30 days: final."""
    n = evaluate_tree(engine, _tree(0.24), parse_period(key)).node("sqls")
    assert n.value == pytest.approx(value)
    assert n.maturing is False and n.expected_final is None and n.completion is None
    assert n.status == GREEN and n.judged == n.value


def test_too_little_history_shows_maturing_without_an_expected_value(tmp_path_factory):
    """Only 5 earlier conversions (< MIN_HISTORY): no curve to expect a final value from, but the 90 %
    lag of the conversions seen (3 × 9, 5 × 3, 30 × 2 → 30 days) still says the week is young."""
    assert MIN_HISTORY > 5
    engine = _workspace(tmp_path_factory, "thin", [("A", "2026-09-01", 10, [5, 5, 5, 30, 30]), COHORTS[2]])
    n = evaluate_tree(engine, _tree(0.24), parse_period("2026-W46")).node("sqls")
    assert n.maturing is True and n.expected_final is None and n.status == MATURING
    assert n.gap is None
    assert box_value_line(n) == "15.0% so far / 24.0%"


def test_too_few_rows_old_enough_give_no_expected_value(tmp_path_factory):
    """A latest cohort of 20 MQLs at 60 % completion counts as 12 rows' worth (< MIN_EFFECTIVE)."""
    assert 20 * 0.6 < MIN_EFFECTIVE
    engine = _workspace(tmp_path_factory, "small", [*COHORTS[:2], ("C", "2026-11-15", 20, 3 * [3])])
    n = evaluate_tree(engine, _tree(0.24), parse_period("2026-W46")).node("sqls")
    assert n.maturing and n.completion == pytest.approx(0.6) and n.expected_final is None and n.status == MATURING


def test_an_expected_value_needs_half_of_the_usual_conversions():
    """Below half (the demo's backtest: 10–50 % off there), too early to tell; from half, value / share."""
    assert MIN_COMPLETION == 0.5
    assert Maturity(True, 0.49, 30, 100, 400.0).expected(0.1) is None
    assert Maturity(True, 0.5, 30, 100, 400.0).expected(0.1) == pytest.approx(0.2)
    assert Maturity(True, 0.5, 30, 100, 400.0).expected(0.7) == 1.0  # a share never passes 100 %
    assert Maturity(False, 0.5, 30, 100, 400.0).expected(0.1) is None  # mature: the value stands


def test_lead_to_opportunity_needs_the_deals_for_its_lags(tmp_path_factory):
    """Without deals the day a lead became an opportunity is unknown: its value is judged as it is."""
    ws = make_workspace(tmp_path_factory.mktemp("nodeals"), leads=_files(COHORTS)["leads"])
    settings = ws.settings()
    settings.as_of = AS_OF
    ws.save_settings(settings)
    evaluation = evaluate_tree(Engine(ws), _tree(0.24), parse_period("2026-W46"))
    assert evaluation.node("opps").maturing is False and evaluation.node("opps").status == RED
    assert evaluation.node("sqls").maturing is True  # its own sql_date says when


def test_the_catalogue_marks_cohort_rates():
    marked = {n for n in ("lead_to_opp_rate", "mql_to_sql_rate", "sql_to_won_rate", "opp_win_rate", "win_rate",
                          "leads") if metric(n).cohort is not None}
    assert marked == {"lead_to_opp_rate", "mql_to_sql_rate", "sql_to_won_rate", "opp_win_rate"}
    assert "expected final value" in metric("lead_to_opp_rate").definition


def test_the_box_and_the_tooltip_say_maturing(engine):
    tree = _tree(0.24)
    evaluation = evaluate_tree(engine, tree, parse_period("2026-W46"))
    n = evaluation.node("opps")
    assert box_value_line(n) == "≈25.0% / 24.0%"
    rows = tree_frame(layout_tree(tree, max_width=440), evaluation).set_index("id")
    assert rows.loc["opps", "value_text"] == ("15.0% so far — maturing — expected ≈ 25.0% "
                                              "(60% of the usual conversions so far)")
    assert "≈" in legend_html("target") and "maturing" in legend_html("target")
    # an old period's box is the plain value against target
    old = evaluate_tree(engine, tree, parse_period("2026-10")).node("opps")
    assert box_value_line(old) == "50.0% / 24.0%"


# --- pipeline coverage over a fixed one-month horizon -----------------------------------------

FLAT_DEALS = DEAL_HEADER + """
D1,A1,Ann,2025-12-01,2027-06-01,Proposal,open,124000,new,SMB,Organic
D2,A2,Ann,2026-12-20,2026-12-20,Closed Lost,lost,5000,new,SMB,Organic
"""
FLAT_QUOTAS = """owner,period,quota
Ann,2026,365000
"""
COVERAGE_TREE = """
name: coverage
nodes:
  - id: coverage
    level: 1
    metric: pipeline_coverage
    owner: CRO
    target: 3.5
"""


@pytest.mark.parametrize("key", ["2026-W41", "2026-10", "2026-Q4"])
def test_coverage_of_a_flat_pipeline_is_the_same_at_every_grain(tmp_path_factory, key):
    """One open deal of $124,000 all year (D2, decided on the day it was created in December, only
    makes the deals log reach past the periods); a yearly quota of $365,000 is $1,000 a day. Each period's
    horizon is the month from its first day — week 41 (Mon 5 Oct) Oct 5 – Nov 4, October and Q4
    Oct 1 – 31: 31 days, $31,000 — so coverage is 124,000 / 31,000 = 4.0× at every grain (over the
    quota of P itself it was 17.7×, 4.0× and 1.3×) and one 3.5× target judges all three alike."""
    ws = make_workspace(tmp_path_factory.mktemp("flat"), deals=FLAT_DEALS, quotas=FLAT_QUOTAS)
    settings = ws.settings()
    settings.as_of = "2026-12-31"
    ws.save_settings(settings)
    tree, _ = parse_yaml(COVERAGE_TREE)
    n = evaluate_tree(Engine(ws), tree, parse_period(key)).node("coverage")
    assert n.value == pytest.approx(4.0)
    assert n.status == GREEN


def test_coverage_says_its_horizon():
    assert "one-month horizon at every grain" in metric("pipeline_coverage").definition


# --- waterfall colours ------------------------------------------------------------------------


def test_waterfall_colours_steps_by_whether_they_help():
    """Churn (lower is better): a fall helps (green), a rise hurts (red); for ARR the other way."""
    def kinds(direction: str) -> list[str]:
        spec = waterfall_chart("target", 100.0, [("a", -30.0), ("b", 10.0)], "actual", "money",
                               direction=direction).to_dict()
        return [r["kind"] for r in spec["datasets"][spec["data"]["name"]]]

    assert kinds("lower") == ["total", "helps", "hurts", "total"]
    assert kinds("higher") == ["total", "hurts", "helps", "total"]
    spec = waterfall_chart("target", 100.0, [("a", -30.0)], "actual", "money", direction="lower").to_dict()
    scale = spec["layer"][0]["encoding"]["color"]["scale"]
    assert dict(zip(scale["domain"], scale["range"], strict=True)) == {
        "total": "#607d8b", "helps": "#2e7d32", "hurts": "#c62828"}


def test_a_waterfall_without_a_baseline_draws_its_steps_from_zero():
    """No target anywhere: no baseline to start from, the parts still read (no TypeError on a page)."""
    spec = waterfall_chart("target", None, [("a", -30.0), ("b", 10.0)], "actual", "money").to_dict()
    rows = spec["datasets"][spec["data"]["name"]]
    assert [(r["step"], r["lo"], r["hi"], r["kind"]) for r in rows] == [
        ("a", -30.0, 0.0, "hurts"), ("b", -30.0, -20.0, "helps")]


def test_the_trend_shows_where_a_maturing_week_is_expected_to_end(engine):
    from kpitree.charts import trend_chart
    from kpitree.evaluate import trend

    tree = _tree(0.24)
    frame = trend(engine, tree, "sqls", parse_period("2026-W46"), 12).set_index("period")
    assert frame.loc["2026-W46", "value"] == pytest.approx(0.15)
    assert frame.loc["2026-W46", "expected"] == pytest.approx(0.25)
    assert frame.loc["2026-W40", "value"] == pytest.approx(0.5) and pd.isna(frame.loc["2026-W40", "expected"])
    spec = trend_chart(frame.reset_index(), "percent").to_dict()
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["line", "line", "rule", "point"]
    ring = spec["datasets"][spec["layer"][3]["data"]["name"]]
    assert [(r["period"], r["expected_text"]) for r in ring] == [("2026-W46", "25.0%")]


def test_deals_created_in_a_week_are_judged_on_their_expected_win_rate(tmp_path_factory):
    """The same cohorts as deals: created on the cohort day, won `lag` days later, the rest still
    open — so, as for the leads, 9 / 60 won so far is 15 % and 0.15 / 0.6 = 25 % expected."""
    from datetime import date, timedelta

    lines = [DEAL_HEADER]
    for prefix, day, size, lags in COHORTS:
        start = date.fromisoformat(day)
        for i in range(size):
            if i < len(lags):
                won = (start + timedelta(days=lags[i])).isoformat()
                lines.append(f"{prefix}{i},A{i},Ann,{day},{won},Closed Won,won,1000,new,SMB,Organic")
            else:
                lines.append(f"{prefix}{i},A{i},Ann,{day},2027-03-01,Proposal,open,1000,new,SMB,Organic")
    ws = make_workspace(tmp_path_factory.mktemp("deals"), deals="\n".join(lines) + "\n")
    settings = ws.settings()
    settings.as_of = AS_OF
    ws.save_settings(settings)
    tree, _ = parse_yaml("name: d\nnodes:\n  - {id: win, level: 1, metric: opp_win_rate, owner: CRO, target: 0.24}\n")
    engine = Engine(ws)
    n = evaluate_tree(engine, tree, parse_period("2026-W46")).node("win")
    assert n.value == pytest.approx(0.15) and n.maturing and n.expected_final == pytest.approx(0.25)
    assert n.status == GREEN
    old = evaluate_tree(engine, tree, parse_period("2026-09")).node("win")
    assert old.value == pytest.approx(0.5) and not old.maturing


def test_sqls_are_judged_on_their_expected_wins(tmp_path_factory):
    """SQL → won: the SQLs of each cohort day, their deal won `lag` days later (its close_date), the
    same counts as above: 15 % won so far, 25 % expected for the 5-day-old week."""
    from datetime import date, timedelta

    leads, deals = [LEAD_HEADER], [DEAL_HEADER]
    for prefix, day, size, lags in COHORTS:
        start = date.fromisoformat(day)
        for i in range(size):
            leads.append(f"{prefix}{i},{day},Organic,Sam,SMB,{day},{day},D{prefix}{i}")
            if i < len(lags):
                won = (start + timedelta(days=lags[i])).isoformat()
                deals.append(f"D{prefix}{i},A{i},Ann,{day},{won},Closed Won,won,1000,new,SMB,Organic")
            else:
                deals.append(f"D{prefix}{i},A{i},Ann,{day},2027-03-01,Proposal,open,1000,new,SMB,Organic")
    ws = make_workspace(tmp_path_factory.mktemp("sqls"), leads="\n".join(leads) + "\n", deals="\n".join(deals) + "\n")
    settings = ws.settings()
    settings.as_of = AS_OF
    ws.save_settings(settings)
    tree, _ = parse_yaml("name: s\nnodes:\n  - {id: won, level: 1, metric: sql_to_won_rate, owner: CRO, target: 0.24}\n")
    n = evaluate_tree(Engine(ws), tree, parse_period("2026-W46")).node("won")
    assert n.value == pytest.approx(0.15) and n.maturing and n.expected_final == pytest.approx(0.25)
    assert n.status == GREEN


# --- journeys and first value are cohorts too -------------------------------------------------------
#
# Journey a → b (14-day window): cohorts A (1 Sep) and B (1 Oct) of 60 users each, 18 finishing on day 2
# and 12 on day 10 (final 50 %, F(2) = 0.6, usual lag 10 days); the latest cohort C (15 November, 5 days
# old on the as-of day): 60 users, 9 finished on day 2 so far (15 %).
# First value: customers A (1 Sep) and B (1 Oct), 60 each, 36 with a first event on day 2 and 24 on day
# 10 (mean 5.2 days); C (15 November): 60 customers, 36 with a first event on day 3, 24 without one yet.

JOURNEY_TREE = """
name: product
nodes:
  - id: journey
    level: 1
    metric: journey_completion
    filter: {feature: [a, b]}
    owner: PM
    target: 0.24
    children: [ttfv]
  - id: ttfv
    level: 2
    metric: time_to_first_value_days
    owner: PM
    target: 5.5
"""


def _product_files() -> dict[str, str]:
    from datetime import date, timedelta

    events, subs = ["user_id,account_id,timestamp,feature"], ["customer_id,start_date,end_date,mrr,plan,segment,channel"]
    for name, day, finished in (("A", "2026-09-01", 18 * [2] + 12 * [10]), ("B", "2026-10-01", 18 * [2] + 12 * [10]),
                                ("C", "2026-11-15", 9 * [2])):
        start = date.fromisoformat(day)
        for i in range(60):
            events.append(f"J{name}{i},,{start}T10:00:00,a")
            if i < len(finished):
                events.append(f"J{name}{i},,{start + timedelta(days=finished[i])}T11:00:00,b")
    for name, day, lags in (("A", "2026-09-01", 36 * [2] + 24 * [10]), ("B", "2026-10-01", 36 * [2] + 24 * [10]),
                            ("C", "2026-11-15", 36 * [3])):
        start = date.fromisoformat(day)
        for i in range(60):
            subs.append(f"{name}{i},{start},,100,Pro,SMB,Organic")
            if i < len(lags):
                events.append(f"U{name}{i},{name}{i},{start + timedelta(days=lags[i])}T09:00:00,x")
    return {"events": "\n".join(events) + "\n", "subscriptions": "\n".join(subs) + "\n"}


@pytest.fixture(scope="module")
def product(tmp_path_factory):
    ws = make_workspace(tmp_path_factory.mktemp("product"), **_product_files())
    settings = ws.settings()
    settings.as_of = AS_OF
    ws.save_settings(settings)
    tree, problems = parse_yaml(JOURNEY_TREE)
    assert not [p for p in problems if p.severity == "error"]
    return Engine(ws), tree


def test_the_catalogue_marks_journeys_and_first_value_as_cohorts():
    assert metric("journey_completion").cohort is not None and metric("journey_completion").cohort.measure == "share"
    assert metric("time_to_first_value_days").cohort.measure == "mean_lag"
    assert "expected final value" in metric("journey_completion").definition
    assert "expected final mean" in metric("time_to_first_value_days").definition


def test_a_young_journey_cohort_is_judged_on_its_expected_completion(product):
    """Lags seen 2 and 10 days: horizon 10, reference cohorts A and B (36 of 60 by day 2: F(5) = 0.6,
    usual lag 10). C is 5 days old: completion 0.6, effective 36, expected 15 % / 0.6 = 25 % ≥ 24 %."""
    engine, tree = product
    n = evaluate_tree(engine, tree, parse_period("2026-W46")).node("journey")
    assert n.value == pytest.approx(9 / 60)
    assert n.maturing and n.usual_lag == 10 and n.completion == pytest.approx(0.6)
    assert n.expected_final == pytest.approx(0.25) and n.status == GREEN  # 15 % alone would be red
    old = evaluate_tree(engine, tree, parse_period("2026-09")).node("journey")
    assert old.value == pytest.approx(0.5) and not old.maturing and old.status == GREEN


def test_a_young_first_value_cohort_is_not_green_for_leaving_the_slow_out(product):
    """C's 36 customers with an event took 3 days (value 3.0, green against 5.5 as it stands). By the
    reference curve (36 of 60 first events by day 2, the rest on day 10) 60 % of them should have one
    at age 5: p = 36 / 36 = 1, so each of the 24 without one gets it with chance 1 × 0.4 / (1 − 0.6) = 1,
    on day 10 (the reference lags beyond 5): expected (36 × 3 + 24 × 10) / 60 = 5.8 days, red against
    5.5 (amber up to 5.775)."""
    engine, tree = product
    n = evaluate_tree(engine, tree, parse_period("2026-W46")).node("ttfv")
    assert n.value == pytest.approx(3.0)
    assert n.maturing and n.usual_lag == 10 and n.completion == pytest.approx(0.6)
    assert n.expected_final == pytest.approx(5.8) and n.status == RED
    grown = engine.maturity(tree.node("ttfv"), parse_period("2026-W46"))
    assert (grown.done, grown.pending, grown.pending_lag) == (36, pytest.approx(24.0), pytest.approx(240.0))
    old = evaluate_tree(engine, tree, parse_period("2026-09")).node("ttfv")
    assert old.value == pytest.approx(5.2) and not old.maturing and old.status == GREEN


def test_the_expected_mean_time_weighs_open_rows_by_their_chance():
    """p below 1: 30 of 60 done where 36 were expected (p = 30 / 36); an open row at F = 0.6 completes
    with chance (5/6 × 0.4) / (1 − 5/6 × 0.6) = 2/3 — the SQL's `pending` — and the value follows."""
    grown = Maturity(True, 0.6, 10, 120, 36.0, "mean_lag", 30, 30 * 2 / 3, 30 * 2 / 3 * 10)
    assert grown.expected(2.0) == pytest.approx((2 * 30 + 200) / 50)  # 5.2 days
    assert Maturity(True, 0.4, 10, 120, 36.0, "mean_lag", 30, 20.0, 200.0).expected(2.0) is None  # too early
    assert Maturity(True, 0.6, 10, 120, 36.0, "share", 30, 20.0, 200.0).expected(0.1) == pytest.approx(0.1 / 0.6)
