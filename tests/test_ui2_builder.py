"""Builder: re-suggest the editor's suggested targets from the workspace's data as it is now (trial 4)."""

from __future__ import annotations

import pytest
from apptest_utils import failures, unescaped
from conftest import ROOT, make_workspace
from streamlit.testing.v1 import AppTest
from test_ui2_resuggest import deals

from kpitree.history import TreeStore
from kpitree.ingest import ingest
from kpitree.suggest import first_tree
from kpitree.tree import load_tree

PAGE = str(ROOT / "views" / "2_Builder.py")


@pytest.fixture
def reloaded(tmp_path, monkeypatch):
    ws = make_workspace(tmp_path, deals=deals(3))
    made = first_tree(ws)
    assert made is not None and made.tree is not None
    fixed = tmp_path / "fixed" / "deals.csv"
    fixed.parent.mkdir()
    fixed.write_text(deals(1))
    ingest(ws, [fixed])
    monkeypatch.setenv("KPITREE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("USER", "tester")
    return ws, made.name


def test_resuggest_puts_targets_from_the_current_data_in_the_editor_and_save_keeps_them(reloaded):
    ws, name = reloaded
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.query_params["ws"] = "ws"
    at.run()
    assert not failures(at)
    assert dict(at.session_state["b_tree"].node("win_rate").target.by_period)["2026-11"] == 0.75
    button = at.button(key="b_resuggest")
    assert not button.disabled and "targets are suggestions from the data's history" in button.help
    button.click().run()
    assert not failures(at)
    said = next(unescaped(s.value) for s in at.success)
    assert "Win rate (new) 75.0% → 25.0%" in said and "Save & make active" in said
    assert dict(at.session_state["b_tree"].node("win_rate").target.by_period)["2026-11"] == 0.25
    at.button(key="b_publish").click().run()
    assert not failures(at)
    saved = load_tree(TreeStore(ws.trees_dir).published_path(name)).node("win_rate").target
    assert dict(saved.by_period)["2026-11"] == 0.25 and saved.suggested
    at.button(key="b_resuggest").click().run()  # again: nothing moves now
    assert any(unescaped(i.value).startswith("The ") and "already match the data" in unescaped(i.value)
               for i in at.info)


BUILT = """
deal_id,account_id,owner,created_date,close_date,status,amount
D1,A1,Ann,2026-08-01,2026-09-03,won,1000
D2,A2,Bob,2026-08-02,2026-09-10,lost,3000
"""


@pytest.fixture
def builder(tmp_path, monkeypatch) -> AppTest:
    make_workspace(tmp_path, deals=BUILT)
    monkeypatch.setenv("KPITREE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("USER", "tester")
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.query_params["ws"] = "ws"
    at.run()
    at.selectbox(key="b_source").set_value("Blank tree (start at the top)")
    at.button(key="b_open").click().run()
    assert not failures(at)
    return at


def test_a_new_child_shows_no_metric_until_one_is_picked_then_takes_its_name(builder):
    """Trial E: after Add child the metric box showed the parent's metric while validation said
    "unknown metric ''", and the node stayed `new_metric` whatever it was called."""
    at = builder
    at.button(key="b_add").click().run()
    assert at.session_state["b_node"] == "new_metric"
    assert at.selectbox(key="b_metric").value is None  # not "ARR", the metric of the node above
    assert any("type in the box to find one" in c.value for c in at.caption)
    said = " ".join(unescaped(e.value) for e in at.error)  # not "unknown metric '' (known: …all 80 names…)"
    assert "no metric yet: pick one under Catalogue metric" in said and "known:" not in said
    at.selectbox(key="b_metric").set_value("won_deals").run()
    assert not failures(at)
    node = at.session_state["b_tree"].node("won_deals")
    assert (node.label, node.metric) == ("Won deals", "won_deals") and at.text_input(key="b_id").value == "won_deals"
    at.text_input(key="b_label").set_value("Deals won").run()  # a typed id is kept from now on
    assert at.session_state["b_tree"].node("won_deals").label == "Deals won"

    at.selectbox(key="b_node").set_value("revenue").run()
    at.button(key="b_add").click().run()
    at.text_input(key="b_label").set_value("Partner deals").run()  # labelled first: the id follows the label
    assert at.session_state["b_node"] == "partner_deals" and at.text_input(key="b_id").value == "partner_deals"
    at.selectbox(key="b_metric").set_value("won_deals").run()  # a label of its own is not replaced
    node = at.session_state["b_tree"].node("partner_deals")
    assert (node.label, node.metric) == ("Partner deals", "won_deals")
    assert at.session_state["b_tree"].node("revenue").children == ("won_deals", "partner_deals")

