"""The main screen on workspaces that lack tables: every panel and the red path, no exception, and
the page says what is missing and what to load."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from apptest_utils import click_node, failures, unescaped
from conftest import ROOT
from streamlit.testing.v1 import AppTest

from kpitree.evaluate import Engine, evaluate_tree
from kpitree.ingest import ingest
from kpitree.tree import load_tree
from kpitree.workspace import Workspace

TREE = ROOT / "data" / "trees" / "revops.yaml"
FILES = {"deals": "deals.csv.gz", "subs": "subscriptions.csv.gz"}
NEEDS = {"deals": "needs subscriptions — load your billing export (Stripe or a subscriptions CSV)",
         "subs": "needs deals — load your CRM's deals or opportunities export"}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """Two workspaces, each with one of the demo's tables and the full RevOps tree published in it
    (a user who built the whole tree before loading everything)."""
    root = tmp_path_factory.mktemp("partial_app")
    for name, file in FILES.items():
        ws = Workspace(root / name, create=True)
        ingest(ws, [ROOT / "data" / "demo" / file])
        ws.trees_dir.mkdir()
        shutil.copy(TREE, ws.trees_dir / "revops.yaml")
    return root


def texts(at: AppTest) -> str:
    return unescaped("\n".join([m.value for m in at.markdown] + [i.value for i in at.info] + [c.value for c in at.caption]))


@pytest.mark.parametrize("ws", list(FILES))
def test_every_panel_and_the_red_path(data_dir, monkeypatch, ws):
    monkeypatch.setenv("KPITREE_DATA_DIR", str(data_dir))
    tree = load_tree(TREE)
    evaluation = evaluate_tree(Engine(Workspace(data_dir / ws)), tree)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params.update({"ws": ws, "tree": "revops"})
    at.run()
    assert not failures(at), failures(at)
    without = [n for n in evaluation.nodes if n.value is None]
    assert without and len(without) < len(evaluation.nodes)
    for res in evaluation.nodes:
        at.selectbox(key="node_pick").set_value(res.id).run()
        assert not failures(at), (res.id, failures(at))
        page = texts(at)
        assert f"#### {res.label}" in page, res.id
        if res.value is None:
            assert f"{res.label} has no data in {evaluation.period.key}" in page, res.id
            assert res.reason and res.reason in page, (res.id, res.reason)
    assert NEEDS[ws] in texts(at) or any(NEEDS[ws] in n.reason for n in without)

    # a click on a box without data, then the red path from the north star
    at = click_node(at, without[-1].id)
    assert not failures(at) and f"#### {without[-1].label}" in texts(at)
    at.selectbox(key="node_pick").set_value(tree.root.id).run()
    at.button(key="red_path").click().run()
    assert not failures(at), failures(at)
    page = texts(at)
    if ws == "deals":  # ARR needs subscriptions: the path says so and goes on to New business ARR
        assert "Red path — ARR cannot be judged here" in page
        assert f"ARR has no data in {evaluation.period.key}: {NEEDS['deals']}" in page
        assert "judged on its own, as New-logo ARR has no data" in page  # ARR and its exact part New-logo ARR
        assert any(b.key == "open_lever" for b in at.button)
    else:
        assert "Red path" in page or "did not fall short" in page
