"""Tree spec: seed-003 rules, technical rules, line numbers in messages, YAML round trip."""

from __future__ import annotations

import textwrap

import pytest
from conftest import ROOT

from kpitree.errors import SpecError
from kpitree.metrics import Kind
from kpitree.periods import parse_period
from kpitree.tree import Target, dump_tree, load_tree, parse_yaml

GOOD = """
name: Small
nodes:
  - id: arr
    level: north_star
    metric: arr
    owner: CEO
    target: 1200000
    children: [new_arr]
  - id: new_arr
    level: driver
    metric: new_arr
    owner: CRO
    target: {monthly: 100000, by_period: {2026-10: 90000}}
    formula: new_arr = nb + exp
    children: [nb, exp]
  - id: nb
    level: core
    metric: new_business_arr
    owner: AE lead
    target: 80000
  - id: exp
    level: core
    metric: expansion_arr
    owner: CSM lead
    target: 20000
"""


def problems_of(text: str):
    return parse_yaml(textwrap.dedent(text), "t.yaml")[1]


def test_good_tree_is_valid():
    tree, problems = parse_yaml(GOOD, "t.yaml")
    assert problems == []
    assert tree.root.id == "arr"
    assert [n.id for n in tree.walk()] == ["arr", "new_arr", "nb", "exp"]
    assert tree.node("new_arr").is_exact and not tree.node("arr").is_exact


@pytest.mark.parametrize(
    "edit, message, node, line",
    [
        (("    owner: CSM lead\n", ""), "needs an owner", "exp", 22),
        (("    target: 20000\n", ""), "numeric target", "exp", 22),
        (("    target: 20000\n", "    target: between 10k and 20k\n"), "must be a number", "exp", 26),
        (("  - id: exp\n", "  - id: nb\n"), "duplicate id 'nb'", "nb", 22),
        (("children: [nb, exp]", "children: [nb, exp, ghost]"), "unknown child 'ghost'", "new_arr", 10),
        (("metric: expansion_arr", "metric: expansion_ar"), "did you mean expansion_arr", "exp", 24),
        (("formula: new_arr = nb + exp", "formula: new_arr = nb + exp + arr"), "not children", "new_arr", 15),
        (("formula: new_arr = nb + exp", "formula: new_arr = nb ** exp"), "cannot be read", "new_arr", 15),
        (("formula: new_arr = nb + exp", "formula: __import__('os')"), "cannot be read", "new_arr", 15),
        (("    level: core\n    metric: expansion_arr", "    level: driver\n    metric: expansion_arr"),
         "not below its parent", "exp", 22),
        (("    children: [nb, exp]\n", "    children: [nb]\n"), "not connected to the level above", "exp", 22),
        (("    owner: CEO\n", "    owner: CEO\n    colour: red\n"), "unknown key 'colour'", "arr", 8),
        (("level: north_star", "level: boss"), "level must be one of", "arr", 5),
        (("    target: 80000\n", "    target: 80000\n    direction: up\n"), "direction must be", "nb", 22),
        (("    target: 80000\n", "    target: 80000\n    review: hourly\n"), "review must be", "nb", 22),
        (("    target: 80000\n", "    target: 80000\n    thresholds: {amber: 5}\n"), "thresholds.amber", "nb", 22),
    ],
)
def test_each_rule_names_node_and_line(edit, message, node, line):
    text = GOOD.replace(*edit)
    assert text != GOOD
    problems = [p for p in parse_yaml(text, "t.yaml")[1] if p.severity == "error"]
    assert problems, f"expected a problem containing {message!r}"
    hit = [p for p in problems if message in p.message]
    assert hit, [str(p) for p in problems]
    assert hit[0].node == node
    assert hit[0].line == line
    assert "t.yaml" in str(hit[0]) and f"line {line}" in str(hit[0])


def test_cycle_is_reported():
    text = GOOD.replace("    target: 20000\n", "    target: 20000\n    children: [new_arr]\n")
    messages = [p.message for p in parse_yaml(text, "t.yaml")[1]]
    assert any("cycle" in m or "already has parent" in m for m in messages)


