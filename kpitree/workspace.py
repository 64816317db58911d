"""A workspace: one directory, one DuckDB file, settings, trees; nothing crosses between two.

Every connection to the workspace database is read-only, with external access disabled and the
configuration locked, so SQL built from a tree file can read the canonical tables and nothing
else: no files, no network, no extensions, no writes. Readers in one process share one database
instance, each thread through a cursor of its own, and a load waits for them (`FileAccess`); the
instance closes with its last reader, so a command-line load and the app can take turns on the file.

Besides the data, a workspace keeps what its users taught it about their files: the stage map
(`stage_map.json`, stage → open/won/lost), column mappings of unrecognised layouts
(`mappings/<header key>.json`), and the uploaded files of each load (`uploads/`). Workspaces live
side by side under a data directory (`create_workspace`, `rename_workspace`, `delete_workspace`,
which moves it to `.trash/`).
"""

from __future__ import annotations

import atexit
import heapq
import itertools
import json
import math
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from .engines import EngineSettings, Remote, remote_for
from .errors import KpiTreeError, LoadError, QueryError
from .health import PARAMETERS as HEALTH_PARAMETERS
from .schema import TABLES

DB_FILE = "kpitree.duckdb"
SETTINGS_FILE = "workspace.json"
STAGE_MAP_FILE = "stage_map.json"
MAPPINGS_DIR = "mappings"
UPLOADS_DIR = "uploads"
TRASH_DIR = ".trash"
META_TABLE = "_kpitree_loads"
_LOCK_WAIT_SECONDS = 15.0  # another process (a command-line load) holds the file
_READ_WAIT_SECONDS = 20.0  # a click waits this long for a load's swap in this process, then says a load runs
_WRITE_WAIT_SECONDS = 120.0  # a load waits this long for the clicks being computed
_MARKER_STALE_SECONDS = 600.0  # a load marker older than this is left over, not a load
READ_LINGER_SECONDS = 1.0
"""How long a workspace's read-only instance stays open after its last reader left.

Why: opening it costs 40-200 ms on a busy two-core machine (0.5 ms for a cursor on an open one) and
starts DuckDB's caches cold, and one user's click opens and closes it two or three times (eight
times for a first page) when nobody else reads. A second covers the gaps within a click and
between the panel's parts; a load in this process closes it at once (`FileAccess.acquire`), one
in another process announces itself (its marker) and gets the file within this second."""
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}")  # always with fullmatch: `$` lets "demo\n" through
QUERY_TIMEOUT_SECONDS = 30.0  # per query; a workspace may set "query_timeout" in workspace.json


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _usable_memory() -> int:
    """Bytes of memory this process may use: the machine's, or its container's limit if lower."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        total = 8 << 30
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit.isdigit():
            total = min(total, int(limit))
    except OSError:
        pass
    return total


DB_THREADS = max(1, min(4, _usable_cpus()))
"""Worker threads of a workspace's database instance.

Every session reading a workspace shares one DuckDB instance and its one pool of workers (see
`FileAccess`), so this bounds the CPU one workspace's queries take, however many users click.
More workers than cores only adds switching while twenty sessions query at once; four at most
leaves cores to the Streamlit server and to the other workspaces on a big machine."""

DB_MEMORY_LIMIT = max(256 << 20, min(4 << 30, _usable_memory() // 4))
"""The memory ceiling (bytes) of a workspace's database instance: a quarter of the machine, 256 MiB
to 4 GiB.

Why: DuckDB's own default is 80 % of the machine per instance, and there is one instance per open
workspace plus a load's, so one big query (a cross join in a custom measure, a sort of 10M rows)
could take the box from every other user and get the server killed. Under the ceiling DuckDB
spills sorts, joins and aggregates to `<workspace>/kpitree.duckdb.tmp` and fails only what cannot
fit, with a message (`QueryError`) instead of taking the server down."""

DB_TEMP_LIMIT = 4 * DB_MEMORY_LIMIT
"""What a workspace's queries may spill to disk (DuckDB's default is 90 % of the free disk, which
one runaway query could fill for every workspace and for the loads)."""

_DB_CONFIG = {
    "enable_external_access": False,
    "lock_configuration": True,  # SQL from a tree file cannot lift any of these
    "threads": DB_THREADS,
    "memory_limit": f"{DB_MEMORY_LIMIT // (1 << 20)}MiB",
    "max_temp_directory_size": f"{DB_TEMP_LIMIT // (1 << 20)}MiB",
}


class QueryTimeout(QueryError):
    """A query ran past the workspace's time limit and was stopped (`Cursor.execute`, remote engines)."""

    @classmethod
    def stopped(cls, where: str, seconds: float) -> QueryTimeout:
        """The one sentence every engine says when its time limit stops a query on `where`."""
        return cls(f"a query on {where} took longer than {seconds:g} s and was stopped: choose a shorter period or "
                   f"fewer segments, or raise \"query_timeout\" (seconds) in the workspace's {SETTINGS_FILE}")


