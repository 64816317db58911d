"""The main screen through Streamlit's AppTest: default view, selecting nodes, bad deep links."""

from __future__ import annotations

import pytest
from apptest_utils import click_node, failures, unescaped
from conftest import ROOT
from streamlit.testing.v1 import AppTest


@pytest.fixture
def app(demo_data_dir, monkeypatch) -> AppTest:
    monkeypatch.setenv("KPITREE_DATA_DIR", str(demo_data_dir))
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)


def headings(at: AppTest) -> list[str]:
    """The page's Markdown as a reader sees it (user text is escaped, see `kpitree.plain`)."""
    return [unescaped(m.value) for m in at.markdown]


def test_default_view_is_the_tree_on_the_latest_complete_month(app):
    at = app.run()
    assert not failures(at)
    assert any(h.startswith("### RevOps KPI tree · 2026-10") for h in headings(at))
    assert at.selectbox(key="node_pick").value == "arr"
    assert "#### ARR" in headings(at)
    chart = next(e for e in at.main if e.type == "vega_lite_chart" and e.key.startswith("tree_"))
    assert '"node"' in chart.proto.spec  # the box layer carries the click selection
    assert at.query_params["period"] == "2026-10"
    # which engine answered, and how long it took (issue 18)
    assert any("DuckDB (the workspace's own file) answered in " in unescaped(c.value) for c in at.caption)


def test_select_box_and_chart_click_stay_in_sync(app):
    at = app.run()
    at.selectbox(key="node_pick").set_value("win_rate").run()
    assert not failures(at)
    assert "#### Win rate (new)" in headings(at)
    assert at.query_params["node"] == "win_rate"
    at = click_node(at, "logo_churn_rate")
    assert not failures(at)
    assert at.selectbox(key="node_pick").value == "logo_churn_rate"
    assert "#### Logo churn rate" in headings(at)
    assert any("Priya Nair" in h for h in headings(at))
    # The segment split of the selected node is offered by its table's dimensions.
    assert at.radio(key="dim_logo_churn_rate").options == ["Segment", "Channel"]  # labels; values stay columns


def test_a_click_on_the_box_the_chart_held_counts_after_the_selectbox_moved_on(app):
    """Click Leads, pick Win rate from the selectbox, click Leads again: Leads opens (the last action wins)."""
    at = click_node(app.run(), "leads")
    assert at.selectbox(key="node_pick").value == "leads"
    at.selectbox(key="node_pick").set_value("win_rate").run()
    assert "#### Win rate (new)" in headings(at)
    at = click_node(at, "leads")
    assert not failures(at)
    assert at.selectbox(key="node_pick").value == "leads"
    assert any(h.startswith("#### Leads") for h in headings(at))


def test_segment_split_switches_dimension(app):
    at = app.run()
    at.selectbox(key="node_pick").set_value("win_rate").run()
    radio = at.radio(key="dim_win_rate")
    assert set(radio.options) == {"Owner", "Segment", "Channel"}  # best first when explanations are on
    assert radio.value in ("owner", "segment", "channel")  # the widget's value is the column name
    radio.set_value("channel").run()
    assert at.query_params["split"] == "channel"
    assert any(c.value.startswith("**By channel** —") for c in at.caption)  # the heading names the split shown
    radio.set_value("segment").run()
    assert not failures(at)
    assert any(c.value.startswith("**By segment** —") for c in at.caption)
    table = at.table[-1].value  # the segment table is the last table on the page
    assert set(table["Segment"]) == {"SMB", "Mid-Market", "Enterprise"}


def test_deep_link_opens_the_exact_view(app):
    app.query_params.update({"ws": "demo", "period": "2026-09", "node": "leads", "grain": "month"})
    at = app.run()
    assert not failures(at)
    assert any(h.startswith("### RevOps KPI tree · 2026-09") for h in headings(at))
    assert "#### Leads" in headings(at)


def test_unknown_node_in_link_falls_back_to_the_north_star(app):
    app.query_params.update({"node": "ghost"})
    at = app.run()
    assert not failures(at)
    assert any("Node 'ghost' is not in tree" in unescaped(w.value) for w in at.warning), [w.value for w in at.warning]
    assert "#### ARR" in headings(at)


def test_unknown_workspace_in_link_shows_no_other_workspace(app):
    app.query_params.update({"ws": "nope"})
    at = app.run()
    assert not failures(at)
    assert any("Workspace 'nope' does not exist" in unescaped(w.value) for w in at.warning)
    assert "#### ARR" not in headings(at)  # nobody else's data by accident
    at.selectbox(key="ws").set_value("demo").run()
    assert "#### ARR" in headings(at)


