""""What it takes" in a running period: one basis, the numbers so far against the targets by now.

The tree colours a running ARR on its level today against the plan's level today (the target by now), and
the explanation splits that gap over the children so far. Back-solving and the what-if answer the same
question on the same numbers: a flow's value to date (not its pace), NRR period-to-date, against the
target by now — never the flows' pace mixed with NRR to date against the period's end target.
"""

from __future__ import annotations

from datetime import date

import pytest

from kpitree.evaluate import Evaluation, NodeResult, judge, pace_of, target_by_now, target_for
from kpitree.periods import parse_period
from kpitree.tree import parse_yaml
from kpitree.whatif import basis_words, goal_of, needed_for_target, slider_for, what_if

TREE = """
name: running
grain: month
nodes:
  - {id: arr, label: ARR, level: north_star, metric: arr, owner: CEO, target: 1290,
     formula: arr = arr_start * nrr + arr_new, children: [arr_start, nrr, arr_new]}
  - {id: arr_start, label: ARR at start, level: driver, metric: arr_start, owner: CEO, target: 1000}
  - {id: nrr, label: NRR, level: driver, metric: nrr, owner: CS, target: 1.05}
  - {id: arr_new, label: New-logo ARR, level: driver, metric: arr_new, owner: CRO,
     target: {by_period: {2026-11: 240}}, formula: arr_new = nb + exp, children: [nb, exp]}
  - {id: nb, label: New business, level: lever, metric: new_business_arr, owner: AE, target: {by_period: {2026-11: 210}}}
  - {id: exp, label: Upsell, level: lever, metric: expansion_arr, owner: AM, target: {by_period: {2026-11: 30}}}
"""
# 20 November: 20 of November's 30 days are done, and the plan has no monthly shape inside a month,
# so a flow's share of its plan done by now is 2/3.
SHARE = 2 / 3
# So far: ARR 1,140 = 1,000 × 1.00 + 140; new-logo ARR 140 = 115 + 25 (pace 140 / (2/3) = 210).
SO_FAR = {"arr": 1140.0, "arr_start": 1000.0, "nrr": 1.0, "arr_new": 140.0, "nb": 115.0, "exp": 25.0}
# The plan by now: NRR compounds to 1.05^(2/3) = 1.03306 by 20 November; new-logo ARR 240 × 2/3 = 160;
# ARR, the formula over its parts' targets by now: 1,000 × 1.03306 + 160 = 1,193.06 (its end target 1,290
# is the same formula over the end targets, 1,000 × 1.05 + 240).
NRR_BY_NOW = 1.05 ** SHARE
ARR_BY_NOW = 1000 * NRR_BY_NOW + 240 * SHARE


def tree():
    t, problems = parse_yaml(TREE, "running.yaml")
    assert t is not None and not [p for p in problems if p.severity == "error"], problems
    return t


def running_evaluation(values: dict[str, float] | None = None, as_of: date = date(2026, 11, 20)) -> Evaluation:
    """What evaluate makes of these numbers on `as_of`: pace, target by now and status by its own functions."""
    t, period = tree(), parse_period("2026-11")
    found = {**SO_FAR, **(values or {})}
    nodes = []
    for n in t.walk():
        value, target = found[n.id], target_for(n, period)
        pace = pace_of(n, period, as_of, value)
        by_now = target_by_now(n, period, as_of, None, t)
        judged = by_now.value if by_now is not None else target
        status, _ = judge(value, judged, n.better, pace=pace)
        parent = t.parent_of(n.id)
        nodes.append(NodeResult(n.id, n.label, n.metric, n.level_name, n.owner, value, target, status, None,
                                n.shown_unit, n.better, n.review, pace=pace,
                                elapsed=period.elapsed_fraction(as_of), formula=n.formula,
                                parent=parent.id if parent else None, children=n.children,
                                target_by_now=by_now.value if by_now is not None else None))
    return Evaluation(period, as_of, nodes, period.is_complete(as_of))


def test_the_plan_by_now_is_the_one_evaluate_judges() -> None:
    ev = running_evaluation()
    assert ev.node("arr").target_by_now == pytest.approx(ARR_BY_NOW)  # 1,193.06
    assert ev.node("nrr").target_by_now == pytest.approx(NRR_BY_NOW)  # 1.03306
    assert ev.node("arr_new").pace == pytest.approx(210.0)
    t = tree()
    assert goal_of(ev, t, "arr") == pytest.approx(ARR_BY_NOW)
    assert goal_of(ev, t, "arr_new") == pytest.approx(160.0)  # 240 × 2/3
    assert goal_of(ev, t, "arr_start") == 1000.0  # taken at the start: whole on the first day


