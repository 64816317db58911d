"""Tree page: after a corrected reload moved the data under the active tree's suggested targets, the page
where the wrong colours show says so and plans them again on request (trial 4), like the Upload page and
the Builder — through the same core functions (`suggest.resuggest_active`, `publish_resuggested`)."""

from __future__ import annotations

import pytest
from apptest_utils import failures, unescaped
from conftest import ROOT
from streamlit.testing.v1 import AppTest
from test_ui2_resuggest import reloaded  # noqa: F401  (the fixture: 3 of 4 won, then the corrected 1 of 4)

from kpitree.history import TreeStore
from kpitree.tree import load_tree

NOTICE = "were computed from earlier data"


@pytest.fixture
def page(reloaded, monkeypatch):  # noqa: F811
    ws, tree = reloaded
    monkeypatch.setenv("KPITREE_DATA_DIR", str(ws.root.parent))
    monkeypatch.setenv("USER", "tester")

    def run(node: str | None = None) -> AppTest:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        at.query_params["ws"] = ws.name
        at.query_params["period"] = "2026-11"
        if node:
            at.query_params["node"] = node
        return at.run()
    return ws, tree, run


def warnings(at: AppTest) -> list[str]:
    return [unescaped(w.value) for w in at.warning]


def test_the_tree_page_offers_to_resuggest_and_the_colours_follow(page):
    """Win rate planned at 75 % from the first load is red against 25 % won after the corrected one; the
    page says the targets come from earlier data, and re-suggesting plans it at 25 %: on target."""
    ws, tree, run = page
    store = TreeStore(ws.trees_dir)
    name = store.active()
    at = run("win_rate")
    assert not failures(at)
    assert at.session_state["_viewing_tree"] == ("workspace", name)
    notice = next(w for w in warnings(at) if NOTICE in w)
    assert notice.startswith(f"**The suggested targets of tree {name} were computed from earlier data**: the "
                             "colours below judge the numbers against them.")
    assert "Win rate (new) 75.0% → 25.0%" in notice
    assert "Win rate (new) — off target" in at.selectbox(key="node_pick").options
    at.button(key="tree_resuggest").click().run()
    assert not failures(at)
    number = store.versions(name)[-1].number
    published = f"Tree {name} v{number} published with its suggested targets planned again."
    done = next(unescaped(s.value) for s in at.success if unescaped(s.value).startswith(published))
    assert "Win rate (new) 75.0% → 25.0%" in done and done.endswith("The colours below judge against them now.")
    assert dict(load_tree(store.published_path(name)).node("win_rate").target.by_period)["2026-11"] == 0.25
    assert load_tree(store.published_path(name)).node("avg_deal_size").target.value == 12345.0  # typed: stays
    assert store.versions(name)[-1].action == "re-suggest targets"
    assert not any(NOTICE in w for w in warnings(at))  # done: no longer offered
    assert "Win rate (new) — on target" in at.selectbox(key="node_pick").options
    at.run()  # the next rerun: the message was said once
    assert not any(unescaped(s.value).startswith(published) for s in at.success)


def test_keeping_the_targets_hides_the_notice_until_the_data_changes(page):
    ws, tree, run = page
    at = run()
    assert any(NOTICE in w for w in warnings(at))
    at.button(key="tree_keep_targets").click().run()
    assert not failures(at) and not any(NOTICE in w for w in warnings(at))
    assert TreeStore(ws.trees_dir).versions(TreeStore(ws.trees_dir).active())[-1].action != "re-suggest targets"


def test_a_tree_with_a_draft_is_sent_to_the_builder(page):
    """Publishing over a draft would drop the Builder edits saved in it: the page says where to do it instead."""
    ws, tree, run = page
    store = TreeStore(ws.trees_dir)
    store.save_draft(tree, store.active(), "tester")
    at = run()
    assert not failures(at)
    assert any(NOTICE in w for w in warnings(at))
    assert any("has a draft with edits not published yet" in unescaped(i.value) for i in at.info)
    assert not [b for b in at.button if b.key == "tree_resuggest"]


def test_fresh_targets_say_nothing(page):
    """Once planned from the data as it is, the page is quiet."""
    ws, tree, run = page
    store = TreeStore(ws.trees_dir)
    from kpitree.evaluate import Engine
    from kpitree.suggest import publish_resuggested, resuggest_active

    publish_resuggested(ws, resuggest_active(ws, Engine(ws)), "tester")
    at = run()
    assert not failures(at) and not any(NOTICE in w for w in warnings(at))
    assert store.versions(store.active())[-1].action == "re-suggest targets"
