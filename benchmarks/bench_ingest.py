"""Loads a 1M-row HubSpot-style deals export through the CLI and compares with a raw DuckDB read.

The export is generated here (every cell quoted, HubSpot labels, `YYYY-MM-DD HH:MM` dates, a few
bad rows), then:
1. `python -m kpitree ingest --workspace W FILE --format json` (detection, mapping, coercion,
   checks, quality report, atomic swap) in a subprocess, timed end to end: into a new workspace
   (which also gets its suggested first tree) and again with the same file (the load alone);
2. `CREATE TABLE deals AS SELECT * FROM read_csv(FILE)` into a DuckDB file, same machine, same run.

Wall seconds and CPU seconds (user + system, all threads) of each: on a shared machine the wall
clock moves with the neighbours' load, the CPU seconds much less, so the ratio is given for both.

    .venv/bin/python benchmarks/bench_ingest.py [--rows 1000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
STAGES = ["Appointment Scheduled", "Qualified To Buy", "Presentation Scheduled", "Decision Maker Bought-In",
          "Contract Sent", "Closed Won", "Closed Lost"]
SOURCES = ["Organic Search", "Paid Search", "Direct Traffic", "Referrals", "Offline Sources"]


def generate(path: Path, rows: int, seed: float = 0.42) -> None:
    """Writes the export with DuckDB's COPY (a Python loop over 1M rows would dominate the run)."""
    def pick(values: list[str]) -> str:
        return f"list_extract({values!r}, 1 + floor(random() * {len(values)})::INT)"

    con = duckdb.connect()
    con.execute(f"SELECT setseed({seed})")
    created = "DATE '2024-01-01' + floor(random() * 1000)::INT"
    query = f"""
        SELECT (180000000000 + i)::VARCHAR AS "Record ID",
               'Deal ' || i AS "Deal Name",
               {pick(STAGES)} AS "Deal Stage",
               strftime(c + (5 + floor(random() * 115))::INT, '%Y-%m-%d') || ' 00:00' AS "Close Date",
               strftime(c, '%Y-%m-%d') || ' ' || lpad((floor(random() * 24))::INT::VARCHAR, 2, '0') || ':30'
                   AS "Create Date",
               'Rep ' || lpad((floor(random() * 40))::INT::VARCHAR, 2, '0') AS "Deal owner",
               -- A few rows a real export has: unreadable amounts.
               CASE WHEN random() < 0.0005 THEN 'n/a' ELSE round(random() * 40000 + 500, 2)::VARCHAR END AS "Amount",
               'USD' AS "Currency",
               {pick(["New Business", "Existing Business", ""])} AS "Deal Type",
               'Sales Pipeline' AS "Pipeline",
               {pick(SOURCES)} AS "Original Traffic Source",
               'Company ' || floor(random() * 50000)::INT AS "Associated Company (Primary)"
        FROM (SELECT i, {created} AS c FROM range({int(rows)}) AS t(i))
    """
    con.execute(f"COPY ({query}) TO '{path}' (HEADER, DELIMITER ',', FORCE_QUOTE *)")
    con.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keep", help="directory to keep the generated file and workspace in")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep or tmp)
        work.mkdir(parents=True, exist_ok=True)
        path = work / "hubspot-crm-exports-all-deals-bench.csv"
        t0 = time.perf_counter()
        generate(path, args.rows)
        gen = time.perf_counter() - t0
        size_mb = path.stat().st_size / 1e6

        ws = work / "ws"
        shutil.rmtree(ws, ignore_errors=True)
        first, report, first_tree, first_cpu = load(ws, path)  # a new workspace: the load, then its first tree
        if report is None:
            return 1
        again, report, _, again_cpu = load(ws, path)  # the same file again (replace): the load alone
        if report is None:
            return 1
        f = report["files"][0]
        start = min(timed([sys.executable, "-m", "kpitree", "--help"]) for _ in range(3))

        raw_db = work / "raw.duckdb"
        raw_db.unlink(missing_ok=True)
        t0, c0 = time.perf_counter(), cpu(resource.RUSAGE_SELF)
        con = duckdb.connect(str(raw_db), config={"threads": 2})
        con.execute("CREATE TABLE deals AS SELECT * FROM read_csv(?)", [str(path)])
        raw_rows = con.execute("SELECT count(*) FROM deals").fetchone()[0]
        con.close()
        raw, raw_cpu = time.perf_counter() - t0, cpu(resource.RUSAGE_SELF) - c0

    print(f"{args.rows:,} rows, {size_mb:.0f} MB (generated in {gen:.1f} s)")
    print(f"{'path':<52} {'seconds':>8} {'CPU s':>8} {'rows':>10}")
    print(f"{'kpitree ingest, new workspace (CLI, with first tree)':<52} {first:>8.2f} {first_cpu:>8.2f} "
          f"{f['rows_loaded']:>10,}")
    print(f"{'  of which the suggested first tree':<52} {first_tree:>8.2f}")
    print(f"{'kpitree ingest, same file again (CLI, replace)':<52} {again:>8.2f} {again_cpu:>8.2f} "
          f"{f['rows_loaded']:>10,}")
    print(f"{'  of which inside ingest()':<52} {report['seconds']:>8.2f}")
    print(f"{'python -m kpitree --help (start-up)':<52} {start:>8.2f}")
    print(f"{'duckdb read_csv → table (raw, auto-detected types)':<52} {raw:>8.2f} {raw_cpu:>8.2f} {raw_rows:>10,}")
    print(f"ratio CLI load / raw: {again / raw:.2f}× (ingest() alone {report['seconds'] / raw:.2f}×, goal ≤ 1.5×; "
          f"a new workspace with its first tree {first / raw:.2f}×); rejected {f['rows_rejected']:,} rows "
          f"(first: line {f['rejected'][0]['line'] if f['rejected'] else '-'})")
    print(f"CPU seconds: CLI load / raw {again_cpu / raw_cpu:.2f}×, a new workspace with its first tree "
          f"{first_cpu / raw_cpu:.2f}×")
    return 0


def cpu(who: int) -> float:
    """User + system CPU seconds so far, every thread (of this process, or of its finished children)."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, capture_output=True, check=True)
    return time.perf_counter() - t0


def load(ws: Path, path: Path) -> tuple[float, dict | None, float, float]:
    """One CLI load: wall seconds, its JSON report, the seconds after ingest() (the first tree), CPU seconds."""
    t0, c0 = time.perf_counter(), cpu(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, "-m", "kpitree", "ingest", "--workspace", str(ws), str(path),
                           "--format", "json"], cwd=ROOT, capture_output=True, text=True)
    wall, used = time.perf_counter() - t0, cpu(resource.RUSAGE_CHILDREN) - c0
    if proc.returncode != 0:
        print(proc.stderr, file=sys.stderr)
        return wall, None, 0.0, used
    report = json.loads(proc.stdout)
    return wall, report, wall - report["seconds"], used


if __name__ == "__main__":
    sys.exit(main())
