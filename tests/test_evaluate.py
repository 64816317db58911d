"""Status rules, pace in a running period, no_target / no_data, and the CLI's JSON shape."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT, make_workspace
from test_metrics import DEALS, LEADS, SUBSCRIPTIONS

from kpitree.evaluate import AMBER, GREEN, NO_DATA, NO_TARGET, RED, evaluate_tree, status_of
from kpitree.tree import parse_yaml


@pytest.mark.parametrize(
    "value, target, direction, amber, expected",
    [
        (100, 100, "higher", 0.05, GREEN),
        (101, 100, "higher", 0.05, GREEN),
        (95, 100, "higher", 0.05, AMBER),
        (94.9, 100, "higher", 0.05, RED),
        (100, 100, "lower", 0.05, GREEN),
        (105, 100, "lower", 0.05, AMBER),
        (105.1, 100, "lower", 0.05, RED),
        (-10, -8, "higher", 0.25, AMBER),
        (0, 0, "lower", 0.05, GREEN),
        (1, 0, "lower", 0.05, RED),
        (None, 100, "higher", 0.05, NO_DATA),
        (100, None, "higher", 0.05, NO_TARGET),
    ],
)
def test_status_rules(value, target, direction, amber, expected):
    assert status_of(value, target, direction, amber) == expected


TREE = """
name: t
nodes:
  - id: arr
    level: 1
    metric: arr
    owner: CEO
    target: 6000
    children: [new_arr, leads, cycle]
  - id: new_arr
    level: 2
    metric: new_arr
    owner: CRO
    target: {monthly: 40000, by_period: {2026-09: 9000}}
  - id: leads
    level: 2
    metric: leads
    owner: CMO
    target: {by_period: {2026-01: 5}}
  - id: cycle
    level: 2
    metric: sales_cycle_days
    owner: CRO
    target: 45
