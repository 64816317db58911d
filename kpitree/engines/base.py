"""What every remote engine offers a workspace, and the cursor that makes it look like DuckDB's.

The rest of the app reads a workspace through `Workspace.connect()`: a cursor with `execute`,
`fetchall`, `fetchone`, `df`, `fetchnumpy` and `description`. A remote engine's cursor keeps that
contract, so `metrics`, `evaluate`, `explain` and the usage charts run unchanged:

- a statement is translated from DuckDB's dialect (`transpile.translate`) and run by the engine,
  which does the scans and aggregations; what comes back is the per-period, per-segment result;
- that result is handed to an in-memory DuckDB as an Arrow table and read back from there, so
  every caller gets exactly the Python and pandas types a local workspace gives (dates as
  datetime64 in frames, Decimals as floats, NULL counts as NaN);
- questions about the catalogue (`information_schema.tables/columns`) are answered from the
  engine's own catalogue, mapped to DuckDB's type names, in that same in-memory DuckDB.

Engine failures become a `QueryError` in words (never a driver traceback); a statement past the
workspace's time limit becomes the workspace's `QueryTimeout`.
"""

from __future__ import annotations

import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from ..errors import KpiTreeError
from ..schema import TABLES

_CATALOGUE_RE = re.compile(r"\binformation_schema\s*\.\s*(tables|columns)\b", re.IGNORECASE)


class EngineUnavailable(KpiTreeError):
    """The engine cannot be reached or is not set up (what to fix is in the message)."""


@dataclass
class Stats:
    """What a remote engine answered in this process: statements and seconds (wall) they took."""

    statements: int = 0
    seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, seconds: float) -> None:
        with self.lock:
            self.statements += 1
            self.seconds += seconds


class Remote(ABC):
    """One configured engine (a Postgres database and schema, a Spark session and its tables)."""

    kind: str = ""
    dialect: str = ""

    def __init__(self) -> None:
        self.stats = Stats()

    @property
    @abstractmethod
    def label(self) -> str:
        """Which engine this is, in words, without any secret (shown on pages and by the CLI)."""

    @abstractmethod
    def catalogue(self) -> dict[str, list[tuple[str, str]]]:
        """Canonical table → its (column, DuckDB type name) in order; tables the engine lacks left out."""

    @abstractmethod
    def run(self, sql: str, timeout: float) -> pa.Table:
        """Runs one statement in the engine's dialect; the whole (small) result as Arrow."""

    def check(self) -> str:
        """A one-line description of what the engine holds; an EngineUnavailable saying what is wrong."""
        found = self.catalogue()
        if not found:
            raise EngineUnavailable(f"{self.label} answered, but holds none of the canonical tables "
                                    f"({', '.join(TABLES)}): check the schema or the paths")
        return f"{self.label}: tables {', '.join(found)}"

    def data_version(self) -> str:
        """Row count and latest date of every canonical table, as one key: results cached under an
        older key are not reused after the data changed (the engine has no file time to read)."""
        found = self.catalogue()
        parts = []
        for name, cols in found.items():
            date = TABLES[name].date_column
            names = {c for c, _ in cols}
            latest = f'CAST(max("{date}") AS VARCHAR)' if date in names else "NULL"
            parts.append(f"SELECT '{name}' AS t, count(*) AS n, {latest} AS d FROM \"{name}\"")
        if not parts:
            return f"{self.kind}:empty"
        with self.cursor(60.0) as cur:
            rows = cur.execute(" UNION ALL ".join(parts) + " ORDER BY t").fetchall()
        body = ";".join(f"{t}={n}@{d}" for t, n, d in rows)
        return f"{self.kind}:{self.label}:{body}"

    @contextmanager
    def cursor(self, timeout: float) -> Iterator[RemoteCursor]:
        cur = RemoteCursor(self, timeout)
        try:
            yield cur
        finally:
            cur.close()

    def close(self) -> None:
        """Lets go of connections or sessions (at exit, or when the settings change)."""
        return None


def _catalogue_tables(catalogue: dict[str, list[tuple[str, str]]]) -> tuple[pa.Table, pa.Table]:
    tables = pa.table({"table_catalog": ["remote"] * len(catalogue), "table_schema": ["main"] * len(catalogue),
                       "table_name": list(catalogue), "table_type": ["BASE TABLE"] * len(catalogue)})
    rows = [(t, c, ty, i + 1) for t, cols in catalogue.items() for i, (c, ty) in enumerate(cols)]
    columns = pa.table({
        "table_catalog": ["remote"] * len(rows), "table_schema": ["main"] * len(rows),
        "table_name": [r[0] for r in rows], "column_name": [r[1] for r in rows],
        "data_type": [r[2] for r in rows], "ordinal_position": pa.array([r[3] for r in rows], pa.int64()),
    })
    return tables, columns


class RemoteCursor:
    """A DuckDB-like cursor over a remote engine (see the module docstring)."""

    def __init__(self, remote: Remote, timeout: float) -> None:
        self._remote = remote
        self._timeout = timeout
        self._local = duckdb.connect(config={"enable_external_access": False})
        self._result = self._local.cursor()

    def execute(self, query: str, parameters: Any = None) -> RemoteCursor:
        from .transpile import translate

        self._result.close()  # a new statement replaces the previous result, as on DuckDB
        self._result = self._local.cursor()
        if _CATALOGUE_RE.search(query):
            tables, columns = _catalogue_tables(self._remote.catalogue())
            self._result.register("_remote_tables", tables)
            self._result.register("_remote_columns", columns)
            local = _CATALOGUE_RE.sub(lambda m: f"_remote_{m.group(1).lower()}", query)
            self._result.execute(local, parameters) if parameters else self._result.execute(local)
            return self
        started = time.perf_counter()
        if self._remote.dialect == "duckdb":  # DuckDB over Parquet: the SQL as generated
            result = self._remote.run(query, self._timeout, parameters)  # type: ignore[call-arg]
        else:
            result = self._remote.run(translate(query, parameters, self._remote.dialect), self._timeout)
        self._remote.stats.add(time.perf_counter() - started)
        self._result.register("_remote_result", result)
        self._result.execute("SELECT * FROM _remote_result")
        return self

    def fetchall(self) -> list[tuple]:
        return self._result.fetchall()

    def fetchone(self) -> tuple | None:
        return self._result.fetchone()

    def df(self) -> Any:
        return self._result.df()

    fetchdf = df

    def fetchnumpy(self) -> Any:
        return self._result.fetchnumpy()

    @property
    def description(self) -> Any:
        return self._result.description

    def close(self) -> None:
        self._result.close()
        self._local.close()

    def __enter__(self) -> RemoteCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def arrow_from_rows(names: list[str], types: list[pa.DataType | None], rows: list[tuple]) -> pa.Table:
    """Rows from a driver as an Arrow table of the given column types (None: let Arrow infer)."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    arrays = []
    for values, kind in zip(columns, types, strict=True):
        if kind is not None and pa.types.is_floating(kind):
            values = [None if v is None else float(v) for v in values]
        arrays.append(pa.array(list(values), type=kind))
    return pa.Table.from_arrays(arrays, names=_unique(names))


def _unique(names: list[str]) -> list[str]:
    """Column names made unique (`SELECT count(*), count(*)` has two of one name; DuckDB renames too)."""
    seen: dict[str, int] = {}
    out = []
    for n in names:
        if n in seen:
            seen[n] += 1
            out.append(f"{n}_{seen[n]}")
        else:
            seen[n] = 0
            out.append(n)
    return out
