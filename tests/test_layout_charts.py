"""The tree layout never overlaps boxes, and chart specs are checked as data (the Vega-Lite dict)."""

from __future__ import annotations

import itertools

import pandas as pd
import pytest
from conftest import ROOT

from kpitree.charts import segment_chart, tree_chart, trend_chart, waterfall_chart, with_selection
from kpitree.evaluate import Evaluation, NodeResult
from kpitree.layout import layout_tree
from kpitree.periods import parse_period
from kpitree.tree import load_tree, parse_yaml


def synthetic_tree(n: int, fanout: int = 4) -> str:
    lines = ["name: big", "nodes:"]
    for i in range(n):
        kids = [f"n{j}" for j in range(i * fanout + 1, min(n, i * fanout + fanout + 1))]
        depth = 1
        k = i
        while k > 0:
            k = (k - 1) // fanout
            depth += 1
        lines += [f"  - id: n{i}", f"    label: Node number {i} with a long label", f"    level: {min(depth, 5)}",
                  "    metric: leads", "    owner: Someone", "    target: 10"]
        if kids:
            lines.append(f"    children: [{', '.join(kids)}]")
    return "\n".join(lines)


def overlaps(a, b) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


@pytest.mark.parametrize("n", [5, 12, 22, 40, 60])
def test_no_two_boxes_overlap_and_root_is_top_left(n):
    text = synthetic_tree(n)
    tree, problems = parse_yaml(text.replace("level: 5", "level: 5"))
    # Depth beyond 5 levels is clamped, so deep synthetic trees may repeat a level: skip those.
    if tree is None or any(p.severity == "error" for p in problems):
        pytest.skip("synthetic tree deeper than five levels")
    lay = layout_tree(tree, max_width=1000)
    boxes = list(lay.boxes.values())
    assert len(boxes) == n
    for a, b in itertools.combinations(boxes, 2):
        assert not overlaps(a, b), (a, b)
    root = lay.boxes[tree.root.id]
    assert root.x0 == min(b.x0 for b in boxes) and root.y0 == min(b.y0 for b in boxes)
    if lay.orientation == "down":
        assert lay.width <= 1000


def test_revops_tree_turns_left_to_right_when_too_wide():
    tree = load_tree(ROOT / "data" / "trees" / "revops.yaml")
    assert layout_tree(tree, max_width=1000).orientation == "right"
    assert layout_tree(tree, max_width=5000).orientation == "down"


def evaluation_for(tree) -> Evaluation:
    statuses = ["red", "amber", "green", "no_target", "no_data"]
    nodes = [NodeResult(n.id, n.label, n.metric, n.level_name, n.owner, 10.0, 12.0, statuses[i % 5], 9.0, "money",
                        "higher", "weekly", children=n.children, formula=n.formula) for i, n in enumerate(tree.walk())]
    return Evaluation(parse_period("2026-10"), parse_period("2026-11").start, nodes, True)


def test_tree_chart_spec():
    tree = load_tree(ROOT / "data" / "trees" / "revops.yaml")
    lay = layout_tree(tree)
    spec = tree_chart(lay, evaluation_for(tree)).to_dict()  # validates against the Vega-Lite schema
    params = spec["params"]
    assert [p["name"] for p in params] == ["node"] and params[0]["select"]["fields"] == ["id"]
    marks = [layer["mark"]["type"] for layer in spec["layer"]]
    assert marks == ["rule", "rect", "text", "text", "text"]
    boxes = spec["datasets"][spec["layer"][1]["data"]["name"]]
    assert {b["id"] for b in boxes} == {n.id for n in tree.nodes}
    assert {b["status"] for b in boxes} == {"red", "amber", "green", "no_target", "no_data"}
    red = next(b for b in boxes if b["status"] == "red")
    assert red["stroke"] == "#c62828"
    # Exact formula links are solid, influence links dashed.
    edges = spec["datasets"][spec["layer"][0]["data"]["name"]]
    links = {(e["parent"], e["child"]): e["link"] for e in edges}
    assert links[("new_arr", "new_business_arr")] == "formula"
    assert links[("arr", "new_arr")] == "influence"
    assert links[("new_business_arr", "pipeline_coverage")] == "influence"
    tooltip_titles = [t["title"] for t in spec["layer"][1]["encoding"]["tooltip"]]
    assert tooltip_titles[0] == "label" and "owner" in tooltip_titles