"""


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    ws = make_workspace(tmp_path_factory.mktemp("eval"), deals=DEALS, subscriptions=SUBSCRIPTIONS, leads=LEADS)
    settings = ws.settings()
    settings.as_of = "2026-11-15"
    ws.save_settings(settings)
    return ws


@pytest.fixture(scope="module")
def tree():
    t, problems = parse_yaml(TREE)
    assert not [p for p in problems if p.severity == "error"]
    return t


def test_closed_period(ws, tree):
    ev = evaluate_tree(ws, tree, "2026-10")
    got = {n.id: (n.value, n.target, n.status, n.previous) for n in ev.nodes}
    assert got["arr"] == (5280.0, 6000.0, RED, 7800.0)
    assert got["new_arr"] == (48000.0, 40000.0, GREEN, 9000.0)
    assert got["leads"][2] == NO_TARGET  # a target for another period only: grey, never green
    assert got["cycle"] == (50.0, 45.0, RED, pytest.approx(10.0))
    assert ev.complete


def test_running_period_uses_pace_for_flows(ws, tree):
    ev = evaluate_tree(ws, tree, "2026-11")
    new_arr = ev.node("new_arr")
    assert not ev.complete and new_arr.elapsed == pytest.approx(15 / 30, abs=1e-4)
    assert new_arr.value == 0.0 and new_arr.pace == 0.0 and new_arr.status == RED
    arr = ev.node("arr")
    assert arr.pace is None and arr.value == 12 * (440 + 90)  # a stock: its latest value (C7 started Nov 1)


def test_no_data_outside_coverage_or_without_table(ws, tree):
    ev = evaluate_tree(ws, tree, "2024-01")
    assert {n.status for n in ev.nodes} == {NO_DATA}
    text = TREE.replace("metric: leads", "metric: spend")
    spend_tree, _ = parse_yaml(text)
    assert evaluate_tree(ws, spend_tree, "2026-10").node("leads").status == NO_DATA


def test_cli_evaluate_json_shape(ws, tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text(TREE)
    out = subprocess.run(
        [sys.executable, "-m", "kpitree", "evaluate", "--workspace", str(ws.root), "--tree", str(path),
         "--period", "2026-10", "--format", "json"],
        capture_output=True, text=True, cwd=ROOT, check=True,
    )
    data = json.loads(out.stdout)
    assert data["period"] == "2026-10" and data["grain"] == "month"
    node = data["nodes"][0]
    assert {"id", "label", "metric", "level", "owner", "value", "target", "status", "previous"} <= set(node)
    assert node["status"] == "red" and node["owner"] == "CEO"


@pytest.mark.parametrize(
    "args, message",
    [
        (["evaluate", "--workspace", "/nonexistent/ws", "--tree", "data/trees/revops.yaml"], "does not exist"),
        (["evaluate", "--workspace", "{ws}", "--tree", "missing.yaml"], "cannot read tree file"),
        (["evaluate", "--workspace", "{ws}", "--tree", "data/trees/revops.yaml", "--period", "2026-13"],
         "invalid period"),
        (["ingest", "--workspace", "{tmp}/new", "missing.csv"], "file not found"),
        (["validate", "{bad}"], "needs an owner"),
    ],
)
def test_cli_errors_are_one_line(ws, tmp_path, args, message):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TREE.replace("    owner: CMO\n", ""))
    args = [a.format(ws=ws.root, tmp=tmp_path, bad=bad) for a in args]
    out = subprocess.run([sys.executable, "-m", "kpitree", *args], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 2
    assert message in out.stderr + out.stdout
    assert "Traceback" not in out.stderr


def test_a_billing_snapshot_is_as_recent_as_its_last_past_cancellation(load_ws):
    """Stripe-only workspace: the last new subscription started 2026-09-10, one ended 2026-10-20, one is
    scheduled to end in 2099: the data is as of 2026-10-20, so October is not shown as empty."""
    ws = load_ws(subscriptions="""
        subscription_id,customer_id,start_date,end_date,mrr
        S1,C1,2026-01-01,,100
        S2,C2,2026-09-10,,50
        S3,C3,2026-02-01,2026-10-20,70
        S4,C4,2026-03-01,2099-01-01,30
    """)
    assert str(ws.as_of()) == "2026-10-20"


def test_trend_starts_where_the_data_or_the_plan_does(ws, tree):
    """Eighteen years before a workspace's data are no history: the trend starts at the first period
    with a value or a target, and always keeps the period asked for."""
    from kpitree.evaluate import Engine, trend
    from kpitree.periods import parse_period

    frame = trend(Engine(ws), tree, "leads", parse_period("2026"), 18)
    assert frame["period"].tolist() == ["2026"]  # the fixture's leads are all of 2026; no yearly target
    monthly = trend(Engine(ws), tree, "arr", parse_period("2026-10"), 18)
    assert len(monthly) == 18  # a constant target covers every month: nothing dropped


RATE_TREE = """
name: rates
nodes:
  - id: churn
    level: 1
    metric: logo_churn_rate
    owner: CS
    target: 0.01
    children: [nrr, expansion, win]
  - id: nrr
    level: 2
    metric: nrr
    owner: CS
    target: {monthly: 1.01, weekly: 1.001}
  - id: expansion
    level: 2
    metric: expansion_rate
    owner: CS
    target: {value: 0.02, by_period: {2026-10: 0.03}}
  - id: win
    level: 2
    metric: win_rate
    owner: CRO
    target: 0.25
"""


def test_one_number_for_a_per_period_rate_is_a_monthly_rate():
    """A 1 % monthly churn target keeps 0.99 of the customers a month: a quarter keeps 0.99³, so its
    target is 1 − 0.99³ = 2.9701 %, and a week inside October (7 of its 31 days) 1 − 0.99^(7/31).
    Targets given for the grain (NRR weekly) or the month (expansion's October) stand; a mean rate
    (win rate) keeps its number at every grain."""
    from kpitree.evaluate import target_for
    from kpitree.periods import parse_period

    t, _ = parse_yaml(RATE_TREE)
    q4, w41, oct_ = parse_period("2026-Q4"), parse_period("2026-W41"), parse_period("2026-10")
    assert target_for(t.node("churn"), oct_) == pytest.approx(0.01)
    assert target_for(t.node("churn"), q4) == pytest.approx(1 - 0.99 ** 3)
    assert target_for(t.node("churn"), w41) == pytest.approx(1 - 0.99 ** (7 / 31))
    assert target_for(t.node("nrr"), q4) == pytest.approx(1.01 ** 3)
    assert target_for(t.node("nrr"), w41) == pytest.approx(1.001)
    assert target_for(t.node("expansion"), q4) == pytest.approx(0.03 + 0.02 + 0.02)  # rollup "sum"
    assert target_for(t.node("win"), q4) == pytest.approx(0.25) and target_for(t.node("win"), w41) == 0.25
