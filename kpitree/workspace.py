"""A workspace: one directory, one DuckDB file, settings, trees; nothing crosses between two.

Every connection to the workspace database is opened with external access disabled and the
configuration locked, so SQL built from a tree file can read the canonical tables and nothing
else: no files, no network, no extensions. Connections are short-lived, so a command-line load
and the app can take turns on the same file.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from .errors import KpiTreeError
from .schema import TABLES

DB_FILE = "kpitree.duckdb"
SETTINGS_FILE = "workspace.json"
META_TABLE = "_kpitree_loads"
_LOCK_WAIT_SECONDS = 15.0
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")
# One lock per database file within this process: DuckDB allows one writer instance per file.
_file_locks: dict[Path, threading.RLock] = {}
_file_locks_guard = threading.Lock()


def _lock_for(path: Path) -> threading.RLock:
    with _file_locks_guard:
        return _file_locks.setdefault(path, threading.RLock())


@dataclass
class Settings:
    """Per-workspace parameters of metric definitions (PRODUCT.md: 'set per workspace')."""

    gross_margin: float = 0.8
    amber_threshold: float = 0.05
    as_of: str | None = None  # ISO date overriding the data's own latest date
    extra: dict[str, Any] = field(default_factory=dict)


class Workspace:
    """A directory holding one DuckDB file plus the workspace's settings and trees."""

    def __init__(self, root: str | Path, *, create: bool = False) -> None:
        self.root = Path(root).expanduser().resolve()
        if create:
            self.root.mkdir(parents=True, exist_ok=True)
        elif not self.root.is_dir():
            raise KpiTreeError(f"workspace {str(root)!r} does not exist (create it by loading data into it)")

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def db_path(self) -> Path:
        return self.root / DB_FILE

    @property
    def trees_dir(self) -> Path:
        return self.root / "trees"

    @contextmanager
    def connect(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A sandboxed connection: external access off, configuration locked, closed on exit."""
        lock = _lock_for(self.db_path)
        with lock:
            con = self._open()
            try:
                yield con
            finally:
                con.close()

    def _open(self) -> duckdb.DuckDBPyConnection:
        deadline = time.monotonic() + _LOCK_WAIT_SECONDS
        while True:
            try:
                con = duckdb.connect(
                    str(self.db_path),
                    config={"enable_external_access": False, "lock_configuration": True, "threads": 2},
                )
                break
            except duckdb.IOException as exc:
                # Another process (a CLI load, the app) holds the file: wait for it briefly.
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise KpiTreeError(f"workspace {self.name!r} is busy: {exc}") from None
                time.sleep(0.1)
        return con

    def tables(self) -> list[str]:
        """Canonical tables that hold data in this workspace."""
        if not self.db_path.exists():
            return []
        with self.connect() as con:
            rows = con.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            ).fetchall()
        present = {r[0] for r in rows}
        return [t for t in TABLES if t in present]

    def columns(self) -> dict[str, list[str]]:
        """Column names per loaded table, canonical and extra."""
        if not self.db_path.exists():
            return {}
        with self.connect() as con:
            rows = con.execute(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = 'main' ORDER BY table_name, ordinal_position"
            ).fetchall()
        out: dict[str, list[str]] = {}
        for t, c in rows:
            if t in TABLES:
                out.setdefault(t, []).append(c)
        return out

    def settings(self) -> Settings:
        path = self.root / SETTINGS_FILE
        if not path.exists():
            return Settings()
        raw = json.loads(path.read_text(encoding="utf-8"))
        known = {k: raw.pop(k) for k in list(raw) if k in Settings.__dataclass_fields__ and k != "extra"}
        return Settings(**known, extra=raw)

    def save_settings(self, settings: Settings) -> None:
        data = {k: v for k, v in settings.__dict__.items() if k != "extra"}
        data.update(settings.extra)
        _atomic_write(self.root / SETTINGS_FILE, json.dumps(data, indent=2))

    def data_version(self) -> str:
        """Changes whenever data is loaded: a cache key for computed results."""
        try:
            st = self.db_path.stat()
        except FileNotFoundError:
            return "empty"
        return f"{st.st_mtime_ns}-{st.st_size}"

    def as_of(self) -> date | None:
        """The last day the data covers: the settings' override, else the data's latest date."""
        override = self.settings().as_of
        if override:
            return date.fromisoformat(override)
        tables = self.tables()
        if not tables:
            return None
        parts = []
        for name in tables:
            t = TABLES[name]
            if t.date_column is None:
                continue
            col = t.date_column
            if name == "deals":
                # Open deals carry expected close dates in the future; they are not data.
                parts.append(
                    "SELECT max(greatest(created_date, CASE WHEN status <> 'open' THEN close_date END)) FROM deals"
                )
            else:
                parts.append(f'SELECT max(CAST("{col}" AS DATE)) FROM "{name}"')
        if not parts:
            return None
        with self.connect() as con:
            value = con.execute(f"SELECT max(d) FROM ({' UNION ALL '.join(parts)}) AS t(d)").fetchone()[0]
        return value


def validate_name(name: str) -> str:
    """A workspace name that is safe as a directory name (no traversal, no hidden files)."""
    if not _NAME_RE.match(name) or name in {".", ".."}:
        raise KpiTreeError(
            f"invalid workspace name {name!r}: use letters, digits, space, '_', '-' or '.', "
            "up to 64 characters, e.g. 'acme-q3'"
        )
    return name


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
