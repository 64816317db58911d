"""Targets in bulk: the grid, per-period rows, CSV import with line numbers, spreading a year to months."""

from __future__ import annotations

import pytest
from conftest import make_workspace

from kpitree import targets as tg
from kpitree.evaluate import Engine
from kpitree.metrics import Kind
from kpitree.periods import parse_period
from kpitree.tree import Target, parse_yaml

TREE = """
nodes:
  - id: arr
    level: north_star
    metric: arr
    owner: CEO
    target: 1200000
    children: [new_arr, win_rate]
  - id: new_arr
    level: driver
    metric: new_arr
    owner: CRO
    target: {monthly: 100000, by_period: {2026-10: 90000}}
  - id: win_rate
    level: driver
    metric: win_rate
    owner: CRO
    target: 0.25
"""


@pytest.fixture
def tree():
    return parse_yaml(TREE, None)[0]


def test_grid_rows_round_trip(tree):
    rows = tg.target_rows(tree)
    assert [r["node"] for r in rows] == ["arr", "new_arr", "win_rate"]
    assert rows[1]["monthly"] == 100000 and rows[1]["periods"] == 1 and rows[0]["value"] == 1200000
    rows[0]["annual"], rows[0]["value"] = "1,500,000", None
    rows[2]["day90"], rows[2]["month12"] = 0.27, "30%"
    t = tg.apply_target_rows(tree, rows)
    assert t.node("arr").target == Target(per_grain=(("annual", 1_500_000.0),))
    assert t.node("win_rate").target.day90 == 0.27 and t.node("win_rate").target.month12 == 0.30
    assert t.node("new_arr").target == tree.node("new_arr").target  # per-period targets survive the grid
    assert tg.apply_target_rows(tree, tg.target_rows(tree)) == tree


def test_period_rows(tree):
    assert tg.period_rows(tree, "new_arr") == [{"period": "2026-10", "target": 90000.0}]
    t, problems = tg.apply_period_rows(
        tree,
        "new_arr",
        [
            {"period": "2026-11", "target": 95000},
            {"period": "2026-Q4", "target": "300,000"},
            {"period": "2026-13", "target": 1},
        ],
    )
    assert len(problems) == 1 and "row 3" in str(problems[0]) and problems[0].node == "new_arr"
    assert dict(t.node("new_arr").target.by_period) == {"2026-11": 95000.0, "2026-Q4": 300000.0}


def test_csv_import_applies_everything_or_nothing(tree):
    good = "node,period,target\nnew_arr,2026-11,110000\nnew_arr,annual,$1.3e6\nwin_rate,2026-Q4,27%\n"
    t, problems = tg.import_targets_csv(tree, good)
    assert problems == []
    assert dict(t.node("new_arr").target.by_period) == {"2026-10": 90000.0, "2026-11": 110000.0}
    assert dict(t.node("new_arr").target.per_grain)["annual"] == 1_300_000
    assert t.node("win_rate").target.for_period(parse_period("2026-Q4"), Kind.RATIO) == pytest.approx(0.27)
    bad = "Node,Period,Target\nnew_arr,2026-11,110000\nghost,2026-11,1\nnew_arr,2026-14,1\nwin_rate,2026-10,high\n"
    same, problems = tg.import_targets_csv(tree, bad, "plan.csv")
    assert same == tree
    assert [(p.line, p.column) for p in problems] == [(3, "node"), (4, "period"), (5, "target")]
    assert "plan.csv, line 3" in str(problems[0]) and "ghost" in str(problems[0])
    assert "missing period, target" in str(tg.import_targets_csv(tree, "node\nx\n")[1][0])


def test_csv_export_reads_back(tree):
    text = tg.targets_csv(tree)
    blank = tg.apply_target_rows(tree, [{"node": n.id, **dict.fromkeys(tg.TARGET_FIELDS)} for n in tree.nodes])
    back, problems = tg.import_targets_csv(blank, text)
    assert problems == [] and back == tree


