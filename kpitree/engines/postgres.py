"""PostgreSQL as a workspace's engine: canonical tables (or views) of one schema, read only.

The connection string is read from an environment variable whose *name* the workspace stores
(`dsn_env`), so no credential is ever written to the workspace. Every session is read only
(`default_transaction_read_only`), its search path is the configured schema (the generated SQL
names tables unqualified, as on DuckDB), and every statement has the workspace's time limit
(`statement_timeout`). Two planner settings suit the generated SQL: no nested-loop joins (the
planner cannot estimate the rows of the generated CTEs, and a journey metric's nested loops ran
past 30 s on the demo where a hash join takes 0.6 s; a join that has no other way still gets
one) and no JIT (it compiles for 100+ ms per statement, longer than the demo's queries run).
Connections are kept in a small pool: opening one costs a round trip and
authentication, and a click runs a few statements.
"""

from __future__ import annotations

import os
import re
import threading
import time
from typing import Any

import pyarrow as pa

from ..errors import QueryError
from ..schema import TABLES
from .base import EngineUnavailable, Remote, arrow_from_rows

_POOL_SIZE = 4
_CATALOGUE_TTL = 10.0  # seconds a read of the schema's tables is reused

_TYPES = {  # information_schema.columns.data_type → DuckDB's name
    "text": "VARCHAR", "character varying": "VARCHAR", "character": "VARCHAR", "date": "DATE",
    "timestamp without time zone": "TIMESTAMP", "timestamp with time zone": "TIMESTAMP WITH TIME ZONE",
    "double precision": "DOUBLE", "real": "FLOAT", "numeric": "DOUBLE", "bigint": "BIGINT", "integer": "INTEGER",
    "smallint": "SMALLINT", "boolean": "BOOLEAN",
}
_ARROW = {  # result column type OID → Arrow type (None: inferred from the values)
    16: pa.bool_(), 20: pa.int64(), 21: pa.int64(), 23: pa.int64(), 700: pa.float64(), 701: pa.float64(),
    1700: pa.float64(), 25: pa.string(), 1043: pa.string(), 1042: pa.string(), 1082: pa.date32(),
    1114: pa.timestamp("us"), 1184: pa.timestamp("us", tz="UTC"), 1009: pa.list_(pa.string()),
    1015: pa.list_(pa.string()),
}
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


class PostgresRemote(Remote):
    kind = "postgres"
    dialect = "postgres"

    def __init__(self, dsn_env: str, schema: str = "public") -> None:
        super().__init__()
        if not IDENT.fullmatch(schema or ""):
            raise EngineUnavailable(f"the Postgres schema {schema!r} is not a plain name (letters, digits, _)")
        self.dsn_env, self.schema = dsn_env, schema
        self._pool: list[Any] = []
        self._lock = threading.Lock()
        self._catalogue: tuple[float, dict[str, list[tuple[str, str]]]] | None = None

    @property
    def label(self) -> str:
        return f"PostgreSQL (schema {self.schema}, connection from ${self.dsn_env})"

    # --- connections -----------------------------------------------------------------------

    def _dsn(self) -> str:
        dsn = os.environ.get(self.dsn_env, "").strip()
        if not dsn:
            raise EngineUnavailable(f"the environment variable {self.dsn_env} is not set: set it to the database's "
                                    "connection string (e.g. postgresql://user@host:5432/dbname) where the app runs")
        return dsn

    def _scrub(self, text: str) -> str:
        """A driver message with any password of the connection string blanked out."""
        try:
            from psycopg.conninfo import conninfo_to_dict

            secret = str(conninfo_to_dict(os.environ.get(self.dsn_env, "")).get("password") or "")
        except Exception:  # an unparsable string: nothing known to hide but the string itself
            secret = os.environ.get(self.dsn_env, "")
        line = (text.strip().splitlines() or ["(no message)"])[0]
        return line.replace(secret, "***") if secret else line

    def _connect(self) -> Any:
        try:
            import psycopg
        except ImportError:
            raise EngineUnavailable("PostgreSQL support needs the psycopg package: "
                                    "pip install 'psycopg[binary]'") from None
        dsn = self._dsn()
        try:
            con = psycopg.connect(dsn, autocommit=True, connect_timeout=10,
                                  options=f"-c default_transaction_read_only=on -c search_path={self.schema} "
                                          "-c enable_nestloop=off -c jit=off")
        except psycopg.Error as exc:
            raise EngineUnavailable(f"cannot connect to PostgreSQL (connection string from ${self.dsn_env}): "
                                    f"{self._scrub(str(exc))}") from None
        except Exception as exc:  # a malformed connection string
            raise EngineUnavailable(f"the connection string in ${self.dsn_env} cannot be used: "
                                    f"{self._scrub(str(exc))}") from None
        con.kpitree_timeout = None
        return con

    def _take(self) -> Any:
        with self._lock:
            if self._pool:
                return self._pool.pop()
        return self._connect()

    def _give(self, con: Any) -> None:
        with self._lock:
            if len(self._pool) < _POOL_SIZE and not con.closed:
                self._pool.append(con)
                return
        con.close()

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, []
        for con in pool:
            con.close()

    # --- statements --------------------------------------------------------------------------

    def _fetch(self, sql: str, params: tuple = (), timeout: float = 60.0) -> tuple[list, list]:
        import psycopg

        con = self._take()
        ok = False
        try:
            if con.kpitree_timeout != timeout:
                con.execute(f"SET statement_timeout = {max(1, int(timeout * 1000))}")
                con.kpitree_timeout = timeout
            cur = con.execute(sql, params or None, prepare=False)
            rows = cur.fetchall() if cur.description else []
            ok = True
            return list(cur.description or []), rows
        except psycopg.errors.QueryCanceled:
            from ..workspace import QueryTimeout

            ok = True
            raise QueryTimeout.stopped(self.label, timeout) from None
        except psycopg.OperationalError as exc:
            raise EngineUnavailable(f"PostgreSQL stopped answering: {self._scrub(str(exc))}") from None
        except psycopg.Error as exc:
            ok = not con.closed
            raise QueryError(f"PostgreSQL refused a query: {self._scrub(str(exc))}") from None
        finally:
            if ok:
                self._give(con)
            else:
                con.close()

    def run(self, sql: str, timeout: float) -> pa.Table:
        desc, rows = self._fetch(sql, timeout=timeout)
        return arrow_from_rows([d.name for d in desc], [_ARROW.get(d.type_code) for d in desc], rows)

    def catalogue(self) -> dict[str, list[tuple[str, str]]]:
        cached = self._catalogue
        if cached is not None and time.monotonic() - cached[0] < _CATALOGUE_TTL:
            return cached[1]
        _, rows = self._fetch("SELECT table_name, column_name, data_type FROM information_schema.columns "
                              "WHERE table_schema = %s ORDER BY table_name, ordinal_position", (self.schema,))
        found: dict[str, list[tuple[str, str]]] = {}
        for table, column, kind in rows:
            if table in TABLES:
                found.setdefault(table, []).append((column, _TYPES.get(kind, "VARCHAR")))
        ordered = {t: found[t] for t in TABLES if t in found}
        self._catalogue = (time.monotonic(), ordered)
        return ordered
