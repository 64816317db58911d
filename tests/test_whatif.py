"""What-if and back-solving on hand-made evaluations (numbers worked out in the comments)."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kpitree.attribution import Formula
from kpitree.errors import KpiTreeError
from kpitree.evaluate import Evaluation, NodeResult, judge
from kpitree.metrics import Maturity
from kpitree.periods import parse_period
from kpitree.tree import parse_yaml
from kpitree.whatif import back_solve, needed_for_target, solve, solve_chain, what_if

TREE = """
name: what-if
grain: month
nodes:
  - {id: new_arr, label: New ARR, level: north_star, metric: new_arr, owner: CRO, target: 250,
     formula: new_arr = nb + exp, children: [nb, exp, pipeline]}
  - {id: nb, label: New business ARR, level: driver, metric: new_business_arr, owner: CRO, target: 220,
     formula: nb = closed * win_rate * asp, children: [closed, win_rate, asp]}
  - {id: exp, label: Expansion ARR, level: driver, metric: expansion_arr, owner: CS, target: 30}
  - {id: pipeline, label: Open pipeline, level: driver, metric: open_pipeline, owner: CRO, target: 1000}
  - {id: closed, label: Closed deals, level: lever, metric: closed_deals, owner: Ops, target: 8}
  - {id: win_rate, label: Win rate, level: lever, metric: win_rate, owner: Sales, target: 0.5}
  - {id: asp, label: Deal size, level: lever, metric: avg_deal_size, owner: Pricing, target: 55}
