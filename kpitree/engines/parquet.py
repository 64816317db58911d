"""DuckDB over Parquet files: the step between a workspace's own DuckDB file and a cluster.

A team whose tables are already exported as Parquet (one file, a folder or a glob per table)
points the workspace at them and DuckDB reads them in place: nothing is loaded or copied. The
instance is in memory, one per settings; each table is a view over its files, created while
file access is on and then closed to everything but the folders of those files
(`allowed_directories`), with the configuration locked, so SQL from a tree file still reads
nothing else. No translation is needed: the catalogue's SQL is DuckDB's own.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from ..errors import QueryError
from ..schema import TABLES
from .base import EngineUnavailable, Remote


def _files(path: str) -> tuple[str, str]:
    """What read_parquet reads for a configured path, and the folder it lives in."""
    p = Path(path).expanduser()
    if p.is_dir():
        return str(p / "**" / "*.parquet"), str(p.resolve())
    if any(ch in path for ch in "*?["):
        return str(p), str(Path(str(p).split("*")[0].split("?")[0].split("[")[0]).parent.resolve())
    if not p.exists():
        raise EngineUnavailable(f"no Parquet file or folder at {path}: check the path")
    return str(p.resolve()), str(p.resolve().parent)


class ParquetRemote(Remote):
    kind = "parquet"
    dialect = "duckdb"

    def __init__(self, paths: dict[str, str], threads: int = 0) -> None:
        super().__init__()
        self.paths = dict(paths)
        self.threads = threads
        self._db: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()
        self._catalogue: dict[str, list[tuple[str, str]]] | None = None

    @property
    def label(self) -> str:
        return f"DuckDB over Parquet ({len(self.paths)} table path(s))"

    def _open(self) -> duckdb.DuckDBPyConnection:
        with self._lock:
            if self._db is not None:
                return self._db
            from ..workspace import DB_MEMORY_LIMIT, DB_THREADS

            con = duckdb.connect(config={"threads": self.threads or DB_THREADS,
                                         "memory_limit": f"{DB_MEMORY_LIMIT // (1 << 20)}MiB"})
            try:
                files = {t: _files(p) for t, p in self.paths.items() if t in TABLES}
                folders = sorted({folder + "/" for _, folder in files.values()})
                con.execute("SET allowed_directories = " + "[" + ", ".join(
                    "'" + f.replace("'", "''") + "'" for f in folders) + "]")
                for table, (pattern, _) in files.items():
                    con.execute(f'CREATE VIEW "{table}" AS SELECT * FROM read_parquet('
                                f"'{pattern.replace(chr(39), chr(39) * 2)}')")
                con.execute("SET enable_external_access = false")
                con.execute("SET lock_configuration = true")
            except duckdb.Error as exc:
                con.close()
                raise EngineUnavailable(f"DuckDB cannot read the Parquet files: {str(exc).splitlines()[0]}") from None
            self._db = con
            return con

    def catalogue(self) -> dict[str, list[tuple[str, str]]]:
        if self._catalogue is None:
            con = self._open().cursor()
            try:
                rows = con.execute("SELECT table_name, column_name, data_type FROM information_schema.columns "
                                   "ORDER BY table_name, ordinal_position").fetchall()
            finally:
                con.close()
            found: dict[str, list[tuple[str, str]]] = {}
            for t, c, ty in rows:
                if t in TABLES:
                    found.setdefault(t, []).append((c, ty))
            self._catalogue = {t: found[t] for t in TABLES if t in found}
        return self._catalogue

    def run(self, sql: str, timeout: float, params: Any = None) -> pa.Table:
        con = self._open().cursor()
        fired = threading.Event()

        def stop() -> None:
            fired.set()
            con.interrupt()

        timer = threading.Timer(timeout, stop)
        timer.start()
        try:
            return con.sql(sql, params=list(params) if params else None).to_arrow_table()
        except duckdb.Error as exc:
            if fired.is_set():
                from ..workspace import QueryTimeout

                raise QueryTimeout.stopped(self.label, timeout) from None
            raise QueryError(f"DuckDB refused a query over the Parquet files: {str(exc).splitlines()[0]}") from None
        finally:
            timer.cancel()
            con.close()

    def close(self) -> None:
        with self._lock:
            db, self._db = self._db, None
        if db is not None:
            db.close()


__all__ = ["ParquetRemote"]