def test_with_selection_swaps_only_the_selected_box():
    tree = load_tree(ROOT / "data" / "trees" / "revops.yaml")
    spec = tree_chart(layout_tree(tree), evaluation_for(tree)).to_dict()
    chosen = with_selection(spec, "win_rate")
    assert chosen["params"][0]["value"] == [{"id": "win_rate"}]
    assert "value" not in spec["params"][0]  # the cached spec is untouched
    assert "value" not in with_selection(chosen, None)["params"][0]
    assert chosen["layer"] is spec["layer"]


def test_other_charts_are_valid_specs():
    trend = pd.DataFrame({"period": ["2026-08", "2026-09", "2026-10"], "start": [None] * 3,
                          "value": [1.0, 2.0, 3.0], "target": [2.0, 2.0, 2.0]})
    spec = trend_chart(trend, "money").to_dict()
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["line", "line"]
    seg = pd.DataFrame({"segment": ["A", "B"], "current": [1.0, 2.0], "baseline": [2.0, 2.0], "change": [-1.0, 0.0]})
    spec = segment_chart(seg, "percent", "owner", ["A"]).to_dict()
    data = spec["datasets"][spec["data"]["name"]]  # both layers share the data, so it sits on top
    assert [d["role"] for d in data] == ["explains", "other"]
    spec = waterfall_chart("target", 100.0, [("a", -30.0), ("b", 10.0)], "actual", "money").to_dict()
    rows = spec["datasets"][spec["data"]["name"]]
    assert [(r["step"], r["lo"], r["hi"]) for r in rows] == [
        ("target", 0.0, 100.0), ("a", 70.0, 100.0), ("b", 70.0, 80.0), ("actual", 0.0, 80.0)]


def test_count_and_small_axes_never_read_as_milli():
    """0.2 leads is not "200m": SI suffixes only for large numbers, plain decimals below."""
    from kpitree.charts import axis_format

    for unit in ("count", "number", "money"):
        small = axis_format(unit, [0.2, 0.4, 2.9])
        assert "s" not in small.replace("$", ""), (unit, small)
    assert axis_format("count", [12_000, 40_000]).endswith("s")
    assert axis_format("money", [1_500_000]) == "$,.3s"
    df = pd.DataFrame({"segment": ["Web", "Purchased List"], "current": [2.0, 0.0], "baseline": [1.4, 1.4],
                       "change": [0.6, -1.4]})
    spec = segment_chart(df, "count", "channel", ["Purchased List"]).to_dict()
    assert spec["layer"][0]["encoding"]["x"]["axis"]["format"] == ",.2~f"
    trend = pd.DataFrame({"period": ["2025-07", "2025-08"], "value": [1.0, 0.0], "target": [1.4, 1.4]})
    assert trend_chart(trend, "count").to_dict()["layer"][0]["encoding"]["y"]["axis"]["format"] == ",.2~f"


def test_a_segment_that_fell_to_zero_is_still_marked_red():
    """A bar of length 0 shows no colour: the segment's name and baseline tick carry it, so the
    caption's "in red, the segments that explain the gap" matches what is drawn."""
    df = pd.DataFrame({"segment": ["Web", "Purchased List"], "current": [2.0, 0.0], "baseline": [1.4, 1.4],
                       "change": [0.6, -1.4]})
    spec = segment_chart(df, "count", "channel", ["Purchased List"]).to_dict()
    label_color = spec["layer"][0]["encoding"]["y"]["axis"]["labelColor"]["expr"]
    assert '"Purchased List"' in label_color and "#c62828" in label_color and '"Web"' not in label_color
    tick = spec["layer"][1]["encoding"]["color"]
    assert tick["field"] == "role" and tick["scale"]["range"][0] == "#c62828"


def test_a_gain_shows_the_segments_that_carried_it_first():
    from kpitree.charts import gain_segments, is_gain

    frame = pd.DataFrame({"segment": ["FR", "DE", "UK", "US"], "adverse": [1879.0, 1794.0, -76000.0, -27000.0],
                          "explains": [False, False, False, False]})
    out = gain_segments(frame, ["UK"])
    assert list(out["segment"][:2]) == ["UK", "US"]
    assert list(out["explains"]) == [True, False, False, False]
    assert is_gain("higher", 5.0) and is_gain("lower", -1.0)
    assert not is_gain("higher", -5.0) and not is_gain("higher", None)
