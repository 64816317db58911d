"""A running period's stock and building-up rates are judged against the target planned by now.

Every expected number below is worked out by hand in the comment beside it (the subscriptions are
test_metrics.SUBSCRIPTIONS: ARR is 12 × 650 = 7,800 at the end of September, 12 × 440 = 5,280 at the
end of October, 12 × 530 = 6,360 on 15 November once C7 started; nothing before 2026).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import date

import pytest
from conftest import ROOT, make_workspace
from test_metrics import SUBSCRIPTIONS

from kpitree.evaluate import AMBER, GREEN, OPENING_STOCKS, RED, evaluate_tree, status_of, target_by_now
from kpitree.metrics import CATALOGUE, Kind
from kpitree.periods import parse_period
from kpitree.targets import path_level, rate_by_now, rate_scale
from kpitree.tree import parse_yaml

AS_OF = "2026-11-15"  # day 15 of 30 of November, day 46 of 92 of Q4, day 319 of 365 of 2026


def _tree(arr_target: str, extra: str = "") -> str:
    return f"""
name: t
nodes:
  - id: arr
    level: 1
    metric: arr
    owner: CEO
    target: {arr_target}
    children: [arr_start, nrr, churn, expansion, win_rate, new_arr]
  - id: arr_start
    level: 2
    metric: arr_start
    owner: CEO
    target: 9000
  - id: nrr
    level: 2
    metric: nrr
    owner: CS
    target: 1.02
  - id: churn
    level: 2
    metric: logo_churn_rate
    owner: CS
    target: 0.02
  - id: expansion
    level: 2
    metric: expansion_rate
    owner: CS
    target: 0.01
  - id: win_rate
    level: 2
    metric: win_rate
    owner: CRO
    target: 0.3
  - id: new_arr
    level: 2
    metric: new_arr
    owner: CRO
    target: 1000
{extra}"""


def _parse(text: str):
    tree, problems = parse_yaml(text)
    assert not [p for p in problems if p.severity == "error"], problems
    return tree


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    ws = make_workspace(tmp_path_factory.mktemp("running"), subscriptions=SUBSCRIPTIONS)
    settings = ws.settings()
    settings.as_of = AS_OF
    ws.save_settings(settings)
    return ws


# --- the arithmetic ---------------------------------------------------------------------------------


def test_path_level_is_straight_between_points():
    points = [(0, 600.0), (90, 900.0), (120, 1000.0), (365, 1200.0)]
    assert path_level(points, 0) == (600.0, 0)
    assert path_level(points, 45) == (750.0, 0)  # halfway from 600 to 900
    assert path_level(points, 100)[0] == pytest.approx(900 + 100 * 10 / 30)  # 933.33, a third of 900 → 1000
    assert path_level(points, 100)[1] == 1
    assert path_level(points, 365) == (1200.0, 2)
    assert path_level(points, 400) == (1200.0, 3)  # past the end: the last level
    with pytest.raises(ValueError):
        path_level([], 3)


def test_rate_by_now_builds_up_on_each_rollups_scale():
    # NRR compounds: 102.9 % over a year is 1.029 ** 0.5 = 101.44 % halfway
    assert rate_by_now(1.029, "compound", 0.5) == pytest.approx(1.014396, abs=1e-6)
    # churn: 12 % a year keeps 88 %; halfway it keeps sqrt(0.88) = 93.81 %, i.e. 6.19 % churned
    assert rate_by_now(0.12, "churn", 0.5) == pytest.approx(1 - math.sqrt(0.88))
    assert rate_by_now(0.12, "sum", 0.25) == pytest.approx(0.03)
    assert rate_by_now(1.2, "compound", 0.0) == pytest.approx(1.0)  # nothing built up at the start
    assert rate_by_now(0.12, "churn", 1.0) == pytest.approx(0.12)
    assert rate_by_now(0.0, "compound", 0.5) is None  # a retention of 0 has no scale
    assert rate_by_now(1.0, "churn", 0.5) is None
    assert rate_scale(0.5, "churn") == pytest.approx(math.log(2))
    with pytest.raises(ValueError):
        rate_scale(0.5, "mean")


# --- the target by now, node by node -----------------------------------------------------------------


def test_stock_paced_linearly_from_the_opening_value():
    tree = _parse(_tree("{by_period: {2026: 1200}}"))
    got = target_by_now(tree.node("arr"), parse_period("2026"), date(2026, 4, 10), 600.0)
    # 10 April is day 31 + 28 + 31 + 10 = 100 of 365: 600 + 600 × 100 / 365
    assert got is not None and got.value == pytest.approx(600 + 600 * 100 / 365)
    assert "the 2025 close $600 → the 2026 target $1,200, 100 of 365 days in" in got.basis


def test_stock_paced_through_the_months_targets():
    tree = _parse(_tree("{by_period: {2026: 1200, 2026-03: 900, 2026-04: 1000}}"))
    got = target_by_now(tree.node("arr"), parse_period("2026"), date(2026, 4, 10), 600.0)
    # path: day 0 600, 31 March (day 90) 900, 30 April (day 120) 1000, 31 December 1200;
    # day 100 is 10 of the 30 days from March's 900 to April's 1000
    assert got is not None and got.value == pytest.approx(900 + 100 / 3)
    assert "the 2026-03 target $900 → the 2026-04 target $1,000, 10 of 30 days in" in got.basis
    # before the first month target: from the opening to March's target
    early = target_by_now(tree.node("arr"), parse_period("2026"), date(2026, 1, 31), 600.0)
    assert early is not None and early.value == pytest.approx(600 + 300 * 31 / 90)


def test_stock_starts_at_the_previous_target_whatever_it_closed_at():
    tree = _parse(_tree("{by_period: {2025: 3000, 2026: 9000}}"))
    # the plan's own path: 3,000 planned for the end of 2025, whether it closed at 2,000 or at nothing
    for close in (None, 2000.0):
        got = target_by_now(tree.node("arr"), parse_period("2026"), date(2026, 11, 15), close)
        assert got is not None and got.value == pytest.approx(3000 + 6000 * 319 / 365)  # 8,243.84
        assert "the 2025 target $3,000 → the 2026 target $9,000, 319 of 365 days in" in got.basis
    # nothing to start from at all: the period's target stands
    bare = _parse(_tree("{by_period: {2026: 9000}}"))
    assert target_by_now(bare.node("arr"), parse_period("2026"), date(2026, 11, 15), None) is None


def test_what_is_not_paced():
    tree = _parse(_tree("{by_period: {2026: 1200}}"))
    year, day = parse_period("2026"), date(2026, 4, 10)
    assert target_by_now(tree.node("arr"), parse_period("2026-03"), day, 600.0) is None  # closed
    assert target_by_now(tree.node("arr"), parse_period("2027"), day, 600.0) is None  # not started
    assert target_by_now(tree.node("arr_start"), year, day, 600.0) is None  # whole on the first day
    assert target_by_now(tree.node("win_rate"), year, day, 0.2) is None  # a mean rate stands as it is
    assert target_by_now(tree.node("new_arr"), year, day, 10.0) is None  # a flow is paced instead
    no_target = _parse(_tree("{by_period: {2024: 5}}"))  # a target for another year only
    assert target_by_now(no_target.node("arr"), year, day, 600.0) is None


def test_building_up_rates_take_the_elapsed_part_of_their_target():
    tree = _parse(_tree("{by_period: {2026: 1200}}"))
    q2, day = parse_period("2026-Q2"), date(2026, 5, 15)
    months = 1 + 15 / 31  # April whole, 15 of May's 31 days, nothing of June
    nrr = target_by_now(tree.node("nrr"), q2, day, None)
    assert nrr is not None and nrr.value == pytest.approx(1.02 ** months)  # 1.029828
    assert "what the 2026-Q2 target 106.1% compounds to over 49% of its course (by the monthly targets" in nrr.basis
    churn = target_by_now(tree.node("churn"), q2, day, None)
    assert churn is not None and churn.value == pytest.approx(1 - 0.98 ** months)  # 2.95 %
    expansion = target_by_now(tree.node("expansion"), q2, day, None)
    assert expansion is not None and expansion.value == pytest.approx(0.01 * months)


def test_a_rate_given_for_the_year_only_builds_up_by_elapsed_days():
    tree = _parse(_tree("{by_period: {2026: 1200}}").replace("target: 1.02", "target: {annual: 1.1}"))
    got = target_by_now(tree.node("nrr"), parse_period("2026"), date(2026, 7, 2), None)
    # 2 July is day 183 of 365: 1.1 ** (183 / 365) = 104.89 %
    assert got is not None and got.value == pytest.approx(1.1 ** (183 / 365))
    assert "by elapsed days; 183 of 365 days in" in got.basis


def test_monthly_retention_below_one_keeps_its_shape():
    # GRR decays: logs of 0.99 and 0.98 are negative, the shape still weights the months by them
    text = _tree("{by_period: {2026: 1200}}").replace("target: 1.02", "target: {by_period: {2026-04: 0.99, "
                                                     "2026-05: 0.98, 2026-06: 0.99}}")
    got = target_by_now(_parse(text).node("nrr"), parse_period("2026-Q2"), date(2026, 5, 15), None)
    assert got is not None and got.value == pytest.approx(0.99 * 0.98 ** (15 / 31))
    assert "by the monthly targets" in got.basis


def test_every_stock_is_placed():
    """A stock taken at the period's start is whole on its first day; every other one is a level at
    the end of P and is paced. A new stock metric must be placed (OPENING_STOCKS) on purpose."""
    stocks = {m.name for m in CATALOGUE.values() if m.kind is Kind.STOCK and not m.name.startswith(("custom", "journey_"))}
    assert OPENING_STOCKS <= stocks
    assert stocks - OPENING_STOCKS >= {"mrr", "arr", "active_customers", "wau", "mau", "at_risk_accounts",
                                       "upsell_eligible_accounts"}
    for name in OPENING_STOCKS:
        assert "start" in CATALOGUE[name].definition or "P−1" in CATALOGUE[name].definition


# --- end to end --------------------------------------------------------------------------------------


def test_running_month_judges_arr_against_the_target_by_now(ws):
    ev = evaluate_tree(ws, _parse(_tree("{by_period: {2026-11: 7000}}")), "2026-11")
    arr = ev.node("arr")
    assert arr.value == 6360.0 and arr.previous == 5280.0 and arr.target == 7000.0
    # 5,280 at October's close, 7,000 planned for 30 November: 5,280 + 1,720 × 15 / 30 = 6,140 by the 15th
    assert arr.target_by_now == pytest.approx(6140.0)
    assert arr.status == GREEN and arr.gap == pytest.approx(220.0)
    assert status_of(arr.value, arr.target, arr.direction) == RED  # what it was before: −9 % of the month's end
    assert arr.judged_target == arr.target_by_now
    assert "the 2026-10 close $5,280 → the 2026-11 target $7,000, 15 of 30 days in" in arr.by_now_basis
    start = ev.node("arr_start")
    assert start.target_by_now is None and start.value == 5280.0 and start.status == RED  # vs 9,000, as before
    assert ev.node("new_arr").target_by_now is None  # a flow (no deals here: no value either)
    # NRR so far: the October-close customers keep all their 440 (C7 is new): 100 %, against 1.02 ** 0.5
    nrr = ev.node("nrr")
    assert nrr.value == pytest.approx(1.0) and nrr.target_by_now == pytest.approx(1.02 ** 0.5)


def test_running_year_through_month_targets_and_from_the_previous_target(ws):
    months = _parse(_tree("{by_period: {2026: 9000, 2026-10: 6000, 2026-11: 7000}}"))
    arr = evaluate_tree(ws, months, "2026").node("arr")
    # 15 of the 30 days from October's 6,000 to November's 7,000: 6,500; 6,360 is 2.2 % short: amber
    assert arr.target_by_now == pytest.approx(6500.0) and arr.status == AMBER and arr.target == 9000.0
    # no 2025 subscriptions, so no 2025 close: from the 2025 target, 3,000 + 6,000 × 319 / 365 = 8,243.84
    opening = _parse(_tree("{by_period: {2025: 3000, 2026: 9000}}"))
    arr = evaluate_tree(ws, opening, "2026").node("arr")
    assert arr.previous is None and arr.target_by_now == pytest.approx(3000 + 6000 * 319 / 365)
    assert arr.status == RED and "the 2025 target $3,000 → the 2026 target" in arr.by_now_basis


def test_closed_period_is_unchanged(ws):
    ev = evaluate_tree(ws, _parse(_tree("{by_period: {2026-10: 6000}}")), "2026-10")
    arr = ev.node("arr")
    assert arr.target_by_now is None and arr.by_now_basis == "" and arr.status == RED  # 5,280 vs 6,000
    assert arr.gap == pytest.approx(-720.0)


def test_cli_shows_the_target_by_now(ws, tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(_tree("{by_period: {2026-11: 7000}}"))
    base = [sys.executable, "-m", "kpitree", "evaluate", "--workspace", str(ws.root), "--tree", str(path),
            "--period", "2026-11"]
    text = subprocess.run(base, capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert "arr: $6,360 vs target by now $6,140 (2026-11 target $7,000), prev $5,280" in text
    assert "$6,140 planned by 2026-11-15: the 2026-10 close $5,280 → the 2026-11 target $7,000" in text
    data = json.loads(subprocess.run([*base, "--format", "json"], capture_output=True, text=True, cwd=ROOT,
                                     check=True).stdout)
    arr = next(n for n in data["nodes"] if n["id"] == "arr")
    assert arr["target"] == 7000.0 and arr["target_by_now"] == pytest.approx(6140.0) and arr["status"] == "green"


def test_trend_carries_the_running_periods_target_by_now(ws):
    from kpitree.evaluate import Engine, trend

    tree = _parse(_tree("{by_period: {2026-10: 6000, 2026-11: 7000}}"))
    frame = trend(Engine(ws), tree, "arr", parse_period("2026-11"), 3).set_index("period")
    assert frame.loc["2026-11", "target"] == 7000.0
    # the plan's path from October's 6,000 (not the 5,280 it closed at) to November's 7,000: 15 of 30 days
    assert frame.loc["2026-11", "target_by_now"] == pytest.approx(6500.0)
    assert frame["target_by_now"].drop("2026-11").isna().all()  # closed months: their target stands
    alone = trend(Engine(ws), tree, "arr", parse_period("2026-11"), 1)
    assert alone["target_by_now"].tolist() == [pytest.approx(6500.0)]


# --- flows by the plan's shape, and a stock that is the formula of its parts ---------------------------

_BRIDGE = """
name: bridge
nodes:
  - id: arr
    level: 1
    metric: arr
    owner: CEO
    formula: arr = arr_start * nrr + arr_new + arr_reactivation
    target: {by_period: {2026-10: 6000, 2026-11: 7000, 2026-Q4: 7600}}
    children: [arr_start, nrr, arr_new, arr_reactivation]
  - id: arr_start
    level: 2
    metric: arr_start
    owner: CEO
    target: {by_period: {2026-11: 6000}}
  - id: nrr
    level: 2
    metric: nrr
    owner: CS
    target: {by_period: {2026-11: 1.01}}
  - id: arr_new
    level: 2
    metric: arr_new
    owner: CRO
    target: {by_period: {2026-10: 100, 2026-11: 900, 2026-12: 1000, 2026-Q4: 2000}}
  - id: arr_reactivation
    level: 2
    metric: arr_reactivation
    owner: CS
    target: {by_period: {2026-11: 40}}
