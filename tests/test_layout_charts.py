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
    parents = {c: n.id for n in tree.nodes for c in n.children}
    nodes = [NodeResult(n.id, n.label, n.metric, n.level_name, n.owner, 10.0, 12.0, statuses[i % 5], 9.0, "money",
                        "higher", "weekly", children=n.children, formula=n.formula, parent=parents.get(n.id))
             for i, n in enumerate(tree.walk())]
    return Evaluation(parse_period("2026-10"), parse_period("2026-11").start, nodes, True)


def test_tree_chart_spec():
    tree = load_tree(ROOT / "data" / "trees" / "revops.yaml")
    lay = layout_tree(tree)
    spec = tree_chart(lay, evaluation_for(tree)).to_dict()  # validates against the Vega-Lite schema
    params = spec["params"]
    assert [p["name"] for p in params] == ["node"] and params[0]["select"]["fields"] == ["id"]
    marks = [layer["mark"]["type"] for layer in spec["layer"]]
    assert marks == ["rule", "rule", "rect", "text", "text", "text"]  # links, red path, boxes, 3 text lines
    boxes = spec["datasets"][spec["layer"][2]["data"]["name"]]
    assert {b["id"] for b in boxes} == {n.id for n in tree.nodes}
    assert {b["status"] for b in boxes} == {"red", "amber", "green", "no_target", "no_data"}
    red = next(b for b in boxes if b["status"] == "red")
    assert red["stroke"] == "#c62828"
    # Exact formula links are solid, influence links dashed.
    edges = spec["datasets"][spec["layer"][0]["data"]["name"]]
    links = {(e["parent"], e["child"]): e["link"] for e in edges}
    assert links[("arr", "arr_new")] == "formula"  # ARR's bridge is exact
    assert links[("new_business_arr", "win_rate")] == "formula"
    assert links[("arr_new", "new_business_arr")] == "influence"  # bookings lead the new-logo part
    assert links[("new_business_arr", "pipeline_coverage")] == "influence"
    tooltip_titles = [t["title"] for t in spec["layer"][2]["encoding"]["tooltip"]]
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
    # every bar is named (Vega drops overlapping axis labels unless told not to) and its amount written
    assert spec["layer"][0]["encoding"]["x"]["axis"]["labelOverlap"] is False
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["bar", "text"]
    assert [r["text"] for r in rows] == ["$100", "−$30", "+$10", "$80"]
    # a bridge: $155M moved by a few $M. From a floor below the lowest level (155 − 3 = 152; the moves
    # span 152–157, so the floor is 152 − 2.5), not from $0, where the moves would be slivers.
    spec = waterfall_chart("ARR at start", 155.0, [("New", 2.0), ("Churn", -5.0)], "ARR at end", "money",
                           zero=False).to_dict()
    rows = spec["datasets"][spec["data"]["name"]]
    assert [(r["step"], r["lo"], r["hi"]) for r in rows] == [
        ("ARR at start", 149.5, 155.0), ("New", 155.0, 157.0), ("Churn", 152.0, 157.0), ("ARR at end", 149.5, 152.0)]
    scale = spec["layer"][0]["encoding"]["y"]["scale"]
    assert scale["zero"] is False and scale["domain"] == [149.5, 157.75]


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


def test_a_gain_is_the_good_way_against_the_baseline():
    from kpitree.charts import is_gain

    assert is_gain("higher", 5.0) and is_gain("lower", -1.0)
    assert not is_gain("higher", -5.0) and not is_gain("higher", None)


TEMPLATES = sorted((ROOT / "data" / "trees").glob("*.yaml"))


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.stem)
@pytest.mark.parametrize("width", [440.0, 620.0, 760.0, 1000.0])
def test_every_template_fits_its_column_with_labels_whole_or_on_two_lines(path, width):
    """The tree beside the panel gets a column, not the page: every box within the width, none
    overlapping, every label (and owner) within its box by the text metrics the chart draws with; a
    label is cut ("…", full one in the tooltip) only after two lines, and only in the outline."""
    from kpitree.layout import ELLIPSIS, LABEL_SIZE, OWNER_SIZE, text_width

    tree = load_tree(path)
    lay = layout_tree(tree, max_width=width)
    assert lay.width <= width + 1e-6
    for a, b in itertools.combinations(lay.boxes.values(), 2):
        assert not overlaps(a, b), (a, b)
    slots = lay.text
    for n in tree.nodes:
        box = lay.boxes[n.id]
        assert 1 <= len(box.lines) <= 2
        for line in box.lines:
            assert text_width(line, LABEL_SIZE, bold=True) <= slots.label_w + 0.5, (n.label, line)
        assert text_width(box.owner, OWNER_SIZE) <= slots.owner_w + 0.5
        if box.lines[-1].endswith(ELLIPSIS):
            assert len(box.lines) == 2 and lay.orientation == "indent", (n.label, box.lines)
        else:
            assert " ".join(box.lines) == " ".join(n.label.split()), (n.label, box.lines)
        assert box.h >= 5 + 14 * len(box.lines) + 12  # the lines fit the box's height