class DataChanged(KpiTreeError):
    """A load replaced the workspace's data while a page computed on the data it had started with."""


class _Watchdog:
    """Interrupts statements that run past their deadline, all from one background thread.

    Why not a `threading.Timer` per statement: a click runs dozens of statements and twenty
    sessions click at once; one thread with a heap of deadlines costs nothing per statement.
    The interrupt happens under the same lock `stop` takes, so it can only reach a statement
    that is still running, never the next one on the same cursor.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int]] = []
        self._live: dict[int, duckdb.DuckDBPyConnection] = {}
        self._fired: set[int] = set()
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def start(self, con: duckdb.DuckDBPyConnection, seconds: float) -> int:
        with self._cond:
            token = next(self._ids)
            self._live[token] = con
            heapq.heappush(self._heap, (time.monotonic() + seconds, token))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="kpitree-query-watchdog", daemon=True)
                self._thread.start()
            self._cond.notify()
            return token

    def stop(self, token: int) -> bool:
        """Ends the watch; True when the deadline had passed and the statement was interrupted."""
        with self._cond:
            self._live.pop(token, None)
            if token in self._fired:
                self._fired.discard(token)
                return True
            return False

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][1] not in self._live:
                    heapq.heappop(self._heap)  # finished in time
                if not self._heap:
                    self._cond.wait()
                    continue
                deadline, token = self._heap[0]
                wait = deadline - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                heapq.heappop(self._heap)
                con = self._live.pop(token)
                self._fired.add(token)
                try:
                    con.interrupt()
                except duckdb.Error:  # closed meanwhile: nothing runs on it
                    pass


_WATCHDOG = _Watchdog()


class Cursor:
    """A workspace cursor whose every statement runs under the workspace's time limit.

    Everything that reads a workspace gets one (`Workspace.connect`): metric batches, the
    explanation's scans, usage charts, coverage and as-of queries alike, so a slow custom measure
    or a huge join is stopped wherever it runs, with one message. Other methods pass through to
    DuckDB's cursor; lazy relations (`sql`, `query`) are refused, because they would run later,
    outside the timer.
    """

    _LAZY = frozenset({"sql", "query", "from_query", "table", "view", "values"})

    def __init__(self, con: duckdb.DuckDBPyConnection, workspace: Workspace, limit: Callable[[], float]) -> None:
        self._con = con
        self._workspace = workspace
        self._limit = limit

    def execute(self, query: str, parameters: Any = None) -> Cursor:
        seconds = self._limit()
        token = _WATCHDOG.start(self._con, seconds)
        try:
            if parameters is None:
                self._con.execute(query)
            else:
                self._con.execute(query, parameters)
        except duckdb.InterruptException:
            if _WATCHDOG.stop(token):
                raise QueryTimeout.stopped(f"workspace {self._workspace.name!r}", seconds) from None
            raise
        except duckdb.OutOfMemoryException:
            _WATCHDOG.stop(token)
            raise QueryError(
                f"a query on workspace {self._workspace.name!r} needed more than the "
                f"{DB_MEMORY_LIMIT / (1 << 30):.1f} GiB memory ceiling and was stopped: choose a shorter period "
                "or fewer segments (a custom measure may join too much)") from None
        except BaseException:
            _WATCHDOG.stop(token)
            raise
        _WATCHDOG.stop(token)
        return self

    def __getattr__(self, name: str) -> Any:
        if name in self._LAZY:
            raise AttributeError(f"Cursor.{name} would run outside the time limit: use execute")
        return getattr(self._con, name)


class WorkspaceBusy(LoadError):
    """A load (or a rename, a delete) could not have the workspace file to itself in time.

    A LoadError, so a load's callers report it like any failed load: nothing was written."""


