"""The Upload and Workspaces pages through Streamlit's AppTest (it can drive the file uploader)."""

from __future__ import annotations

from pathlib import Path

import pytest
from apptest_utils import unescaped
from conftest import ROOT
from streamlit.testing.v1 import AppTest

from kpitree.workspace import Workspace, create_workspace, list_workspaces

EXPORTS = ROOT / "tests" / "fixtures" / "exports"
HUBSPOT = EXPORTS / "hubspot-crm-exports-all-deals-2026-11-02.csv"
UPLOAD = str(ROOT / "views" / "1_Upload.py")
WORKSPACES = str(ROOT / "views" / "4_Workspaces.py")


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("KPITREE_DATA_DIR", str(root))
    return root


def page(script: str, ws: str | None = None) -> AppTest:
    at = AppTest.from_file(script, default_timeout=60)
    if ws:
        at.query_params["ws"] = ws
    return at.run()


def upload(at: AppTest, *files: tuple[str, bytes]) -> AppTest:
    at.file_uploader(key="upload_files").set_value([(name, data, "text/csv") for name, data in files])
    return at.run()


def deals(root: Path, name: str) -> list[tuple]:
    with Workspace(root / name).connect() as con:
        return con.execute("SELECT deal_id, status, amount FROM deals ORDER BY deal_id").fetchall()


def test_first_visit_creates_a_workspace(data_dir):
    at = page(UPLOAD)
    assert not at.exception and "No workspace yet" in at.info[0].value
    at.text_input(key="new_ws_name").set_value("acme")
    at.button(key="create_ws").click().run()
    assert not at.exception
    assert list_workspaces(data_dir) == ["acme"] and at.selectbox(key="ws").value == "acme"
    assert at.file_uploader(key="upload_files").accept_multiple_files


def test_vendor_export_loads_with_no_manual_step_and_reports(data_dir):
    create_workspace(data_dir, "acme")
    at = upload(page(UPLOAD, "acme"), ("hubspot-crm-exports-all-deals.csv", HUBSPOT.read_bytes()))
    assert not at.exception
    table = at.dataframe[0].value
    assert table.loc[0, "recognised as"] == "HubSpot deals export" and table.loc[0, "problem"] == ""
    at.button(key="load").click().run()
    assert not at.exception
    assert any(s.value.startswith("Loaded 8 rows") for s in at.success)
    assert any("'#09 WON' → won" in unescaped(w.value) for w in at.warning)
    assert len(deals(data_dir, "acme")) == 8
    # The batch is kept in the workspace (nothing uploaded is lost).
    assert list((data_dir / "acme" / "uploads").glob("*/hubspot-crm-exports-all-deals.csv"))


def test_rejected_rows_can_be_downloaded(data_dir):
    create_workspace(data_dir, "acme")
    body = (b"deal_id,created_date,status,amount\nD1,2026-09-01,won,100\nD2,2026-09-01,won,=1+1\n"
            b"D3,2026-09-01,won,100\n")
    at = upload(page(UPLOAD, "acme"), ("deals.csv", body))
    at.button(key="load").click().run()
    assert not at.exception
    assert at.metric[3].value == "1"  # rows rejected
    button = at.get("download_button")[0]
    assert button.proto.label == "Download rejected rows (CSV)"
    rejects = next(d.value for d in at.dataframe if "reason" in d.value.columns)
    assert rejects.to_dict("records") == [{"line": 3, "column": "amount", "value": "=1+1",
                                          "reason": "cannot read =1+1 as an amount such as 1234.50, $1,234.50 or "
                                                    "1.234,50 €"}]