def test_what_it_takes_closes_the_gap_the_tree_colours() -> None:
    """ARR 1,140 so far against 1,193.06 by now: a gap of 53.06. New-logo ARR so far 140 → 193.06; NRR so far
    1.00 → (1,193.06 − 140) / 1,000 = 1.05306. The mixed basis asked new-logo ARR for 210 (its pace) + (1,290 −
    1,140) = 360 and NRR for 1.15: the flows' pace against the period's end target, with NRR and ARR as today."""
    ev, t = running_evaluation(), tree()
    found = {s.child: s for s in needed_for_target(ev, t, "arr")}
    gap = ARR_BY_NOW - 1140.0
    assert gap == pytest.approx(53.0616, abs=1e-4)
    new, nrr = found["arr_new"], found["nrr"]
    assert new.current == 140.0 and new.needed == pytest.approx(140.0 + gap)  # 193.06
    assert nrr.current == 1.0 and nrr.needed == pytest.approx((ARR_BY_NOW - 140.0) / 1000)  # 1.05306
    assert new.needed != pytest.approx(360.0) and nrr.needed != pytest.approx(1.15)
    assert new.goal == pytest.approx(ARR_BY_NOW) and new.goal_from == "target by now"
    assert new.so_far == "2026-11-20" and new.parent_now == 1140.0
    assert new.sentence() == "New-logo ARR so far: $140 → $193 (+38%) for $1,193 by 2026-11-20"


def test_a_running_flow_parent_is_solved_against_its_part_by_now() -> None:
    """New-logo ARR so far 140 against 240 × 2/3 = 160 by now: new business so far 115 → 135, upsell 25 → 45."""
    ev, t = running_evaluation(), tree()
    found = {s.child: s for s in needed_for_target(ev, t, "arr_new")}
    assert found["nb"].needed == pytest.approx(135.0) and found["exp"].needed == pytest.approx(45.0)
    assert found["nb"].goal == pytest.approx(160.0)


def test_the_what_if_moves_arr_by_what_new_logo_arr_so_far_moves() -> None:
    """New-logo ARR so far 140 → 150 moves ARR today by 10 (1,140 → 1,150), not by the 15 its pace moves
    (210 → 225). ARR 1,140 is 4.4 % short of 1,193.06 (amber); at 195 so far it reaches 1,195: green; new-logo ARR's pace 195 / (2/3) = 292.5
    against 240: green (it was red at 210, more than 5 % short)."""
    ev, t = running_evaluation(), tree()
    w = what_if(ev, t, {"arr_new": 150.0})
    assert w.node("arr").after == pytest.approx(1150.0) and w.node("arr").change == pytest.approx(10.0)
    assert w.node("arr").target == pytest.approx(ARR_BY_NOW) and w.so_far == "2026-11-20"
    assert "so far (to 2026-11-20, against the targets by now)" in w.text()
    w = what_if(ev, t, {"arr_new": 195.0})
    assert w.node("arr").after == pytest.approx(1195.0)
    assert (w.node("arr").status_before, w.node("arr").status_after) == ("amber", "green")
    assert (w.node("arr_new").status_before, w.node("arr_new").status_after) == ("red", "green")
    # a lever below: new business so far 115 → 135 lifts new-logo ARR to 160 (on its plan by now, green)
    # and ARR to 1,160 (still 2.8 % short of 1,193.06: amber)
    w = what_if(ev, t, {"nb": 135.0})
    assert w.node("arr_new").after == pytest.approx(160.0) and w.node("arr_new").status_after == "green"
    assert w.node("arr").after == pytest.approx(1160.0) and w.node("arr").status_after == "amber"


def test_the_slider_moves_the_number_so_far() -> None:
    ev, t = running_evaluation(), tree()
    slider = slider_for(ev, t, "arr_new")
    assert slider.current == 140.0 and slider.so_far == "2026-11-20"  # not its pace, 210
    assert slider.needed.needed == pytest.approx(140.0 + ARR_BY_NOW - 1140.0)
    assert slider.low <= slider.needed.needed <= slider.high


def test_the_basis_is_said_in_words() -> None:
    ev, t = running_evaluation(), tree()
    words = basis_words(ev, t, "arr")
    assert words.startswith("Solved on the numbers so far (2026-11 is running, data as of 2026-11-20): "
                            "ARR $1,140 so far against its target by now $1,193")
    assert "Flows count what has happened so far, not their pace" in words
    assert words.endswith("reaches the 2026-11 target of $1,290 by 2026-11-30.")


