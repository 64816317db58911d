"""The tree page read at a glance (issue 14), through AppTest: one baseline per view, every red lever
accounted for, user text never rendered as Markdown, and a tree file that fails to load never
takes the page down."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import yaml
from apptest_utils import failures, unescaped
from conftest import ROOT
from streamlit.testing.v1 import AppTest

from kpitree.charts import change_text
from kpitree.errors import KpiTreeError
from kpitree.evaluate import Engine, evaluate_tree
from kpitree.periods import parse_period
from kpitree.tree import load_tree
from kpitree.workspace import Workspace

REVOPS = ROOT / "data" / "trees" / "revops.yaml"


@pytest.fixture
def app(demo_data_dir, monkeypatch) -> AppTest:
    monkeypatch.setenv("KPITREE_DATA_DIR", str(demo_data_dir))
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)


def page_text(at: AppTest) -> str:
    return "\n".join(unescaped(e.value) for e in [*at.markdown, *at.caption, *at.info, *at.warning])


def tree_rows(at: AppTest) -> tuple[dict, list[dict]]:
    """The drawn tree chart's spec and its box rows (the dataset with `stroke_w`), as sent to the
    browser (Streamlit ships the datasets beside the spec, as Arrow tables)."""
    import pyarrow as pa

    chart = next(e for e in at.main if e.type == "vega_lite_chart" and (e.key or "").startswith("tree_"))
    spec = json.loads(chart.proto.spec)
    tables = [pa.ipc.open_stream(d.data.data).read_all() for d in chart.proto.datasets]
    boxes = next(t.to_pylist() for t in tables if "stroke_w" in t.column_names)
    return spec, boxes


def test_compare_with_previous_sets_every_delta_on_the_page(app, demo_data_dir):
    """Box figures, the panel's delta, the children table, the trend's reference, the segment table and
    the sentences all compare with 2026-09; the status colours stay against target and say so."""
    at = app.run()
    at.radio(key="versus").set_value("previous").run()
    at.selectbox(key="node_pick").set_value("new_business_arr").run()
    assert not failures(at), failures(at)
    evaluation = evaluate_tree(Engine(Workspace(demo_data_dir / "demo")), load_tree(REVOPS), parse_period("2026-10"))

    spec, boxes = tree_rows(at)
    for box in boxes:  # "value (change against 2026-09)", never "value / target"
        n = evaluation.node(box["id"])
        assert " / " not in box["line2"], box
        assert box["line2"].endswith(f"({change_text(n.compared, n.previous, n.unit)})"), (box["line2"], n)
        assert box["status"] == n.status  # colours still against target
    box_tooltip = next(layer for layer in spec["layer"] if layer["mark"]["type"] == "rect")["encoding"]["tooltip"]
    assert "previous period" in [t["title"] for t in box_tooltip]

    (metric,) = [m for m in at.metric if m.label == "Actual"]
    nb = evaluation.node("new_business_arr")
    assert metric.proto.delta.endswith("vs 2026-09") and nb.previous is not None
    assert [m.label for m in at.metric][1].startswith("2026-09")
    children = next(t.value for t in at.table if t.value.columns[0] == "child")
    assert "2026-09" in children.columns and "target" not in children.columns
    trend_spec = next(spec for spec in (json.loads(e.proto.spec) for e in at.main if e.type == "vega_lite_chart")
                      if "Trend" in json.dumps(spec.get("title", "")))
    assert "2026-09" in json.dumps(trend_spec["title"]) and "rule" in [
        layer["mark"]["type"] for layer in trend_spec["layer"]]
    segments = next(t.value for t in at.table if t.value.columns[0] in ("Owner", "Segment", "Channel"))
    assert "2026-09" in segments.columns and "target share" not in segments.columns
    text = page_text(at)
    assert "comparing with the previous period (2026-09)" in text
    assert "status is against target" in text
    assert "2026-09" in " ".join(unescaped(m.value) for m in at.markdown if "New business ARR:" in unescaped(m.value))

    at.radio(key="versus").set_value("target").run()  # and back: value / target on every box with a target
    _, boxes = tree_rows(at)
    assert all(" / " in b["line2"] for b in boxes if evaluation.node(b["id"]).target is not None)


def test_follow_the_red_path_draws_it_and_accounts_for_every_red_lever(app, demo_data_dir):
    """After "Follow the red path" the path's boxes are emphasised in the chart data, and every red
    lever of the tree is in the path, in "Also off track", or in a sentence saying why it is not."""
    at = app.run()
    _, boxes = tree_rows(at)
    assert not any(b["on_path"] or b["dim"] for b in boxes)  # nothing drawn before it is asked for
    at.button(key="red_path").click().run()
    assert not failures(at), failures(at)
    _, boxes = tree_rows(at)
    path = [b["id"] for b in boxes if b["on_path"]]
    # ARR is an exact bridge; the shortfall it started the month with is carried over, not followed
    assert path[0] == "arr" and "arr_start" not in path and len(path) >= 3
    assert all(b["dim"] for b in boxes if not b["on_path"])

    evaluation = evaluate_tree(Engine(Workspace(demo_data_dir / "demo")), load_tree(REVOPS), parse_period("2026-10"))
    red_levers = [n for n in evaluation.nodes if n.status == "red" and not n.children]
    assert red_levers
    listed = page_text(at)
    opened = {b.key.removeprefix("open_cause_") for b in at.button if b.key.startswith("open_cause_")}
    lever = next(b for b in at.button if b.key == "open_lever")
    missing = [n.label for n in red_levers if n.id not in opened and n.id not in path
               and not re.search(rf"\b{re.escape(n.label)}\b.*(on target|not part|within)", listed)]
    assert not missing, f"red levers neither on the path, nor in 'Also off track', nor explained: {missing}"
    assert unescaped(lever.label).startswith("Open: ")


def test_user_text_never_renders_as_markdown(demo_data_dir, tmp_path, monkeypatch):
    """A label, an owner and a tree name with Markdown in them (a link, an image, emphasis) show as
    typed: every Markdown element on the page carries them escaped."""
    root = tmp_path / "data"
    shutil.copytree(demo_data_dir / "demo", root / "demo")
    doc = yaml.safe_load(REVOPS.read_text())
    doc["name"] = "Ops *tree* [x](https://example.invalid)"
    nodes = {n["id"]: n for n in doc["nodes"]}
    nodes["win_rate"]["label"] = "Win ![img](https://example.invalid/a.png) rate"
    nodes["win_rate"]["owner"] = "**Dana** [me](https://example.invalid)"
    (root / "demo" / "trees").mkdir(exist_ok=True)
    (root / "demo" / "trees" / "revops.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    monkeypatch.setenv("KPITREE_DATA_DIR", str(root))
    app = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    app.query_params.update({"ws": "demo", "tree": "revops", "node": "win_rate"})
    at = app.run()
    at.button(key="red_path").click().run()
    at.selectbox(key="node_pick").set_value("win_rate").run()
    assert not failures(at), failures(at)
    shown = [e.value for e in [*at.markdown, *at.caption, *at.info, *at.warning, *at.error]]
    shown += [b.label for b in at.button]
    assert any("example.invalid" in unescaped(v) for v in shown)  # the text is on the page …
    for value in shown:  # … and never as a live link, image or emphasis
        assert "](" not in value and "![" not in value and "**Dana" not in value, value
    assert any(unescaped(v).startswith("#### Win ![img](https://example.invalid/a.png) rate") for v in shown)


def test_a_tree_that_fails_to_load_is_named_and_another_is_shown(app, monkeypatch):
    """A tree file that fails to load (hostile YAML, an edit meanwhile) never takes the page down: the
    page names it, links to the Builder, and shows another tree."""
    import ui

    real = ui.tree_for

    def broken(path):
        if path.stem == "revops":
            raise KpiTreeError("revops.yaml: YAML aliases are not allowed in a tree file")
        return real(path)

    monkeypatch.setattr(ui, "tree_for", broken)
    app.query_params.update({"tree": "revops"})
    at = app.run()
    assert not failures(at), failures(at)
    errors = [unescaped(e.value) for e in at.error]
    assert any("The tree revops (template) cannot be opened" in e and "aliases" in e for e in errors), errors
    assert any("Builder" in str(link.proto.label) for link in at.get("page_link"))
    assert "Showing" in page_text(at) and any(m.value.startswith("#### ") for m in at.markdown)
    assert at.query_params["tree"] != "revops"


def test_the_red_path_can_be_hidden_again(app):
    at = app.run()
    at.button(key="red_path").click().run()
    assert any(b["on_path"] for b in tree_rows(at)[1])
    at.button(key="hide_path").click().run()
    assert not failures(at)
    assert not any(b["on_path"] or b["dim"] for b in tree_rows(at)[1])
    assert not any(b.key == "open_lever" for b in at.button)


@pytest.mark.parametrize("node_id", ["arr", "new_business_arr", "win_rate", "leads"])
def test_a_segment_is_red_exactly_when_the_words_name_it(app, demo_data_dir, node_id):
    """The segment chart colours the segments the explanation names for the split shown, and the
    panel's sentence names every one of them (no red bar the words leave out, no named one grey)."""
    import pyarrow as pa

    from kpitree.explain import explain_node, named_segments

    at = app.run()
    at.selectbox(key="node_pick").set_value(node_id).run()
    assert not failures(at), failures(at)
    dim = at.radio(key=f"dim_{node_id}").value
    chart = next(e for e in at.main if e.type == "vega_lite_chart" and '"explains"' in e.proto.spec)
    rows = next(t.to_pylist() for t in (pa.ipc.open_stream(d.data.data).read_all() for d in chart.proto.datasets)
                if "role" in t.column_names)
    red = {r["segment"] for r in rows if r["role"] == "explains"}
    result = explain_node(Engine(Workspace(demo_data_dir / "demo")), load_tree(REVOPS), node_id,
                          parse_period("2026-10"), "target")
    named = set(named_segments(result, dim))
    assert red == named, (dim, red, named)
    sentence = next((unescaped(m.value) for m in at.markdown if unescaped(m.value).startswith(f"By {dim}:")), "")
    assert all(s in sentence for s in named), (sentence, named)
