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


def _mapping_key(at: AppTest) -> str:
    return next(k for k in (b.key for b in at.button) if k and k.startswith("save_map_")).removeprefix("save_map_")


def test_the_mapping_screen_says_before_the_load_how_many_rows_go_and_why(data_dir):
    """Trial E: the preview said '1 of 20 sample rows would be rejected'; at load 141 of 1,750 opportunities (8 %)
    went, Status 'Abandoned'. Every row is checked before the save, and the share and reason are said at Save and
    again at the Load button."""
    create_workspace(data_dir, "acme")
    lines = ["Opp #,Opened,Status,Value"]
    lines += [f"O{i},2026-09-{1 + i:02d},{'On Hold' if i % 6 == 5 else 'Won'},{100 * (i + 1)}" for i in range(30)]
    at = page("acme")
    at.file_uploader(key="upload_files").set_value([("opps.csv", ("\n".join(lines) + "\n").encode(), "text/csv")])
    at.run()
    key = _mapping_key(at)
    at.selectbox(key=f"map_table_{key}").set_value("deals").run()
    at.selectbox(key=f"map_{key}_deals_deal_id").set_value("Opp #")
    at.selectbox(key=f"map_{key}_deals_created_date").set_value("Opened")
    at.selectbox(key=f"map_{key}_deals_status").set_value("Status")
    at.run()
    assert not at.exception
    said = ("16.7 % of rows (5 of 30) would be rejected with this mapping: column 'Status': On Hold is not one of "
            "open, won, lost (5 row(s), first on line 7)")
    assert said in shown(at, "warning")
    caption = next(c for c in shown(at, "caption") if c.startswith("Preview:"))
    assert "5 of 30 rows would be rejected" in caption and "sample" not in caption
    at.button(key=f"save_map_{key}").click().run()
    assert not at.exception
    assert f"opps.csv: {said}" in shown(at, "warning")  # beside the Load button
    at.button(key="load").click().run()
    assert not at.exception and at.metric[3].value == "5"


def test_a_price_per_billing_cycle_is_chosen_on_the_mapping_screen_saved_and_loaded(data_dir):
    """Trial E mapped Braintree's Price (a year's for yearly plans) as MRR: ARR 11 times too high, and the screen had
    no way to say the amount is per billing cycle."""
    from kpitree.workspace import Workspace

    ws = create_workspace(data_dir, "acme")
    body = ("Customer,Plan,Price,Billing every,Start date\nc1,pro-annual,4800,,2026-01-05\n"
            "c2,growth-monthly,199,,2026-02-01\nc3,team,600,3,2026-03-01\n")
    at = page("acme")
    at.file_uploader(key="upload_files").set_value([("subs.csv", body.encode(), "text/csv")])
    at.run()
    key = _mapping_key(at)
    at.selectbox(key=f"map_table_{key}").set_value("subscriptions").run()
    at.selectbox(key=f"map_{key}_subscriptions_customer_id").set_value("Customer")
    at.selectbox(key=f"map_{key}_subscriptions_start_date").set_value("Start date")
    at.selectbox(key=f"map_{key}_subscriptions_plan").set_value("Plan")
    at.selectbox(key=f"map_{key}_subscriptions_mrr").set_value("Price")
    at.run()
    radio = at.radio(key=f"map_{key}_per_mrr")
    assert radio.value == "" and radio.label == "mrr (from Price) is an amount"
    radio.set_value("per_cycle").run()
    at.selectbox(key=f"map_{key}_billing_months").set_value("Billing every").run()
    assert not at.exception
    preview = next(d.value for d in at.dataframe if "mrr" in d.value.columns)
    assert list(preview["mrr"]) == [400.0, 199.0, 200.0]  # 4,800 a year, 199 a month, 600 a quarter
    at.button(key=f"save_map_{key}").click().run()
    saved = ws.mappings()[key]
    assert saved["derive"] == {"mrr": "per_cycle"} and saved["columns"]["billing_months"] == "Billing every"
    said = [v for d in at.dataframe if "from the file's" in d.value.columns for v in d.value["from the file's"]]
    assert "Price ÷ months per billing cycle" in said  # what the file is read as, above the Load button
    assert "Price (per billing cycle (divided by the months each bill covers))" in said  # the saved mapping
    at.button(key="load").click().run()
    assert not at.exception
    with Workspace(data_dir / "acme").connect() as con:
        assert con.execute("SELECT customer_id, round(mrr, 2) FROM subscriptions ORDER BY 1").fetchall() == [
            ("c1", 400.0), ("c2", 199.0), ("c3", 200.0)]
    # Edited later under 'Saved mappings', the choice is kept
    at.toggle(key=f"saved_edit_{key}").set_value(True).run()
    assert at.radio(key=f"saved_{key}_per_mrr").value == "per_cycle"
    at.button(key=f"saved_save_{key}").click().run()
    assert ws.mappings()[key]["derive"] == {"mrr": "per_cycle"}
    assert ws.mappings()[key]["columns"]["billing_months"] == "Billing every"