def test_spread_even_and_by_last_year_for_each_kind():
    even = tg.spread_annual(1200, 2027, Kind.FLOW)
    assert set(even.months.values()) == {100} and sum(even.months.values()) == 1200 and even.method == "even"
    shape = [1, 1, 2, 2, 1, 1, 1, 1, 2, 2, 4, 6]
    seasonal = tg.spread_annual(2400, 2027, Kind.FLOW, "last_year", shape)
    assert seasonal.months["2027-12"] == 600 and sum(seasonal.months.values()) == pytest.approx(2400)
    rate = tg.spread_annual(0.3, 2027, Kind.RATIO, "last_year", [0.2] * 6 + [0.4] * 6)
    assert rate.months["2027-01"] == pytest.approx(0.2) and sum(rate.months.values()) / 12 == pytest.approx(0.3)
    assert set(tg.spread_annual(0.3, 2027, Kind.RATIO).months.values()) == {0.3}
    stock = tg.spread_annual(2200, 2027, Kind.STOCK, "even", [1000.0] * 13)
    assert stock.months["2027-01"] == pytest.approx(1100) and stock.months["2027-12"] == 2200
    climb = tg.spread_annual(2200, 2027, Kind.STOCK, "last_year", [0, *[10] * 11, 110])
    assert climb.months["2027-01"] == pytest.approx(300) and climb.months["2027-11"] == pytest.approx(300)
    assert climb.months["2027-12"] == 2200  # last year's level rose in January and December only
    gaps = tg.spread_annual(1200, 2027, Kind.FLOW, "last_year", [None] * 12)
    assert gaps.method == "even" and "evenly" in gaps.note


DEALS = "deal_id,created_date,close_date,status,amount,deal_type\n" + "\n".join(
    f"D{m}{i},2025-{m:02d}-01,2025-{m:02d}-15,won,{1000 * (2 if m == 12 else 1)},new"
    for m in range(1, 13)
    for i in range(2)
)


def test_spread_by_last_year_reads_the_workspace(tmp_path, tree):
    ws = make_workspace(tmp_path, deals=DEALS)
    t, spread = tg.spread_node(Engine(ws), tree, "new_arr", 130000, 2026, "last_year")
    months = dict(t.node("new_arr").target.by_period)
    assert spread.method == "last_year"
    assert months["2026-12"] == pytest.approx(20000) and months["2026-01"] == pytest.approx(10000)
    assert t.node("new_arr").target.for_period(parse_period("2026"), Kind.FLOW) == pytest.approx(130000)


def test_csv_export_is_spreadsheet_safe_and_reads_back_both_ways(tree):
    """The export goes through plain.csv_text (every field quoted, CRLF); the import reads that back,
    and reads a hand-made CSV with neutralised cells, odd period keys and negative targets too."""
    t = tg.set_period_targets(tree, "new_arr", {"2026-11": -5.0})
    text = tg.targets_csv(t)
    assert text.splitlines()[0] == '"node","period","target"' and "\r\n" in text
    assert '"new_arr","2026-11","-5.0"' in text  # a negative number stays a number, not a neutralised formula
    blank = tg.apply_target_rows(t, [{"node": n.id, **dict.fromkeys(tg.TARGET_FIELDS)} for n in t.nodes])
    blank = tg.set_period_targets(blank, "new_arr", {}, replace=True)
    back, problems = tg.import_targets_csv(blank, text)
    assert problems == [] and back == t
    hand = "node,period,target\nnew_arr,2026-1,'-7\nnew_arr, 2026-2 ,\"1,000\"\nwin_rate,value,nan\n"
    same, problems = tg.import_targets_csv(tree, hand, "plan.csv")
    assert [(p.line, p.column) for p in problems] == [(4, "target")] and same == tree  # NaN is no target
    back, problems = tg.import_targets_csv(tree, hand.replace("nan", "0.3"))
    assert problems == [] and dict(back.node("new_arr").target.by_period) == {
        "2026-10": 90000.0, "2026-01": -7.0, "2026-02": 1000.0}
