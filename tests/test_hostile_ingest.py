"""Hostile files and colliding loads: each refused or its bad rows rejected with a message naming the
file (and line and column where there is one), never a traceback, and the workspace left exactly as it
was — every table's content is compared before and after.

A case either fails the whole load (`error`) or loads the good rows and rejects the hostile ones
(`line`/`column`/`reason`); a rejecting file carries the baseline's own rows, so the tables must not
change by a single cell. Some cases also run through the command line, where "no traceback" is what
a user sees.
"""

from __future__ import annotations

import codecs
import gzip
import io
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest
from conftest import ROOT

from kpitree import ingest as ingest_module
from kpitree.errors import LoadError
from kpitree.ingest import ingest, load_lock
from kpitree.workspace import Workspace

HEADER = "deal_id,account_id,owner,created_date,close_date,stage,status,amount,deal_type,segment,channel"
GOOD = [
    "D1,A1,Ann,2026-08-01,2026-09-10,Closed Won,won,12000,new,SMB,Web",
    "D2,A2,Bob,2026-08-05,2026-09-15,Closed Lost,lost,8000,new,SMB,Web",
    "D3,A3,Ann,2026-08-10,2026-09-20,Closed Won,won,30000,new,Enterprise,Partner",
    "D4,A4,Cy,2026-09-01,,Proposal,open,5000,new,SMB,Web",
]


def deal(i: int, amount: str = "100", owner: str = "Ann") -> str:
    return f"X{i},A9,{owner},2026-08-01,2026-09-10,Closed Won,won,{amount},new,SMB,Web"


def csv_bytes(*extra: str, encoding: str = "utf-8") -> bytes:
    return ("\n".join([HEADER, *GOOD, *extra]) + "\n").encode(encoding)


def big_csv(extra: bytes, rows: int = 6000) -> bytes:
    """The good rows, then enough more (all rejected as duplicates of D1) to pass the first 256 KB."""
    filler = "".join(f"D1,A1,Ann,2026-08-01,2026-09-10,Closed Won,won,12000,new,SMB,Web{' ' * 8}\n" for _ in range(rows))
    return csv_bytes() + filler.encode() + extra


def gzip_stream(head: bytes, zeros: int) -> bytes:
    """A gzip file whose body is `zeros` bytes of '0' (a bomb: ~1000:1), built without holding them."""
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [c.compress(head)]
    block = b"0" * (1 << 20)
    for _ in range(zeros >> 20):
        out.append(c.compress(block))
    out.append(c.flush())
    return b"".join(out)