def test_unrecognised_file_gets_a_mapping_that_is_saved_and_reused(data_dir):
    create_workspace(data_dir, "acme")
    body = b"Opp #,Rep,Opened,Closed,Result,Value\nO1,Ann,2026-09-01,2026-09-20,Won,5000\nO2,Bob,2026-09-02,,Open,10\n"
    at = upload(page(UPLOAD, "acme"), ("opps.csv", body))
    assert not at.exception
    assert at.dataframe[0].value.loc[0, "problem"] == "needs a mapping"
    assert not [b for b in at.button if b.key == "load"]  # cannot load before the mapping exists
    key = next(k for k in (b.key for b in at.button) if k and k.startswith("save_map_")).removeprefix("save_map_")
    assert at.selectbox(key=f"map_table_{key}").value == "deals"
    # Guesses from the header: Rep → owner, Value → amount; the rest is chosen by hand.
    assert at.selectbox(key=f"map_{key}_deals_owner").value == "Rep"
    at.selectbox(key=f"map_{key}_deals_deal_id").set_value("Opp #")
    at.selectbox(key=f"map_{key}_deals_created_date").set_value("Opened")
    at.selectbox(key=f"map_{key}_deals_close_date").set_value("Closed")
    at.selectbox(key=f"map_{key}_deals_stage").set_value("Result")
    at.run()
    assert not at.exception and not [w for w in at.warning if unescaped(w.value).startswith("With this mapping")]
    at.button(key=f"save_map_{key}").click().run()
    assert not at.exception
    assert (data_dir / "acme" / "mappings" / f"{key}.json").exists()
    assert at.dataframe[0].value.loc[0, "recognised as"] == "saved mapping → deals"
    at.button(key="load").click().run()
    assert deals(data_dir, "acme") == [("O1", "won", 5000.0), ("O2", "open", 10.0)]


def test_a_bad_file_changes_nothing_and_says_why(data_dir):
    create_workspace(data_dir, "acme")
    at = upload(page(UPLOAD, "acme"), ("hubspot.csv", HUBSPOT.read_bytes()))
    at.button(key="load").click().run()
    before = deals(data_dir, "acme")
    at = upload(at, ("hubspot.csv", HUBSPOT.read_bytes()), ("deals.csv", b"\x00\x01\x02binary"))
    assert "deals.csv: this is a binary file" in unescaped(at.error[0].value)
    assert not [b for b in at.button if b.key == "load"]
    truncated = b"deal_id,created_date,status,amount\n"
    at = upload(at, ("hubspot.csv", HUBSPOT.read_bytes()), ("deals.csv", truncated))
    # Two files for one table wait for the user to say they belong together.
    assert "would all load into 'deals'" in " ".join(unescaped(w.value) for w in at.warning)
    assert not [b for b in at.button if b.key == "load"]
    at.checkbox(key="upload_combine").check().run()
    at.button(key="load").click().run()
    assert "Nothing was loaded: the workspace is exactly as it was" in unescaped(at.error[0].value)
    assert deals(data_dir, "acme") == before


def test_append_is_explicit_and_never_doubles(data_dir):
    create_workspace(data_dir, "acme")
    at = page(UPLOAD, "acme")
    at.radio(key="upload_mode").set_value("append").run()
    at = upload(at, ("hubspot.csv", HUBSPOT.read_bytes()))
    assert "(append)" in unescaped(at.button(key="load").label)
    at.button(key="load").click().run()
    at.button(key="load").click().run()
    assert not at.exception
    assert any("already appended" in unescaped(w.value) for w in at.warning)
    assert len(deals(data_dir, "acme")) == 8


def test_stage_table_edits_are_saved_for_the_workspace_and_applied_on_reload(data_dir):
    create_workspace(data_dir, "acme")
    at = upload(page(UPLOAD, "acme"), ("hubspot.csv", HUBSPOT.read_bytes()))
    at.button(key="load").click().run()
    rows = list(at.data_editor(key="stage_editor").value["stage"])
    assert "#09 WON" in rows
    at.session_state["stage_editor"] = {"edited_rows": {rows.index("#09 WON"): {"status": "lost"}},
                                        "added_rows": [], "deleted_rows": []}
    at.run()
    at.button(key="save_stages").click().run()
    assert not at.exception
    assert Workspace(data_dir / "acme").stage_map() == {"#09 won": "lost"}
    at.button(key="reload").click().run()
    assert not at.exception
    assert ("189164774908", "lost", 4500.0) in deals(data_dir, "acme")


