"""Bad inputs: each gets a clear message (file, line, column where they apply) and loses nothing.

Every case starts from a workspace holding good deals and evaluates a metric before and after:
- a file that cannot be loaded raises `LoadError` and the workspace keeps its data exactly;
- a file with some bad rows loads its good rows; here the bad file carries the same good rows as
  the workspace plus bad ones, so the metric must not move (the bad rows never got in).
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from kpitree import ingest as ingest_module
from kpitree.errors import LoadError
from kpitree.evaluate import Engine
from kpitree.ingest import ingest, rejects_csv
from kpitree.periods import parse_period
from kpitree.workspace import Workspace

HEADER = "deal_id,account_id,owner,created_date,close_date,stage,status,amount,deal_type,segment,channel"
GOOD = [
    "D1,A1,Ann,2026-08-01,2026-09-10,Closed Won,won,12000,new,SMB,Web",
    "D2,A2,Bob,2026-08-05,2026-09-15,Closed Lost,lost,8000,new,SMB,Web",
    "D3,A3,Ann,2026-08-10,2026-09-20,Closed Won,won,30000,new,Enterprise,Partner",
    "D4,A4,Cy,2026-09-01,,Proposal,open,5000,new,SMB,Web",
]


def good_text(*extra: str, header: str = HEADER) -> str:
    return "\n".join([header, *GOOD, *extra]) + "\n"


def zip_bytes(members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=method)
    return buf.getvalue()


@dataclass
class Case:
    """A bad file (name, bytes) and what the user must be told."""

    name: str
    content: Callable[[], bytes]
    error: str | None = None  # the load fails with this message (regex)
    line: int | None = None  # … or loads, rejecting this line
    column: str | None = None
    reason: str | None = None  # (regex on the reject reason)
    warning: str | None = None  # … or loads with this warning (regex)
    unpack_limit: int | None = None  # a smaller decompression limit, to test it with small files


def text(s: str, encoding: str = "utf-8") -> Callable[[], bytes]:
    return lambda: s.encode(encoding)


CASES = {
    # Files that cannot be loaded at all.
    "empty file": Case("deals.csv", text(""), error=r"deals\.csv: the file is empty"),
    "header only": Case("deals.csv", text(HEADER + "\n"), error=r"deals\.csv: the file has a header but no data rows"),
    "blank lines only": Case("deals.csv", text("\n\n\n"), error=r"deals\.csv: the file has no header line"),
    "binary garbage": Case("deals.csv", lambda: b"\x00\x01garbage" + os.urandom(4000),
                           error=r"deals\.csv: this is a binary file, not CSV text"),
    "pdf renamed to csv": Case("deals.csv", lambda: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj",
                               error=r"deals\.csv: this is a PDF document, not a CSV file"),
    "excel workbook": Case("deals.xlsx",
                           lambda: zip_bytes({"[Content_Types].xml": b"<x/>", "xl/workbook.xml": b"<x/>"}),
                           error=r"deals\.xlsx: this is an Excel workbook, not CSV"),
    "wrong delimiter": Case("deals.csv", text(good_text().replace(",", "#")),
                            error=r"deals\.csv: line 1 is a single column \('deal_id#account_id"),
    "unrecognised header": Case("export.csv", text("foo,bar,baz\n1,2,3\n"),
                                error=r"export\.csv: cannot tell which table .*\(foo, bar, baz\)"),
    "missing required column": Case("deals.csv", text("deal_id,created_date,amount\nD9,2026-09-01,5\n"),
                                    error=r"deals\.csv: looks like 'deals' \(deal_id ← deal_id.*\) but lacks "
                                          r"required column\(s\) 'status'"),
    "duplicated header": Case("deals.csv", text(good_text(header=HEADER.replace("segment", "amount"))),
                              error=r"deals\.csv: column 'amount' appears 2 times \(columns 8 and 10\)"),
    "unterminated quote": Case("deals.csv", text(good_text('D5,A5,"Ann,2026-08-01,2026-09-10,Won,won,1,new,SMB,Web',
                                                           *GOOD)),
                               error=r"deals\.csv, line 6: a quote opened on this line is never closed"),
    "10k columns": Case("deals.csv", text(",".join(f"c{i}" for i in range(10_000)) + "\n" + "1," * 9_999 + "1\n"),
                        error=r"deals\.csv: line 1 has 10000 columns; at most 1000 are accepted"),
    "very long line": Case("deals.csv", text(good_text("D5,A5,Ann,2026-08-01,2026-09-10,Won,won,1,new,"
                                                       + "x" * 1_200_000 + ",Web")),
                           error=r"deals\.csv: line 6 is longer than 1024 KB \(1171 KB\): refused"),
    "header line with no end": Case("deals.csv", text("a" * 300_000 + "," + "b" * 300_000),
                                    error=r"deals\.csv: line 1 is longer than 256 KB: not a CSV header"),
    "zip bomb": Case("deals.zip", lambda: zip_bytes({"deals.csv": HEADER.encode() + b"\n" + b"0" * (12 << 20)}),
                     error=r"deals\.zip: member 'deals\.csv' would expand \d+:1 .* refused as a zip bomb"),
    "path traversal in zip": Case("deals.zip", lambda: zip_bytes({"../../etc/deals.csv": good_text().encode()}),
                                  error=r"deals\.zip: refused: member '\.\./\.\./etc/deals\.csv' has a path outside"),
    "absolute path in zip": Case("deals.zip", lambda: zip_bytes({"/tmp/deals.csv": good_text().encode()}),
                                 error=r"deals\.zip: refused: member '/tmp/deals\.csv' has a path outside"),
    "zip without csv": Case("deals.zip", lambda: zip_bytes({"notes.docx": b"PK..."}),
                            error=r"deals\.zip: the zip holds no CSV file \(members: notes\.docx\)"),
    "corrupt zip": Case("deals.zip", lambda: b"PK\x03\x04" + os.urandom(200),
                        error=r"deals\.zip: not a readable zip file"),
    "truncated gzip": Case("deals.csv.gz", lambda: gzip.compress(good_text().encode() * 50)[:120],
                           error=r"deals\.csv\.gz: not a readable gzip file"),
    "gzip bomb": Case("deals.csv.gz", lambda: gzip.compress(HEADER.encode() + b"\n" + b"0" * (3 << 20)),
                      error=r"deals\.csv\.gz: unpacks to more than 2 MB — refused", unpack_limit=2 << 20),
    "zip over the size limit": Case("deals.zip", lambda: zip_bytes({"deals.csv": os.urandom(3 << 20).hex().encode()}),
                                    error=r"deals\.zip: unpacks to 6 MB, more than the 2 MB limit — refused",
                                    unpack_limit=2 << 20),
    "no row readable": Case("deals.csv", text(HEADER + "\n" + "D9,A1,Ann,someday,never,x,won,lots,new,SMB,Web\n" * 3),
                            error=r"deals\.csv: no row could be loaded into 'deals' — first: line 2, column "
                                  r"'created_date': cannot read someday as a date"),
    "mostly bad rows": Case("deals.csv", text(good_text(*(f"X{i},A1,Ann,2026-08-01,2026-09-10,Won,won,abc,new,SMB,Web"
                                                         for i in range(10)))),
                            error=r"deals\.csv: 10 of 14 rows rejected — is this the right file for 'deals'\? First "
                                  r"problem: line 6, column 'amount'"),
    "vendor export missing a column": Case("hubspot.csv", text('"Record ID","Deal Name","Deal Stage","Amount"\n'
                                                               '"1","A","Closed Won","5"\n'),
                                           error=r"hubspot\.csv: looks like a HubSpot deals export but has missing "
                                                 r"required column\(s\) 'created_date'"),
    "side file alone": Case("products.csv", text("product,series,sales_price\nGTX Basic,GTX,550\n"),
                            error=r"products\.csv: this is the products list .* load it together"),
    # Files that load, leaving the bad rows out and saying where they were.
    "unparseable date": Case("deals.csv", text(good_text("D5,A5,Ann,31/31/2026,2026-09-10,Won,won,100,new,SMB,Web")),
                             line=6, column="created_date", reason=r"cannot read 31/31/2026 as a date"),
    "unparseable amount": Case("deals.csv",
                               text(good_text("D5,A5,Ann,2026-08-01,2026-09-10,Won,won,12k€?,new,SMB,Web")),
                               line=6, column="amount", reason=r"cannot read 12k€\? as an amount"),
    "negative amount": Case("deals.csv", text(good_text("D5,A5,Ann,2026-08-01,2026-09-10,Won,won,-500,new,SMB,Web")),
                            line=6, column="amount", reason=r"negative value -500 is not allowed"),
    "date out of range": Case("deals.csv", text(good_text("D5,A5,Ann,2026-08-01,2206-09-10,Won,won,5,new,SMB,Web")),
                              line=6, column="close_date", reason=r"date 2206-09-10 is outside 1900–2100"),
    "unknown status": Case("deals.csv", text(good_text("D5,A5,Ann,2026-08-01,2026-09-10,Won,maybe,5,new,SMB,Web")),
                           line=6, column="status", reason=r"maybe is not one of open, won, lost"),
    "duplicate id": Case("deals.csv", text(good_text("D1,A1,Ann,2026-08-01,2026-09-10,Won,won,99999,new,SMB,Web")),
                         line=6, column="deal_id", reason=r"duplicate deal_id 'D1', first seen on line 2"),
    "missing id": Case("deals.csv", text(good_text(",A5,Ann,2026-08-01,2026-09-10,Won,won,5,new,SMB,Web")),
                       line=6, column="deal_id", reason=r"missing value"),
    "too many values": Case("deals.csv", text(good_text("D5,A5,Ann,2026-08-01,2026-09-10,Won,won,5,000,new,SMB,Web")),
                            line=6, reason=r"12 values where the header has 11 columns"),
    "too few values": Case("deals.csv", text(good_text("D5,A5,Ann,2026-08-01")),
                           line=6, reason=r"only 4 values where the header has 11 columns"),
    "stray quote in a row": Case("deals.csv",
                                 text(good_text('D5,A5,"Ann" Lee,2026-08-01,2026-09-10,W,won,5,new,SMB,Web')),
                                 line=6, reason=r"quote"),
    "multi-line value before a bad row": Case(
        "deals.csv", text(good_text('D5,A5,"Ann\nLee",2026-08-01,,Demo,open,5,new,SMB,Web',
                                    "D6,A6,Ann,2026-08-01,2026-09-10,W,won,oops,new,SMB,Web")),
        line=8, column="amount", reason=r"cannot read oops"),
    "future date": Case("deals.csv", text(good_text("D5,A5,Ann,2031-01-01,,Demo,open,5,new,SMB,Web")),
                        warning=r"1 row\(s\) have a created_date after today \(first on line 6\)"),
    "mixed encodings": Case("deals.csv",
                            lambda: (good_text("D5,A5,José,2026-09-01,,Demo,open,5,new,SMB,Web").encode()
                                     + "D6,A6,Zoë,2026-09-01,,Demo,open,5,new,SMB,Web\n".encode("latin-1")),
                            warning=r"mixed encodings: 1 line\(s\) are not UTF-8 \(lines 7\)"),
    "unknown stripe interval": Case("subs.csv", text("id,Customer ID,Interval,Amount,Status,Start Date (UTC)\n"
                                                     "sub_1,cus_1,fortnight,10.00,active,2026-01-01 10:00\n"
                                                     "sub_2,cus_2,month,10.00,active,2026-01-01 10:00\n"),
                                    line=2, column="Interval",
                                    reason=r"fortnight is not one of day, week, month, year"),
}


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> tuple[Workspace, tuple]:
    """The good workspace, loaded once; each test works on its own copy."""
    root = tmp_path_factory.mktemp("baseline")
    w = Workspace(root / "ws", create=True)
    good = root / "deals.csv"
    good.write_text(good_text(), encoding="utf-8")
    ingest(w, [good])
    return w, snapshot(w)


@pytest.fixture
def ws(baseline, tmp_path) -> Workspace:
    shutil.copytree(baseline[0].root, tmp_path / "ws")
    return Workspace(tmp_path / "ws")


def snapshot(ws: Workspace) -> tuple:
    """A metric from the engine and the raw table: both must be identical after a bad load."""
    engine = Engine(ws)
    df = engine.query("new_business_arr", [parse_period("2026-09")])
    win = engine.query("win_rate", [parse_period("2026-09")])
    with ws.connect() as con:
        table = con.execute("SELECT * FROM deals ORDER BY deal_id").fetchall()
    return float(df["value"].iloc[0]), float(win["value"].iloc[0]), table


def test_there_are_at_least_25_bad_inputs():
    assert len(CASES) >= 25


@pytest.mark.parametrize("case_id", list(CASES))
def test_bad_input_is_explained_and_loses_nothing(ws, baseline, tmp_path, monkeypatch, case_id):
    case = CASES[case_id]
    if case.unpack_limit:
        monkeypatch.setattr(ingest_module, "MAX_UNPACKED_BYTES", case.unpack_limit)
    before = baseline[1]
    assert before[0] == 42000
    path = tmp_path / "bad" / case.name
    path.parent.mkdir()
    path.write_bytes(case.content())
    if case.error:
        with pytest.raises(LoadError, match=case.error):
            ingest(ws, [path])
    else:
        report = ingest(ws, [path], max_reject_share=1.0)
        f = report.files[0]
        if case.line is not None:
            hits = [r for r in f.rejected if r.line == case.line]
            assert hits, f"no reject on line {case.line}: {f.rejected}"
            assert case.column is None or hits[0].column == case.column
            assert case.reason is None or any(re.search(case.reason, r.reason) for r in hits)
            assert f.file == case.name
        if case.warning:
            assert any(re.search(case.warning, w) for w in f.warnings), f.warnings
    if case.name.startswith("deals") and not case.error:
        after = snapshot(ws)
        assert after[:2] == before[:2]
        assert [r for r in after[2] if r[0] in ("D1", "D2", "D3", "D4")] == before[2]
    else:
        assert snapshot(ws) == before


def test_a_bad_file_among_good_ones_fails_the_whole_load(ws, tmp_path):
    before = snapshot(ws)
    good = tmp_path / "more.csv"
    good.write_text(HEADER + "\nD9,A9,Eve,2026-08-01,2026-09-12,Won,won,70000,new,SMB,Web\n", encoding="utf-8")
    subs = tmp_path / "subscriptions.csv"
    subs.write_text("customer_id,start_date,end_date,mrr\nC1,2026-01-01,,100\n", encoding="utf-8")
    bad = tmp_path / "broken.csv"
    bad.write_bytes(b"\x00\x00\x00")
    with pytest.raises(LoadError, match="broken.csv"):
        ingest(ws, [good, subs, bad])
    assert snapshot(ws) == before
    assert "subscriptions" not in ws.tables()


def test_a_failed_swap_rolls_back_every_table(ws, tmp_path, monkeypatch):
    """Even a failure while writing the workspace (disk full, a crash in the swap) keeps the old tables."""
    before = snapshot(ws)
    good = tmp_path / "deals.csv"
    good.write_text(HEADER + "\nD9,A9,Eve,2026-08-01,2026-09-12,Won,won,70000,new,SMB,Web\n", encoding="utf-8")
    real = ingest_module._skip_loaded_files

    def fail(*args, **kwargs):
        raise ingest_module.duckdb.IOException("disk full")

    monkeypatch.setattr(ingest_module, "_skip_loaded_files", fail)
    with pytest.raises(LoadError, match="could not write the workspace: disk full"):
        ingest(ws, [good], mode="append")
    monkeypatch.setattr(ingest_module, "_skip_loaded_files", real)
    assert snapshot(ws) == before


def test_loading_the_same_file_twice_does_not_double_count(ws, tmp_path):
    before = snapshot(ws)
    path = tmp_path / "again" / "deals.csv"
    path.parent.mkdir()
    path.write_text(good_text(), encoding="utf-8")
    ingest(ws, [path])  # replace: the same data
    assert snapshot(ws) == before
    report = ingest(ws, [path], mode="append")  # append: same ids replace, same file is not added twice
    assert snapshot(ws) == before
    assert report.files[0].rows_loaded == 0 and "already appended" in report.files[0].warnings[-1]


def test_appending_a_file_without_ids_twice_is_refused_softly(tmp_path):
    ws = Workspace(tmp_path / "w2", create=True)
    subs = tmp_path / "subscriptions.csv"
    subs.write_text("customer_id,start_date,end_date,mrr\nC1,2026-01-01,,100\n", encoding="utf-8")
    ingest(ws, [subs], mode="append")
    ingest(ws, [subs], mode="append")
    with ws.connect() as con:
        assert con.execute("SELECT count(*) FROM subscriptions").fetchone()[0] == 1


def test_rejects_download_escapes_formulas(ws, tmp_path):
    path = tmp_path / "deals.csv"
    path.write_text(good_text("=HYPERLINK(\"http://evil\"),A5,Ann,2026-08-01,2026-09-10,Won,won,-1,new,SMB,Web",
                              "D6,A6,@SUM(A1),2026-08-01,2026-09-10,Won,won,+cmd,new,SMB,Web"), encoding="utf-8")
    with open(path, "a", encoding="utf-8", newline="") as fh:  # a CR before the formula, inside quotes
        fh.write('D7,A7,Ann,2026-08-01,2026-09-10,Won,won,"\r=HYPERLINK(""http://evil"")",new,SMB,Web\n')
    report = ingest(ws, [path], max_reject_share=1.0)
    out = rejects_csv(report)
    assert out.splitlines()[0] == '"file","line","column","reason","value"'
    # Every field is quoted, so no record is split at a CR or LF: each parses back to five cells.
    records = list(csv.reader(io.StringIO(out)))
    assert all(len(r) == 5 for r in records)
    cells = [c for r in records[1:] for c in r]
    assert "'-1" in cells and "'+cmd" in cells and any(c.startswith("'\r=HYPERLINK") for c in cells)
    assert not any(c.lstrip(" ")[:1] in ("=", "+", "-", "@", "\r", "\t") for c in cells)


def test_a_file_is_data_never_code(ws, tmp_path):
    """SQL or shell text in cells and headers is stored as text; nothing runs."""
    marker = tmp_path / "pwned"
    path = tmp_path / "deals.csv"
    evil = f"\"x\"\"); COPY (SELECT 1) TO '{marker}'; --\""
    lines = [HEADER + "," + evil, *(g + ",\"'); DROP TABLE deals; --\"" for g in GOOD)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = ingest(ws, [path])
    assert report.files[0].rows_loaded == 4 and not marker.exists()
    with ws.connect() as con:
        assert con.execute("SELECT count(*) FROM deals").fetchone()[0] == 4
        cols = [r[0] for r in con.execute("DESCRIBE deals").fetchall()]
        evil_col = next(c for c in cols if c.startswith("x_copy_select_1_to"))
        assert con.execute(f'SELECT DISTINCT "{evil_col}" FROM deals').fetchall() == [("'); DROP TABLE deals; --",)]