"""
# October: closed 8, win rate .375, deal size 40 → new business 120; expansion 30 → New ARR 150.
VALUES = {"new_arr": 150.0, "nb": 120.0, "exp": 30.0, "pipeline": 900.0, "closed": 8.0, "win_rate": 0.375,
          "asp": 40.0}
TARGETS = {"new_arr": 250.0, "nb": 220.0, "exp": 30.0, "pipeline": 1000.0, "closed": 8.0, "win_rate": 0.5, "asp": 55.0}


def tree():
    t, problems = parse_yaml(TREE, "whatif.yaml")
    assert t is not None and not [p for p in problems if p.severity == "error"], problems
    return t


def evaluation(values: dict[str, float] | None = None) -> Evaluation:
    return evaluation_of(tree(), {**VALUES, **(values or {})}, TARGETS)


def evaluation_of(t, values: dict[str, float], targets: dict[str, float]) -> Evaluation:
    nodes = []
    for n in t.walk():
        parent = t.parent_of(n.id)
        nodes.append(NodeResult(n.id, n.label, n.metric, n.level_name, n.owner, values[n.id], targets[n.id], "red",
                                None, n.shown_unit, n.better, n.review, parent=parent.id if parent else None,
                                children=n.children, formula=n.formula))
    return Evaluation(parse_period("2026-10"), date(2026, 11, 20), nodes, True)


def test_what_if_recomputes_exact_ancestors() -> None:
    # Win rate .375 → .5: new business 8 × .5 × 40 = 160 (+40), New ARR 150 + 40 = 190.
    w = what_if(evaluation(), tree(), {"win_rate": 0.5})
    assert w.node("win_rate").how == "override" and w.node("win_rate").status_after == "green"
    assert w.node("nb").after == pytest.approx(160) and w.node("nb").how == "formula"
    assert w.node("new_arr").after == pytest.approx(190) and w.node("new_arr").change == pytest.approx(40)
    assert w.node("exp").how == "unchanged" and w.stopped == ()


def test_what_if_stops_at_influence_links() -> None:
    # Open pipeline is a child of New ARR but not in its formula: New ARR does not move.
    w = what_if(evaluation(), tree(), {"pipeline": 2000})
    assert w.node("new_arr").after == pytest.approx(150) and w.node("new_arr").how == "unchanged"
    assert ("pipeline", "new_arr") in w.stopped
    assert any("influence" in n for n in w.notes)
    assert "influence only" in w.text()


def test_what_if_keeps_the_measured_residual() -> None:
    # New business measured 125 while its formula gives 120: the +5 stays, +40 from win rate → 165.
    w = what_if(evaluation({"nb": 125.0}), tree(), {"win_rate": 0.5})
    assert w.node("nb").after == pytest.approx(165)


def test_what_if_unknown_node() -> None:
    with pytest.raises(KeyError):
        what_if(evaluation(), tree(), {"nope": 1.0})


def test_back_solve_product_closed_form() -> None:
    # Target 220 from 120 with closed and deal size held: win rate × 220/120 = .375 × 1.8333 = .6875.
    s = back_solve(evaluation(), tree(), "nb", "win_rate")
    assert s.method == "product" and s.goal_from == "target"
    assert s.needed == pytest.approx(0.6875) and s.feasible
    assert s.relative_change == pytest.approx(220 / 120 - 1)
    assert "68.8%" in s.sentence()
    sols = {x.child: x for x in needed_for_target(evaluation(), tree(), "nb")}
    assert sols["closed"].needed == pytest.approx(8 * 220 / 120)  # 14.67 deals
    assert sols["asp"].needed == pytest.approx(40 * 220 / 120)  # 73.33


def test_back_solve_additive_and_chain() -> None:
    # New ARR target 250 from 150: new business needs 120 + 100 = 220; then win rate .6875.
    s = back_solve(evaluation(), tree(), "new_arr", "nb")
    assert s.method == "additive" and s.needed == pytest.approx(220)
    chain = solve_chain(evaluation(), tree(), "new_arr", "win_rate")
    assert [x.child for x in chain] == ["nb", "win_rate"]
    assert chain[-1].needed == pytest.approx(0.6875)


def test_back_solve_flags_the_impossible() -> None:
    # New business 500 needs win rate .375 × 500/120 = 1.5625: more than 100 %.
    s = back_solve(evaluation(), tree(), "nb", "win_rate", goal=500)
    assert s.needed == pytest.approx(1.5625) and not s.feasible and "100" in s.note


def test_back_solve_refuses_influence_links() -> None:
    with pytest.raises(KpiTreeError, match="influence"):
        back_solve(evaluation(), tree(), "new_arr", "pipeline")
    with pytest.raises(KpiTreeError, match="no formula"):
        back_solve(evaluation(), tree(), "exp", "exp")


def test_bisection_for_a_mixed_formula() -> None:
    # y = a × (b + c) − d: a = 2, b = 3, c = 1, d = 4 → 4. For y = 10 with a, c, d held:
    # 2(b + 1) − 4 = 10 → b = 6.
    f = Formula.parse("a * (b + c) - d")
    x, method, note = solve(f, {"a": 2, "b": 3, "c": 1, "d": 4}, "b", 10)
    assert method == "bisection" and note == "" and x == pytest.approx(6, rel=1e-9)
    # 1 / (x − 1) = 0 has no solution: said so
    x, method, note = solve(Formula.parse("1 / (x - w)"), {"x": 3, "w": 1}, "x", 0)
    assert x is None and note


@settings(max_examples=60, deadline=None)
@given(st.floats(0.1, 1e5), st.floats(0.01, 0.99), st.floats(1, 1e5), st.floats(1, 1e6))
def test_solution_reaches_the_goal(closed, rate, size, goal) -> None:
    f = Formula.parse("closed * win_rate * asp")
    values = {"closed": closed, "win_rate": rate, "asp": size}
    for child in values:
        x, _, _ = solve(f, values, child, goal)
        assert float(f({**values, child: x})) == pytest.approx(goal, rel=1e-9)
    g = Formula.parse("closed * (win_rate + asp) - 3")
    x, _, _ = solve(g, values, "closed", goal)
    assert float(g({**values, "closed": x})) == pytest.approx(goal, rel=1e-6)


def test_slider_ranges_follow_the_unit_and_the_needed_value(demo_data_dir):
    from conftest import ROOT

    from kpitree.evaluate import evaluate_tree
    from kpitree.tree import load_tree
    from kpitree.whatif import slider_for
    from kpitree.workspace import Workspace

    tree = load_tree(ROOT / "data" / "trees" / "revops.yaml")
    ev = evaluate_tree(Workspace(demo_data_dir / "demo"), tree, "2026-10")
    rate = slider_for(ev, tree, "win_rate")
    assert (rate.low, rate.high, rate.step, rate.parent) == (0.0, 1.0, 0.001, "new_business_arr")
    assert rate.needed.needed == pytest.approx(0.4712, abs=1e-4)  # $7.06M / (624 deals × $24.0k)
    size = slider_for(ev, tree, "avg_deal_size")  # now 24.0k, target 44.2k, needed 54.3k: up to 2 × 54.3k
    assert (size.low, size.high, size.step) == (0, 109000, 1000)
    assert size.low <= size.current <= size.high and size.high >= size.needed.needed
    assert slider_for(ev, tree, "leads") is None  # an influence child: moving it changes nothing above
    assert slider_for(ev, tree, "arr") is None  # the root


def test_slider_shows_values_as_people_read_them() -> None:
    from kpitree.whatif import slider_for

    # Win rate: a percent, 0–100 % in 0.1-point steps.
    rate = slider_for(evaluation(), tree(), "win_rate")
    assert rate.widget() == {"min_value": 0.0, "max_value": 100.0, "value": 37.5, "step": 0.1, "format": "%.1f%%"}
    assert rate.value_of(50.0) == pytest.approx(0.5) and rate.text(0.375) == "37.5%"
    # Closed deals: 8 now, 220 / (.375 × 40) = 14.67 needed → up to 2 × 14.67 = 29.3 in whole deals.
    closed = slider_for(evaluation(), tree(), "closed")
    assert (closed.low, closed.high, closed.step, closed.format) == (0.0, 30.0, 1.0, "%.0f")
    # New business ARR at $3,119,583 (needed 250 − 30 = 220): up to 2 × 3,119,583 = 6.24M in steps of
    # $50,000 — shown in millions with two decimals, "$3.12M", never 3119583.
    nb = slider_for(evaluation({"nb": 3_119_583.0}), tree(), "nb")
    assert (nb.high, nb.step, nb.scale, nb.format) == (6_250_000.0, 50_000.0, 1e-6, "$%.2fM")
    assert nb.widget()["value"] == pytest.approx(3.119583) and nb.text(nb.current) == "$3.12M"
    assert nb.value_of(nb.widget()["value"]) == pytest.approx(3_119_583.0)


BRIDGE_TREE = """
name: bridge
grain: month
nodes:
  - {id: arr, label: ARR, level: north_star, metric: arr, owner: CEO, target: 1300,
     formula: arr = arr_start * nrr + arr_new, children: [arr_start, nrr, arr_new]}
  - {id: arr_start, label: ARR at start, level: driver, metric: arr_start, owner: CEO, target: 1000}
  - {id: nrr, label: NRR, level: driver, metric: nrr, owner: CS, target: 1.05}
  - {id: arr_new, label: New-logo ARR, level: driver, metric: arr_new, owner: CRO, target: 250}
