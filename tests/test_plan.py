"""Targets from history (`kpitree.plan`) mean what the evaluated number means, on a hand-made business."""

from __future__ import annotations

import pytest

from kpitree.evaluate import Engine, evaluate_tree
from kpitree.periods import parse_period, trailing
from kpitree.plan import plan_targets
from kpitree.tree import parse_yaml

TREE = """
name: plan
grain: month
nodes:
  - {id: arr, label: ARR, level: north_star, metric: arr, owner: CEO, target: 1, children: [arr_start, arr_new]}
  - {id: arr_start, label: ARR at start, level: driver, metric: arr_start, owner: CEO, target: 1}
  - {id: arr_new, label: New-logo ARR, level: driver, metric: arr_new, owner: CRO, target: 1}
"""
BOOK, MRR, PER_MONTH = 20, 100, 2


def _subscriptions() -> str:
    """The export starts on 2024-01-01 with a book of 20 customers already paying $100 a month; from
    February on exactly two new logos of $100 a month start on the 5th, and nobody churns or moves:
    new-logo ARR is 2 × 100 × 12 = $2,400 every month."""
    rows = ["customer_id,start_date,end_date,mrr"]
    rows += [f"B{i},2024-01-01,,{MRR}" for i in range(BOOK)]
    month = parse_period("2024-02")
    while month.key <= "2025-12":
        rows += [f"N{month.key}-{i},{month.start.replace(day=5)},,{MRR}" for i in range(PER_MONTH)]
        month = month.shift(1)
    return "\n".join(rows)


@pytest.fixture
def engine(load_ws) -> Engine:
    return Engine(load_ws(subscriptions=_subscriptions()))


def _tree():
    tree, problems = parse_yaml(TREE, "plan.yaml")
    assert tree is not None and not [p for p in problems if p.severity == "error"], problems
    return tree


@pytest.mark.parametrize("mark", [False, True])
def test_planned_new_logo_arr_is_the_evaluated_one(engine, mark):
    tree = _tree()
    months = trailing(parse_period("2025-11"), 23)  # 2024-01 … 2025-11
    evaluated = {p.key: evaluate_tree(engine, tree, p).node("arr_new").value for p in months}
    # The catalogue's new-logo ARR of the export's first month is its whole book: nothing is known before
    # 2024-01-01, so every customer has m0 = 0 there and counts as new. Every later month: the two logos.
    assert evaluated["2024-01"] == pytest.approx(BOOK * MRR * 12)
    assert all(v == pytest.approx(PER_MONTH * MRR * 12) for k, v in evaluated.items() if k != "2024-01")

    planned = plan_targets(engine, tree, parse_period("2025-06"), parse_period("2025-11"), mark=mark)
    targets = dict(planned.node("arr_new").target.by_period)
    # a steady business: the plan asks every month for what the catalogue counts as new-logo ARR in it
    assert targets and {k: evaluated[k] for k in targets} == targets
    assert "2024-02" not in targets  # its only history would be the book's month: no new-logo history at all
    assert "2025-01" in targets  # a year after the book's month: not the book again

    start = dict(planned.node("arr_start").target.by_period)
    # ARR at start is 0 in the export's first month only because nothing is known before it: no history
    assert start and min(start.values()) > 0 and "2024-02" not in start
    assert dict(planned.node("arr").target.by_period)["2024-02"] > 0  # ARR itself (end-of-month MRR) is known


DEALS_TREE = """
name: plan deals
grain: month
nodes:
  - {id: closed, label: Closed deals, level: north_star, metric: closed_deals, owner: CRO, target: 1, children: [rate]}
  - {id: rate, label: Win rate, level: driver, metric: win_rate, owner: CRO, target: 0.5}
"""


def _ramping_deals() -> str:
    """An export of the deals created since 2024-03-01: ten a month, on the 1st. Two close on the 20th
    of their own month (won), eight on the 10th of the next (three won, five lost). Every month from
    April on closes 10 deals at a 50 % win rate; March, the export's first month, closes only the two
    quick ones (100 % won) — the deals created before March that closed in it are not in the export."""
    rows = ["deal_id,created_date,close_date,status,amount,deal_type"]
    month = parse_period("2024-03")
    while month.key <= "2025-12":
        start, nxt = month.start, month.shift(1).start
        for i in range(10):
            close = start.replace(day=20) if i < 2 else nxt.replace(day=10)
            status = "won" if i < 5 else "lost"
            rows.append(f"D{month.key}-{i},{start},{close},{status},100,new")
        month = month.shift(1)
    return "\n".join(rows)


@pytest.mark.parametrize("mark", [False, True])
def test_plan_ignores_the_exports_ramp_up_months(load_ws, mark):
    engine = Engine(load_ws(deals=_ramping_deals()))
    tree, problems = parse_yaml(DEALS_TREE, "plan.yaml")
    assert tree is not None and not [p for p in problems if p.severity == "error"], problems
    first = evaluate_tree(engine, tree, parse_period("2024-03"))
    assert first.node("closed").value == 2 and first.node("rate").value == pytest.approx(1.0)
    assert evaluate_tree(engine, tree, parse_period("2025-03")).node("closed").value == 10

    planned = plan_targets(engine, tree, parse_period("2025-08"), parse_period("2025-11"), mark=mark)
    closed = dict(planned.node("closed").target.by_period)
    # Hand-checked: a flat 10 closed deals a month. With March 2024 as history the year-on-year rule
    # read Mar–Aug 2025 (60) against Mar–Aug 2024 (2 + 50 = 52) as +15 % and asked 12 (11.5) for Sep 2025.
    assert closed["2025-09"] == 10 and closed["2025-11"] == 10
    assert set(closed.values()) == {10}
    rate = dict(planned.node("rate").target.by_period)
    # The win rate's first month (2 of 2 won, over 2 deals against 10) is no history either: April 2024's
    # target would have been 100 %; every target is the 50 % the business wins.
    assert "2024-04" not in rate and set(rate.values()) == {0.5}