def test_bad_period_falls_back_to_latest(app):
    app.query_params.update({"period": "2026-99"})
    at = app.run()
    assert not failures(at)
    assert any(h.startswith("### RevOps KPI tree · 2026-10") for h in headings(at))


def test_quarter_grain(app):
    at = app.run()
    at.radio(key="grain").set_value("quarter").run()
    assert not failures(at)
    assert any(h.startswith("### RevOps KPI tree · 2026-Q3") for h in headings(at))


def test_red_path_reaches_the_cause_in_three_clicks(app):
    """Click 1: the red north star (default selection). 2: follow the red path. 3: open the lever."""
    pytest.importorskip("kpitree.explain")
    at = app.run()
    at.button(key="red_path").click().run()
    assert not failures(at)
    text = " ".join(headings(at))
    # The planted cause: Enterprise new-business win rate (Dana Whitfield's deals), with owners named.
    assert ("Dana Whitfield" in text or "Enterprise" in text) and "Owner:" in text
    # every other planted problem is listed under the red path, each with a button to open it
    for named in ("Paid Search leads", "SMB customers: Logo churn rate", "Mid-Market deals", "Adoption — reports"):
        assert named in text, named
    assert unescaped(at.button(key="open_cause_logo_churn_rate").label) == "Open: Logo churn rate"
    at.button(key="open_lever").click().run()
    assert not failures(at)
    assert at.selectbox(key="node_pick").value == "win_rate"
    assert "#### Win rate (new)" in headings(at)
    assert at.radio(key="dim_win_rate").options[0] in ("Owner", "Segment")  # labels of the columns
    at.button(key="open_cause_logo_churn_rate").click().run()
    assert at.selectbox(key="node_pick").value == "logo_churn_rate"


def test_what_it_takes_and_what_if_on_a_lever(app):
    """Win rate: the value that hits the New business ARR target, and a slider that recomputes the tree."""
    at = app.run()
    at.selectbox(key="node_pick").set_value("new_business_arr").run()
    text = " ".join(headings(at))
    assert "To reach the New business ARR target" in text and "Win rate (new): 20.8% → 47.1%" in text
    at.selectbox(key="node_pick").set_value("win_rate").run()
    slider = at.slider(key="whatif_2026-10_win_rate")
    assert slider.value == pytest.approx(20.8333, abs=1e-3)  # percent on the slider
    assert "Needed for the New business ARR target: Win rate (new): 20.8% → 47.1%" in " ".join(
        unescaped(c.value) for c in at.caption)
    slider.set_value(47.1).run()
    assert not failures(at)
    table = next(d.value for d in at.table if "after" in d.value.columns)
    rows = {r["node"]: r for r in table.to_dict("records")}
    assert rows["Win rate (new)"]["after"] == "47.1%"
    # 3,119,583.12 × 47.1 / 20.8333 = 7,052,753.5: just short of the $7.06M target (688 × 23.2 % × $44,200)
    assert rows["New business ARR"]["after"] == "$7,052,754"
    assert rows["New business ARR"]["status"].startswith("off target →")
    # bookings lead new-logo ARR but are no part of it: the billing side (and ARR) is left as it is
    assert "New-logo ARR" not in rows and "ARR" not in rows
    assert "New-logo ARR is linked to New business ARR by influence only: left unchanged." in [
        unescaped(c.value) for c in at.caption]


def test_the_workspace_choice_follows_the_user_across_pages(app):
    """Streamlit resets a widget another page draws: the picked workspace must survive that."""
    at = app.run()
    assert at.session_state["ws"] == "demo"
    at.selectbox(key="period").set_value("2026-08").run()
    at.radio(key="versus").set_value("previous").run()
    for page in ("views/1_Upload.py", "views/3_Definitions.py", "views/2_Builder.py", "views/4_Workspaces.py",
                 "views/0_Tree.py"):
        at.switch_page(page).run()
        assert not failures(at), page
        assert at.session_state["ws"] == "demo", page
        if page == "views/2_Builder.py":
            assert at.session_state["b_source"] == "revops (template)"  # the tree the user was looking at
    assert (at.session_state["period"], at.session_state["versus"]) == ("2026-08", "previous")  # back on the tree
    assert any(h.startswith("### RevOps KPI tree · 2026-08") for h in headings(at))
    at.selectbox(key="ws").set_value(None).run()  # cleared on purpose: stays cleared on the next page
    at.switch_page("views/1_Upload.py").run()
    assert at.session_state["ws"] is None