"""


def test_the_opening_balance_is_history_not_a_lever() -> None:
    # ARR 1,200 = 1,000 × 1.0 + 200 against 1,300: NRR would need 1.1 (1,000 × 1.1 + 200), new-logo ARR 300.
    # ARR at start is last month's ARR: asking what it "needs" would ask to change the past.
    t, problems = parse_yaml(BRIDGE_TREE, "bridge.yaml")
    assert t is not None and not [p for p in problems if p.severity == "error"], problems
    values = {"arr": 1200.0, "arr_start": 1000.0, "nrr": 1.0, "arr_new": 200.0}
    ev = evaluation_of(t, values, {"arr": 1300.0, "arr_start": 1000.0, "nrr": 1.05, "arr_new": 250.0})
    solutions = {s.child: s for s in needed_for_target(ev, t, "arr")}
    assert set(solutions) == {"nrr", "arr_new"}
    assert solutions["nrr"].needed == pytest.approx(1.1)
    assert solutions["nrr"].feasible, solutions["nrr"].note  # 110 % NRR is normal; a 110 % win rate is not
    assert solutions["arr_new"].needed == pytest.approx(300.0)
    with pytest.raises(KpiTreeError, match="history"):
        back_solve(ev, t, "arr", "arr_start")


def test_a_child_asked_to_grow_tenfold_is_not_a_plan() -> None:
    # Closing the −50 gap of ARR through reactivation alone: 5 → 55, eleven times its value.
    t, _ = parse_yaml("""
name: far
grain: month
nodes:
  - {id: arr, label: ARR, level: north_star, metric: arr, owner: CEO, target: 1250,
     formula: arr = arr_new + arr_reactivation, children: [arr_new, arr_reactivation]}
  - {id: arr_new, label: New-logo ARR, level: driver, metric: arr_new, owner: CRO, target: 1200}
  - {id: arr_reactivation, label: Reactivation ARR, level: driver, metric: arr_reactivation, owner: CS, target: 50}
""", "far.yaml")
    ev = evaluation_of(t, {"arr": 1200.0, "arr_new": 1195.0, "arr_reactivation": 5.0},
                       {"arr": 1250.0, "arr_new": 1200.0, "arr_reactivation": 50.0})
    found = {s.child: s for s in needed_for_target(ev, t, "arr")}
    assert found["arr_reactivation"].needed == pytest.approx(55.0) and not found["arr_reactivation"].feasible
    assert "10 times" in found["arr_reactivation"].note
    assert found["arr_new"].needed == pytest.approx(1245.0) and found["arr_new"].feasible


FUNNEL_TREE = """
name: funnel
grain: week
nodes:
  - {id: opps, label: Opportunities, level: north_star, metric: opportunities_created, owner: CRO, target: 40,
     formula: opps = leads * lead_to_opp, children: [leads, lead_to_opp]}
  - {id: leads, label: Leads, level: driver, metric: leads, owner: Marketing, target: 200}
  - {id: lead_to_opp, label: Lead → opportunity, level: driver, metric: lead_to_opp_rate, owner: SDRs, target: 0.2}
