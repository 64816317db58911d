"""Engines benchmark: the same tree on DuckDB (its file and over Parquet), PostgreSQL and Spark.

One run, one data set, every engine: the demo business grown to --deals deals and --events
events (bench_scale's replication), loaded once with `kpitree ingest` into a DuckDB workspace,
then copied out: Parquet files (read by DuckDB in place and by Spark local[2]) and a throwaway
PostgreSQL server's schema (tests/engine_fixtures.postgres_server). For each engine, cold (new
Engine, empty caches):

- evaluate   `evaluate_tree` of the demo's tree (data/demo/tree.yaml: revops with planned targets)
             for the latest complete month;
- explain    the root's explanation as the panel computes it (`causes=False`).

Figures: wall seconds, this process's CPU seconds (Postgres and Spark work in other processes, so
for them wall time is the figure), statements sent, and each engine's ratio to DuckDB over
Parquet. All in one process, one engine after another, under `nice`:

    nice -n 10 .venv/bin/python benchmarks/bench_engines.py                       # 1M deals, 5M events
    nice -n 10 .venv/bin/python benchmarks/bench_engines.py --deals 10M --events 50M
    nice -n 10 .venv/bin/python benchmarks/bench_engines.py --engines duckdb,parquet,postgres

Writes the figures as JSON (--json).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

ENGINES = ("duckdb", "parquet", "postgres", "spark")
TREE = ROOT / "data" / "demo" / "tree.yaml"


def size_of(text: str) -> int:
    text = text.strip().upper()
    mult = {"K": 1_000, "M": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("KM")) * mult)


def prepare(work: Path, deals: int, events: int) -> Path:
    """A DuckDB workspace holding the grown demo (its folder)."""
    from bench_scale import TABLE_ORDER, write_base, write_size

    from kpitree.ingest import ingest
    from kpitree.workspace import Workspace

    base, files = work / "base", work / "files"
    write_base(base)
    write_size(base, files, deals, events)
    ws = Workspace(work / "ws", create=True)
    ingest(ws, [files / f"{t}.csv" for t in TABLE_ORDER])
    shutil.rmtree(files)
    return ws.root


def measure(ws: Any, period: str) -> dict:
    """Cold evaluate and root explanation on one workspace."""
    from kpitree import cache
    from kpitree.evaluate import Engine, evaluate_tree
    from kpitree.explain import explain_node
    from kpitree.tree import load_tree

    cache.clear_all()
    tree = load_tree(TREE)
    remote = ws.remote
    before = remote.stats.statements if remote is not None else 0
    out: dict[str, Any] = {}
    t0, c0 = time.perf_counter(), time.process_time()
    engine = Engine(ws)
    out["open"] = {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}
    t0, c0 = time.perf_counter(), time.process_time()
    result = evaluate_tree(engine, tree, period)
    out["evaluate"] = {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}
    t0, c0 = time.perf_counter(), time.process_time()
    why = explain_node(engine, tree, tree.root.id, period, causes=False, evaluation=result)
    out["explain"] = {"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0}
    out["statements"] = (remote.stats.statements - before) if remote is not None else None
    out["root"] = {"value": result.node(tree.root.id).value, "status": result.node(tree.root.id).status,
                   "red_path": [s["id"] for s in why.to_dict()["red_path"]]}
    return out


def remote_ws(root: Path, engine: dict) -> Any:
    from kpitree.workspace import Workspace

    ws = Workspace(root, create=True)
    (ws.root / "workspace.json").write_text(json.dumps({"engine": engine, "query_timeout": 3600}), encoding="utf-8")
    return ws


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deals", default="1M")
    parser.add_argument("--events", default="5M")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--work", default=None, help="folder for the data (default: a temporary one, deleted)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    wanted = [e for e in args.engines.split(",") if e]
    deals, events = size_of(args.deals), size_of(args.events)

    from engine_fixtures import postgres_server

    from kpitree.engines import EngineSettings, forget
    from kpitree.engines.load import to_parquet, to_postgres
    from kpitree.evaluate import Engine, default_period
    from kpitree.workspace import Workspace

    work = Path(args.work or tempfile.mkdtemp(prefix="kpitree-bench-engines-"))
    results: dict[str, Any] = {"deals": deals, "events": events, "engines": {}}
    try:
        t0 = time.perf_counter()
        ws_root = work / "ws" if (work / "ws" / "kpitree.duckdb").exists() else prepare(work, deals, events)
        results["prepare_seconds"] = time.perf_counter() - t0
        local = Workspace(ws_root)
        period = default_period(Engine(local)).key
        results["period"] = period
        db = local.db_path
        if "duckdb" in wanted:
            results["engines"]["duckdb"] = measure(local, period)
            print("duckdb", json.dumps(results["engines"]["duckdb"]), flush=True)
        paths = {t: str(p) for t, p in to_parquet(db, work / "parquet").items()}
        if "parquet" in wanted:
            raw = {"kind": "parquet", "paths": paths}
            results["engines"]["parquet"] = measure(remote_ws(work / "pq-ws", raw), period)
            forget(EngineSettings.from_raw(raw))
            print("parquet", json.dumps(results["engines"]["parquet"]), flush=True)
        if "postgres" in wanted:
            with postgres_server() as dsn:
                t0 = time.perf_counter()
                to_postgres(db, dsn, "bench")
                results["postgres_load_seconds"] = time.perf_counter() - t0
                os.environ["KPITREE_BENCH_PG"] = dsn
                raw = {"kind": "postgres", "dsn_env": "KPITREE_BENCH_PG", "schema": "bench"}
                results["engines"]["postgres"] = measure(remote_ws(work / "pg-ws", raw), period)
                forget(EngineSettings.from_raw(raw))
            print("postgres", json.dumps(results["engines"]["postgres"]), flush=True)
        if "spark" in wanted:
            raw = {"kind": "spark", "master": "local[2]", "paths": paths}
            ws = remote_ws(work / "spark-ws", raw)
            t0 = time.perf_counter()
            ws.remote.session()
            results["spark_start_seconds"] = time.perf_counter() - t0
            results["engines"]["spark"] = measure(ws, period)
            forget(EngineSettings.from_raw(raw))
            print("spark", json.dumps(results["engines"]["spark"]), flush=True)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    base = results["engines"].get("parquet") or results["engines"].get("duckdb")
    print(f"\n{deals:,} deals, {events:,} events, period {results.get('period')}; wall seconds (ratio to "
          "DuckDB over Parquet), this process's CPU seconds")
    print(f"{'engine':<10}{'open':>16}{'evaluate':>20}{'explain':>20}{'statements':>12}")
    for name, r in results["engines"].items():
        cells = []
        for step in ("open", "evaluate", "explain"):
            ratio = r[step]["wall"] / base[step]["wall"] if base and base[step]["wall"] else float("nan")
            cells.append(f"{r[step]['wall']:8.2f} ({ratio:5.1f}x)")
        print(f"{name:<10}{cells[0]:>16}{cells[1]:>20}{cells[2]:>20}{str(r['statements'] or '-'):>12}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