def test_narrow_columns_turn_deep_trees_to_an_outline():
    tree = load_tree(ROOT / "data" / "trees" / "revops.yaml")
    assert layout_tree(tree, max_width=440).orientation == "indent"
    assert layout_tree(tree, max_width=5000).orientation == "down"
    lay = layout_tree(tree, max_width=440)
    root = lay.boxes[tree.root.id]
    assert all(root.y0 < b.y0 for b in lay.boxes.values() if b.id != root.id)  # the north star on top
    for n in tree.nodes:  # a child is indented right of its parent and below it
        for c in n.children:
            assert lay.boxes[c].x0 > lay.boxes[n.id].x0 and lay.boxes[c].y0 > lay.boxes[n.id].y0


def test_with_path_emphasises_the_path_and_dims_the_rest():
    from kpitree.charts import path_ids, with_path

    tree = load_tree(ROOT / "data" / "trees" / "revops.yaml")
    evaluation = evaluation_for(tree)
    spec = tree_chart(layout_tree(tree, max_width=440), evaluation).to_dict()
    path = path_ids(evaluation, "new_business_arr", ["new_business_arr", "win_rate"])
    assert path == ["arr", "arr_new", "new_business_arr", "win_rate"]
    drawn = with_path(spec, path)
    boxes = drawn["datasets"][drawn["layer"][2]["data"]["name"]]
    assert {b["id"] for b in boxes if b["on_path"]} == set(path)
    assert all(b["dim"] != b["on_path"] for b in boxes)
    edges = drawn["datasets"][drawn["layer"][0]["data"]["name"]]
    on = {(e["parent"], e["child"]) for e in edges if e["on_path"]}
    assert on == {("arr", "arr_new"), ("arr_new", "new_business_arr"), ("new_business_arr", "win_rate")}
    assert drawn["layer"][1]["transform"] == [{"filter": "datum.on_path"}]  # the red path layer
    # the cached spec is untouched; no path, nothing dimmed
    assert not any(b["on_path"] or b["dim"] for b in spec["datasets"][spec["layer"][2]["data"]["name"]])
    plain = with_path(spec, [])
    assert not any(b["dim"] for b in plain["datasets"][plain["layer"][2]["data"]["name"]])


def test_boxes_compare_with_the_chosen_baseline():
    from kpitree.charts import box_value_line, change_text

    tree = load_tree(ROOT / "data" / "trees" / "revops.yaml")
    evaluation = evaluation_for(tree)
    lay = layout_tree(tree, max_width=440)
    against_target = tree_chart(lay, evaluation).to_dict()
    rows = against_target["datasets"][against_target["layer"][2]["data"]["name"]]
    assert {r["line2"] for r in rows if r["status"] != "no_data"} <= {"$10 / $12"}
    previous = tree_chart(lay, evaluation, versus="previous", baselines={n.id: 8.0 for n in tree.nodes}).to_dict()
    rows = previous["datasets"][previous["layer"][2]["data"]["name"]]
    assert {r["line2"] for r in rows} == {"$10 (+25%)"}
    assert [t["title"] for t in previous["layer"][2]["encoding"]["tooltip"]][3] == "previous period"
    assert change_text(100.0, 100.2, "count") == "0%" and change_text(0.2, 0.2004, "percent") == "0 pp"
    assert change_text(0.25, 0.2, "percent") == "+5.0 pp" and change_text(90.0, 100.0, "money") == "−10%"
    suggested = evaluation.nodes[0]
    suggested.target_basis = "median of the last 3 months"
    assert box_value_line(suggested) == "$10 / ~$12"


