"""Loading canonical CSVs: types, coercion, rejects with line and column, atomic swap."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from conftest import rows

from kpitree.errors import LoadError
from kpitree.ingest import ingest
from kpitree.workspace import Workspace

HEADER = "deal_id,account_id,owner,created_date,close_date,stage,status,amount,deal_type,segment,channel"


def write(tmp: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp / name
    path.write_bytes(text.encode(encoding))
    return path




def test_canonical_file_loads_without_mapping(ws, tmp_path):
    path = write(tmp_path, "deals.csv", f"{HEADER}\nD1,A1,Ann,2026-01-05,2026-02-01,Won,won,1200.50,new,SMB,Organic\n")
    report = ingest(ws, [path])
    assert report.files[0].table == "deals" and report.files[0].rows_loaded == 1
    assert rows(ws, "SELECT amount, close_date::VARCHAR, status FROM deals") == [(1200.5, "2026-02-01", "won")]


def test_a_loads_warnings_are_kept_with_it(ws, tmp_path):
    # D2 is won without a close date: the Upload page warns, and the warning is stored with the load
    # so a report written later can still say it.
    path = write(tmp_path, "deals.csv", f"{HEADER}\nD1,A1,Ann,2026-01-05,2026-02-01,Won,won,1200.50,new,SMB,Organic\n"
                 "D2,A2,Bo,2026-01-06,,Won,won,300,new,SMB,Organic\n")
    report = ingest(ws, [path])
    warned = [w for w in report.files[0].warnings if "no close_date" in w]
    assert warned
    (load,) = ws.loads()
    assert set(warned) <= set(json.loads(load["warnings"]))


@pytest.mark.parametrize(
    "raw, expected",
    [
        ('"$1,200.50"', 1200.5),
        ('"1.200,50 €"', 1200.5),
        ('"1200,5"', 1200.5),
        ('"USD 3,000"', 3000.0),
        ("(250)", None),  # negative: rejected for amount
        ("12 000 kr", 12000.0),
        ('"EUR 100,00"', 100.0),
        ('"£1,250.50"', 1250.5),
        ("1.234.567", 1234567.0),
        ("CHF 1'000.50", 1000.5),
    ],
)
def test_money_forms(ws, tmp_path, raw, expected):
    body = (f"{HEADER}\nD1,A1,Ann,2026-01-05,2026-02-01,Won,won,{raw},new,SMB,Organic\n"
            "D2,A1,Ann,2026-01-05,,Demo,open,1,new,SMB,Organic\n")
    report = ingest(ws, [write(tmp_path, "deals.csv", body)])
    got = rows(ws, "SELECT amount FROM deals WHERE deal_id = 'D1'")
    if expected is None:
        assert got == [] and "negative" in report.files[0].rejected[0].reason
    else:
        assert got == [(expected,)]


@pytest.mark.parametrize(
    "created, expected",
    [
        ("2026-01-05", "2026-01-05"),
        ("2026-01-05T10:30:00Z", "2026-01-05"),
        ("2026-01-05 23:59:59+02:00", "2026-01-05"),
        ("01/13/2026", "2026-01-13"),
        ("2026/01/13", "2026-01-13"),
        ('"1/13/2026, 2:15 PM"', "2026-01-13"),  # Salesforce datetime, en_US
        ("2026-01-13 09:30", "2026-01-13"),  # HubSpot / Stripe Dashboard
        ("1768262400", "2026-01-13"),  # Unix seconds (Stripe API)
        ("1768262400000", "2026-01-13"),  # Unix milliseconds (HubSpot API)
        ("20260113", "2026-01-13"),
        ('"Jan 13, 2026"', "2026-01-13"),
        ("13 January 2026", "2026-01-13"),
    ],
)
def test_date_forms(ws, tmp_path, created, expected):
    body = f"{HEADER}\nD1,A1,Ann,{created},2026-02-01,Won,won,10,new,SMB,Organic\n"
    ingest(ws, [write(tmp_path, "deals.csv", body)])
    assert rows(ws, "SELECT created_date::VARCHAR FROM deals") == [(expected,)]


def test_day_first_dates_are_detected_per_file(ws, tmp_path):
    body = (f"{HEADER}\nD1,A1,Ann,13/01/2026,02/03/2026,Won,won,10,new,SMB,Organic\n"
            "D2,A1,Ann,05/01/2026,,Demo,open,10,new,SMB,Organic\n")
    ingest(ws, [write(tmp_path, "deals.csv", body)])
    assert rows(ws, "SELECT created_date::VARCHAR, close_date::VARCHAR FROM deals ORDER BY deal_id") == [
        ("2026-01-13", "2026-03-02"), ("2026-01-05", None)]


def test_semicolon_latin1_gzip(ws, tmp_path):
    text = HEADER.replace(",", ";") + "\nD1;A1;José;2026-01-05;2026-02-01;Won;won;10;new;SMB;Organic\n"
    path = tmp_path / "deals.csv.gz"
    path.write_bytes(gzip.compress(text.encode("latin-1")))
    ingest(ws, [path])
    assert rows(ws, "SELECT owner FROM deals") == [("José",)]


def test_bom_and_header_case(ws, tmp_path):
    text = "\ufeff" + HEADER.replace("deal_id", "Deal ID").replace("close_date", "Close Date")
    text += "\nD1,A1,Ann,2026-01-05,2026-02-01,Won,Closed Won,10,New Business,SMB,Organic\n"
    ingest(ws, [write(tmp_path, "deals.csv", text)])
    assert rows(ws, "SELECT deal_id, status, deal_type FROM deals") == [("D1", "won", "new")]


def test_rejects_name_line_column_and_reason(ws, tmp_path):
    body = (f"{HEADER}\n"
            "D1,A1,Ann,2026-01-05,2026-02-01,Won,won,10,new,SMB,Organic\n"
            'D2,A1,"Ann\nSmith",2026-01-05,2026-02-01,Won,won,abc,new,SMB,Organic\n'
            "D3,A1,Ann,yesterday,2026-02-01,Won,won,10,new,SMB,Organic\n"
            "D4,A1,Ann,2026-01-05,2026-02-01,Won,maybe,10,new,SMB,Organic\n"
            "D1,A1,Ann,2026-01-05,2026-02-01,Won,won,99,new,SMB,Organic\n"
            "D5,A1,Ann,2026-01-05,2026-02-01,Won,won,10,new,SMB,Organic,extra\n"
            ",A1,Ann,2026-01-05,2026-02-01,Won,won,10,new,SMB,Organic\n")
    report = ingest(ws, [write(tmp_path, "deals.csv", body)], max_reject_share=1.0).files[0]
    got = [(r.line, r.column) for r in report.rejected]
    assert got == [(3, "amount"), (5, "created_date"), (6, "status"), (7, "deal_id"), (8, None), (9, "deal_id")]
    assert "cannot read abc" in report.rejected[0].reason
    assert "first seen on line 2" in report.rejected[3].reason
    assert "missing value" in report.rejected[5].reason
    assert report.rows_read == 7 and report.rows_loaded == 1 and report.duplicate_ids == 1


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("deals.csv", "", "empty"),
        ("deals.csv", HEADER + "\n", "no data rows"),
        ("deals.csv", "deal_id,amount\nD1,5\n", "cannot tell which table"),
        ("stuff.csv", "a,b\n1,2\n", "cannot tell which table"),
        ("deals.csv", HEADER + "\n" + "D1,A1,Ann,bad,bad,x,bad,bad,new,SMB,O\n" * 20, "no row could be loaded"),
    ],
)
def test_bad_files_fail_and_keep_previous_data(ws, tmp_path, name, content, message):
    good = write(tmp_path, "good.csv", f"{HEADER}\nD1,A1,Ann,2026-01-05,2026-02-01,Won,won,10,new,SMB,Organic\n")
    ingest(ws, [good], table="deals")
    before = rows(ws, "SELECT * FROM deals")
    bad = write(tmp_path, name, content)
    with pytest.raises(LoadError, match=message):
        ingest(ws, [good, bad], combine=True)
    assert rows(ws, "SELECT * FROM deals") == before


def test_missing_required_column_names_it(ws, tmp_path):
    path = write(tmp_path, "d.csv", "deal_id,created_date,amount\nD1,2026-01-01,5\n")
    with pytest.raises(LoadError, match="missing required column.*'status'"):
        ingest(ws, [path], table="deals")


def test_replace_is_idempotent_and_append_replaces_ids(ws, tmp_path):
    a = write(tmp_path, "deals.csv", f"{HEADER}\nD1,A1,Ann,2026-01-05,2026-02-01,Won,won,10,new,SMB,Organic\n")
    ingest(ws, [a])
    ingest(ws, [a])
    assert rows(ws, "SELECT count(*) FROM deals") == [(1,)]
    b = write(tmp_path, "more.csv", f"{HEADER}\nD1,A1,Ann,2026-01-05,2026-02-01,Won,won,20,new,SMB,Organic\n"
              "D2,A1,Ann,2026-01-05,,Demo,open,5,new,SMB,Organic\n")
    ingest(ws, [b], table="deals", mode="append")
    assert rows(ws, "SELECT deal_id, amount FROM deals ORDER BY deal_id") == [("D1", 20.0), ("D2", 5.0)]


def test_subscription_snapshots_become_intervals(ws, tmp_path):
    path = write(tmp_path, "mrr.csv", "customer_id,month,mrr\nC1,2026-01,100\nC1,2026-02-01,120\n")
    report = ingest(ws, [path])
    assert report.files[0].source == "snapshots"
    assert rows(ws, "SELECT start_date::VARCHAR, end_date::VARCHAR, mrr FROM subscriptions ORDER BY 1") == [
        ("2026-01-01", "2026-02-01", 100.0), ("2026-02-01", "2026-03-01", 120.0)]


def test_quota_periods_of_any_grain(ws, tmp_path):
    path = write(tmp_path, "quotas.csv", "owner,period,quota\nAnn,2026-10,10\nBob,2026-Q4,30\nCy,2026,120\n")
    ingest(ws, [path])
    assert rows(ws, "SELECT owner, period_start::VARCHAR, period_end::VARCHAR FROM quotas ORDER BY 1") == [
        ("Ann", "2026-10-01", "2026-10-31"), ("Bob", "2026-10-01", "2026-12-31"), ("Cy", "2026-01-01", "2026-12-31")]


def test_quality_report_warnings(ws, tmp_path):
    body = (f"{HEADER}\nD1,A1,Ann,2026-01-05,,Won,won,10,new,SMB,Organic\n"
            "D2,A1,,2026-01-05,2026-01-01,Won,won,10,,SMB,Organic\n")
    f = ingest(ws, [write(tmp_path, "deals.csv", body)]).files[0]
    text = " | ".join(f.warnings)
    assert "no close_date" in text and "close before they were created" in text
    assert any("blank or missing deal_type counts as new business" in r for r in f.rules)
    assert rows(ws, "SELECT deal_type FROM deals WHERE deal_id = 'D2'") == [("new",)]
    assert f.nulls["owner"] == 1 and f.date_range == ("2026-01-01", "2026-01-01")


@pytest.mark.parametrize("raw", ["12k", "n/a", '"1,2,3"', "5 or 6"])
def test_amounts_with_words_are_rejected_not_guessed(ws, tmp_path, raw):
    body = (f"{HEADER}\nD1,A1,Ann,2026-01-05,2026-02-01,Won,won,{raw},new,SMB,Organic\n"
            "D2,A1,Ann,2026-01-05,,Demo,open,1,new,SMB,Organic\n")
    report = ingest(ws, [write(tmp_path, "deals.csv", body)])
    assert report.files[0].rejected[0].column == "amount" and rows(ws, "SELECT count(*) FROM deals") == [(1,)]


@pytest.mark.parametrize("name, sep, encoding", [
    ("deals.tsv", "\t", "utf-8"), ("deals.csv", "|", "utf-8"), ("deals.csv", ";", "cp1252"),
    ("deals.txt", ",", "utf-16"), ("deals.csv", ",", "utf-8-sig"),
])
def test_delimiters_and_encodings(ws, tmp_path, name, sep, encoding):
    text = (HEADER + "\nD1,A1,Renée €,2026-01-05,2026-02-01,Won,won,10,new,SMB,Organic\n").replace(",", sep)
    path = tmp_path / name
    path.write_bytes(text.replace("\n", "\r\n").encode(encoding))
    report = ingest(ws, [path])
    assert rows(ws, "SELECT owner, amount FROM deals") == [("Renée €", 10.0)]
    assert report.files[0].delimiter == {"\t": "tab"}.get(sep, sep)


def test_zip_of_csvs_and_gzip_inside(ws, tmp_path):
    import zipfile

    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("export/deals.csv", f"{HEADER}\nD1,A1,Ann,2026-01-05,2026-02-01,Won,won,10,new,SMB,Organic\n")
        zf.writestr("export/subscriptions.csv.gz", gzip.compress(b"customer_id,start_date,mrr\nC1,2026-01-01,50\n"))
        zf.writestr("__MACOSX/export/._deals.csv", b"\x00\x05")
    report = ingest(ws, [archive])
    assert [f.file for f in report.files] == ["export.zip:export/deals.csv", "export.zip:export/subscriptions.csv.gz"]
    assert report.tables == {"deals": 1, "subscriptions": 1}


def test_progress_is_reported(ws, tmp_path):
    seen = []
    path = write(tmp_path, "deals.csv", f"{HEADER}\nD1,A1,Ann,2026-01-05,2026-02-01,Won,won,10,new,SMB,Organic\n")
    ingest(ws, [path], on_progress=lambda f, msg: seen.append((f, msg)))
    assert seen[0][0] < seen[-1][0] == 1.0 and any("reading deals.csv" in m for _, m in seen)


def test_summary_names_everything_a_user_should_know(ws, tmp_path):
    body = (f"{HEADER},notes\nD1,A1,Ann,2026-01-05,2026-02-01,Won,won,10,new,SMB,Organic,x\n"
            "D2,A1,Ann,2026-01-05,,Won,won,abc,new,SMB,Organic,y\n")
    text = ingest(ws, [write(tmp_path, "deals.csv", body)]).summary()
    assert "deals.csv → deals (canonical deals): 2 read, 1 loaded, 1 rejected" in text
    assert "line 3, column 'amount': cannot read abc" in text
    assert "unmapped columns kept as text: notes" in text
    assert "tables: deals=1" in text


def test_preview_of_a_proposed_mapping(tmp_path):
    from kpitree.ingest import preview_mapping

    path = write(tmp_path, "opps.csv", "Opp,Opened,Result,Value\nO1,2026-09-01,Won,5000\nO2,someday,Open,7\n")
    p = preview_mapping(path, "deals", {"deal_id": "Opp", "created_date": "Opened", "stage": "Result",
                                        "amount": "Value"})
    assert p.error is None and p.rows_read == 2
    assert [(r["deal_id"], r["status"]) for r in p.rows] == [("O1", "won")]
    assert (p.rejected[0].line, p.rejected[0].column) == (3, "Opened")
    assert "missing required" in preview_mapping(path, "deals", {"deal_id": "Opp"}).error


def test_workspaces_under_a_data_dir(tmp_path):
    from kpitree.errors import KpiTreeError
    from kpitree.workspace import create_workspace, delete_workspace, list_workspaces, rename_workspace

    root = tmp_path / "data"
    ws = create_workspace(root, "acme")
    ingest(ws, [write(tmp_path, "deals.csv", f"{HEADER}\nD1,A1,Ann,2026-01-05,2026-02-01,Won,won,10,new,SMB,O\n")])
    ws.save_stage_map({"Signed ": "won"})
    assert list_workspaces(root) == ["acme"]
    moved = rename_workspace(root, "acme", "acme-q3")
    # It persists: a fresh object on the renamed folder sees the data, the stage map and the loads.
    assert Workspace(root / "acme-q3").tables() == ["deals"] and moved.stage_map() == {"signed": "won"}
    assert moved.loads()[0]["file"] == "deals.csv"
    for bad in ("../x", ".hidden", "a/b", ""):
        with pytest.raises(KpiTreeError, match="invalid workspace name"):
            create_workspace(root, bad)
    with pytest.raises(KpiTreeError, match="already exists"):
        create_workspace(root, "acme-q3")
    trash = delete_workspace(root, "acme-q3")
    assert list_workspaces(root) == [] and (trash / "kpitree.duckdb").exists() and trash.parent.name == ".trash"


def test_a_load_waits_for_another_process_holding_the_file(ws, tmp_path, monkeypatch):
    import subprocess
    import sys
    import time

    import kpitree.ingest as ingest_module

    path = write(tmp_path, "deals.csv", f"{HEADER}\nD1,A1,Ann,2026-01-05,2026-02-01,Won,won,10,new,SMB,Organic\n")
    ingest(ws, [path])
    hold = ("import duckdb, sys, time; c = duckdb.connect(sys.argv[1], read_only=True); print('held', flush=True); "
            "time.sleep(float(sys.argv[2]))")

    def holder(seconds: float) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", hold, str(ws.db_path), str(seconds)], stdout=subprocess.PIPE,
                                text=True)
        assert proc.stdout.readline().strip() == "held"
        return proc

    proc = holder(1.5)
    started = time.monotonic()
    assert ingest(ws, [path]).tables == {"deals": 1}  # waited for the other process, then loaded
    assert time.monotonic() - started >= 1.0
    proc.wait()
    monkeypatch.setattr(ingest_module, "ATTACH_WAIT_SECONDS", 0.5)
    proc = holder(5)
    try:
        with pytest.raises(LoadError, match="is in use by another program .* nothing was loaded"):
            ingest(ws, [path])
    finally:
        proc.kill()


def test_parquet_loads_through_the_same_checks_as_csv(ws, tmp_path):
    """A Parquet export gives the same table as the CSV of the same rows, and a NaN amount in it is
    rejected with its line (row + 1), as in a CSV."""
    import duckdb

    body = (f"{HEADER}\nD1,A1,Ann,2026-01-05,2026-02-01,Won,won,10.5,new,SMB,Organic\n"
            "D2,A1,Bob,2026-01-06,,Demo,open,7,expansion,SMB,Organic\nD3,A2,Cy,2026-01-07,2026-02-03,Won,won,1,new,"
            "SMB,Web\n")
    csv_path = write(tmp_path, "deals.csv", body)
    ingest(ws, [csv_path])
    from_csv = rows(ws, "SELECT * FROM deals ORDER BY deal_id")
    parquet = tmp_path / "deals.parquet"
    con = duckdb.connect()
    con.execute(f"COPY (SELECT * REPLACE (CASE WHEN deal_id = 'D3' THEN 'NaN'::DOUBLE ELSE amount END AS amount) "
                f"FROM read_csv('{csv_path}')) TO '{parquet}' (FORMAT parquet)")
    con.close()
    report = ingest(ws, [parquet], max_reject_share=1.0)
    f = report.files[0]
    assert (f.rows_loaded, f.encoding) == (2, "parquet")
    assert [(r.line, r.column) for r in f.rejected] == [(4, "amount")] and "not a finite number" in f.rejected[0].reason
    assert rows(ws, "SELECT * FROM deals ORDER BY deal_id") == from_csv[:2]


def test_a_file_named_parquet_that_is_not_one_is_refused(ws, tmp_path):
    fake = tmp_path / "deals.parquet"
    fake.write_bytes(b"PAR1" + bytes(range(256)) * 4)
    with pytest.raises(LoadError, match=r"deals\.parquet: not a readable Parquet file"):
        ingest(ws, [fake])


def test_the_command_line_prints_the_stages_of_a_load(tmp_path):
    """`--verbose` prints every stage on stderr (a long load prints them anyway); stdout keeps the report."""
    import subprocess
    import sys

    from conftest import ROOT

    path = write(tmp_path, "deals.csv", f"{HEADER}\nD1,A1,Ann,2026-01-05,2026-02-01,Won,won,10,new,SMB,Organic\n")
    run = subprocess.run([sys.executable, "-m", "kpitree", "ingest", "--workspace", str(tmp_path / "ws"), "--verbose",
                          str(path)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    stages = [line for line in run.stderr.splitlines() if line.startswith("[")]
    assert stages[0].endswith("opening deals.csv") and "] writing the workspace" in run.stderr
    assert stages[-1] == "[100%] done" and "[" not in run.stdout.split("\n")[0]


def test_rejects_name_their_line_in_a_file_of_many_row_groups(ws, tmp_path):
    """Record numbers come from the text table's row order (rowid), read by two threads in row groups of
    122,880: a line past the first groups, after a value with a line break, still names its own line."""
    lines, expected, line = [HEADER], [], 1
    for i in range(300_000):
        line += 1
        owner, amount, extra = "Ann", "10", ""
        if i in (0, 150_000, 299_999):
            amount = "abc"
            expected.append((line, "amount"))
        if i == 200_000:
            owner = '"Ann\nSmith"'  # one record on two lines: every later line number moves by one
        if i == 250_000:
            extra = ",surplus"
            expected.append((line, None))
        lines.append(f"D{i},A1,{owner},2026-01-05,2026-02-01,Won,won,{amount},new,SMB,Organic{extra}")
        line += owner.count("\n")
    path = tmp_path / "deals.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = ingest(ws, [path]).files[0]
    assert [(r.line, r.column) for r in report.rejected] == sorted(expected)
    assert report.rows_loaded == 300_000 - 4


def test_the_loads_own_database_has_the_workspace_ceilings(ws, tmp_path, monkeypatch):
    """A load's in-memory DuckDB is capped like a workspace's (DuckDB alone would take 80 % of memory)."""
    import duckdb

    from kpitree.workspace import DB_MEMORY_LIMIT, DB_THREADS

    real, seen = duckdb.connect, []

    def spy(*args, **kwargs):
        con = real(*args, **kwargs)
        if not args:  # in memory: the load's own reader, not the workspace file
            seen.append(con.execute("SELECT current_setting('memory_limit'), current_setting('threads')").fetchone())
        return con

    monkeypatch.setattr(duckdb, "connect", spy)
    ingest(ws, [write(tmp_path, "deals.csv", f"{HEADER}\nD1,A1,Ann,2026-01-05,2026-02-01,Won,won,10,new,SMB,x\n")])
    assert seen and all(threads <= DB_THREADS for _, threads in seen)
    limit = real(config={"memory_limit": f"{DB_MEMORY_LIMIT // (1 << 20)}MiB"}).execute(
        "SELECT current_setting('memory_limit')").fetchone()[0]
    assert {mem for mem, _ in seen} == {limit}


def test_a_workspace_reading_a_remote_engine_refuses_uploads(ws, tmp_path):
    # The workspace's numbers come from Postgres: a file loaded here would fill a local table nothing
    # reads, so the load says where the data lives instead.
    (ws.root / "workspace.json").write_text(json.dumps({"engine": {"kind": "postgres", "dsn_env": "KPITREE_PG_DSN"}}))
    path = write(tmp_path, "deals.csv", f"{HEADER}\nD1,A1,Ann,2026-01-05,2026-02-01,Won,won,1200.50,new,SMB,Organic\n")
    with pytest.raises(LoadError, match="reads its data from PostgreSQL"):
        ingest(ws, [path])
    (ws.root / "workspace.json").write_text("{}")
    assert not ws.tables()  # nothing was written to the local file either


def _statuses(tmp_path: Path, on_hold: int, total: int) -> Path:
    """Deals with a Status column: `on_hold` of `total` say 'On Hold', a value no status map knows."""
    lines = ["Opp,Opened,Status,Value"]
    lines += [f"O{i},2026-09-{1 + i % 28:02d},{'On Hold' if i < on_hold else ('Won' if i % 2 else 'Lost')},{100 + i}"
              for i in range(total)]
    return write(tmp_path, "opps.csv", "\n".join(lines) + "\n")


def test_a_preview_says_before_the_load_how_many_rows_go_and_why(tmp_path):
    """Trial E: the preview said '1 of 20 sample rows would be rejected' while 141 of 1,750 (8 %) went at load."""
    from kpitree.ingest import preview_mapping

    path = _statuses(tmp_path, 80, 1000)
    p = preview_mapping(path, "deals", {"deal_id": "Opp", "created_date": "Opened", "status": "Status",
                                        "amount": "Value"})
    assert p.error is None and len(p.rows) == 20  # the first rows are shown; every row is checked
    assert (p.rows_read, p.rows_rejected, p.partial) == (1000, 80, False)
    assert p.reasons == [("Status", "On Hold is not one of open, won, lost", 80, 2)]
    assert p.summary == ("8.0 % of rows (80 of 1,000) would be rejected with this mapping: column 'Status': "
                         "On Hold is not one of open, won, lost (80 row(s), first on line 2)")
    clean = preview_mapping(path, "deals", {"deal_id": "Opp", "created_date": "Opened", "amount": "Value"},
                            fill={"status": "open"})
    assert clean.rows_rejected == 0 and clean.summary is None


def test_a_reason_that_rejects_many_rows_is_said_once_with_its_share(ws, tmp_path):
    from kpitree.vendors import header_key

    path = _statuses(tmp_path, 80, 1000)
    ws.save_mapping(header_key(["Opp", "Opened", "Status", "Value"]), ["Opp", "Opened", "Status", "Value"], "deals",
                    {"deal_id": "Opp", "created_date": "Opened", "status": "Status", "amount": "Value"})
    f = ingest(ws, [path]).files[0]
    assert (f.rows_loaded, f.rows_rejected) == (920, 80)
    said = [w for w in f.warnings if "are rejected for one reason" in w]
    assert said == ["8.0 % of the rows (80 of 1,000) are rejected for one reason: column 'Status': On Hold is not "
                    "one of open, won, lost — 80 row(s), first on line 2 — if they belong in the data, map that "
                    "value (for a status, load the column as the stage: the stage map decides open / won / lost per "
                    "value) or correct the file, then load again"]


def test_a_few_scattered_rejects_are_not_said_as_a_reason(ws, tmp_path):
    path = _statuses(tmp_path, 2, 1000)
    from kpitree.vendors import header_key

    ws.save_mapping(header_key(["Opp", "Opened", "Status", "Value"]), ["Opp", "Opened", "Status", "Value"], "deals",
                    {"deal_id": "Opp", "created_date": "Opened", "status": "Status", "amount": "Value"})
    f = ingest(ws, [path]).files[0]
    assert f.rows_rejected == 2 and f.reject_reasons == [("Status", "On Hold is not one of open, won, lost", 2, 2)]
    assert not [w for w in f.warnings if "rejected for" in w]


def test_abandoned_is_a_lost_status(tmp_path):
    """Copper's fourth status, mapped by hand from the mapping screen: a loss, not a rejected row."""
    from kpitree.ingest import preview_mapping

    path = write(tmp_path, "opps.csv", "Opp,Opened,Status\nO1,2026-09-01,Abandoned\nO2,2026-09-02,Won\n")
    p = preview_mapping(path, "deals", {"deal_id": "Opp", "created_date": "Opened", "status": "Status"})
    assert [r["status"] for r in p.rows] == ["lost", "won"] and p.rows_rejected == 0