"""


def test_a_flow_s_share_of_its_period_follows_its_months_targets():
    from kpitree.evaluate import flow_share

    new = _parse(_BRIDGE).node("arr_new")
    # 15 November: October's 100 and half of November's 900 of the quarter's 2,000 planned = 550 / 2,000
    share, how = flow_share(new, parse_period("2026-Q4"), date(2026, 11, 15))
    assert share == pytest.approx(550 / 2000) and how == "by the monthly targets"
    # a month has no months inside to shape it: elapsed days
    assert flow_share(new, parse_period("2026-11"), date(2026, 11, 15)) == (pytest.approx(0.5), "by elapsed days")
    # December's target missing: no shape, elapsed days (46 of 92)
    other = _parse(_BRIDGE.replace("2026-12: 1000, ", "")).node("arr_new")
    assert flow_share(other, parse_period("2026-Q4"), date(2026, 11, 15))[0] == pytest.approx(46 / 92)


def test_a_stock_that_is_a_formula_is_planned_by_now_as_the_formula_of_its_parts():
    tree = _parse(_BRIDGE)
    got = target_by_now(tree.node("arr"), parse_period("2026-11"), date(2026, 11, 15), 5280.0, tree)
    # the plan holds: 6,000 × 1.01 + 900 + 40 = 7,000; by the 15th: ARR at start whole, NRR 1.01 ** 0.5,
    # half of new-logo (450) and of reactivation ARR (20)
    assert got is not None and got.value == pytest.approx(6000 * 1.01 ** 0.5 + 450 + 20)  # 6,499.93
    assert "over its parts' targets by now" in got.basis
    # without the tree its parts are unknown: the plan's path, October's 6,000 → November's 7,000
    alone = target_by_now(tree.node("arr"), parse_period("2026-11"), date(2026, 11, 15), 5280.0)
    assert alone is not None and alone.value == pytest.approx(6500.0)


def test_running_month_explains_the_stock_s_gap_over_its_parts_so_far(ws):
    from kpitree.explain import explain_node

    tree = _parse(_BRIDGE)
    ev = evaluate_tree(ws, tree, "2026-11")
    arr, new = ev.node("arr"), ev.node("arr_new")
    # ARR 6,360 on the 15th against 6,499.93 by now: −2.2 %, amber
    assert arr.value == 6360.0 and arr.target_by_now == pytest.approx(6000 * 1.01 ** 0.5 + 470)
    assert arr.status == AMBER
    # new-logo ARR so far: C7's 12 × 90 = 1,080, at pace 2,160 against 900
    assert new.value == pytest.approx(1080.0) and new.pace == pytest.approx(2160.0) and new.status == GREEN
    result = explain_node(ws, tree, "arr", "2026-11")
    parts = {c.id: c for c in result.children}
    assert result.gap == pytest.approx(6360.0 - (6000 * 1.01 ** 0.5 + 470))
    assert abs(parts["residual"].contribution) < 1e-6  # ARR today is the formula of its parts so far
    # the flow enters as far as it has come, against the half of its target planned by now
    assert parts["arr_new"].value == pytest.approx(1080.0) and parts["arr_new"].baseline == pytest.approx(450.0)
    assert parts["arr_new"].contribution == pytest.approx(630.0)
    assert parts["arr_reactivation"].contribution == pytest.approx(-20.0)
    assert result.sentences()[0].startswith("arr: actual $6,360 against target by now $6,500 (−$140, −2%)")
    assert any("as far as they have come" in n for n in result.notes)


def test_a_running_quarter_paces_a_flow_by_its_months_targets(ws):
    ev = evaluate_tree(ws, _parse(_BRIDGE), "2026-Q4")
    new = ev.node("arr_new")
    # new logos so far in Q4: C5 70, C8 10 (its first row never counted), C7 90 → 12 × 170 = 2,040; the plan
    # had 550 of 2,000 by 15 November, so the pace is 2,040 / 0.275, not 2,040 / (46 / 92)
    assert new.value == pytest.approx(2040.0) and new.pace == pytest.approx(2040.0 / 0.275)


def test_a_plan_that_breaks_its_own_formula_keeps_the_path():
    """ARR's November target 7,100 where its parts' targets give 6,000 × 1.01 + 900 + 40 = 7,000: the
    formula would plan past the month's own end, so the plan's path stands: October's 6,000 → November's
    7,100, 15 of 30 days in = 6,550."""
    tree = _parse(_BRIDGE.replace("2026-11: 7000", "2026-11: 7100"))
    got = target_by_now(tree.node("arr"), parse_period("2026-11"), date(2026, 11, 15), 5280.0, tree)
    assert got is not None and got.value == pytest.approx(6550.0)
    assert "the 2026-10 target $6,000 → the 2026-11 target $7,100" in got.basis