def test_segment_chart_compares_with_the_explanations_baseline(app):
    """The chart and table under a node say the same as its sentences (not another period)."""
    at = app.run()
    at.selectbox(key="node_pick").set_value("leads").run()
    text = " ".join(headings(at))
    assert "Paid Search" in text  # the sentences name the segment the table puts first
    table = next(d.value for d in at.table if d.value.columns[0] == "Channel")  # the split, as a reader names it
    first = table.iloc[0]
    assert (first["Channel"], first["actual"], first["target share"]) == ("Paid Search", "351", "991")
    assert any("against each channel's share of the target: its share" in c.value for c in at.caption)


def test_flipping_periods_keeps_one_warm_up_per_workspace(app, monkeypatch):
    """Each view warms its panels in the background; a newer view of the workspace stops the older."""
    import threading
    import time

    monkeypatch.setenv("KPITREE_WARM", "1")
    at = app.run()
    for period in ("2026-09", "2026-08", "2026-07"):
        at.selectbox(key="period").set_value(period).run()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        alive = [t for t in threading.enumerate() if t.name == "kpitree-warm"]
        if len(alive) <= 1:
            break
        time.sleep(0.2)
    assert len(alive) <= 1
    assert not failures(at)
    import ui

    ui.stop_warm_ups()  # the last view's warm-up would otherwise run on into the next tests
    assert not [t for t in threading.enumerate() if t.name == "kpitree-warm"]


def _demo_with_tree(demo_data_dir, tmp_path, monkeypatch, change) -> AppTest:
    """The demo's data with its RevOps tree published in the workspace after `change(nodes)`."""
    import shutil

    import yaml

    root = tmp_path / "data"
    shutil.copytree(demo_data_dir / "demo", root / "demo")
    doc = yaml.safe_load((ROOT / "data" / "trees" / "revops.yaml").read_text())
    change({n["id"]: n for n in doc["nodes"]})
    (root / "demo" / "trees").mkdir(exist_ok=True)
    (root / "demo" / "trees" / "revops.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    monkeypatch.setenv("KPITREE_DATA_DIR", str(root))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params.update({"ws": "demo", "tree": "revops"})
    return at.run()


def test_a_node_beating_its_target_is_not_told_to_shrink(demo_data_dir, tmp_path, monkeypatch):
    """What it takes on a node above its target says it is on target, with the margin, and the
    segment chart and table show the segments that carried the gain, worded as a gain."""
    def easy(nodes):
        nodes["new_business_arr"]["target"] = {"value": 1000.0}

    at = _demo_with_tree(demo_data_dir, tmp_path, monkeypatch, easy)
    at.selectbox(key="node_pick").set_value("new_business_arr").run()
    assert not failures(at)
    page = "\n".join(unescaped(m.value) for m in [*at.markdown, *at.caption])
    assert "**New business ARR is on target**" in page and "better than target" in page
    assert "To reach the New business ARR target" not in page
    assert "(-" not in page and "(−" not in page  # no proposed cut
    table = next(d.value for d in at.table if "share of the gain" in d.value.columns and d.value.columns[0] != "child")
    assert "share of the gain" in table.columns and "share of gap" not in table.columns
    assert "in green, those named as explaining the gain" in page
    # the segments the sentence names lead the table
    sentence = next(unescaped(m.value) for m in at.markdown if "New business ARR gain" in unescaped(m.value))
    assert any(seg in sentence for seg in table.iloc[:3, 0]), (sentence, list(table.iloc[:, 0]))


def test_no_target_anywhere_says_so_plainly(demo_data_dir, tmp_path, monkeypatch):
    def none(nodes):
        for node in nodes.values():
            node["target"] = {"suggested": "no target: only 1 month of history"}  # as a new workspace has

    at = _demo_with_tree(demo_data_dir, tmp_path, monkeypatch, none)
    at.button(key="red_path").click().run()
    assert not failures(at)
    page = "\n".join(unescaped(m.value) for m in [*at.markdown, *at.caption])
    assert "ARR is " in page and "and has no target" in page
    assert "against target —" not in page and "no target)" not in page
    assert "no part below it can either" in page and "type targets in the Builder" in page


def test_a_page_failure_reads_as_a_plain_message_with_the_detail_behind_an_expander(app, monkeypatch):
    """An error nobody planned for: a sentence with what to do, no raw exception box (which offers
    'Ask Google'), and the traceback kept for a developer."""
    import ui

    def broken(*args, **kwargs):
        raise RuntimeError("planted fault")

    # the page's evaluation of the tree (cached per view across sessions, so planted at the call)
    monkeypatch.setattr(ui, "evaluation", broken)
    at = app.run()
    assert not at.exception
    assert any("unexpected problem" in e.value and "RuntimeError" in e.value and "unchanged" in e.value
               for e in at.error)
    assert any("planted fault" in f for f in failures(at))


def test_definitions_opens_on_the_metric_of_the_node_in_view(app):
    at = app.run()
    at.selectbox(key="node_pick").set_value("win_rate").run()
    at.switch_page("views/3_Definitions.py").run()
    assert not failures(at)
    assert at.selectbox(key="def_metric").value == "win_rate"


def test_a_click_back_on_a_node_builds_none_of_its_charts_again(app, monkeypatch):
    """Charts are built once per view (workspace data, tree file, node, period, baseline, split):
    coming back to a node sends the kept specs, and draws the same charts."""
    import kpitree.charts
    import kpitree.charts_usage

    built: list[str] = []
    for module, name in ((kpitree.charts, "trend_chart"), (kpitree.charts, "segment_chart"),
                         (kpitree.charts, "waterfall_chart"), (kpitree.charts_usage, "cohort_chart")):
        original = getattr(module, name)

        def counting(*args, _original=original, _name=name, **kwargs):
            built.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, counting)
    at = app.run()
    at = click_node(at, "new_business_arr")
    first = panel_charts(at)
    at = click_node(at, "logo_churn_rate")
    before = len(built)
    at = click_node(at, "new_business_arr")
    assert not failures(at)
    assert len(built) == before  # nothing rebuilt
    assert panel_charts(at) == first and len(first) >= 3  # trend, waterfall, segments