def test_not_yaml_and_not_a_tree():
    assert "not valid YAML" in problems_of("nodes: [")[0].message
    assert "non-empty `nodes:` list" in problems_of("name: x")[0].message


def test_load_tree_raises_with_all_problems(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(GOOD.replace("    owner: CSM lead\n", "").replace("owner: AE lead", "owner: ''"))
    with pytest.raises(SpecError) as err:
        load_tree(path)
    assert len(err.value.problems) == 2
    assert "bad.yaml" in str(err.value)


def test_round_trip_is_lossless(tmp_path):
    tree, _ = parse_yaml(GOOD, None)
    again, problems = parse_yaml(dump_tree(tree), None)
    assert problems == []
    strip = lambda t: [n.__class__(**{**n.__dict__, "line": None}) for n in t.nodes]  # noqa: E731
    assert strip(again) == strip(tree)


def test_shipped_trees_are_valid():
    for path in (ROOT / "data" / "trees").glob("*.yaml"):
        tree = load_tree(path)
        assert tree.root.level == 1, path


def test_target_resolution():
    t = Target(value=None, per_grain=(("monthly", 100.0),), by_period=(("2026-10", 90.0),))
    assert t.for_period(parse_period("2026-10"), Kind.FLOW) == 90.0
    assert t.for_period(parse_period("2026-09"), Kind.FLOW) == 100.0
    assert t.for_period(parse_period("2026-Q3"), Kind.FLOW) == pytest.approx(100 * 92 / (365.25 / 12))
    annual = Target(per_grain=(("annual", 1200.0),))
    assert annual.for_period(parse_period("2026"), Kind.FLOW) == 1200.0
    assert annual.for_period(parse_period("2026-W41"), Kind.FLOW) == pytest.approx(1200 * 7 / 365.25)
    level = Target(value=0.3)
    assert level.for_period(parse_period("2026-Q3"), Kind.RATIO) == 0.3
    assert level.for_period(parse_period("2026-W41"), Kind.STOCK) == 0.3
    assert Target().for_period(parse_period("2026-10"), Kind.FLOW) is None


def test_monthly_ratio_targets_roll_up_by_the_metrics_rule():
    """Q3 from July–September monthly targets (hand-computed), and a week across two months."""
    nrr = Target(by_period=(("2026-07", 1.01), ("2026-08", 1.02), ("2026-09", 1.00)))
    q3 = parse_period("2026-Q3")
    assert nrr.for_period(q3, Kind.RATIO) == pytest.approx(1.01)  # mean: win rates do not compound
    assert nrr.for_period(q3, Kind.RATIO, "compound") == pytest.approx(1.01 * 1.02 * 1.00)  # 1.0302
    churn = Target(by_period=(("2026-07", 0.02), ("2026-08", 0.02), ("2026-09", 0.02)))
    assert churn.for_period(q3, Kind.RATIO, "churn") == pytest.approx(1 - 0.98 ** 3)  # 5.88 %, not 6 % or 2 %
    assert churn.for_period(q3, Kind.RATIO, "sum") == pytest.approx(0.06)
    # 2026-W40 is Mon 28 Sep – Sun 4 Oct: 3 days of September (of 30), 4 of October (of 31)
    both = Target(by_period=(("2026-09", 0.30), ("2026-10", 0.20)))
    week = parse_period("2026-W40")
    f9, f10 = 3 / 30, 4 / 31
    assert both.for_period(week, Kind.RATIO) == pytest.approx((0.3 * f9 + 0.2 * f10) / (f9 + f10))
    assert both.for_period(week, Kind.RATIO, "compound") == pytest.approx(0.3 ** f9 * 0.2 ** f10)
    assert both.for_period(week, Kind.RATIO, "churn") == pytest.approx(1 - 0.7 ** f9 * 0.8 ** f10)


def test_catalogue_rollups_for_retention_and_churn():
    from kpitree.metrics import CATALOGUE

    assert {n: CATALOGUE[n].rollup for n in ("nrr", "grr", "logo_churn_rate", "expansion_rate", "win_rate")} == {
        "nrr": "compound", "grr": "compound", "logo_churn_rate": "churn", "expansion_rate": "sum", "win_rate": "mean"}