def test_a_closed_period_is_solved_against_its_target_as_before() -> None:
    """On 1 December November is closed: the numbers are whole, the goal is the target, nothing is "so far".
    ARR 1,140 against 1,290: new-logo ARR 140 → 290."""
    ev, t = running_evaluation(as_of=date(2026, 12, 1)), tree()
    assert ev.complete and basis_words(ev, t, "arr") == ""
    found = {s.child: s for s in needed_for_target(ev, t, "arr")}
    assert found["arr_new"].needed == pytest.approx(290.0) and found["arr_new"].goal_from == "target"
    assert found["arr_new"].sentence() == "New-logo ARR: $140 → $290 (+107%) for $1,290"
    assert what_if(ev, t, {"arr_new": 150.0}).so_far == ""


# --- the page ------------------------------------------------------------------------------------

@pytest.fixture
def app(demo_data_dir, monkeypatch):
    from conftest import ROOT
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("KPITREE_DATA_DIR", str(demo_data_dir))
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)


def test_the_tree_page_solves_a_running_arr_so_far(app, demo_data_dir):
    """The demo on 2026-11-20 (with the plan as shipped when this was written): ARR $161,943,211.32 so far
    against $173,364,858.62 by now — a gap of $11,421,647.30. New-logo ARR so far $3,421,282.32 + that gap =
    $14,842,929.62 (not the $18.89M its pace needed for the period end's $175.70M). The plan's figures are
    read from the evaluation (another plan moves them); the arithmetic is checked here: needed = so far + gap,
    and the slider moves ARR by exactly what it moves new-logo ARR so far."""
    from apptest_utils import failures, unescaped
    from conftest import ROOT

    from kpitree.charts import STATUS_WORD
    from kpitree.evaluate import evaluate_tree, status_of
    from kpitree.format import fmt, fmt_share
    from kpitree.tree import load_tree
    from kpitree.workspace import Workspace

    ev = evaluate_tree(Workspace(demo_data_dir / "demo"), load_tree(ROOT / "data" / "trees" / "revops.yaml"),
                       "2026-11")
    arr, new = ev.node("arr"), ev.node("arr_new")
    assert arr.value == pytest.approx(161_943_211.32, abs=0.01) and new.value == pytest.approx(3_421_282.32, abs=0.01)
    assert new.pace == pytest.approx(new.value * 1.5)  # 20 of 30 days: the pace the old answer mixed in
    gap = arr.target_by_now - arr.value
    needed = new.value + gap

    at = app.run()
    at.selectbox(key="period").set_value("2026-11").run()
    assert not failures(at)
    text = " ".join(unescaped(m.value) for m in at.markdown)
    assert "To be on the ARR plan by 2026-11-20" in text
    said = (f"New-logo ARR so far: {fmt(new.value, 'money')} → {fmt(needed, 'money')} "
            f"({fmt_share(needed / new.value - 1, signed=True)}) for {fmt(arr.target_by_now, 'money', compact=True)} "
            "by 2026-11-20")
    assert said in text, text
    assert f"for {fmt(arr.target, 'money', compact=True)}" not in text  # never the period end's target
    captions = " ".join(unescaped(c.value) for c in at.caption)
    assert (f"Solved on the numbers so far (2026-11 is running, data as of 2026-11-20): ARR $161.94M so far against "
            f"its target by now {fmt(arr.target_by_now, 'money', compact=True)}") in captions
    assert f"reaches the 2026-11 target of {fmt(arr.target, 'money', compact=True)} by 2026-11-30" in captions

    at.selectbox(key="node_pick").set_value("arr_new").run()
    slider = at.slider(key="whatif_2026-11_arr_new")
    assert slider.value == pytest.approx(3.421282, abs=1e-6)  # $M so far, not the pace $5.13M
    assert "What if New-logo ARR so far were" in unescaped(slider.label)
    assert (f"Needed to be on the ARR plan by 2026-11-20: New-logo ARR so far: {fmt(new.value, 'money')} → "
            f"{fmt(needed, 'money')}") in " ".join(unescaped(c.value) for c in at.caption)
    moved = round(needed / 1e6, 2)
    slider.set_value(moved).run()
    assert not failures(at)
    table = next(d.value for d in at.table if "after" in d.value.columns)
    rows = {r["node"]: r for r in table.to_dict("records")}
    after = arr.value + (moved * 1e6 - new.value)  # ARR today moves one for one with new-logo ARR so far
    assert rows["ARR"]["before"] == fmt(arr.value, "money") and rows["ARR"]["after"] == fmt(after, "money")
    assert rows["ARR"]["status"] == (f"{STATUS_WORD[arr.status]} → "
                                     f"{STATUS_WORD[status_of(after, arr.target_by_now, 'higher', arr.amber)]}")
    assert any("Numbers so far (to 2026-11-20)" in unescaped(c.value) for c in at.caption)
