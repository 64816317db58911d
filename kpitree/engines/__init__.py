"""Where a workspace's data lives and which engine computes on it.

A workspace reads its own DuckDB file unless its settings (`workspace.json`) name an engine:

    "engine": {"kind": "parquet", "paths": {"deals": "/data/deals/", "subscriptions": "/data/subs.parquet"}}
    "engine": {"kind": "postgres", "dsn_env": "KPITREE_PG_DSN", "schema": "analytics"}
    "engine": {"kind": "spark", "master": "local[*]", "database": "sales"}
    "engine": {"kind": "spark", "master": "sc://spark.internal:15002", "paths": {"deals": "s3a://…/deals"}}

Only names are stored: an environment variable's name for Postgres' connection string (never the
string), a master URL for Spark. The metric SQL is the same on every engine (`metrics.py`
generates it in DuckDB's dialect); `transpile` writes it for the engine, which does the scans
and aggregations, and only per-period, per-segment rows come back (`base.RemoteCursor`).
"""

from __future__ import annotations

import atexit
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from ..errors import KpiTreeError
from ..schema import TABLES
from .base import EngineUnavailable, Remote

KINDS = ("duckdb", "parquet", "postgres", "spark")
_ENV_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_MASTER_RE = re.compile(r"(local(\[(\*|[1-9][0-9]{0,3})\])?|(spark|sc|yarn|k8s)(://\S+)?)")


@dataclass(frozen=True)
class EngineSettings:
    """The `engine` entry of workspace.json, checked (`from_raw`)."""

    kind: str = "duckdb"
    dsn_env: str = ""  # postgres: the environment variable holding the connection string
    schema: str = ""  # postgres: the schema of the canonical tables or views (default public)
    master: str = ""  # spark: local[*], local[2], spark://host:7077, yarn, sc://host:15002 (Spark Connect)
    database: str = ""  # spark: the database of the canonical tables
    paths: tuple[tuple[str, str], ...] = field(default_factory=tuple)  # parquet, spark: table → files

    @property
    def remote(self) -> bool:
        return self.kind != "duckdb"

    @classmethod
    def from_raw(cls, raw: Any, where: str = "workspace.json") -> EngineSettings:
        """The settings, or a KpiTreeError naming `where` and what to write instead."""
        if raw is None:
            return cls()
        if isinstance(raw, str):
            raw = {"kind": raw}
        if not isinstance(raw, dict):
            raise KpiTreeError(f"{where}: \"engine\" must be an object such as "
                               "{\"kind\": \"postgres\", \"dsn_env\": \"KPITREE_PG_DSN\", \"schema\": \"public\"}")
        unknown = sorted(set(raw) - {"kind", "dsn_env", "schema", "master", "database", "paths"})
        if unknown:
            raise KpiTreeError(f"{where}: \"engine\" has unknown keys {', '.join(map(repr, unknown))}; "
                               "it may hold kind, dsn_env, schema, master, database and paths")
        kind = raw.get("kind", "duckdb")
        if kind not in KINDS:
            raise KpiTreeError(f"{where}: engine \"kind\" must be one of {', '.join(KINDS)}, not {kind!r}")

        def text(key: str, pattern: re.Pattern[str], what: str) -> str:
            value = raw.get(key) or ""
            if not isinstance(value, str) or (value and not pattern.fullmatch(value)):
                if key == "dsn_env":  # never echoed: a connection string pasted here holds a password
                    raise KpiTreeError(f"{where}: engine \"dsn_env\" must be {what}; put the connection string "
                                       "itself in that environment variable, where the app runs")
                raise KpiTreeError(f"{where}: engine \"{key}\" must be {what}, not {value!r}")
            return value

        dsn_env = text("dsn_env", _ENV_RE, "the name of an environment variable, e.g. KPITREE_PG_DSN")
        schema = text("schema", _NAME_RE, "a schema name (letters, digits, _)")
        given = raw.get("master")
        if isinstance(given, str) and ("token=" in given.lower() or "@" in given):  # checked first: never echoed
            raise KpiTreeError(f"{where}: engine \"master\" must not hold a credential (a token or user:password); "
                               "give it to Spark Connect through the environment where the app runs instead")
        master = text("master", _MASTER_RE, "local[*], local[2], spark://host:7077, yarn or sc://host:15002")
        database = text("database", _NAME_RE, "a database name (letters, digits, _)")
        paths_raw = raw.get("paths") or {}
        if not isinstance(paths_raw, dict) or not all(isinstance(v, str) and v.strip() for v in paths_raw.values()):
            raise KpiTreeError(f"{where}: engine \"paths\" must map table names to Parquet or Delta paths")
        bad = sorted(set(paths_raw) - set(TABLES))
        if bad:
            raise KpiTreeError(f"{where}: engine \"paths\" names unknown tables {', '.join(map(repr, bad))}; "
                               f"the tables are {', '.join(TABLES)}")
        if kind == "postgres" and not dsn_env:
            raise KpiTreeError(f"{where}: a postgres engine needs \"dsn_env\", the name of the environment variable "
                               "holding its connection string (the string itself is never stored)")
        if any(ch in v for v in paths_raw.values() for ch in "`'\n\r"):
            raise KpiTreeError(f"{where}: engine \"paths\" must be plain paths")
        if kind == "parquet" and not paths_raw:
            raise KpiTreeError(f"{where}: a parquet engine needs \"paths\": each table's Parquet file or folder")
        return cls(kind=kind, dsn_env=dsn_env, schema=schema, master=master, database=database,
                   paths=tuple(sorted((k, v.strip()) for k, v in paths_raw.items())))

    def to_raw(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        for key in ("dsn_env", "schema", "master", "database"):
            if getattr(self, key):
                out[key] = getattr(self, key)
        if self.paths:
            out["paths"] = dict(self.paths)
        return out


_remotes: dict[EngineSettings, Remote] = {}
_guard = threading.Lock()


def remote_for(settings: EngineSettings) -> Remote:
    """The engine these settings name, one per distinct settings in this process (a Spark session
    and a Postgres pool are shared by every workspace and session that use them)."""
    if not settings.remote:
        raise KpiTreeError("a DuckDB workspace has no remote engine")
    with _guard:
        found = _remotes.get(settings)
        if found is None:
            if settings.kind == "parquet":
                from .parquet import ParquetRemote

                found = ParquetRemote(dict(settings.paths))
            elif settings.kind == "postgres":
                from .postgres import PostgresRemote

                found = PostgresRemote(settings.dsn_env, settings.schema or "public")
            else:
                from .spark import SparkRemote

                found = SparkRemote(settings.master or "local[*]", settings.database, dict(settings.paths))
            _remotes[settings] = found
        return found


def forget(settings: EngineSettings) -> None:
    """Closes and drops the engine of these settings (the Workspaces page, after a change)."""
    with _guard:
        found = _remotes.pop(settings, None)
    if found is not None:
        found.close()


@atexit.register
def _close_all() -> None:
    with _guard:
        found = list(_remotes.values())
        _remotes.clear()
    for remote in found:
        try:
            remote.close()
        except Exception:  # at exit: nothing left to tell
            pass


__all__ = ["KINDS", "EngineSettings", "EngineUnavailable", "Remote", "forget", "remote_for"]
