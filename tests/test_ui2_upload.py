"""Upload page: a saved mapping's Save changes is confirmed beside it; after a reload that moves the data
under the active tree's suggested targets, the page says so and re-suggests them on request (trial 4)."""

from __future__ import annotations

from pathlib import Path

import pytest
from apptest_utils import unescaped
from conftest import ROOT
from streamlit.testing.v1 import AppTest
from test_ui2_resuggest import deals

from kpitree.history import TreeStore
from kpitree.tree import load_tree
from kpitree.workspace import create_workspace

UPLOAD = str(ROOT / "views" / "1_Upload.py")


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("KPITREE_DATA_DIR", str(root))
    monkeypatch.setenv("USER", "tester")
    return root


def page(ws: str) -> AppTest:
    at = AppTest.from_file(UPLOAD, default_timeout=120)
    at.query_params["ws"] = ws
    return at.run()


def shown(at: AppTest, kind: str) -> list[str]:
    return [unescaped(x.value) for x in getattr(at, kind)]


def test_save_changes_on_a_saved_mapping_is_confirmed_beside_the_saved_mapping(data_dir):
    from kpitree.vendors import header_key

    ws = create_workspace(data_dir, "acme")
    headers = ["mql_id", "seller_id", "won_date"]
    key = header_key(headers)
    ws.save_mapping(key, headers, "deals", {"deal_id": "mql_id", "close_date": "won_date"}, fill={"status": "won"},
                    file="won.csv")
    at = page("acme")
    at.toggle(key=f"saved_edit_{key}").set_value(True).run()
    at.selectbox(key=f"saved_{key}_deals_account_id").set_value("seller_id").run()
    assert not any(s.startswith("Saved:") for s in shown(at, "success"))
    at.button(key=f"saved_save_{key}").click().run()
    assert not at.exception
    assert ws.mappings()[key]["columns"]["account_id"] == "seller_id"
    assert any(s.startswith("Saved: the next load of files with these headers reads them this way") for s in
               shown(at, "success"))
    assert [unescaped(t.value) for t in at.toast] == ["Mapping of won.csv saved"]
    listed = next(d.value for d in at.dataframe if "from the file's" in d.value.columns)
    assert dict(zip(listed["column"], listed["from the file's"], strict=False))["account_id"] == "seller_id"
    assert at.toggle(key=f"saved_edit_{key}").value is False  # the form closed on the saved mapping


def test_a_reload_that_moves_suggested_targets_offers_to_resuggest_them(data_dir):
    ws = create_workspace(data_dir, "acme")
    at = page("acme")
    at.file_uploader(key="upload_files").set_value([("deals.csv", deals(3).encode(), "text/csv")])
    at.run()
    at.button(key="load").click().run()
    assert not at.exception
    store = TreeStore(ws.trees_dir)
    name = store.active()
    assert name is not None and not any("earlier data" in w for w in shown(at, "warning"))  # a first tree: fresh
    win = load_tree(store.published_path(name)).node("win_rate").target
    assert dict(win.by_period)["2026-11"] == 0.75
    # the corrected export: 1 of 4 won a month
    at.file_uploader(key="upload_files").set_value([("deals.csv", deals(1).encode(), "text/csv")])
    at.run()
    at.button(key="load").click().run()
    assert not at.exception
    warning = next(w for w in shown(at, "warning") if "earlier data" in w)
    assert warning.startswith(f"**The suggested targets of tree {name} were computed from the earlier data.**")
    assert "Win rate (new) 75.0% → 25.0%" in warning
    at.button(key="upload_resuggest").click().run()
    assert not at.exception
    done = next(s for s in shown(at, "success") if s.startswith(f"Tree {name} v2 published"))
    assert "Win rate (new) 75.0% → 25.0%" in done
    assert dict(load_tree(store.published_path(name)).node("win_rate").target.by_period)["2026-11"] == 0.25
    assert store.versions(name)[-1].action == "re-suggest targets"
    assert not any("earlier data" in w for w in shown(at, "warning"))  # done: no longer offered


def test_a_money_columns_unit_is_chosen_saved_listed_and_loaded(data_dir):
    """A won-deals file whose `value` is in cents: the saved mapping's editor offers its unit; saved as cents,
    the listing says so and a load reads 3130000 as $31,300."""
    from kpitree.vendors import header_key
    from kpitree.workspace import Workspace

    ws = create_workspace(data_dir, "acme")
    headers = ["mql_id", "seller_id", "created", "won_date", "value"]
    key = header_key(headers)
    ws.save_mapping(key, headers, "deals", {"deal_id": "mql_id", "created_date": "created", "close_date": "won_date",
                                            "amount": "value"},
                    fill={"status": "won"}, file="won.csv")
    at = page("acme")
    at.toggle(key=f"saved_edit_{key}").set_value(True).run()
    radio = at.radio(key=f"saved_{key}_unit_amount")
    assert radio.value == "units" and radio.label == "amount (from value) is in"  # the header does not say cents
    assert not [r for r in at.radio if r.key == f"saved_{key}_unit_services_amount"]  # not mapped: not offered
    radio.set_value("cents").run()
    at.button(key=f"saved_save_{key}").click().run()
    assert not at.exception
    assert ws.mappings()[key]["units"] == {"amount": "cents"}
    listed = next(d.value for d in at.dataframe if "from the file's" in d.value.columns)
    assert dict(zip(listed["column"], listed["from the file's"], strict=False))["amount"] == "value (in cents)"
    csv = "mql_id,seller_id,created,won_date,value\nM1,S1,2026-09-01,2026-10-03,3130000\nM2,S2,2026-09-02,2026-10-09,550\n"
    at.file_uploader(key="upload_files").set_value([("won.csv", csv.encode(), "text/csv")])
    at.run()
    at.button(key="load").click().run()
    assert not at.exception
    with Workspace(data_dir / "acme").connect() as con:
        assert con.execute("SELECT deal_id, amount FROM deals ORDER BY deal_id").fetchall() == [
            ("M1", 31300.0), ("M2", 5.5)]