def test_trend_draws_the_reference_it_is_compared_with():
    trend = pd.DataFrame({"period": ["2026-08", "2026-09", "2026-10"], "value": [1.0, 2.0, 3.0],
                          "target": [2.0, 2.0, 2.0]})
    spec = trend_chart(trend, "money", reference=("2026-09", 2.0)).to_dict()
    assert [layer["mark"]["type"] for layer in spec["layer"]] == ["line", "line", "rule", "point"]
    assert trend_chart(trend, "money").to_dict()["layer"][-1]["mark"]["type"] == "line"


def test_legend_names_every_colour_and_link():
    from kpitree.charts import STATUS_STROKE, legend_html

    text = legend_html("target")
    for colour in (STATUS_STROKE["red"], STATUS_STROKE["amber"], STATUS_STROKE["green"], STATUS_STROKE["no_target"]):
        assert colour in text
    for words in ("off target", "amber band", "formula", "influence", "suggested", "red path"):
        assert words in text
    assert "colours still against target" in legend_html("previous", "2026-09")


def test_a_small_tree_keeps_its_boxes_narrow_when_the_chart_is_stretched():
    """The chart spans the column it was laid out for, so stretching it to a wider column scales a
    two-box tree by the columns' ratio, not by the column over its one box."""
    tree, _ = parse_yaml("name: s\nnodes:\n  - {id: a, label: A, level: 1, metric: leads, owner: X, children: [b]}\n"
                         "  - {id: b, label: B, level: 2, metric: leads, owner: Y}\n")
    lay = layout_tree(tree, max_width=440)
    assert lay.orientation == "down" and lay.width == 440 and lay.box_w <= 200


def test_wrapping_and_cutting_cost_grows_linearly_with_the_label(monkeypatch):
    """A 3,000-character label took 4.4 s to lay out and 9,000 took 68 s (every longer candidate line
    measured anew); counted in characters measured, ten times the label costs ten times the work,
    and the lines chosen are those of measuring each candidate whole."""
    from kpitree import layout

    calls = [0]
    measure = layout.char_width

    def counted(ch: str, bold: bool = False) -> float:
        calls[0] += 1
        return measure(ch, bold)

    monkeypatch.setattr(layout, "char_width", counted)
    work = {}
    for n in (900, 9_000):
        label = ("Outbound touches per SDR per week " * (n // 34 + 1))[:n]
        calls[0] = 0
        lines = layout.wrap(label, 160.0)
        work[n] = calls[0]
        assert len(lines) == 2 and lines[-1].endswith("…")
        assert layout.text_width(lines[0], layout.LABEL_SIZE, True) <= 160.0
        assert layout.text_width(lines[-1], layout.LABEL_SIZE, True) <= 160.0
    assert work[9_000] <= 12 * work[900] and work[9_000] <= 10 * 9_000
    word = "x" * 5_000  # one word longer than a line: cut, in one pass
    calls[0] = 0
    assert layout.cut(word, 100.0, 12.0).endswith("…") and calls[0] <= 3 * len(word)
    assert layout.wrap("Win rate (new)", 160.0) == ("Win rate (new)",)
    assert layout.wrap("Outbound touches per SDR per week", 120.0) == ("Outbound touches", "per SDR per week")


def test_tree_text_shrinks_with_a_chart_drawn_narrower_than_its_layout():
    """The Builder's preview is laid out for 760 px but drawn in a narrower column: the boxes shrank
    and the text did not, so labels ran out of their boxes over the links. Every text size is an
    expression of the drawn width: as laid out at that width or wider, in proportion below it."""
    tree = load_tree(ROOT / "data" / "trees" / "revops.yaml")
    layout = layout_tree(tree, max_width=760.0)
    spec = tree_chart(layout, evaluation_for(tree)).to_dict()
    texts = [layer["mark"] for layer in spec["layer"] if layer["mark"]["type"] == "text"]
    assert len(texts) == 3
    for mark in texts:
        for prop in ("fontSize", "limit"):
            assert mark[prop]["expr"].endswith(f"* min(1, width / {layout.width:g})"), (prop, mark[prop])
    label = next(m for m in texts if m.get("fontWeight") == "bold")
    assert label["lineHeight"]["expr"].startswith("14 * ")