def panel_charts(at: AppTest) -> list[tuple[str, list[bytes]]]:
    """The panel's charts (all but the tree) as sent: spec and datasets."""
    return [(e.proto.spec, [d.data.data for d in e.proto.datasets]) for e in at.main
            if e.type == "vega_lite_chart" and '"node"' not in e.proto.spec]


def test_the_arr_panel_shows_its_bridge_as_a_waterfall(app):
    """ARR (the default node): the share of its gap over its exact children, and the period's ARR bridge —
    start, the five movements, end — drawn from `kpitree.bridge` with the catalogue's numbers."""
    import json

    from kpitree.bridge import arr_bridge
    from kpitree.evaluate import Engine
    from kpitree.workspace import Workspace

    at = app.run()
    assert not failures(at)
    text = " ".join(headings(at))
    bridge = arr_bridge(Engine(Workspace(ROOT / "workspaces" / "demo")), "2026-10")
    assert "**ARR bridge 2026-10** — from $155.18M at its start to $158.37M at its end, +$3.19M net" in text
    assert float(bridge.start) == pytest.approx(155.18e6, rel=1e-4) and bridge.unexplained == 0
    captions = " ".join(unescaped(c.value) for c in at.caption)
    assert "leading indicator" in captions or "Exact: ARR" in captions  # the node says how it is built
    charts = [e for e in at.main if e.type == "vega_lite_chart" and "ARR at end" in e.proto.spec]
    assert len(charts) == 1, "one bridge waterfall"
    order = json.loads(charts[0].proto.spec)["layer"][0]["encoding"]["x"]["sort"]
    assert order == ["ARR at start", "New", "Expansion", "Reactivation", "Contraction", "Churn", "ARR at end"]


def test_a_pasted_link_opens_the_split_and_the_red_path_it_was_made_with(app):
    """Issue 17: node, split and the red-path toggle travel in the URL and are read back on load."""
    app.query_params.update({"node": "logo_churn_rate", "split": "channel", "path": "1"})
    at = app.run()
    assert not failures(at)
    assert at.selectbox(key="node_pick").value == "logo_churn_rate"
    assert at.radio(key="dim_logo_churn_rate").value == "channel"
    assert any("Red path" in h for h in headings(at))  # the path is shown, as when the link was made
    assert (at.query_params["split"], at.query_params["path"]) == ("channel", "1")
    at.radio(key="dim_logo_churn_rate").set_value("segment").run()
    assert at.query_params["split"] == "segment"  # the choice goes back into the URL
    at.button(key="hide_path").click().run()
    assert "path" not in at.query_params


def test_the_tree_page_says_when_the_latest_loads_warned(tmp_path, monkeypatch):
    """A load that added amounts in several currencies as they are changes every number on the page:
    the page says so beside its data caption, each warning as written (user text through markdown_text)."""
    from kpitree.ingest import ingest
    from kpitree.workspace import Workspace

    ws = Workspace(tmp_path / "mixed", create=True)
    ingest(ws, [ROOT / "tests" / "fixtures" / "messy" / "deals_currencies.csv"])
    monkeypatch.setenv("KPITREE_DATA_DIR", str(tmp_path))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.query_params["ws"] = "mixed"
    at.run()
    assert not failures(at)
    expander = next(e for e in at.expander if "warning(s) that change these numbers" in e.label)
    text = " ".join(unescaped(m.value) for m in expander.markdown)
    assert "'amount' mixes currencies — USD (first on line 2), EUR (first on line 3)" in text
