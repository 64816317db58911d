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
