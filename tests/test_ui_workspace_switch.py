"""A view chosen in one workspace does not leak into another (trial 3).

The trial looked at the demo (latest complete month 2026-10), created a workspace from its own exports
(data to 2026-12-03, latest complete month 2026-11) and the Tree page opened on the demo's 2026-10.
Each workspace opens on its own latest complete period, its own tree and its north star; a pasted
link's explicit `?period=` still opens on that period.
"""

from __future__ import annotations

import pytest
from apptest_utils import click_node, failures, unescaped
from conftest import ROOT, copy_demo
from streamlit.testing.v1 import AppTest

from kpitree.ingest import ingest
from kpitree.workspace import Workspace

HUBSPOT = ROOT / "tests" / "fixtures" / "trial" / "hubspot-deals-export-2026-12-06.csv"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """The demo (as of 2026-11, latest complete month 2026-10) beside a HubSpot export's workspace
    (deals to 2026-12-03: latest complete month 2026-11)."""
    root = tmp_path_factory.mktemp("switch")
    copy_demo(root)
    ingest(Workspace(root / "hub", create=True), [HUBSPOT])
    return root


@pytest.fixture
def app(data_dir, monkeypatch) -> AppTest:
    monkeypatch.setenv("KPITREE_DATA_DIR", str(data_dir))
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=90)


def heading(at: AppTest) -> str:
    return next(unescaped(m.value) for m in at.markdown if m.value.startswith("### "))


def test_a_new_workspace_opens_on_its_own_latest_period_node_and_split(app):
    at = app.run()
    assert not failures(at)
    assert at.query_params["period"] == "2026-10"  # the demo's latest complete month
    at.selectbox(key="period").set_value("2026-08").run()
    at = click_node(at, "win_rate")
    at.radio(key="dim_win_rate").set_value("channel").run()
    assert (at.query_params["node"], at.query_params["split"]) == ("win_rate", "channel")

    at.selectbox(key="ws").set_value("hub").run()
    assert not failures(at)
    assert at.selectbox(key="period").value == "2026-11"  # hub's latest complete month, not the demo's choice
    assert heading(at).endswith("· 2026-11")
    assert at.selectbox(key="node_pick").value == "new_arr"  # its north star, not the demo's Win rate
    assert at.query_params["period"] == "2026-11" and at.query_params["node"] == "new_arr"
    assert "dim_win_rate" not in at.session_state  # the demo's split of Win rate is forgotten
    at = click_node(at, "win_rate")
    split = at.radio(key="dim_win_rate")
    assert (split.options, split.value) == (["Owner", "Segment", "Channel"], "owner")  # hub's best split first

    at.selectbox(key="ws").set_value("demo").run()  # and back: the demo's own latest, not 2026-08
    assert not failures(at)
    assert at.selectbox(key="period").value == "2026-10"
    assert at.selectbox(key="node_pick").value == "arr"


def test_switching_on_another_page_resets_the_view_too(app):
    """Created or picked on the Workspaces page, the workspace opens on its own period on the Tree and
    Owners pages."""
    at = app.run()
    at.selectbox(key="period").set_value("2026-07").run()
    at.switch_page("views/4_Workspaces.py").run()
    at.selectbox(key="ws").set_value("hub").run()
    assert not failures(at)
    at.switch_page("views/6_Owners.py").run()
    assert not failures(at)
    assert at.selectbox(key="period").value == "2026-11"
    at.switch_page("views/0_Tree.py").run()
    assert not failures(at)
    assert heading(at).endswith("· 2026-11")


def test_a_pasted_link_still_opens_its_period(app):
    app.query_params.update({"ws": "hub", "period": "2026-09", "node": "win_rate"})
    at = app.run()
    assert not failures(at)
    assert at.selectbox(key="period").value == "2026-09"
    assert heading(at).endswith("· 2026-09")
    assert at.selectbox(key="node_pick").value == "win_rate"
    at.selectbox(key="period").set_value("2026-10").run()  # a choice within the workspace stays
    at = click_node(at, "avg_deal_size")
    assert at.selectbox(key="period").value == "2026-10"
