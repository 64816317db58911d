"""Copies a DuckDB workspace's canonical tables to where a remote engine reads them.

For the equality tests, the benchmark and a team's first move off a laptop: the tables a CSV
upload produced, written to a Postgres schema (`to_postgres`, streamed with COPY) or to one
Parquet file per table (`to_parquet`, which Spark and DuckDB read). The workspace is only read.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import duckdb

from ..schema import TABLES
from .postgres import IDENT

PG_TYPES = {"VARCHAR": "text", "DATE": "date", "TIMESTAMP": "timestamp", "TIMESTAMP WITH TIME ZONE": "timestamptz",
            "DOUBLE": "double precision", "FLOAT": "real", "BIGINT": "bigint", "INTEGER": "integer",
            "SMALLINT": "smallint", "BOOLEAN": "boolean", "HUGEINT": "numeric"}


def _open(db_file: str | Path) -> duckdb.DuckDBPyConnection:
    """The workspace file, read only, with file access (to write the copies): the app's own read-only
    instance of it (no file access) lingers a second after its last reader, and DuckDB refuses a
    second configuration of one file meanwhile, so this waits for it a little."""
    deadline = time.monotonic() + 10.0
    while True:
        try:
            return duckdb.connect(str(db_file), read_only=True)
        except duckdb.ConnectionException:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _tables(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple[str, str]]]:
    rows = con.execute("SELECT table_name, column_name, data_type FROM information_schema.columns "
                       "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position").fetchall()
    out: dict[str, list[tuple[str, str]]] = {}
    for t, c, ty in rows:
        if t in TABLES:
            out.setdefault(t, []).append((c, ty))
    return out


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def to_postgres(db_file: str | Path, dsn: str, schema: str) -> dict[str, int]:
    """Replaces `schema` in the Postgres database with the workspace file's canonical tables; rows per table."""
    import psycopg

    if not IDENT.fullmatch(schema):
        raise ValueError(f"not a plain schema name: {schema!r}")
    src = _open(db_file)
    counts: dict[str, int] = {}
    try:
        with psycopg.connect(dsn, autocommit=True) as pg, tempfile.TemporaryDirectory() as tmp:
            pg.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
            pg.execute(f"CREATE SCHEMA {schema}")
            for table, cols in _tables(src).items():
                body = ", ".join(f"{_q(c)} {PG_TYPES.get(ty, 'text')}" for c, ty in cols)
                pg.execute(f"CREATE TABLE {schema}.{_q(table)} ({body})")
                path = Path(tmp) / f"{table}.csv"
                src.execute(f"COPY {_q(table)} TO '{path}' (FORMAT csv, HEADER false)")
                with pg.cursor() as cur, cur.copy(f"COPY {schema}.{_q(table)} FROM STDIN (FORMAT csv)") as copy, \
                        open(path, "rb") as f:
                    while chunk := f.read(1 << 20):
                        copy.write(chunk)
                pg.execute(f"ANALYZE {schema}.{_q(table)}")
                counts[table] = src.execute(f"SELECT count(*) FROM {_q(table)}").fetchone()[0]
    finally:
        src.close()
    return counts


def to_parquet(db_file: str | Path, folder: str | Path) -> dict[str, Path]:
    """One Parquet file per canonical table of the workspace file under `folder`; table → path."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    src = _open(db_file)
    paths = {}
    try:
        for table in _tables(src):
            path = out / f"{table}.parquet"
            src.execute(f"COPY {_q(table)} TO '{path}' (FORMAT parquet)")
            paths[table] = path
    finally:
        src.close()
    return paths