class FileAccess:
    """Who uses one workspace file in this process right now: any number of readers, or one writer.

    Why: DuckDB opens a file once per process, as one database instance with one configuration
    (a second `connect` with another configuration, or an `ATTACH` of the file from another
    instance, is refused while it is open), and a connection is not for two threads; an instance
    serves many threads through a cursor each. So readers share one read-only instance, opened by
    the first and closed by the last, so another process (a command-line load) can take the file
    between clicks. A writer (`ingest`'s swap attaches the file read-write in an instance of its
    own; renaming or deleting the workspace moves it) needs the file to itself: it waits until the
    readers are gone, and readers arriving meanwhile wait for it, so a stream of clicks cannot
    starve a load. Waits are bounded and end in a message, never a hang.

    Both sides count per thread: a thread may read again while it reads (a session's cursor held
    while a query opens another) or while it writes, and only the thread that took a side gives
    it back. `with access:` is the writer's side (what `_lock_for` callers always meant).

    Across processes, a writer also leaves a marker file beside the database (`<file>.loading`,
    holding its process id) while it waits and writes: readers in the app see it and open no new
    cursor, so the app's instance closes as soon as the clicks in flight end and a command-line
    load gets the file, instead of waiting in vain while twenty sessions keep it open. A marker
    of a process that is gone (a `kill -9`) or older than ten minutes is ignored.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._cond = threading.Condition(threading.Lock())
        self._readers: dict[int, int] = {}  # thread → how many reads it has open
        self._writer: int | None = None
        self._depth = 0  # the writer's nesting
        self._waiting = 0  # writers waiting for the readers to leave
        self._db_lock = threading.Lock()  # opening, closing and taking cursors of the instance
        self._db: duckdb.DuckDBPyConnection | None = None
        self._stamp: tuple | None = None  # the file the instance opened (inode, mtime, size)
        self._idle = 0  # counts the times the last reader left: a lingering close is for one of them
        self._timer: threading.Timer | None = None  # the pending lingering close, if any

    @property
    def readers(self) -> int:
        """Threads reading the file now (for messages and tests)."""
        with self._cond:
            return len(self._readers)

    # --- the writer's side ---------------------------------------------------------------

    def acquire(self, timeout: float = _WRITE_WAIT_SECONDS) -> bool:
        """Takes the file for this thread alone, once every reader has left; a KpiTreeError
        after `timeout` seconds, and at once if this thread is reading it (it would wait for itself)."""
        me = threading.get_ident()
        with self._cond:
            if self._writer == me:
                self._depth += 1
                return True
            if me in self._readers:
                raise KpiTreeError(f"workspace {self.path.parent.name!r} cannot be written while this same "
                                   "computation reads it; finish reading first")
            self._waiting += 1
            self._announce()
            try:
                free = self._cond.wait_for(lambda: self._writer is None and not self._readers, timeout)
            finally:
                self._waiting -= 1
                self._cond.notify_all()  # readers held back for this writer may go if it gave up
            if not free:
                if self._writer is None and not self._waiting:
                    self._withdraw()
                raise WorkspaceBusy(f"workspace {self.path.parent.name!r} is busy: {len(self._readers)} page(s) were "
                                   f"still reading it after {timeout:g} s; try again in a moment")
            self._close_db()  # lingering after the last reader: the writer needs the file itself
            self._writer, self._depth = me, 1
            return True

    def release(self) -> None:
        with self._cond:
            if self._writer != threading.get_ident():
                raise RuntimeError("cannot release a workspace write lock this thread does not hold")
            self._depth -= 1
            if not self._depth:
                self._writer = None
                if not self._waiting:
                    self._withdraw()
                self._cond.notify_all()

    def __enter__(self) -> FileAccess:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # --- the readers' side ---------------------------------------------------------------

    @contextmanager
    def reading(self, workspace: Workspace) -> Iterator[duckdb.DuckDBPyConnection]:
        """A DuckDB cursor of this thread's own on the shared read-only instance, closed on exit."""
        self._enter_read(workspace.name)
        try:
            with self._db_lock:
                if self._db is None:
                    self._db = workspace._open()
                    self._stamp = _file_stamp(self.path)
                cursor = self._db.cursor()
            try:
                yield cursor
            finally:
                cursor.close()
        finally:
            self._leave_read()

    # --- the marker other processes see -------------------------------------------------

    @property
    def marker(self) -> Path:
        return self.path.with_name(self.path.name + ".loading")

    def _announce(self) -> None:
        try:
            self.marker.write_text(f"{os.getpid()}\n{self.path}\n", encoding="utf-8")
        except OSError:  # no folder yet (a first load creates it), or read-only: nobody to tell
            pass

    def _withdraw(self) -> None:
        try:
            self.marker.unlink(missing_ok=True)
        except OSError:
            pass

    def _loading_elsewhere(self) -> bool:
        """Another live process writes this file now (its marker; see the class docstring)."""
        try:
            text = self.marker.read_text(encoding="utf-8")
            age = time.time() - self.marker.stat().st_mtime
        except (OSError, UnicodeDecodeError):
            return False
        lines = text.splitlines()
        try:
            pid = int(lines[0])
        except (IndexError, ValueError):
            return False
        if pid == os.getpid() or lines[1:2] != [str(self.path)] or age > _MARKER_STALE_SECONDS:
            return False  # ours (the in-process side covers it), a moved workspace's, or stale
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True

    def _enter_read(self, name: str) -> None:
        me = threading.get_ident()
        with self._cond:
            if me in self._readers or self._writer == me:
                self._readers[me] = self._readers.get(me, 0) + 1
                return
            deadline = time.monotonic() + _READ_WAIT_SECONDS
            while True:
                here = self._writer is None and not self._waiting
                if here and not self._loading_elsewhere():
                    break
                if here and not self._readers:
                    self._close_db()  # another process loads: let go of the file at once
                left = deadline - time.monotonic()
                if left <= 0:
                    raise WorkspaceBusy(f"workspace {name!r} is busy: a load is running (or the workspace is being "
                                        "renamed); reload the page in a moment")
                # a writer here wakes us when done; one in another process is polled
                self._cond.wait(min(left, 0.1 if here else left))
            if not self._readers and self._db is not None and _file_stamp(self.path) != self._stamp:
                self._close_db()  # the file was replaced behind the lingering instance: never serve the old one
            self._readers[me] = 1

    def _leave_read(self) -> None:
        me = threading.get_ident()
        with self._cond:
            depth = self._readers.get(me, 0) - 1
            if depth < 0:
                raise RuntimeError("cannot release a workspace read this thread does not hold")
            if depth:
                self._readers[me] = depth
                return
            del self._readers[me]
            if not self._readers:
                # The last reader leaves the instance open a moment (READ_LINGER_SECONDS), unless a
                # load waits for the file, here or in another process.
                self._idle += 1
                try:
                    if READ_LINGER_SECONDS <= 0 or self._waiting or self._loading_elsewhere():
                        self._close_db()
                    else:
                        if self._timer is not None:
                            self._timer.cancel()
                        self._timer = threading.Timer(READ_LINGER_SECONDS, self._close_idle, (self._idle,))
                        self._timer.daemon = True
                        self._timer.start()
                finally:
                    self._cond.notify_all()

    def _close_idle(self, idle: int) -> None:
        """A lingering instance's end: closed if no reader came back since that last one left."""
        with self._cond:
            if not self._readers and idle == self._idle and self._writer is None:
                self._close_db()

    def shut(self) -> None:
        """At interpreter exit: the lingering close done now, on this thread. Left to its daemon
        timer, it could run DuckDB's close while Python finalises and abort the process
        ("FATAL: exception not rethrown", exit 134) after everything else had succeeded."""
        with self._cond:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if not self._readers and self._writer is None:
                self._close_db()

    def _close_db(self) -> None:
        """Closes the instance (with `_cond` held and no reader on it): the file is free."""
        with self._db_lock:
            db, self._db = self._db, None
        if db is not None:
            db.close()

    @property
    def open(self) -> bool:
        """The read-only instance is open now (for tests)."""
        return self._db is not None