def test_each_session_loads_into_the_workspace_it_picked(data_dir):
    create_workspace(data_dir, "alpha")
    create_workspace(data_dir, "beta")
    a = upload(page(UPLOAD, "alpha"), ("hubspot.csv", HUBSPOT.read_bytes()))
    b = page(UPLOAD, "beta")
    a.button(key="load").click().run()
    assert b.selectbox(key="ws").value == "beta" and not b.success
    assert len(deals(data_dir, "alpha")) == 8 and Workspace(data_dir / "beta").tables() == []


def test_workspaces_page_creates_renames_and_deletes(data_dir):
    create_workspace(data_dir, "demo")
    at = page(WORKSPACES, "demo")
    assert not at.exception and at.table[0].value.index[0] == "demo (this session)"
    at.text_input(key="ws_new").set_value("acme")
    at.button(key="ws_create").click().run()
    assert at.selectbox(key="ws").value == "acme" and "Created workspace 'acme'" in unescaped(at.success[0].value)
    at.selectbox(key="ws_rename_from").set_value("acme")
    at.text_input(key="ws_rename_to").set_value("acme-q3")
    at.button(key="ws_rename").click().run()
    assert list_workspaces(data_dir) == ["acme-q3", "demo"] and at.selectbox(key="ws").value == "acme-q3"
    at.text_input(key="ws_rename_to").set_value("../escape")
    at.button(key="ws_rename").click().run()
    assert "invalid workspace name" in unescaped(at.error[0].value)
    at.selectbox(key="ws_delete_name").set_value("acme-q3")
    at.text_input(key="ws_delete_confirm").set_value("nope")
    at.button(key="ws_delete").click().run()
    assert "Type 'acme-q3' to confirm" in unescaped(at.error[0].value) and "acme-q3" in list_workspaces(data_dir)
    at.text_input(key="ws_delete_confirm").set_value("acme-q3")
    at.button(key="ws_delete").click().run()
    assert list_workspaces(data_dir) == ["demo"] and list((data_dir / ".trash").iterdir())


OWN = ROOT / "tests" / "fixtures" / "own_data"


def test_a_batch_with_a_file_to_skip_and_a_table_to_override(data_dir):
    create_workspace(data_dir, "billing")
    files = ["billing_subscriptions.csv", "churn_events.csv", "tickets_export.csv", "dim_date.csv",
             "telco_churn.csv"]
    at = upload(page(UPLOAD, "billing"), *[(f, (OWN / f).read_bytes()) for f in files])
    assert not at.exception
    overview = at.dataframe[0].value.set_index("file")
    assert overview.loc["billing_subscriptions.csv", "table"] == "subscriptions"
    assert overview.loc["churn_events.csv", "table"] == "not loaded"
    assert overview.loc["dim_date.csv", "table"] == "not loaded"
    assert overview.loc["telco_churn.csv", "problem"] == "needs a mapping"
    assert not [b for b in at.button if b.key == "load"]  # the snapshot waits for a decision
    assert any("no date column at all" in unescaped(w.value) for w in at.warning)
    at.selectbox(key="choose::telco_churn.csv").set_value("skip").run()
    # Override: read the ticket export as NPS responses — it lacks a score, and says so.
    at.selectbox(key="choose::tickets_export.csv").set_value("nps").run()
    assert any("missing required column(s) 'score' for table 'nps'" in unescaped(w.value) for w in at.warning)
    at.selectbox(key="choose::tickets_export.csv").set_value("tickets").run()
    at.button(key="load").click().run()
    assert not at.exception
    assert any(s.value.startswith("Loaded 252 rows") for s in at.success)
    summary = next(d.value for d in at.dataframe if "loaded" in d.value.columns)
    assert set(summary["file"]) == set(files)
    assert Workspace(data_dir / "billing").row_counts() == {"subscriptions": 113, "tickets": 139}
    assert any("telco_churn.csv: not loaded — skipped at your request" in unescaped(c.value) for c in at.caption)