"""


def test_a_maturing_cohort_rate_stays_maturing_when_another_lever_moves() -> None:
    # This week's leads are younger than the usual lag to an opportunity: 10 % so far against a 20 % target is
    # "maturing" (too little history for an expected value), not red. Moving leads 150 → 200 recomputes
    # opportunities (15 → 20) but leaves the rate as it was: it must stay maturing, as evaluate judged it.
    t, problems = parse_yaml(FUNNEL_TREE, "funnel.yaml")
    assert t is not None and not [p for p in problems if p.severity == "error"], problems
    ev = evaluation_of(t, {"opps": 15.0, "leads": 150.0, "lead_to_opp": 0.1},
                       {"opps": 40.0, "leads": 200.0, "lead_to_opp": 0.2})
    rate = ev.node("lead_to_opp")
    rate.status, rate.maturing, rate.completion = "maturing", True, 0.3
    ev.node("leads").status = "amber"  # a workspace at a 30 % amber threshold: evaluate's word, kept while unmoved
    w = what_if(ev, t, {"leads": 200.0})
    assert w.node("opps").after == pytest.approx(20.0) and w.node("opps").how == "formula"
    assert w.node("lead_to_opp").how == "unchanged"
    assert (w.node("lead_to_opp").status_before, w.node("lead_to_opp").status_after) == ("maturing", "maturing")
    assert w.node("leads").status_after == "green"  # moved onto its target: judged again
    assert w.node("opps").status_after == "red"  # 20 against 40


def test_a_moved_number_of_a_running_period_is_judged_against_its_target_by_now() -> None:
    # Halfway through the month New ARR is judged against 180, the plan's level by now, not the month's 250.
    # Win rate .375 → .5 takes it to 190: green against 180 (it would be red against 250).
    ev = evaluation()
    ev.node("new_arr").target_by_now = 180.0
    w = what_if(ev, tree(), {"win_rate": 0.5})
    assert w.node("new_arr").after == pytest.approx(190.0) and w.node("new_arr").status_after == "green"


def _funnel(grown, amber: float = 0.05):
    t, problems = parse_yaml(FUNNEL_TREE, "funnel.yaml")
    assert t is not None and not [p for p in problems if p.severity == "error"], problems
    ev = evaluation_of(t, {"opps": 15.0, "leads": 150.0, "lead_to_opp": 0.1},
                       {"opps": 40.0, "leads": 200.0, "lead_to_opp": 0.2})
    for n in ev.nodes:
        n.amber = amber
    rate = ev.node("lead_to_opp")
    rate.grown, rate.maturing = grown, grown is not None
    rate.status, rate.expected_final = judge(rate.value, rate.target, rate.direction, amber, grown)
    return t, ev


def test_a_moved_maturing_cohort_rate_is_judged_by_evaluates_rule() -> None:
    # Half of the usual conversions have happened by this cohort's age: 10 % so far is expected to end at 20 %,
    # on target. Moving it to 12 % so far: expected 24 %, green — judged on 12 % it would be red against 20 %.
    t, ev = _funnel(Maturity(True, 0.5, 30, 100, 400.0))
    assert ev.node("lead_to_opp").status == "green" and ev.node("lead_to_opp").expected_final == pytest.approx(0.2)
    w = what_if(ev, t, {"lead_to_opp": 0.12})
    assert (w.node("lead_to_opp").status_before, w.node("lead_to_opp").status_after) == ("green", "green")
    # too little history to expect a final value: still "maturing" after the move, never red
    t, ev = _funnel(Maturity(True, 0.3, 30, 5, 10.0))
    w = what_if(ev, t, {"lead_to_opp": 0.12})
    assert (w.node("lead_to_opp").status_before, w.node("lead_to_opp").status_after) == ("maturing", "maturing")
    assert w.node("opps").status_after == "red"  # 150 × .12 = 18 against 40: the parent is not a cohort


def test_a_moved_number_keeps_the_workspaces_amber_threshold() -> None:
    # A workspace at 30 %: leads 150 → 160 against 200 is amber (within 60), not red as at the default 5 %.
    t, ev = _funnel(None, amber=0.3)
    w = what_if(ev, t, {"leads": 160.0})
    assert w.node("leads").status_after == "amber"
