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