def zip_of(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def damaged_zip() -> bytes:
    """A zip whose directory is intact but whose compressed bytes are not (the deflate stream breaks)."""
    data = bytearray(zip_of({"deals.csv": csv_bytes(*(deal(i) for i in range(3000)))}))
    for i in range(60, 200):
        data[i] ^= 0x5A
    return bytes(data)


@dataclass
class Case:
    name: str  # the file's name
    content: Callable[[], bytes]
    error: str | None = None  # the load fails with this message (regex) …
    line: int | None = None  # … or rejects this line
    column: str | None = None
    reason: str | None = None


SJIS = "X{},A9,山田太郎,2026-08-01,2026-09-10,受注,won,1,new,SMB,Web"
SJIS_BROKEN = ("\n".join([HEADER, *GOOD, SJIS.format(1)]) + "\n").encode("cp932") + b"X2,A9,\x81\x20,,,,,,,,\n"
# Shift-JIS decided from the first 256 KB of such lines; a broken line after them is named, not guessed.
SJIS_LATE = (("\n".join([HEADER, *GOOD, *(SJIS.format(i) for i in range(6000))]) + "\n").encode("cp932")
             + b"X9,A9,\x81\x20,,,,,,,,\n")

CASES = {
    # Numbers that would silently poison a sum.
    "NaN amount": Case("deals.csv", lambda: csv_bytes(deal(1, "NaN")), line=6, column="amount",
                       reason=r"NaN is not a finite number"),
    "inf amount": Case("deals.csv", lambda: csv_bytes(deal(1, "inf")), line=6, column="amount",
                       reason=r"inf is not a finite number"),
    "-Infinity amount": Case("deals.csv", lambda: csv_bytes(deal(1, "-Infinity")), line=6, column="amount",
                             reason=r"-Infinity is not a finite number"),
    "1e309 amount": Case("deals.csv", lambda: csv_bytes(deal(1, "1e309")), line=6, column="amount",
                         reason=r"1e309 is not a finite number"),
    "400-digit amount": Case("deals.csv", lambda: csv_bytes(deal(1, "9" * 400)), line=6, column="amount",
                             reason=r"is not a finite number"),
    "400-digit amount with separators": Case("deals.csv", lambda: csv_bytes(deal(1, '"' + "999," * 100 + '9"')),
                                             line=6, column="amount", reason=r"cannot read 999,999"),
    "1e308 amount": Case("deals.csv", lambda: csv_bytes(deal(1, "1e308")), line=6, column="amount",
                         reason=r"amount 1e308 is beyond ±1e15"),
    "NaN quoted with spaces": Case("deals.csv", lambda: csv_bytes(deal(2, '" nan "')), line=6,
                                        column="amount", reason=r"nan is not a finite number"),
    # Ids that look like another id.
    "id with a line break": Case("deals.csv", lambda: csv_bytes('"D1\n",A1,Ann,2026-08-01,2026-09-10,Won,won,5,new,'
                                                                'SMB,Web'),
                                 line=6, column="deal_id", reason=r"the id contains a line break"),
    "id with a tab": Case("deals.csv", lambda: csv_bytes('"D1\t",A1,Ann,2026-08-01,2026-09-10,Won,won,5,new,SMB,Web'),
                          line=6, column="deal_id", reason=r"control character"),
    # Bytes that are not text.
    "NUL byte after 256 KB": Case("deals.csv", lambda: big_csv(b"X9,A9,A\x00nn,2026-08-01,,Demo,open,1,new,SMB,Web\n"),
                                  error=r"deals\.csv, line 6006: a NUL byte \(byte [\d,]+ of the file\)"),
    "NUL byte at the start": Case("deals.csv", lambda: b"\x00" + csv_bytes(),
                                  error=r"deals\.csv: this is a binary file, not CSV text"),
    "NUL byte in a gzip after 256 KB": Case("deals.csv.gz", lambda: gzip.compress(big_csv(b"X9,\x00\n")),
                                            error=r"deals\.csv\.gz, line 6006: a NUL byte"),
    "Shift-JIS with a broken line": Case("deals.csv", lambda: SJIS_BROKEN,
                                         error=r"deals\.csv, line 6: the text is not UTF-8 and its characters look like "
                                               r"a Chinese, Japanese or Korean encoding"),
    "Shift-JIS broken after 256 KB": Case("deals.csv", lambda: SJIS_LATE,
                                          error=r"deals\.csv, line 6006: byte 7 of the line is neither UTF-8 nor "
                                                r"Shift-JIS"),
    "GBK (Chinese) text": Case("deals.csv", lambda: csv_bytes(deal(1, owner="王小明赢单网站"), encoding="gbk"),
                               error=r"deals\.csv, line 6: the text is not UTF-8 and its characters look like a "
                                     r"Chinese, Japanese or Korean encoding"),
    "EUC-KR (Korean) text": Case("deals.csv", lambda: csv_bytes(deal(1, owner="김철수성공"), encoding="euc-kr"),
                                 error=r"deals\.csv, line 6: the text is not UTF-8"),
    "UTF-16 with a lone surrogate": Case("deals.csv", lambda: codecs.BOM_UTF16_LE + csv_bytes(encoding="utf-16-le")
                                         + b"\x00\xd8" + "x,\n".encode("utf-16-le"),
                                         error=r"deals\.csv, line 6: the file starts as UTF-16 but is not valid UTF-16 "
                                               r"there \(illegal UTF-16 surrogate\)"),
    "UTF-16 cut off mid-character": Case("deals.csv", lambda: codecs.BOM_UTF16_BE + csv_bytes(encoding="utf-16-be")
                                         + b"\x41", error=r"deals\.csv, line 6: .* \(truncated data\)"),
    # Archives that would fill the disk, or break while unpacking.
    "zip member with damaged data": Case("export.zip", lambda: damaged_zip(), error=r"export\.zip:deals\.csv: cannot "
                                                                                    r"unpack this member .* a damaged "
                                                                                    r"archive"),
    "gzip bomb stopped while streaming": Case("deals.csv.gz", lambda: gzip_stream(HEADER.encode() + b"\n", 64 << 20),
                                              error=r"deals\.csv\.gz: expands more than 200:1 \(\d+:1 after 1\d MB\) — "
                                                    r"refused as a compression bomb"),
    "gzip bomb inside a zip": Case("export.zip", lambda: zip_of({"deals.csv.gz": gzip_stream(b"a,b\n", 64 << 20)}),
                                   error=r"export\.zip:deals\.csv\.gz: expands more than 200:1"),
    "gzip that is not gzip": Case("deals.csv.gz", lambda: b"\x1f\x8b\x08\x00" + os.urandom(300),
                                  error=r"deals\.csv\.gz: not a readable gzip file"),
    "zip member with a drive path": Case("export.zip", lambda: zip_of({"C:\\Windows\\deals.csv": csv_bytes()}),
                                         error=r"export\.zip: refused: member 'C:.*deals\.csv' has a path outside"),
    "zip with too many members": Case("export.zip", lambda: zip_of({f"m{i}.csv": b"a,b\n1,2\n" for i in range(201)}),
                                      error=r"export\.zip: 201 members; at most 200"),
    "zip member with a NUL in its name": Case("export.zip", lambda: zip_of({"deals\x00.csv": csv_bytes()}),
                                              error=r"export\.zip"),
    # Headers and cells crafted to do something.
    "duplicate header by case": Case("deals.csv",
                                     lambda: ("\n".join([HEADER.replace("segment", "AMOUNT"), *GOOD]) + "\n").encode(),
                                     error=r"deals\.csv: column 'amount' appears 2 times \(columns 8 and 10\)"),
    "markdown and HTML header, unrecognised": Case("x.csv",
                                                   lambda: b"[a](http://e.example),<img src=x>,![i](http://e)\n1,2,3\n",
                                                   error=r"x\.csv: cannot tell which table"),
    "formula cells": Case("deals.csv", lambda: csv_bytes('D9,A9,Ann,2026-08-01,2026-09-10,Won,won,'
                                                         '"\r=HYPERLINK(""http://e"")",new,SMB,Web'),
                          line=6, column="amount", reason=r"cannot read"),
    "date in year 9999": Case("deals.csv", lambda: csv_bytes("D9,A9,Ann,9999-12-31,,Demo,open,1,new,SMB,Web"),
                              line=6, column="created_date", reason=r"outside 1900–2100"),
    "every row hostile": Case("deals.csv", lambda: ("\n".join([HEADER, *(deal(i, "NaN") for i in range(12))]) + "\n"
                                                    ).encode(),
                              error=r"deals\.csv: no row could be loaded into 'deals' — first: line 2, column 'amount': "
                                    r"NaN is not a finite number"),
}


def snapshot(ws: Workspace) -> dict:
    """Every table's full content (canonical and the load log), read straight from the file."""
    with ws.connect() as con:
        names = [r[0] for r in con.execute("SELECT table_name FROM information_schema.tables "
                                           "WHERE table_schema = 'main' ORDER BY 1").fetchall()]
        return {n: sorted(map(repr, con.execute(f'SELECT * FROM "{n}"').fetchall())) for n in names}


def canonical(snap: dict) -> dict:
    return {k: v for k, v in snap.items() if not k.startswith("_")}


@pytest.fixture(scope="module")
def baseline(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("hostile")
    ws = Workspace(root / "ws", create=True)
    good = root / "deals.csv"
    good.write_bytes(csv_bytes())
    ingest(ws, [good])
    return ws.root, snapshot(ws)


@pytest.fixture
def ws(baseline, tmp_path) -> Workspace:
    shutil.copytree(baseline[0], tmp_path / "ws")
    return Workspace(tmp_path / "ws")


def test_there_are_at_least_20_hostile_files():
    assert len(CASES) >= 20


@pytest.mark.parametrize("case_id", list(CASES))
def test_hostile_file_is_named_and_changes_nothing(ws, baseline, tmp_path, case_id):
    case = CASES[case_id]
    path = tmp_path / "in" / case.name
    path.parent.mkdir()
    path.write_bytes(case.content())
    before = baseline[1]
    if case.error:
        with pytest.raises(LoadError, match=case.error):
            ingest(ws, [path])
        assert snapshot(ws) == before  # not one cell, not one line of the load log
        return
    report = ingest(ws, [path], max_reject_share=1.0)
    f = report.files[0]
    hits = [r for r in f.rejected if r.line == case.line]
    assert hits, f"no reject on line {case.line}: {f.rejected}"
    assert hits[0].column == case.column and re.search(case.reason, hits[0].reason), hits[0]
    assert f.file == case.name
    assert canonical(snapshot(ws)) == canonical(before)  # the hostile rows never got in


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kpitree", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=180)


@pytest.mark.parametrize("case_id", ["NUL byte after 256 KB", "GBK (Chinese) text", "gzip bomb stopped while streaming",
                                     "every row hostile", "zip member with a drive path"])
def test_on_the_command_line_a_hostile_file_is_one_line_never_a_traceback(ws, baseline, tmp_path, case_id):
    case = CASES[case_id]
    path = tmp_path / case.name
    path.write_bytes(case.content())
    run = cli("ingest", "--workspace", str(ws.root), str(path))
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert re.search(case.error, run.stderr) and run.stderr.startswith("error: "), run.stderr
    assert snapshot(ws) == baseline[1]


def test_shift_jis_is_read_as_japanese_with_a_warning(ws, tmp_path):
    path = tmp_path / "deals.csv"
    path.write_bytes(csv_bytes("X1,A9,山田太郎,2026-08-01,2026-09-10,受注,won,1,new,SMB,ウェブ", encoding="cp932"))
    report = ingest(ws, [path])
    assert any("read as Shift-JIS (Japanese)" in w for w in report.files[0].warnings)
    with ws.connect() as con:
        assert con.execute("SELECT owner, stage, channel FROM deals WHERE deal_id = 'X1'").fetchall() == [
            ("山田太郎", "受注", "ウェブ")]


def test_windows_1252_is_never_read_silently(ws, tmp_path):
    path = tmp_path / "deals.csv"
    path.write_bytes(csv_bytes("X1,A9,Renée Müller,2026-08-01,2026-09-10,Gagné,won,1,new,SMB,Web", encoding="cp1252"))
    report = ingest(ws, [path])
    assert any("not UTF-8: read as Windows-1252" in w for w in report.files[0].warnings)
    with ws.connect() as con:
        assert con.execute("SELECT owner FROM deals WHERE deal_id = 'X1'").fetchall() == [("Renée Müller",)]


# --- collisions ------------------------------------------------------------------------------------


def _hold_read_only(db: str, seconds: float, ready) -> None:
    """Another program (the app in another server) with the workspace file open."""
    con = duckdb.connect(db, read_only=True)
    con.execute("SELECT count(*) FROM deals").fetchall()
    ready.set()
    time.sleep(seconds)
    con.close()


def _hold_load_lock(root: str, seconds: float, ready) -> None:
    with load_lock(Workspace(root)):
        ready.set()
        time.sleep(seconds)


def _in_other_process(target, *args) -> multiprocessing.Process:
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=target, args=(*args, ready))
    proc.start()
    assert ready.wait(60), "the helper process did not start"
    return proc


def test_a_load_waits_for_another_program_reading_the_file_and_succeeds(ws, tmp_path):
    holder = _in_other_process(_hold_read_only, str(ws.db_path), 2.0)
    more = tmp_path / "deals.csv"
    more.write_bytes(csv_bytes(deal(1)))
    said: list[str] = []
    try:
        report = ingest(ws, [more], on_progress=lambda _f, msg: said.append(msg))
    finally:
        holder.join(30)
    assert report.tables == {"deals": 5}
    assert any("is open in another program" in m and "waiting" in m for m in said), said


def test_a_load_that_cannot_get_the_file_says_so_and_changes_nothing(ws, baseline, tmp_path, monkeypatch):
    monkeypatch.setattr(ingest_module, "ATTACH_WAIT_SECONDS", 1.0)
    holder = _in_other_process(_hold_read_only, str(ws.db_path), 6.0)
    more = tmp_path / "deals.csv"
    more.write_bytes(csv_bytes(deal(1)))
    try:
        with pytest.raises(LoadError, match=r"workspace 'ws' is in use by another program .* nothing was loaded"):
            ingest(ws, [more])
    finally:
        holder.join(30)
    assert snapshot(ws) == baseline[1]


def test_a_second_load_waits_for_the_first_and_gives_up_cleanly(ws, baseline, tmp_path, monkeypatch):
    monkeypatch.setattr(ingest_module, "LOAD_WAIT_SECONDS", 1.0)
    holder = _in_other_process(_hold_load_lock, str(ws.root), 5.0)
    more = tmp_path / "deals.csv"
    more.write_bytes(csv_bytes(deal(1)))
    said: list[str] = []
    try:
        with pytest.raises(LoadError, match=r"another load \(pid \d+, since [\d:]+\) was still running after 1 s; "
                                            r"nothing was loaded"):
            ingest(ws, [more], on_progress=lambda _f, msg: said.append(msg))
    finally:
        holder.join(30)
    assert any("another load of workspace 'ws' is running" in m for m in said), said
    assert snapshot(ws) == baseline[1]
    assert ingest(ws, [more]).tables == {"deals": 5}  # the lock went with its process


def test_two_appends_at_once_both_land_one_after_the_other(ws, tmp_path):
    """Two command-line appends started together: one waits for the other; no error, every row once."""
    first, second = tmp_path / "a" / "deals.csv", tmp_path / "b" / "deals.csv"
    for path, rows in ((first, [deal(i) for i in range(0, 300)]), (second, [deal(i) for i in range(300, 600)])):
        path.parent.mkdir()
        path.write_bytes(("\n".join([HEADER, *rows]) + "\n").encode())
    runs: list[subprocess.CompletedProcess] = []

    def append(path: Path) -> None:
        runs.append(cli("ingest", "--workspace", str(ws.root), "--mode", "append", str(path)))

    threads = [threading.Thread(target=append, args=(p,)) for p in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for run in runs:
        assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
    with ws.connect() as con:
        assert con.execute("SELECT count(*), count(DISTINCT deal_id) FROM deals").fetchone() == (604, 604)
        assert con.execute("SELECT count(*) FROM _kpitree_loads WHERE mode = 'append'").fetchone()[0] == 2


def test_a_load_killed_midway_leaves_the_old_data_and_no_lock(ws, baseline, tmp_path):
    """`kill -9` of a command-line load while it checks values: the workspace is as it was, opens, and the
    next load runs (the kernel dropped the load lock with the process). benchmarks/crash_trials.py does
    this at 20 random moments, the swap included."""
    import signal

    path = tmp_path / "deals.csv"
    path.write_bytes(("\n".join([HEADER, *(deal(i) for i in range(200_000))]) + "\n").encode())
    proc = subprocess.Popen([sys.executable, "-m", "kpitree", "ingest", "--workspace", str(ws.root), "--verbose",
                             str(path)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        if "checking values" in line:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait(60)
    assert proc.returncode == -signal.SIGKILL
    assert snapshot(ws) == baseline[1]
    more = tmp_path / "more.csv"
    more.write_bytes(csv_bytes(deal(1)))
    run = cli("ingest", "--workspace", str(ws.root), str(more))
    assert run.returncode == 0, run.stderr
    with ws.connect() as con:
        assert con.execute("SELECT count(*) FROM deals").fetchone()[0] == 5