def _file_stamp(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


# One FileAccess per database file within this process.
_file_locks: dict[Path, FileAccess] = {}
_file_locks_guard = threading.Lock()


@atexit.register
def _shut_all() -> None:
    with _file_locks_guard:
        accesses = list(_file_locks.values())
    for access in accesses:
        access.shut()


def _lock_for(path: Path) -> FileAccess:
    """The file's access: `with _lock_for(path):` has it to itself (a load's swap, a rename)."""
    with _file_locks_guard:
        return _file_locks.setdefault(path, FileAccess(path))


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
        self._pinned: str | None = None  # see `pinned`
        self._settings: Settings | None = None

    def pinned(self, version: str, settings: Settings) -> Workspace:
        """This workspace as one computation sees it: data of `version`, these settings.

        An Engine reads through it (`Engine.workspace`), so everything computed for one page —
        the Engine's own queries, the explanation's, the usage charts' — reads the data it started
        with: a cursor opened after a load replaced the data raises `DataChanged` instead of mixing
        old and new numbers (or caching new numbers under the old version). Queries run under the
        time limit of `settings`, the ones the Engine validated.
        """
        view = Workspace(self.root)
        view._pinned, view._settings = version, settings
        return view

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def db_path(self) -> Path:
        return self.root / DB_FILE

    @property
    def trees_dir(self) -> Path:
        return self.root / "trees"

    @property
    def uploads_dir(self) -> Path:
        """Where the upload page keeps the files of each load (nothing uploaded is lost)."""
        return self.root / UPLOADS_DIR

    def new_upload_dir(self) -> Path:
        """A fresh folder under `uploads/` for one batch of uploaded files."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for _ in range(100):
            path = self.uploads_dir / f"{stamp}-{secrets.token_hex(3)}"
            try:
                path.mkdir(parents=True)
                return path
            except FileExistsError:
                continue
        raise KpiTreeError("cannot create an upload folder")

    # --- what a user taught the workspace about their files ---------------------------------

    def stage_map(self) -> dict[str, str]:
        """Stage name (lower case) → open/won/lost, as saved by the user for this workspace."""
        path = self.root / STAGE_MAP_FILE
        if not path.exists():
            return {}
        raw = json.loads(path.read_text(encoding="utf-8"))
        return {str(k): str(v) for k, v in raw.items() if v in ("open", "won", "lost")}

    def save_stage_map(self, mapping: dict[str, str]) -> None:
        """Stores stage → status choices; they win over the built-in defaults on every later load."""
        bad = {k: v for k, v in mapping.items() if v not in ("open", "won", "lost")}
        if bad:
            raise KpiTreeError(f"stage map: status must be open, won or lost, not {bad}")
        clean = {re.sub(r"\s+", " ", k.strip().lower()): v for k, v in mapping.items() if k.strip()}
        _atomic_write(self.root / STAGE_MAP_FILE, json.dumps(dict(sorted(clean.items())), indent=2))

    def load_mapping(self, key: str) -> dict | None:
        """The saved column mapping for files whose header set has this key, if any."""
        if not re.fullmatch(r"[0-9a-f]{16}", key):
            return None
        path = self.root / MAPPINGS_DIR / f"{key}.json"
        if not path.exists():
            return None
        return json.loads(path.read_text(encoding="utf-8"))

    def save_mapping(self, key: str, headers: list[str], table: str, columns: dict[str, str],
                     fill: dict[str, str] | None = None, file: str | None = None,
                     units: dict[str, str] | None = None, derive: dict[str, str] | None = None) -> Path:
        """Saves `canonical column → file header` (and constants/defaults, each money column's unit:
        "cents" or "units", and how a column is derived: `{"mrr": "per_cycle"}` for a price per billing
        cycle, `{"mrr": "arr"}` for a yearly amount) for this header set.

        Every later load of a file with the same headers, in any order or case, reads it this way.
        """
        if not re.fullmatch(r"[0-9a-f]{16}", key):
            raise KpiTreeError(f"invalid mapping key {key!r}")
        unknown = sorted(set(columns.values()) - set(headers))
        if unknown:
            raise KpiTreeError(f"mapping names columns the file does not have: {', '.join(unknown)}")
        path = self.root / MAPPINGS_DIR / f"{key}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        bad = sorted(f"{c}: {u}" for c, u in (units or {}).items() if u not in ("cents", "units"))
        if bad:
            raise KpiTreeError(f"a money column's unit is 'cents' or 'units', not {', '.join(bad)}")
        data = {"table": table, "columns": columns, "headers": headers, "fill": dict(fill or {}),
                "file": file, "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S")}
        if units:
            data["units"] = dict(units)
        if derive:
            data["derive"] = {str(k): str(v) for k, v in derive.items()}
        _atomic_write(path, json.dumps(data, indent=2))
        return path

    def mappings(self) -> dict[str, dict]:
        """Every saved mapping by header key."""
        folder = self.root / MAPPINGS_DIR
        if not folder.is_dir():
            return {}
        return {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))}

    def delete_mapping(self, key: str) -> None:
        if re.fullmatch(r"[0-9a-f]{16}", key):
            (self.root / MAPPINGS_DIR / f"{key}.json").unlink(missing_ok=True)

    # --- the engine that holds the data --------------------------------------------------------

    def engine_settings(self) -> EngineSettings:
        """Which engine holds this workspace's data (workspace.json's "engine"; DuckDB by default)."""
        return EngineSettings.from_raw(self.settings().extra.get("engine"), str(self.root / SETTINGS_FILE))

    @property
    def remote(self) -> Remote | None:
        """The remote engine (Postgres, Spark) the settings name; None for the workspace's own file.

        Broken settings read as the workspace's own file here, as for the time limit: listing a
        workspace need not fail, and the Engine reports the settings' error with its file and key."""
        try:
            found = self.engine_settings()
        except KpiTreeError:
            return None
        return remote_for(found) if found.remote else None

    def engine_label(self) -> str:
        """Which engine answers for this workspace, in words without secrets (pages, CLI)."""
        remote = self.remote
        return remote.label if remote is not None else "DuckDB (the workspace's own file)"

    def loads(self, limit: int = 50) -> list[dict]:
        """The latest loads recorded in the workspace (file, table, rows, when), newest first."""
        if self.remote is not None:
            return []  # a remote engine's tables are loaded by its owners, not here
        if not self.db_path.exists():
            return []
        with self.connect() as con:
            present = con.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [META_TABLE]
            ).fetchone()[0]
            if not present:
                return []
            cur = con.execute(f"SELECT * FROM {META_TABLE} ORDER BY loaded_at DESC LIMIT {int(limit)}")
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def row_counts(self) -> dict[str, int]:
        """Rows per loaded canonical table."""
        tables = self.tables()
        if not tables:
            return {}
        with self.connect() as con:
            sql = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM \"{t}\"" for t in tables)
            return {t: int(n) for t, n in con.execute(sql).fetchall()}

    @contextmanager
    def connect(self) -> Iterator[Cursor]:
        """A sandboxed, read-only cursor of this thread's own (external access off, configuration
        locked, memory capped), closed on exit, every statement under the time limit (`Cursor`).
        Threads read at once; a load of this workspace waits for them, and they for it.

        On a remote engine, a cursor that translates each statement for the engine and returns its
        results as DuckDB would (`engines.base.RemoteCursor`). The pinned version is not checked
        per cursor there: reading it costs a count of every table, and a warehouse changes under
        any reader anyway; results stay keyed on the version the Engine read when it started."""
        limit = self._query_timeout()
        remote = self.remote
        if remote is not None:
            with remote.cursor(limit()) as cur:
                yield cur
            return
        with _lock_for(self.db_path).reading(self) as con:
            if self._pinned is not None and self.data_version() != self._pinned:
                raise DataChanged(f"the data of workspace {self.name!r} was replaced by a load while this page was "
                                  "being computed: reload the page to see the new data")
            yield Cursor(con, self, limit)

    def _query_timeout(self) -> Callable[[], float]:
        """The time limit of this workspace's statements, read when each one starts.

        A pinned view uses its Engine's settings; otherwise workspace.json's value, or the default
        when workspace.json is broken (the Engine reports that; a listing of tables need not fail)."""
        if self._settings is not None:
            settings = self._settings
            return lambda: float(settings.extra.get("query_timeout", QUERY_TIMEOUT_SECONDS))
        try:
            seconds = float(self.settings().extra.get("query_timeout", QUERY_TIMEOUT_SECONDS))
        except KpiTreeError:
            seconds = QUERY_TIMEOUT_SECONDS
        return lambda: seconds

    def _open(self) -> duckdb.DuckDBPyConnection:
        """The workspace file's read-only instance; `FileAccess` opens it once for every reader."""
        if not self.db_path.exists():
            raise KpiTreeError(f"workspace {self.name!r} has no data yet: load your files on the Upload page, "
                               "or run `python -m kpitree ingest --workspace W FILE…`")
        deadline = time.monotonic() + _LOCK_WAIT_SECONDS
        while True:
            try:
                return duckdb.connect(str(self.db_path), read_only=True, config=dict(_DB_CONFIG))
            except duckdb.IOException as exc:
                # Another process (a command-line load) holds the file: wait for it briefly.
                if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                    raise KpiTreeError(f"workspace {self.name!r} is busy: {exc}") from None
                time.sleep(0.1)

    def tables(self) -> list[str]:
        """Canonical tables that hold data in this workspace."""
        remote = self.remote
        if remote is not None:
            return list(remote.catalogue())
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
        remote = self.remote
        if remote is not None:
            return {t: [c for c, _ in cols] for t, cols in remote.catalogue().items()}
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
        """The workspace's settings (workspace.json), every number checked (`check_settings`): a
        KpiTreeError naming the file and the key instead of a traceback later."""
        if self._settings is not None:
            return self._settings
        path = self.root / SETTINGS_FILE
        if not path.exists():
            return Settings()
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            where = f" (line {exc.lineno})" if isinstance(exc, json.JSONDecodeError) else ""
            raise KpiTreeError(f"{path} is not valid JSON{where}: fix it or delete it to use the defaults") from None
        if not isinstance(raw, dict):
            raise KpiTreeError(f"{path} must hold one JSON object of settings, e.g. {{\"gross_margin\": 0.75}}")
        check_settings(raw, str(path))
        known = {k: raw.pop(k) for k in list(raw) if k in Settings.__dataclass_fields__ and k != "extra"}
        if known.get("gross_margin") is not None:
            known["gross_margin"] = float(known["gross_margin"])
        if known.get("amber_threshold") is not None:
            known["amber_threshold"] = float(known["amber_threshold"])
        return Settings(**known, extra=raw)

    def save_settings(self, settings: Settings) -> None:
        data = {k: v for k, v in settings.__dict__.items() if k != "extra"}
        data.update(settings.extra)
        check_settings(data, str(self.root / SETTINGS_FILE))
        _atomic_write(self.root / SETTINGS_FILE, json.dumps(data, indent=2))

    def data_version(self) -> str:
        """Changes whenever data is loaded: a cache key for computed results. On a remote engine:
        the engine's kind and the row count and latest date of every table (`Remote.data_version`)."""
        remote = self.remote
        if remote is not None:
            return remote.data_version()
        try:
            st = self.db_path.stat()
        except FileNotFoundError:
            return "empty"
        return f"{st.st_mtime_ns}-{st.st_size}"

    def as_of(self) -> date | None:
        """The last day the data covers: the settings' override, else the data's latest date that has
        happened — never after today: a subscription scheduled to start next week (Recurly exports them)
        is no fact yet, and "data as of" a day still to come made every period look further along."""
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
                    "SELECT max(greatest(CASE WHEN created_date <= current_date THEN created_date END, "
                    "CASE WHEN status <> 'open' AND close_date <= current_date THEN close_date END)) FROM deals"
                )
            elif name == "subscriptions":
                # A billing export is a snapshot: a cancellation that already happened is as recent a fact
                # as a new subscription (an end date still ahead is only scheduled)
                parts.append("SELECT max(greatest(CASE WHEN start_date <= current_date THEN start_date END, "
                             "CASE WHEN end_date <= current_date THEN end_date END)) FROM subscriptions")
            else:
                parts.append(f'SELECT max(CASE WHEN CAST("{col}" AS DATE) <= current_date THEN CAST("{col}" AS DATE) END) '
                             f'FROM "{name}"')
        if not parts:
            return None
        with self.connect() as con:
            value = con.execute(f"SELECT max(d) FROM ({' UNION ALL '.join(parts)}) AS t(d)").fetchone()[0]
        return value