def test_saved_mappings_are_listed_edited_and_deleted(data_dir):
    from kpitree.vendors import header_key

    ws = create_workspace(data_dir, "acme")
    headers = ["mql_id", "seller_id", "won_date"]
    ws.save_mapping(header_key(headers), headers, "deals", {"deal_id": "mql_id", "close_date": "won_date"},
                    fill={"status": "won"}, file="won.csv")
    at = page(UPLOAD, "acme")
    assert not at.exception
    key = header_key(headers)
    listed = next(d.value for d in at.dataframe if "from the file's" in d.value.columns)
    assert "constant / default 'won'" in set(listed["from the file's"])
    at.toggle(key=f"saved_edit_{key}").set_value(True).run()
    at.selectbox(key=f"saved_{key}_deals_account_id").set_value("seller_id").run()
    at.button(key=f"saved_save_{key}").click().run()
    assert not at.exception
    assert ws.mappings()[key]["columns"]["account_id"] == "seller_id"
    assert ws.mappings()[key]["fill"] == {"status": "won", "deal_type": "new"}
    at.button(key=f"saved_delete_{key}").click().run()
    assert not at.exception and ws.mappings() == {}


def test_file_cells_and_headers_never_render_as_markdown(data_dir):
    """Headers crafted as Markdown (an outside image, a link) show as their characters, nowhere live: the
    file needs a mapping, so its headers are named in the page's own warning and captions."""
    create_workspace(data_dir, "acme")
    body = (b"[click](http://evil.example/a),![x](http://evil.example/p.png),**note**\n"
            b"1,2,3\n4,5,6\n")
    at = upload(page(UPLOAD, "acme"), ("export.csv", body))
    assert not at.exception
    shown = [e.value for kind in ("markdown", "caption", "warning", "error", "info", "success")
             for e in getattr(at, kind)] + [e.label for e in at.expander]
    named = [v for v in shown if "evil.example" in unescaped(v)]
    assert named  # the headers are named …
    for value in named:  # … but never as a live link or image
        assert "](http" not in value and "![" not in value and "**note**" not in value, value


def test_the_mapping_screen_leaves_a_status_column_out_and_remembers_it(data_dir):
    """Trial finding: an unmapped 'status' (active/cancelled) was kept as a column and became the first
    'Split by'. The mapping screen offers to leave columns out, a status is left out unless kept, and the
    choice is saved with the mapping."""
    ws = create_workspace(data_dir, "acme")
    body = (b"Cust,Began,Stopped,Monthly,Status,Region\nC1,2026-01-05,,100,active,EMEA\n"
            b"C2,2026-02-05,2026-05-01,200,cancelled,NA\n")
    at = upload(page(UPLOAD, "acme"), ("subs.csv", body))
    assert not at.exception and at.dataframe[0].value.loc[0, "problem"] == "needs a mapping"
    key = next(k for k in (b.key for b in at.button) if k and k.startswith("save_map_")).removeprefix("save_map_")
    at.selectbox(key=f"map_table_{key}").set_value("subscriptions").run()
    for column, header in (("customer_id", "Cust"), ("start_date", "Began"), ("end_date", "Stopped"),
                           ("mrr", "Monthly")):
        at.selectbox(key=f"map_{key}_subscriptions_{column}").set_value(header)
    at.run()
    left_out = at.multiselect(key=f"map_{key}_subscriptions_omit")
    assert left_out.value == ["Status"] and "Region" in left_out.options  # a lifecycle status: out by default
    assert any("Status is a lifecycle status" in unescaped(c.value) for c in at.caption)
    at.button(key=f"save_map_{key}").click().run()
    assert not at.exception
    assert ws.mappings()[key]["columns"]["omit:Status"] == "Status"
    at.button(key="load").click().run()
    assert not at.exception
    with ws.connect() as con:
        columns = {r[0] for r in con.execute("DESCRIBE subscriptions").fetchall()}
    assert "region" in columns and "status" not in columns
    listed = next(d.value for d in at.dataframe if "from the file's" in d.value.columns and "(left out)"
                  in set(d.value["column"]))
    assert list(listed.loc[listed["column"] == "(left out)", "from the file's"]) == ["Status"]