# --- settings a user types into workspace.json ---------------------------------------------------

_HEALTH_RANGES = {"weight": (0.0, 100.0, False), "count": (0.0, 1e6, False), "score": (0.0, 100.0, False)}
NUMERIC_SETTINGS: dict[str, tuple[float, float, bool, str]] = {
    "query_timeout": (0.0, 3600.0, True, "seconds a query may run"),
    "amber_threshold": (0.0, 1.0, False, "a share of the target, e.g. 0.05 for 5 %"),
    "gross_margin": (0.0, 1.0, False, "a share of revenue, e.g. 0.8 for 80 %"),
    **{p.name: (*_HEALTH_RANGES[p.unit], p.description.rstrip(".").lower()) for p in HEALTH_PARAMETERS},
}
"""Every number workspace.json may hold: (low, high, low excluded, what it is), bounds inclusive."""
NUMERIC_SETTINGS["health_ticket_cap"] = (0.0, 1e6, True, "tickets in 90 days at which the ticket score is 0")


def check_settings(raw: dict[str, Any], where: str = SETTINGS_FILE) -> None:
    """A KpiTreeError naming `where` and the key for a value the metrics cannot use.

    Numbers must be numbers (not text, not true/false), finite and within their range: a
    `query_timeout` of "abc", 0, -5, NaN or 1e309 would otherwise surface as a traceback (or as a
    timer that never fires) on the first click. `as_of` must be an ISO date.
    """
    for key, (low, high, open_low, what) in NUMERIC_SETTINGS.items():
        if key not in raw or raw[key] is None:
            continue
        value = raw[key]
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if ok:
            ok = (value > low if open_low else value >= low) and value <= high
        if not ok:
            bound = f"above {low:g}" if open_low else f"from {low:g}"
            raise KpiTreeError(f"{where}: \"{key}\" must be a number {bound} to {high:g} ({what}), "
                               f"not {value!r}; fix it, or remove the key to use the default")
    EngineSettings.from_raw(raw.get("engine"), where)
    as_of = raw.get("as_of")
    if as_of is not None:
        try:
            if not isinstance(as_of, str):
                raise ValueError
            date.fromisoformat(as_of)
        except ValueError:
            raise KpiTreeError(f"{where}: \"as_of\" must be a date written 2026-10-31, not {as_of!r}; fix it, "
                               "or remove the key to use the data's own latest date") from None


def validate_name(name: str) -> str:
    """A workspace name that is safe as a directory name (no traversal, no hidden files)."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or name in {".", ".."}:
        raise KpiTreeError(
            f"invalid workspace name {name!r}: use letters, digits, space, '_', '-' or '.', "
            "up to 64 characters, e.g. 'acme-q3'"
        )
    return name


# --- workspaces under a data directory ----------------------------------------------------------


def workspace_path(data_dir: str | Path, name: str) -> Path:
    """The directory of workspace `name` under `data_dir`; a name can never point outside it."""
    validate_name(name)
    root = Path(data_dir).expanduser().resolve()
    path = (root / name).resolve()
    if path.parent != root:
        raise KpiTreeError(f"invalid workspace name {name!r}")
    return path


def list_workspaces(data_dir: str | Path) -> list[str]:
    """Names of the workspaces under the data directory (hidden and temporary folders left out)."""
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
                  and not p.name.endswith(".tmp") and _NAME_RE.fullmatch(p.name))


def create_workspace(data_dir: str | Path, name: str) -> Workspace:
    """A new, empty workspace; an error if one of that name exists."""
    path = workspace_path(data_dir, name)
    if path.exists():
        raise KpiTreeError(f"workspace {name!r} already exists")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.mkdir()
    return Workspace(path)


def rename_workspace(data_dir: str | Path, old: str, new: str) -> Workspace:
    """Renames a workspace directory (data, trees, mappings move with it)."""
    src = workspace_path(data_dir, old)
    dst = workspace_path(data_dir, new)
    if not src.is_dir():
        raise KpiTreeError(f"workspace {old!r} does not exist")
    if dst.exists():
        raise KpiTreeError(f"workspace {new!r} already exists")
    with _lock_for(src / DB_FILE):
        src.rename(dst)
    (dst / f"{DB_FILE}.loading").unlink(missing_ok=True)  # the rename's own marker moved along
    return Workspace(dst)


def delete_workspace(data_dir: str | Path, name: str) -> Path:
    """Moves a workspace into the data directory's `.trash` folder (restorable by hand); returns where."""
    src = workspace_path(data_dir, name)
    if not src.is_dir():
        raise KpiTreeError(f"workspace {name!r} does not exist")
    trash = src.parent / TRASH_DIR
    trash.mkdir(exist_ok=True)
    dst = trash / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    with _lock_for(src / DB_FILE):
        shutil.move(str(src), str(dst))
    return dst


def safe_file_name(name: str) -> str:
    """An uploaded file's name reduced to a plain file name (no folders, no hidden or odd characters)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = re.sub(r"[^A-Za-z0-9._ ()+-]+", "_", base).strip(" .")
    return base[:120] or "upload.csv"


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