PIPEDRIVE_TRIAL = ROOT / "tests" / "fixtures" / "trial" / "pipedrive_deals_export.csv"
HUBSPOT_TRIAL = ROOT / "tests" / "fixtures" / "trial" / "hubspot-deals-export-2026-12-06.csv"


@pytest.mark.parametrize(("path", "expected"), [
    (PIPEDRIVE_TRIAL, {"created_date": "Deal - Deal created", "account_id": "Organization - Name",
                       "status": "Deal - Status", "close_date": "(derived, as detected)", "channel": "—"}),
    (HUBSPOT_TRIAL, {"created_date": "Create Date", "account_id": "Associated Company",
                     "channel": "Original Source Type", "close_date": "Close Date", "status": "—"}),
], ids=["pipedrive", "hubspot"])
def test_change_the_mapping_opens_on_what_detection_read(data_dir, path, expected):
    """Trial finding: 'Change the mapping' opened on a generic guess (Pipedrive: created_date, close_date and
    account_id blank, 'missing required column', Save disabled). It opens on the layout's own reading, a
    user who only leaves a column out saves it, and the load reads the file as detection did."""
    from kpitree.vendors import header_key

    ws = create_workspace(data_dir, "acme")
    at = upload(page(UPLOAD, "acme"), (path.name, path.read_bytes()))
    assert not at.exception
    at.button(key=f"edit_btn::{path.name}").click().run()
    assert not at.exception
    key = header_key(at.dataframe[1].value.columns.tolist())
    for column, header in expected.items():
        assert at.selectbox(key=f"map_{key}_deals_{column}").value == header, column
    save = at.button(key=f"save_map_{key}")
    assert not save.disabled and not [w for w in at.warning if "With this mapping" in w.value]
    leave = at.multiselect(key=f"map_{key}_deals_omit")
    leave.set_value([*leave.value, "Deal - Label" if path == PIPEDRIVE_TRIAL else "Pipeline"]).run()
    at.button(key=f"save_map_{key}").click().run()
    saved = ws.mappings()[key]["columns"]
    assert ("omit:Deal - Label" in saved and "derived:close_date" in saved if path == PIPEDRIVE_TRIAL
            else "omit:Pipeline" in saved and saved["channel"] == "Original Source Type")
    listed = next(d.value for d in at.dataframe if "from the file's" in d.value.columns
                  and "(left out)" in set(d.value["column"]))  # the saved mappings' list
    assert not [c for c in listed["column"] if c.startswith(("layout:", "derived:"))]
    made = set(listed.loc[listed["column"] == "close_date", "from the file's"])
    assert (made == {"derived, as detected: won time for won deals, lost time for lost deals ('Deal closed on' if "
                     "those are missing), expected close date for open deals"} if path == PIPEDRIVE_TRIAL
            else made == {"Close Date"})
    at.button(key="load").click().run()
    assert not at.exception
    with ws.connect() as con:
        rows = con.execute("SELECT count(*), count(close_date), count(account_id), count(created_date) "
                           "FROM deals").fetchone()
        cols = {r[0] for r in con.execute("DESCRIBE deals").fetchall()}
    assert rows == ((43,) * 4 if path == PIPEDRIVE_TRIAL else (40,) * 4)
    assert ("deal_label" if path == PIPEDRIVE_TRIAL else "pipeline") not in cols
